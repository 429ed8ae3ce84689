"""Bulk cancel: plan a run into the journal, execute it concurrently, summarize it.

The flow a command drives:  validate the whole input (``csvinput``) -> select (list
pages for subscriptions) -> confirm -> ``start``: run row and planned payments in the
journal -> ``execute`` -> ``summarize``.  ``execute`` is also what ``--resume`` runs: it
takes the run's planned and in-flight payments, so finished ones are never touched.

Invariants:
- At most ``concurrency`` payments are in flight; each account's requests pass its
  client-side rate limiter (in ``httpclient``).
- A payment's ``in_flight`` mark is committed before its cancel is sent; ``done`` after.
- CSV rows are cancelled first (no read) where the adapter declares
  ``Capability.CANCEL_FIRST`` and nothing needs the before state (the engine decides
  per payment); ``--read-first`` reads every payment first.  The run's options keep the
  mode, so a resume follows it.
- On ``stop`` (Ctrl-C, SIGTERM, a closed standard output: see ``pipes``) no new payment
  starts; those in flight finish and are recorded.
- A journal failure stops the run (fail closed) and is raised after in-flight work ends;
  any other unexpected exception fails its one payment and the run goes on.
- After an account's credentials are rejected, its remaining payments fail without a
  request.
- Each account has a circuit breaker (``breaker``): once it opens, the account's
  payments not yet started end without a request as transient failures
  (``circuit_open``), so a dead provider ends the run promptly with exit 5.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import itertools
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from paycancel_cli import pipes
from paycancel_cli.breaker import CIRCUIT_OPEN, Breaker
from paycancel_cli.csvinput import Row, Validation
from paycancel_cli.engine import (
    Canceller,
    InFlight,
    RetryPolicy,
    Target,
    idempotency_key,
    unexpected_error,
)
from paycancel_cli.errors import (
    AuthError,
    ConfigError,
    InputError,
    JournalError,
    PaycancelError,
    PlanRefused,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UsageError,
)
from paycancel_cli.journal import Journal, PaymentRow, PlanRow, RunRow
from paycancel_cli.models import (
    AUTH_FAILED,
    ErrorInfo,
    Money,
    Outcome,
    Payment,
    PaymentStatus,
    Result,
    combine,
    verdict,
)

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.csvinput import Reader
    from paycancel_cli.redact import Redactor
    from paycancel_cli.session import Session

MAX_FAILURES_SHOWN = 20


# planning


def csv_plan_rows(run_id: str, reader: Reader) -> Iterator[PlanRow]:
    """Planned rows from the CSV in file order; invalid rows (``--skip-invalid``) are
    recorded as done with outcome ``invalid``."""
    from paycancel_cli.csvinput import Problem

    for row in reader.rows():
        if isinstance(row, Problem):
            yield PlanRow(
                account=row.account or "",
                provider="",
                payment_id=row.payment_id or f"(line {row.line})",
                reason="",
                key="",
                line=row.line,
                error=ErrorInfo("invalid", row.message),
            )
            continue
        assert row.payment_id is not None
        yield PlanRow(
            account=row.account,
            provider=row.provider,
            payment_id=row.payment_id,
            reason=row.reason,
            key=idempotency_key(run_id, row.account, row.payment_id),
            line=row.line,
            expected=row.expected,
        )


async def select_open_payments(
    session: Session, subscriptions: Iterable[tuple[str, str, str]]
) -> tuple[list[tuple[str, str, Payment]], dict[tuple[str, str], int]]:
    """The open payments of (account, subscription id, reason) triples as (account,
    reason, payment), each payment once; and how many each subscription has, so that a
    subscription with none (a mistyped id) shows."""
    selected: list[tuple[str, str, Payment]] = []
    found: dict[tuple[str, str], int] = {}
    seen: set[tuple[str, str]] = set()
    for account, sub, reason in subscriptions:
        payments = await list_open_payments(session, account, sub)
        found[(account, sub)] = len(payments)
        for payment in payments:
            if (account, payment.payment_id) not in seen:
                seen.add((account, payment.payment_id))
                selected.append((account, reason, payment))
    return selected, found


def subscription_counts(found: dict[tuple[str, str], int]) -> dict[str, int]:
    """``{subscription id: open payments}``; an id listed at two accounts is keyed
    ``account:id`` so neither count hides the other."""
    ids = Counter(sub for _, sub in found)
    return {
        (sub if ids[sub] == 1 else f"{account}:{sub}"): n for (account, sub), n in found.items()
    }


async def list_open_payments(session: Session, account: str, subscription_id: str) -> list[Payment]:
    """A subscription's open payments, all pages; a 429, 5xx or network failure on any
    page retries the listing (with backoff) rather than ending the command."""
    import stamina

    provider = session.provider(account)
    async for attempt in stamina.retry_context(
        on=(RateLimited, ProviderUnavailable), attempts=6, wait_initial=0.5, wait_max=30.0
    ):
        with attempt:
            return [p async for p in provider.list_for_subscription(subscription_id)]
    raise AssertionError("unreachable")  # pragma: no cover


def subscription_plan_rows(
    run_id: str, selected: Iterable[tuple[str, str, Payment]]
) -> Iterator[PlanRow]:
    """Planned rows from list pages: (account, reason, payment); the page is the before."""
    for account, reason, payment in selected:
        yield PlanRow(
            account=account,
            provider=payment.provider,
            payment_id=payment.payment_id,
            reason=reason,
            key=idempotency_key(run_id, account, payment.payment_id),
            known=payment,
        )


# execution


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


# summary and report


@dataclass
class Summary:
    run_id: str
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    per_account: dict[str, Counter[str]] = field(default_factory=dict)
    cancelled_amounts: dict[str, Decimal] = field(default_factory=dict)
    unknown_amounts: int = 0
    unknown_ids: list[str] = field(default_factory=list)  # the first few, to name them
    would_release: dict[str, Decimal] = field(default_factory=dict)  # dry run, per currency
    would_unknown: int = 0  # dry run: would_cancel payments with no amount
    remaining: int = 0
    failures: list[Result] = field(default_factory=list)
    failure_count: int = 0
    verdicts: set[int] = field(default_factory=set)  # each result's share of the exit code
    requests: int = 0
    duration_s: float = 0.0
    subscriptions: dict[str, int] | None = None  # open payments found, subscription runs only
    dry_run: bool = False
    audit_head: dict[str, Any] | None = None  # the journal's newest event when summarized

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "run_id": self.run_id,
            "total": self.total,
            # In the order of the human summary's columns (Outcome's order).
            "outcomes": {
                o.value: self.outcomes[o.value] for o in Outcome if self.outcomes[o.value]
            },
            "cancelled_amounts": [
                Money(v, c).to_json() for c, v in sorted(self.cancelled_amounts.items())
            ],
            "unknown_amounts": self.unknown_amounts,
            "remaining": self.remaining,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "audit_head": self.audit_head,
            **({} if self.subscriptions is None else {"subscriptions": self.subscriptions}),
        }

    def exit_code(self, *, interrupted: bool) -> int:
        if interrupted:
            return 130
        return combine(self.verdicts, remaining=self.remaining)


def _add(totals: dict[str, Decimal], money: Money) -> None:
    totals[money.currency] = totals.get(money.currency, Decimal(0)) + money.value


def summarize(journal: Journal, run_id: str) -> Summary:
    summary = Summary(run_id)
    run = journal.run(run_id)
    if run is not None and "subscriptions" in run.options:
        summary.subscriptions = dict(run.options["subscriptions"])
    summary.dry_run = run is not None and bool(run.options.get("dry_run"))
    summary.audit_head = journal.head()
    for row in journal.payments(run_id):
        summary.total += 1
        if row.outcome is None:
            summary.remaining += 1
            continue
        result = row.result(run_id)
        outcome = row.outcome.value
        summary.outcomes[outcome] += 1
        summary.per_account.setdefault(row.account, Counter())[outcome] += 1
        if row.outcome is Outcome.CANCELLED:
            money = result.released()
            if money is None:
                summary.unknown_amounts += 1
                if len(summary.unknown_ids) < 3:
                    summary.unknown_ids.append(row.payment_id)
            else:
                _add(summary.cancelled_amounts, money)
        if row.outcome is Outcome.WOULD_CANCEL:
            would = result.would_release()
            if would is None:
                summary.would_unknown += 1
            else:
                _add(summary.would_release, would)
        if not row.outcome.is_success:
            summary.failure_count += 1
            if len(summary.failures) < MAX_FAILURES_SHOWN:
                summary.failures.append(result)
        summary.verdicts.add(verdict(result))
    return summary


REPORT_FIELDS = (
    "run_id", "line", "account", "provider", "payment_id", "outcome", "reason",
    "status_before", "status_after", "amount", "currency", "released", "released_currency",
    "error_code", "provider_code", "error_message", "http_status", "attempts",
    "idempotency_key",
)  # fmt: skip


def status_before(result: Result) -> str | None:
    """The status before, as read, or as the provider's refusal named it; never one
    implied by a cancel answer (nobody read it: it stays empty)."""
    before = result.before
    if before is not None:
        return before.status.value if before.was_read else None
    if result.outcome is Outcome.ALREADY_CANCELLED and result.after is None:
        return "cancelled"  # the provider's answer said so
    code = result.error.code if result.error is not None else None
    if result.outcome is Outcome.NOT_CANCELLABLE and code in {s.value for s in PaymentStatus}:
        return code  # the refusal named the state (ALREADY_PAID: succeeded)
    return None


# a run's applied plan, as the journal keeps it


def plan_json(journal: Journal, run_id: str) -> dict[str, Any]:
    """``{"plan": {...}}`` for a run that applied a plan, else nothing."""
    from paycancel_cli.journal import applied_plan

    applied = applied_plan(journal, run_id=run_id)
    if applied is None:
        return {}
    return {
        "plan": {
            "plan_id": applied.plan_id,
            "digest": applied.digest,
            "author": applied.author,
            "approvers": applied.approvers,
        }
    }


def report_fields(journal: Journal, run_id: str) -> dict[str, Any]:
    info = plan_json(journal, run_id).get("plan")
    if info is None:
        return {}
    return {
        "plan_id": info["plan_id"],
        "plan_digest": info["digest"],
        "plan_author": info["author"],
        "plan_approvers": " ".join(info["approvers"]),
    }


def describe_run_plan(journal: Journal, run_id: str) -> str | None:
    info = plan_json(journal, run_id).get("plan")
    if info is None:
        return None
    approvers = ", ".join(info["approvers"]) or "nobody (none needed)"
    return (
        f"Applied plan {info['plan_id']} ({info['digest']}), made by {info['author']}, "
        f"approved by {approvers}."
    )


def report_rows(journal: Journal, run_id: str) -> Iterator[dict[str, Any]]:
    plan = report_fields(journal, run_id)  # a reviewed plan's run: who made and approved it
    for row in journal.payments(run_id):
        result = row.result(run_id)
        released = result.released()
        amount = row.before or row.after or row.known
        money = amount.amount if amount is not None else None
        yield {
            "run_id": run_id,
            "line": row.line,
            "account": row.account,
            "provider": row.provider,
            "payment_id": row.payment_id,
            "outcome": row.outcome.value if row.outcome else "not_processed",
            "reason": row.reason or None,
            "status_before": status_before(result),
            "status_after": row.after.status.value if row.after else None,
            "amount": str(money.quantized()) if money else None,
            "currency": money.currency if money else None,
            "released": str(released.quantized()) if released else None,
            "released_currency": released.currency if released else None,
            "error_code": row.error.code if row.error else None,
            "provider_code": row.error.provider_code if row.error else None,
            "error_message": row.error.message if row.error else None,
            "http_status": row.error.http_status if row.error else None,
            "attempts": row.attempts,
            "idempotency_key": row.idempotency_key or None,
            **plan,
        }


def check_report_path(path: Path, *, force: bool) -> None:
    """Refuse, before anything is sent, a report path that cannot be written or that
    would silently replace an earlier report."""
    if not (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
        raise UsageError(
            f"--report {path}: the directory does not exist or cannot be written. Nothing was sent."
        )
    if path.exists() and not force:
        raise UsageError(
            f"--report {path}: the file exists; a report is a record, so it is not "
            "replaced silently. Choose another path, or pass --force to replace it. "
            "Nothing was sent."
        )


def write_report(path: Path, rows: Iterable[dict[str, Any]], redact: Callable[[str], str]) -> int:
    """Write the report beside ``path`` and rename it into place: a report is never
    left half-written where a finished one is expected."""
    count = 0
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        if path.suffix == ".jsonl":
            for row in rows:
                handle.write(redact(json.dumps({"type": "result", **row})) + "\n")
                count += 1
        else:
            rows = iter(rows)
            first = next(rows, None)
            extra = [k for k in first or () if k not in REPORT_FIELDS]  # a plan's columns
            writer = csv.DictWriter(handle, fieldnames=[*REPORT_FIELDS, *extra])
            writer.writeheader()
            for row in itertools.chain([first] if first else [], rows):
                writer.writerow({k: redact("" if v is None else str(v)) for k, v in row.items()})
                count += 1
    tmp.replace(path)
    return count


# the command's flow, with the terminal behind ``BulkUI``


class BulkUI(Protocol):
    """What the flow tells the person (or test) running it.  The CLI renders these;
    ``confirm`` raises to refuse."""

    def validated(self, validation: Validation) -> None: ...

    def warn(self, message: str) -> None: ...

    def waiting(self, message: str) -> None: ...

    def confirm(self, plan: Plan) -> None: ...

    def started(self, run_id: str, total: int, resumed: bool) -> None: ...

    def result(self, result: Result) -> None: ...

    def finished(self) -> None: ...


@dataclass
class Plan:
    per_account: Counter[str]
    live: dict[str, bool]
    dry_run: bool
    subscriptions: dict[str, int] = field(default_factory=dict)  # id: open payments found

    @property
    def total(self) -> int:
        return sum(self.per_account.values())


@dataclass
class BulkRequest:
    csv: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    account: str | None = None
    reason: str | None = None
    dry_run: bool = False
    validate_only: bool = False
    skip_invalid: bool = False
    yes: bool = False
    live: bool = False
    interactive: bool = False
    concurrency: int | None = None
    max_payments: int | None = None
    resume: str | None = None
    wait: float | None = None  # seconds to wait for a lock; None: refuse at once
    read_first: bool = False
    command: str = "paycancel bulk-cancel"


@dataclass
class BulkOutcome:
    run_id: str | None
    summary: Summary | None
    validation: Validation | None
    interrupted: bool = False
    finished: bool = False  # --resume of a run with nothing left to do
    refused: str | None = None  # --validate-only: why the input cannot run as it is

    def exit_code(self) -> int:
        if self.summary is None or self.finished:
            return 0
        return self.summary.exit_code(interrupted=self.interrupted)


def no_such_run(config: Config, run_id: str, command: str = "runs show") -> UsageError:
    """The error for a run id the journal does not hold; when the other journal (the
    sandbox's, or the real one) holds it, the hint says which flag finds it, in the
    ``command`` the operator was typing."""
    message = (
        f"No run {run_id!r} in the journal {config.journal_path}; `paycancel runs` lists the runs."
    )
    if not config.defaults.journal:  # the sandbox keeps its own journal beside the real one
        other = config.journal_path.with_name(
            "journal.sqlite3" if config.sandbox else "journal-sandbox.sqlite3"
        )
        if other.exists() and Journal(other).run(run_id) is not None:
            if config.sandbox:
                message += " It is a run on real accounts: leave out --sandbox to use it."
            else:
                message += (
                    " It is a run in the built-in sandbox: add --sandbox "
                    f"(paycancel --sandbox {command} {run_id})."
                )
    return UsageError(message)


def find_run(config: Config, journal: Journal, run_id: str, command: str = "runs show") -> RunRow:
    """The run ``run_id`` names: the whole id, or the start of exactly one run's id."""
    run = journal.run(run_id)
    if run is None and run_id:
        matches = journal.run_ids_starting(run_id)
        if len(matches) > 1:
            raise UsageError(
                f"Run id {run_id!r} is the start of several runs ({', '.join(matches)}"
                f"{', ...' if len(matches) == 5 else ''}); give more of the id."
            )
        if matches:
            run = journal.run(matches[0])
    if run is None:
        raise no_such_run(config, run_id, command)
    return run


def require_plan(accounts: Iterable[Account]) -> None:
    """Refuse a cancel, without a plan, on an account that needs approved plans."""
    strict = sorted((a for a in accounts if a.approvals), key=lambda a: a.name)
    if not strict:
        return
    a = strict[0]
    raise PlanRefused(
        f"Account {a.name} takes cancels only from a plan approved by {a.approvals} person(s) "
        "besides its author (approvals = "
        f"{a.approvals} in the config). Make a plan, have it approved, then apply it; a "
        f"one-off is a one-row plan: echo ID | paycancel bulk-cancel - --account {a.name} "
        "--reason TEXT --plan-out p.json --key KEY, then paycancel plan approve p.json --key "
        "KEY (another person), then paycancel bulk-cancel --plan p.json. Nothing was sent."
    )


def check_confirmable(
    accounts: Iterable[Account],
    *,
    yes: bool,
    live: bool,
    interactive: bool,
    from_plan: bool = False,
) -> None:
    """Refuse up front, before any request, what could never be confirmed, and a cancel
    on an account that takes cancels only from an approved plan (unless ``from_plan``)."""
    accounts = list(accounts)
    if not from_plan:
        require_plan(accounts)
    if interactive:
        return
    live_names = sorted(a.name for a in accounts if a.is_live)
    if live_names and not (yes and live):
        which = (
            f"Account {live_names[0]} is LIVE"
            if len(live_names) == 1
            else f"Accounts {', '.join(live_names)} are LIVE"
        )
        raise UsageError(
            f"{which} and there is no terminal to confirm on: pass --yes --live to cancel "
            f"on {'it' if len(live_names) == 1 else 'them'} non-interactively. "
            "Nothing was sent."
        )
    if not yes:
        raise UsageError(
            "Refusing to cancel without confirmation: there is no terminal to ask on. Pass "
            "--yes to confirm non-interactively, or --dry-run to only look. Nothing was sent."
        )


def run_bulk(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    policy: RetryPolicy | None = None,
    transport: Any = None,
) -> BulkOutcome:
    from paycancel_cli.core import host, new_run_id, os_user
    from paycancel_cli.csvinput import Reader, Source
    from paycancel_cli.journal import Lock, Locks
    from paycancel_cli.providers import adapter_class, validate_id
    from paycancel_cli.providers.base import Capability
    from paycancel_cli.session import Session, running

    if request.resume:
        return _resume(config, request, ui, redactor=redactor, policy=policy, transport=transport)
    if bool(request.csv) == bool(request.subscriptions):
        raise UsageError(
            "Give either a CSV file (or - for standard input) or --subscription ID, not both "
            "and not neither; or --resume RUN_ID."
        )
    # Providers by name read no secret: an account used by no row never runs its command.
    accounts = config.providers
    listable = frozenset(
        key
        for key in set(accounts.values())
        if Capability.LIST_FOR_SUBSCRIPTION in adapter_class(key).capabilities
    )
    default_account = request.account
    if default_account is None and len(config.accounts) == 1:
        default_account = next(iter(config.accounts))
    if default_account is not None:
        config.account(default_account)  # unknown names fail here, exit 2
    reason = (request.reason or "").strip() or None  # an all-blank reason is no reason
    sends = not (request.dry_run or request.validate_only)

    source: Source | None = None
    validation: Validation | None = None
    subscriptions: list[tuple[str, str, str]] = []  # account, subscription id, reason
    try:
        if request.csv:
            source = Source(request.csv)
            reader = Reader(
                source,
                accounts=accounts,
                listable=listable,
                default_account=default_account,
                default_reason=reason,
                only_account=request.account,
                need_reason=sends,
            )
            validation = reader.validate()
            if validation.kind != "payment_id" and request.validate_only:
                _max_unchecked(validation, request.max_payments)
            ui.validated(validation)
            if validation.invalid and not request.skip_invalid:
                refused = InputError(
                    f"{validation.invalid} invalid row(s) in {source.label} (listed above with "
                    "their line numbers). Fix them, or pass --skip-invalid to cancel the valid "
                    "rows and report the others as invalid. Nothing was sent."
                )
                if request.validate_only:  # its counts are its report: shown, then refused
                    return BulkOutcome(None, None, validation, refused=refused.message)
                raise refused
            if validation.kind == "payment_id":
                _check_max(validation.valid, request.max_payments)
                if request.max_payments is not None:
                    validation.max_payments_checked = True
            if request.validate_only:
                return BulkOutcome(None, None, validation)
            if validation.kind != "payment_id":
                unique = {
                    (row.account, row.subscription_id): row.reason
                    for row in reader.rows()
                    if isinstance(row, Row) and row.subscription_id
                }
                subscriptions = [(a, sub, why) for (a, sub), why in unique.items()]
            involved = [config.account(a) for a in validation.per_account]
            input_label, input_hash = source.label, source.sha256()
        else:
            if reason is None and sends:
                raise UsageError(
                    "--reason is required with --subscription: every cancel records why (it "
                    "goes to the provider and to the journal). Pass --reason TEXT; --dry-run "
                    "and --validate-only need none. Nothing was sent."
                )
            account = config.account(default_account)
            if Capability.LIST_FOR_SUBSCRIPTION not in adapter_class(account.provider).capabilities:
                raise InputError(
                    f"{adapter_class(account.provider).title} (account {account.name!r}) cannot "
                    "list a subscription's payments through its API. Give a CSV of payment ids "
                    "instead. Nothing was sent."
                )
            for sub in request.subscriptions:
                validate_id(account.provider, sub)
            subscriptions = [
                (account.name, s, reason or "") for s in dict.fromkeys(request.subscriptions)
            ]
            if request.validate_only:
                validation = Validation(
                    rows=len(subscriptions), valid=len(subscriptions), kind="subscription_id"
                )
                validation.per_account[account.name] = len(subscriptions)
                _max_unchecked(validation, request.max_payments)
                ui.validated(validation)
                return BulkOutcome(None, None, validation)
            involved = [account]
            input_label = "subscriptions " + " ".join(s for _, s, _ in subscriptions)
            input_hash = hashlib.sha256(
                "\n".join(f"{a}:{s}" for a, s, _ in sorted(subscriptions)).encode()
            ).hexdigest()
        if not request.dry_run:
            check_confirmable(
                involved, yes=request.yes, live=request.live, interactive=request.interactive
            )

        journal = Journal(config.journal_path, redact=redactor)
        input_lock = Locks(config.journal_path, wait=request.wait, on_wait=ui.waiting)
        if not request.dry_run:  # a dry run sends nothing, so it never waits or blocks
            input_lock.take(f"input-{input_hash[:32]}", f"The same input ({input_label})")
            for account_name, sub, _ in sorted(subscriptions):
                # Overlapping subscription sets must not run at once either.
                digest = hashlib.sha256(f"{account_name}:{sub}".encode()).hexdigest()[:32]
                input_lock.take(f"subscription-{digest}", f"Subscription {sub} ({account_name})")
        run_lock: Lock | None = None
        try:
            run_id = new_run_id()
            if not request.dry_run:
                run_lock = Lock(config.journal_path, f"run-{run_id}")
                run_lock.acquire(what=f"Run {run_id}")
            stop = asyncio.Event()

            status = "interrupted"
            session = Session(config, redactor=redactor, transport=transport)
            with asyncio.Runner() as runner, running(runner, session):
                selected: list[tuple[str, str, Payment]] = []
                found: dict[tuple[str, str], int] = {}
                if subscriptions:
                    try:
                        selected, found = runner.run(select_open_payments(session, subscriptions))
                    except (ProviderError, AuthError) as exc:
                        if request.dry_run or not (exc.retryable or isinstance(exc, AuthError)):
                            raise
                        keep_unlisted(journal, run_id, request, config, subscriptions, exc)
                        raise
                    _check_selected(selected, found, request.max_payments, ui)
                    per_account = Counter(a for a, _, _ in selected)
                else:
                    assert validation is not None
                    per_account = validation.per_account
                plan = Plan(
                    per_account=per_account,
                    live={a: config.account(a).is_live for a in per_account},
                    dry_run=request.dry_run,
                    subscriptions=subscription_counts(found),
                )
                if not request.dry_run and plan.total:
                    # Outside the event loop, before anything is journaled: Ctrl-C or end
                    # of input at the prompt ends the command at once (exit 130).
                    ui.confirm(plan)
                journal.start_run(
                    run_id,
                    user=os_user(),
                    host=host(),
                    command=redactor(request.command),
                    input=input_label,
                    input_hash=input_hash,
                    reason=redactor(reason) if reason else None,
                    options={
                        "kind": "bulk",
                        "dry_run": request.dry_run,
                        "concurrency": request.concurrency or config.defaults.concurrency,
                        "accounts": sorted(per_account),
                        "live": any(plan.live.values()),
                        "sandbox": config.sandbox,
                        "read_first": request.read_first,
                        "interactive": request.interactive,  # see unfinished.resume_each
                        **({"subscriptions": plan.subscriptions} if subscriptions else {}),
                    },
                )
                try:
                    if subscriptions:
                        rows: Iterable[PlanRow] = subscription_plan_rows(run_id, selected)
                    else:
                        rows = csv_plan_rows(run_id, reader)
                    inserted, _ = journal.plan(run_id, rows)
                    if subscriptions:
                        expected = len(selected)
                    else:
                        assert validation is not None
                        expected = validation.valid + (
                            validation.invalid if request.skip_invalid else 0
                        )
                    if inserted != expected:  # the snapshot is private: a guard against bugs
                        raise InputError(
                            f"The plan holds {inserted} payments but {expected} were validated; "
                            "stopping before any cancel."
                        )
                    summary, interrupted = runner.run(
                        _execute_and_summarize(
                            session,
                            journal,
                            run_id,
                            request,
                            config,
                            ui,
                            stop,
                            resumed=False,
                            policy=policy,
                            dry_run=request.dry_run,
                            read_first=request.read_first,
                        )
                    )
                    status = "interrupted" if interrupted else "completed"
                finally:
                    journal.set_run_status(run_id, status)
            summary.audit_head = journal.head()  # after the run's last event
            return BulkOutcome(run_id, summary, validation, interrupted)
        finally:
            if run_lock is not None:
                run_lock.release()
            input_lock.release()
    finally:
        if source is not None:
            source.close()


def keep_unlisted(
    journal: Journal,
    run_id: str,
    request: BulkRequest,
    config: Config,
    subscriptions: list[tuple[str, str, str]],
    exc: PaycancelError,
) -> None:
    """The subscriptions' open payments could not be listed (the provider is down, the
    key was rejected): journal the run with its subscriptions still to list, so that
    tonight's input is not lost with tonight's run; ``--resume`` lists them again.
    ``exc`` then names the run and how to resume it."""
    from paycancel_cli.core import host, os_user

    accounts = sorted({a for a, _, _ in subscriptions})
    journal.start_run(
        run_id,
        user=os_user(),
        host=host(),
        command=request.command,
        input="subscriptions " + " ".join(s for _, s, _ in subscriptions),
        input_hash=None,
        reason=subscriptions[0][2] or None,
        options={
            "kind": "bulk",
            "dry_run": False,
            "concurrency": request.concurrency or config.defaults.concurrency,
            "accounts": accounts,
            "live": any(config.account(a).is_live for a in accounts),
            "sandbox": config.sandbox,
            "read_first": request.read_first,
            "interactive": request.interactive,
            "max_payments": request.max_payments,
            "unlisted": [list(item) for item in subscriptions],
        },
    )
    journal.set_run_status(run_id, "interrupted")
    exc.message = (
        f"{exc.message} Run {run_id} keeps the subscriptions to list: "
        f"`paycancel bulk-cancel --resume {run_id} --yes` tries again (`paycancel runs "
        "--unfinished` lists such runs). Nothing was cancelled."
    )
    exc.run_id = run_id  # type: ignore[attr-defined]


def list_unlisted(
    config: Config,
    journal: Journal,
    run_id: str,
    options: dict[str, Any],
    ui: BulkUI,
    *,
    redactor: Redactor,
    transport: Any,
) -> None:
    """A resumed run whose subscriptions were never listed: list them now and plan
    their open payments (see ``keep_unlisted``)."""
    from paycancel_cli.session import Session

    subscriptions = [(str(a), str(s), str(r)) for a, s, r in options["unlisted"]]

    async def go() -> tuple[list[tuple[str, str, Payment]], dict[tuple[str, str], int]]:
        async with Session(config, redactor=redactor, transport=transport) as session:
            return await select_open_payments(session, subscriptions)

    try:
        selected, found = asyncio.run(go())
    except PaycancelError as exc:
        exc.run_id = run_id  # type: ignore[attr-defined]
        raise
    _check_selected(selected, found, options.get("max_payments"), ui)
    journal.plan(run_id, subscription_plan_rows(run_id, selected))
    rest = {k: v for k, v in options.items() if k != "unlisted"}
    journal.set_run_options(run_id, {**rest, "subscriptions": subscription_counts(found)})


def _check_selected(
    selected: list[tuple[str, str, Payment]],
    found: dict[tuple[str, str], int],
    max_payments: int | None,
    ui: BulkUI,
) -> None:
    """After listing: a subscription with no open payments gets a warning (a mistyped
    id must not look like a clean night); more than ``max_payments`` is refused."""
    for (account_name, sub), count in found.items():
        if not count:
            ui.warn(
                f"subscription {sub} ({account_name}) has no open payments; check the id if "
                "you expected some."
            )
    _check_max(len(selected), max_payments)


def _max_unchecked(validation: Validation, max_payments: int | None) -> None:
    """Subscriptions' payments are known only from the provider's list, which
    ``--validate-only`` (no request at all) does not call: say so rather than pass."""
    if max_payments is None:
        return
    validation.max_payments_checked = False
    validation.notes.append(
        f"--max-payments {max_payments} is not checked: how many open payments the "
        "subscriptions have is known only from the provider's list, and --validate-only "
        "sends no request. A --dry-run lists them, applies the limit and cancels nothing."
    )


def _check_max(selected: int, max_payments: int | None) -> None:
    if max_payments is not None and selected > max_payments:
        raise UsageError(
            f"The input selects {selected} payments, more than --max-payments {max_payments}. "
            "Check the input or filter, or raise the limit. Nothing was sent."
        )


async def _execute_and_summarize(
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


def _resume(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    policy: RetryPolicy | None,
    transport: Any,
) -> BulkOutcome:
    from paycancel_cli.journal import Locks
    from paycancel_cli.session import Session

    shaping = {
        "a CSV file": request.csv,
        "--subscription": request.subscriptions,
        "--reason": request.reason,
        "--dry-run": request.dry_run,
        "--validate-only": request.validate_only,
        "--skip-invalid": request.skip_invalid,
        "--max-payments": request.max_payments is not None,
        "--account": request.account,
        "--read-first": request.read_first,
    }
    given = [name for name, value in shaping.items() if value]
    if given:
        raise UsageError(
            f"--resume takes only --yes, --live, --concurrency and --wait, not "
            f"{', '.join(given)}: the run keeps its own input, accounts, reason and mode. "
            "Nothing was sent."
        )
    assert request.resume is not None
    journal = Journal(config.journal_path, redact=redactor)
    run = find_run(config, journal, request.resume, "bulk-cancel --resume")
    run_id = run.run_id
    if run.options.get("kind") not in ("bulk", "cancel"):
        raise no_such_run(config, run_id, "bulk-cancel --resume")
    if bool(run.options.get("sandbox")) != config.sandbox:
        where = "the built-in sandbox" if run.options.get("sandbox") else "real accounts"
        how = "with" if run.options.get("sandbox") else "without"
        raise UsageError(
            f"Run {run_id} ran against {where}; resume it the same way ({how} --sandbox). "
            "Nothing was sent."
        )
    missing = [a for a in run.options.get("accounts", []) if a not in config.accounts]
    if missing:
        raise ConfigError(
            f"Run {run_id} used account(s) {', '.join(missing)}, which the config no longer has."
        )
    dry_run = bool(run.options.get("dry_run"))
    from_plan = "plan" in run.options  # a reviewed plan's run (plans.py)
    if not dry_run:
        check_confirmable(
            [config.account(a) for a in run.options.get("accounts", [])],
            yes=request.yes,
            live=request.live,
            interactive=request.interactive,
            from_plan=from_plan,
        )
    input_lock = Locks(config.journal_path, wait=request.wait, on_wait=ui.waiting)
    input_lock.take(
        f"input-{(run.input_hash or run_id)[:32]}", f"The input of run {run_id} ({run.input})"
    )
    try:
        input_lock.take(f"run-{run_id}", f"Run {run_id}")
        if run.options.get("unlisted") and not dry_run:
            list_unlisted(
                config, journal, run_id, run.options, ui, redactor=redactor, transport=transport
            )
        retry = Counter() if dry_run else journal.transient_per_account(run_id)
        per_account = journal.pending_per_account(run_id) + retry
        if not per_account:
            if run.status != "completed":  # stopped just after its last payment
                journal.set_run_status(run_id, "completed")
            return BulkOutcome(run_id, summarize(journal, run_id), None, finished=True)
        if not dry_run:
            plan = Plan(
                per_account=per_account,
                live={a: config.account(a).is_live for a in run.options.get("accounts", [])},
                dry_run=dry_run,
            )
            ui.confirm(plan)
        if retry:
            journal.requeue_transient(run_id)
        journal.set_run_status(run_id, "running")
        stop = asyncio.Event()
        concurrency = request.concurrency or run.options.get("concurrency")
        resumed = replace(request, concurrency=concurrency)

        async def go() -> tuple[Summary, bool]:
            async with Session(config, redactor=redactor, transport=transport) as session:
                return await _execute_and_summarize(
                    session,
                    journal,
                    run_id,
                    resumed,
                    config,
                    ui,
                    stop,
                    resumed=True,
                    policy=policy,
                    dry_run=dry_run,
                    read_first=bool(run.options.get("read_first")),
                    planned=from_plan,
                )

        status = "interrupted"
        try:
            summary, interrupted = asyncio.run(go())
            status = "interrupted" if interrupted else "completed"
        finally:
            journal.set_run_status(run_id, status)
        summary.audit_head = journal.head()  # after the run's last event
        return BulkOutcome(run_id, summary, None, interrupted)
    finally:
        input_lock.release()
