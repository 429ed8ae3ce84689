"""What the commands do, as plain async functions: no terminal, no typer, no rich.

``status`` reads payments.  The single-payment flow is two calls with the operator's
confirmation between them, made by the caller outside the event loop (so that Ctrl-C
or end of input at the prompt ends the command at once): ``decide_one`` reads and
decides, sending and writing nothing; ``cancel_confirmed`` journals the run, marks the
payment in flight, sends the cancel and journals the result.
"""

from __future__ import annotations

import getpass
import hashlib
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from paycancel_cli.engine import Canceller, RetryPolicy, Target, idempotency_key
from paycancel_cli.errors import PaycancelError, ProviderError
from paycancel_cli.journal import PlanRow
from paycancel_cli.models import ErrorInfo, Outcome, Payment, Result

if TYPE_CHECKING:
    from paycancel_cli.journal import Journal
    from paycancel_cli.session import Session


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class StatusLine:
    account: str
    payment_id: str
    payment: Payment | None
    error: ErrorInfo | None


async def status(session: Session, account: str, payment_ids: list[str]) -> list[StatusLine]:
    provider = session.provider(account)
    for pid in payment_ids:
        provider.validate_id(pid)
    canceller = Canceller(provider, run_id=None)
    out = []
    for pid in payment_ids:
        try:
            out.append(StatusLine(account, pid, await canceller.read(pid), None))
        except ProviderError as exc:
            # Not found, or an answer that cannot be understood: that id's line says so,
            # the other ids are still shown.
            out.append(
                StatusLine(
                    account,
                    pid,
                    None,
                    ErrorInfo(exc.code, exc.message, exc.http_status, transient=exc.retryable),
                )
            )
    return out


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
    if decided.outcome is not Outcome.WOULD_CANCEL or decided.before is None:
        raise PaycancelError("internal: only a payment that would be cancelled can be sent")
    if decided.run_id is None:
        raise PaycancelError("internal: a decided payment carries its run id")
    run_id, account, payment_id = decided.run_id, decided.account, decided.payment_id
    provider = session.provider(account)
    key = idempotency_key(run_id, account, payment_id)
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
    if started is not None:
        started.append(run_id)
    journal.plan(
        run_id,
        [PlanRow(account, provider.key, payment_id, reason, key, known=decided.before)],
    )

    async def in_flight(target: Target, _key: str, before: Payment | None) -> None:
        journal.mark_in_flight(run_id, target.account, target.payment_id, before)

    async def new_key(target: Target, fresh: str) -> None:
        journal.set_key(run_id, target.account, target.payment_id, fresh)

    canceller = Canceller(
        provider, run_id=run_id, policy=policy, before_send=in_flight, on_new_key=new_key
    )
    target = Target(account, payment_id, reason, known=decided.before)
    status = "interrupted"
    try:
        result = await canceller.process(target, key=key)
        journal.mark_done(result)
        status = "completed"
    finally:
        journal.set_run_status(run_id, status)
    return result
