"""Execute a journaled run: workers, rate limits, signals and a closed stdout, the
journal callbacks around every cancel.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from paycancel_cli import pipes
from paycancel_cli.breaker import CIRCUIT_OPEN, Breaker
from paycancel_cli.engine import Canceller, InFlight, RetryPolicy, Target, unexpected_error
from paycancel_cli.errors import JournalError
from paycancel_cli.journal import Journal, PaymentRow
from paycancel_cli.models import AUTH_FAILED, ErrorInfo, Outcome, Payment, Result
from paycancel_cli.runs.request import BulkRequest, BulkUI
from paycancel_cli.runs.summary import Summary, summarize

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.session import Session


@dataclass
class Execution:
    interrupted: bool = False
    dead_accounts: set[str] = field(default_factory=set)


async def execute(
    session: Session,
    journal: Journal,
    run_id: str,
    *,
    concurrency: int,
    dry_run: bool,
    stop: asyncio.Event,
    on_result: Callable[[Result], None],
    policy: RetryPolicy | None = None,
    resumed: bool = False,
    read_first: bool = False,
    planned: bool = False,
) -> Execution:
    state = Execution()
    queue: asyncio.Queue[PaymentRow | None] = asyncio.Queue(maxsize=concurrency * 2)
    fatal: list[BaseException] = []

    async def in_flight(target: Target, key: str, before: Payment | None) -> None:
        journal.mark_in_flight(run_id, target.account, target.payment_id, before)

    async def new_key(target: Target, key: str) -> None:
        journal.set_key(run_id, target.account, target.payment_id, key)

    cancellers: dict[str, Canceller] = {}

    def canceller(account: str) -> Canceller:
        if account not in cancellers:
            cancellers[account] = Canceller(
                session.provider(account),
                run_id=run_id,
                policy=policy,
                dry_run=dry_run,
                before_send=in_flight,
                cancel_first=not read_first,  # where the adapter declares it can
                on_new_key=new_key,
                breaker=Breaker(),
            )
        return cancellers[account]

    async def producer() -> None:
        try:
            for row in journal.pending(run_id):
                if stop.is_set():
                    break
                await queue.put(row)
        except BaseException:
            # No await here: a cancelled producer must not wait on a full queue whose
            # workers are being cancelled too (that wait never ends).
            stop.set()
            raise
        for _ in range(concurrency):
            await queue.put(None)

    async def process(row: PaymentRow) -> Result:
        if row.account in state.dead_accounts:
            return _failed(
                run_id,
                row,
                ErrorInfo(
                    AUTH_FAILED,
                    f"account {row.account!r}: credentials rejected earlier in this run; not tried",
                ),
            )
        breaker = canceller(row.account).breaker
        if breaker is not None and breaker.open:
            # Not sent; a cancel left in flight by an earlier invocation counts as sent,
            # so that the resume reads it back before anything is re-sent.
            return replace(
                _failed(
                    run_id,
                    row,
                    ErrorInfo(CIRCUIT_OPEN, breaker.message(row.account), transient=True),
                ),
                attempts=1 if row.state == "in_flight" else 0,
            )
        # A resumed run does not trust a list page (its state may be stale): the payment
        # is read again, or cancelled first where the adapter's answer classifies.
        known = None if resumed else row.known
        target = Target(row.account, row.payment_id, row.reason, row.expected, known)
        if planned:  # a reviewed plan's payment: read, compared with the plan, then cancelled
            target = Target(row.account, row.payment_id, row.reason, planned=row.known)
        in_flight = InFlight(row.before) if row.state == "in_flight" else None
        result = await canceller(row.account).process(
            target, key=row.idempotency_key, in_flight=in_flight
        )
        if result.error is not None and result.error.code == AUTH_FAILED:
            state.dead_accounts.add(row.account)
        return result

    async def worker() -> None:
        while (row := await queue.get()) is not None:
            if stop.is_set():
                continue
            try:
                try:
                    result = await process(row)
                except JournalError:
                    raise
                except Exception as exc:
                    target = Target(row.account, row.payment_id, row.reason)
                    error = unexpected_error(row.provider or row.account, target, exc)
                    result = _failed(run_id, row, error)
                journal.mark_done(result)
            except Exception as exc:
                fatal.append(exc)
                stop.set()
                continue
            try:
                on_result(result)
            except Exception as exc:  # the result is journaled; showing it failed
                fatal.append(exc)
                stop.set()

    await asyncio.gather(producer(), *(worker() for _ in range(concurrency)))
    state.interrupted = stop.is_set()
    if fatal:
        raise fatal[0]
    return state


def _failed(run_id: str, row: PaymentRow, error: ErrorInfo) -> Result:
    """One planned payment's failure, decided without the engine (an account whose
    credentials were rejected, a worker's unexpected exception)."""
    return Result(
        run_id,
        row.account,
        row.provider,
        row.payment_id,
        Outcome.FAILED,
        error=error,
        idempotency_key=row.idempotency_key,
    )


async def execute_and_summarize(
    session: Session,
    journal: Journal,
    run_id: str,
    request: BulkRequest,
    config: Config,
    ui: BulkUI,
    stop: asyncio.Event,
    *,
    resumed: bool,
    policy: RetryPolicy | None,
    dry_run: bool,
    read_first: bool,
    planned: bool = False,
) -> tuple[Summary, bool]:
    started = time.monotonic()
    pending = journal.count_pending(run_id)
    ui.started(run_id, pending, resumed)
    # From here on SIGINT/SIGTERM stop the run gracefully; before (reading, the prompt)
    # Ctrl-C aborts at once, as nothing has been sent.
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        with pipes.watch(loop, stop.set):  # a closed stdout stops the run as Ctrl-C does
            state = await execute(
                session,
                journal,
                run_id,
                concurrency=request.concurrency or config.defaults.concurrency,
                dry_run=dry_run,
                stop=stop,
                on_result=ui.result,
                policy=policy,
                resumed=resumed,
                read_first=read_first,
                planned=planned,
            )
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        ui.finished()
    summary = summarize(journal, run_id)
    summary.requests = session.counter.requests
    summary.duration_s = time.monotonic() - started
    return summary, state.interrupted
