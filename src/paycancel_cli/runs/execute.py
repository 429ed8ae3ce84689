"""Execute a journaled run: workers, rate limits, signals and a closed stdout, the
journal callbacks around every cancel.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

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
    from paycancel_cli.redact import Redactor
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
    """The run's planned (and in-flight) payments, ``concurrency`` at a time, each
    journaled as it ends and then passed to ``on_result``; ``stop`` lets the ones in
    flight finish and starts no other.  A journal failure stops the run and is raised
    once the workers end."""
    workers = _Workers(
        session, journal, run_id, dry_run=dry_run, stop=stop, on_result=on_result,
        policy=policy, resumed=resumed, read_first=read_first, planned=planned,
        queue=asyncio.Queue(maxsize=concurrency * 2),
    )  # fmt: skip
    await asyncio.gather(
        workers.produce(concurrency), *(workers.work() for _ in range(concurrency))
    )
    workers.state.interrupted = stop.is_set()
    if workers.fatal:
        raise workers.fatal[0]
    return workers.state


@dataclass
class _Workers:
    """What ``execute``'s producer and workers share."""

    session: Session
    journal: Journal
    run_id: str
    dry_run: bool
    stop: asyncio.Event
    on_result: Callable[[Result], None]
    policy: RetryPolicy | None
    resumed: bool
    read_first: bool
    planned: bool
    queue: asyncio.Queue[PaymentRow | None]
    state: Execution = field(default_factory=Execution)
    fatal: list[BaseException] = field(default_factory=list)
    cancellers: dict[str, Canceller] = field(default_factory=dict)

    async def in_flight(self, target: Target, key: str, before: Payment | None) -> None:
        self.journal.mark_in_flight(self.run_id, target.account, target.payment_id, before)

    async def new_key(self, target: Target, key: str) -> None:
        self.journal.set_key(self.run_id, target.account, target.payment_id, key)

    def canceller(self, account: str) -> Canceller:
        if account not in self.cancellers:
            self.cancellers[account] = Canceller(
                self.session.provider(account),
                run_id=self.run_id,
                policy=self.policy,
                dry_run=self.dry_run,
                before_send=self.in_flight,
                cancel_first=not self.read_first,  # where the adapter declares it can
                on_new_key=self.new_key,
                breaker=Breaker(),
            )
        return self.cancellers[account]

    async def produce(self, workers: int) -> None:
        try:
            for row in self.journal.pending(self.run_id):
                if self.stop.is_set():
                    break
                await self.queue.put(row)
        except BaseException:
            # No await here: a cancelled producer must not wait on a full queue whose
            # workers are being cancelled too (that wait never ends).
            self.stop.set()
            raise
        for _ in range(workers):
            await self.queue.put(None)

    async def process(self, row: PaymentRow) -> Result:
        run_id = self.run_id
        if row.account in self.state.dead_accounts:
            return _failed(
                run_id,
                row,
                ErrorInfo(
                    AUTH_FAILED,
                    f"account {row.account!r}: credentials rejected earlier in this run; not tried",
                ),
            )
        breaker = self.canceller(row.account).breaker
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
        known = None if self.resumed else row.known
        target = Target(row.account, row.payment_id, row.reason, row.expected, known)
        if self.planned:  # a reviewed plan's payment: read, compared with the plan, then cancelled
            target = Target(row.account, row.payment_id, row.reason, planned=row.known)
        in_flight = InFlight(row.before) if row.state == "in_flight" else None
        result = await self.canceller(row.account).process(
            target, key=row.idempotency_key, in_flight=in_flight
        )
        if result.error is not None and result.error.code == AUTH_FAILED:
            self.state.dead_accounts.add(row.account)
        return result

    async def work(self) -> None:
        while (row := await self.queue.get()) is not None:
            if self.stop.is_set():
                continue
            try:
                result = await self.processed(row)
                self.journal.mark_done(result)
            except Exception as exc:
                self.fatal.append(exc)
                self.stop.set()
                continue
            try:
                self.on_result(result)
            except Exception as exc:  # the result is journaled; showing it failed
                self.fatal.append(exc)
                self.stop.set()

    async def processed(self, row: PaymentRow) -> Result:
        """``process``; an exception no layer expected fails its one payment (a journal
        failure stops the run)."""
        try:
            return await self.process(row)
        except JournalError:
            raise
        except Exception as exc:
            target = Target(row.account, row.payment_id, row.reason)
            error = unexpected_error(row.provider or row.account, target, exc)
            return _failed(self.run_id, row, error)


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


def execute_journaled(
    config: Config,
    journal: Journal,
    run_id: str,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    transport: Any,
    policy: RetryPolicy | None,
    resumed: bool,
    dry_run: bool,
    read_first: bool,
    planned: bool,
) -> tuple[Summary, bool]:
    """A journaled run's payments executed in an event loop of their own, and the run's
    status recorded whatever ends it; returns the summary and whether it was stopped."""
    from paycancel_cli.session import Session

    stop = asyncio.Event()

    async def go() -> tuple[Summary, bool]:
        async with Session(config, redactor=redactor, transport=transport) as session:
            return await execute_and_summarize(
                session, journal, run_id, request, config, ui, stop, resumed=resumed,
                policy=policy, dry_run=dry_run, read_first=read_first, planned=planned,
            )  # fmt: skip

    status = "interrupted"
    try:
        summary, interrupted = asyncio.run(go())
        status = "interrupted" if interrupted else "completed"
    finally:
        journal.set_run_status(run_id, status)
    return summary, interrupted
