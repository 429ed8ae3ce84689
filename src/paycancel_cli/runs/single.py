"""``cancel ID``: a run of one payment, through the same pipeline as a bulk run.

Plan: one read (``decide_one``: sends and writes nothing; the result carries the run
id a confirmed cancel will use).  Then the one confirmation (``runs.confirm``), made
by the caller outside the event loop, so that Ctrl-C or end of input at the prompt ends
the command at once with nothing journaled.  Then ``cancel_confirmed``: the run and its
one planned payment journaled, executed by ``runs.execute`` like any run's payments,
and summarized by ``Summary.add`` like any run's results.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

from paycancel_cli.core import host, new_run_id, os_user
from paycancel_cli.engine import Canceller, Target, idempotency_key
from paycancel_cli.errors import PaycancelError
from paycancel_cli.journal import PlanRow
from paycancel_cli.models import Outcome, Result
from paycancel_cli.runs.execute import execute
from paycancel_cli.runs.summary import Summary

if TYPE_CHECKING:
    from paycancel_cli.engine import RetryPolicy
    from paycancel_cli.journal import Journal
    from paycancel_cli.session import Session


async def decide_one(
    session: Session,
    account: str,
    payment_id: str,
    *,
    reason: str,
    policy: RetryPolicy | None = None,
) -> Result:
    """Read one payment and decide: ``would_cancel`` or why not.  Sends nothing and
    writes nothing; the result carries the run id a confirmed cancel will use."""
    provider = session.provider(account)
    provider.validate_id(payment_id)
    run_id = new_run_id()
    reader = Canceller(provider, run_id=run_id, policy=policy, dry_run=True)
    key = idempotency_key(run_id, account, payment_id)
    return await reader.process(Target(account, payment_id, reason), key=key)


def start_one(
    session: Session, journal: Journal, decided: Result, *, reason: str, command: str
) -> str:
    """Journal the run of one decided payment and plan it, with the state read as its
    before (so it is not read again); returns the run id."""
    if decided.outcome is not Outcome.WOULD_CANCEL or decided.before is None:
        raise PaycancelError("internal: only a payment that would be cancelled can be sent")
    if decided.run_id is None:
        raise PaycancelError("internal: a decided payment carries its run id")
    run_id, account, payment_id = decided.run_id, decided.account, decided.payment_id
    provider = session.provider(account)
    journal.start_run(
        run_id,
        user=os_user(),
        host=host(),
        command=session.redactor(command),
        input=f"{account}:{payment_id}",
        input_hash=hashlib.sha256(f"{account}:{payment_id}".encode()).hexdigest(),
        reason=session.redactor(reason),
        options={"kind": "cancel", "accounts": [account], "sandbox": session.config.sandbox},
    )
    key = idempotency_key(run_id, account, payment_id)
    journal.plan(
        run_id, [PlanRow(account, provider.key, payment_id, reason, key, known=decided.before)]
    )
    return run_id


async def cancel_confirmed(
    session: Session,
    decided: Result,
    *,
    reason: str,
    journal: Journal,
    command: str,
    policy: RetryPolicy | None = None,
    started: list[str] | None = None,
) -> Result:
    """Journal and send the cancel that ``decide_one`` found possible and the operator
    confirmed.  Nothing is journaled before this call, so a prompt abandoned between
    the two leaves no trace.  ``started`` receives the run id once it is journaled."""
    run_id = start_one(session, journal, decided, reason=reason, command=command)
    if started is not None:
        started.append(run_id)
    results: list[Result] = []
    status = "interrupted"
    try:
        await execute(
            session,
            journal,
            run_id,
            concurrency=1,
            dry_run=False,
            stop=asyncio.Event(),
            on_result=results.append,
            policy=policy,
        )
        status = "completed"
    finally:
        journal.set_run_status(run_id, status)
    return results[0]


def summary_of(
    result: Result, *, requests: int, duration_s: float, audit_head: dict[str, object] | None
) -> Summary:
    """The one-payment run's summary, as any run's: totals, exit code, JSON line."""
    summary = Summary(result.run_id or "")
    summary.add(result)
    summary.requests, summary.duration_s, summary.audit_head = requests, duration_s, audit_head
    return summary
