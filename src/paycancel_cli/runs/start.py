"""Start a run from a CSV or from subscriptions: validate, select, confirm, journal,
execute, summarize.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paycancel_cli.csvinput import Row, Validation
from paycancel_cli.engine import RetryPolicy
from paycancel_cli.errors import AuthError, InputError, ProviderError
from paycancel_cli.journal import Journal, PlanRow
from paycancel_cli.models import Payment
from paycancel_cli.refusals import RefusedInput, Wrong
from paycancel_cli.runs.confirm import check_confirmable, confirm_plan
from paycancel_cli.runs.execute import execute_and_summarize
from paycancel_cli.runs.plan import (
    check_max,
    check_selected,
    csv_plan_rows,
    max_unchecked,
    select_open_payments,
    subscription_counts,
    subscription_plan_rows,
)
from paycancel_cli.runs.request import BulkRequest, BulkUI, Plan
from paycancel_cli.runs.resume import keep_unlisted, resume_run
from paycancel_cli.runs.summary import BulkOutcome

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.csvinput import Reader, Source
    from paycancel_cli.locks import Locks
    from paycancel_cli.redact import Redactor
    from paycancel_cli.session import Session

Selected = list[tuple[str, str, Payment]]  # (account, reason, payment) from list pages


@dataclass
class Input:
    """A run's input, validated: what it selects, the accounts it involves and how the
    journal names it."""

    label: str
    sha256: str
    involved: list[Account]
    validation: Validation | None = None
    reader: Reader | None = None  # a CSV's rows, read again to plan them
    subscriptions: list[tuple[str, str, str]] = field(default_factory=list)  # account, id, why


def run_bulk(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    policy: RetryPolicy | None = None,
    transport: Any = None,
) -> BulkOutcome:
    """A run from a CSV or from subscriptions (or, with ``request.resume``, a resume):
    the whole input validated before any request, then selected, confirmed, journaled,
    executed and summarized.  ``--validate-only`` ends after the validation."""
    from paycancel_cli.csvinput import Source

    if request.resume:
        return resume_run(
            config, request, ui, redactor=redactor, policy=policy, transport=transport
        )
    default_account = request.default_account(config)
    if default_account is not None:
        config.account(default_account)  # unknown names fail here (a request made without
        # the config; one made with it checked this already: the account is resolved once)
    reason = request.reason_text
    source: Source | None = None
    try:
        if request.csv:
            source = Source(request.csv)
            read = _read_csv(config, request, ui, source, default_account, reason)
        else:
            read = _read_subscriptions(config, request, ui, default_account, reason)
        if isinstance(read, BulkOutcome):  # --validate-only
            return read
        run = _Run(config, request, ui, read, reason, redactor, policy, transport)
        return run.locked()
    finally:
        if source is not None:
            source.close()


def _read_csv(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    source: Source,
    default_account: str | None,
    reason: str | None,
) -> Input | BulkOutcome:
    """The CSV validated whole (``csvinput``); its problems shown."""
    from paycancel_cli.csvinput import Reader
    from paycancel_cli.providers import adapter_class
    from paycancel_cli.providers.base import Capability

    # Providers by name read no secret: an account used by no row never runs its command.
    accounts = config.providers
    listable = frozenset(
        key
        for key in set(accounts.values())
        if Capability.LIST_FOR_SUBSCRIPTION in adapter_class(key).capabilities
    )
    reader = Reader(
        source,
        accounts=accounts,
        listable=listable,
        default_account=default_account,
        default_reason=reason,
        only_account=request.account,
        need_reason=not request.sends_nothing,
    )
    validation = reader.validate()
    if validation.kind != "payment_id" and request.validate_only:
        max_unchecked(validation, request.max_payments)
    ui.validated(validation)
    if validation.invalid and not request.skip_invalid:
        refused = RefusedInput(Wrong.INVALID_ROWS, invalid=validation.invalid, label=source.label)
        if request.validate_only:  # its counts are its report: shown, then refused
            return BulkOutcome(None, None, validation, refused=refused)
        raise refused
    if validation.kind == "payment_id":
        check_max(validation.valid, request.max_payments)
        if request.max_payments is not None:
            validation.max_payments_checked = True
    if request.validate_only:
        return BulkOutcome(None, None, validation)
    subscriptions: list[tuple[str, str, str]] = []
    if validation.kind != "payment_id":
        unique = {
            (row.account, row.subscription_id): row.reason
            for row in reader.rows()
            if isinstance(row, Row) and row.subscription_id
        }
        subscriptions = [(a, sub, why) for (a, sub), why in unique.items()]
    involved = [config.account(a) for a in validation.per_account]
    return Input(source.label, source.sha256(), involved, validation, reader, subscriptions)


def _read_subscriptions(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    default_account: str | None,
    reason: str | None,
) -> Input | BulkOutcome:
    """``--subscription`` ids, checked against the account's provider."""
    from paycancel_cli.providers import adapter_class, validate_id
    from paycancel_cli.providers.base import Capability

    account = config.account(default_account)
    if Capability.LIST_FOR_SUBSCRIPTION not in adapter_class(account.provider).capabilities:
        raise InputError(
            f"{adapter_class(account.provider).title} (account {account.name!r}) cannot "
            "list a subscription's payments through its API. Give a CSV of payment ids "
            "instead. Nothing was sent."
        )
    for sub in request.subscriptions:
        validate_id(account.provider, sub)
    subscriptions = [(account.name, s, reason or "") for s in dict.fromkeys(request.subscriptions)]
    if request.validate_only:
        validation = Validation(
            rows=len(subscriptions), valid=len(subscriptions), kind="subscription_id"
        )
        validation.per_account[account.name] = len(subscriptions)
        max_unchecked(validation, request.max_payments)
        ui.validated(validation)
        return BulkOutcome(None, None, validation)
    label = "subscriptions " + " ".join(s for _, s, _ in subscriptions)
    digest = hashlib.sha256(
        "\n".join(f"{a}:{s}" for a, s, _ in sorted(subscriptions)).encode()
    ).hexdigest()
    return Input(label, digest, [account], subscriptions=subscriptions)


@dataclass
class _Run:
    """One new run of a validated input, from its locks to its summary."""

    config: Config
    request: BulkRequest
    ui: BulkUI
    input: Input
    reason: str | None
    redactor: Redactor
    policy: RetryPolicy | None
    transport: Any

    def locked(self) -> BulkOutcome:
        """Refuse what could never be confirmed, take the input's locks (and the run's),
        then run; a dry run sends nothing, so it never waits or blocks."""
        from paycancel_cli.core import new_run_id
        from paycancel_cli.locks import Lock

        request = self.request
        if not request.dry_run:
            check_confirmable(
                self.input.involved,
                yes=request.yes,
                live=request.live,
                interactive=request.interactive,
            )
        journal = Journal(self.config.journal_path, redact=self.redactor)
        input_lock = self._input_locks()
        run_lock: Lock | None = None
        try:
            run_id = new_run_id()
            if not request.dry_run:
                run_lock = Lock(self.config.journal_path, f"run-{run_id}")
                run_lock.acquire(what=f"Run {run_id}")
            return self.run(journal, run_id)
        finally:
            if run_lock is not None:
                run_lock.release()
            input_lock.release()

    def _input_locks(self) -> Locks:
        from paycancel_cli.locks import Locks

        locks = Locks(self.config.journal_path, wait=self.request.wait, on_wait=self.ui.waiting)
        if not self.request.dry_run:
            locks.take(f"input-{self.input.sha256[:32]}", f"The same input ({self.input.label})")
            for account_name, sub, _ in sorted(self.input.subscriptions):
                # Overlapping subscription sets must not run at once either.
                digest = hashlib.sha256(f"{account_name}:{sub}".encode()).hexdigest()[:32]
                locks.take(f"subscription-{digest}", f"Subscription {sub} ({account_name})")
        return locks

    def run(self, journal: Journal, run_id: str) -> BulkOutcome:
        from paycancel_cli.session import Session, running

        request = self.request
        stop = asyncio.Event()
        status = "interrupted"
        session = Session(self.config, redactor=self.redactor, transport=self.transport)
        with asyncio.Runner() as runner, running(runner, session):
            selected, plan = self._select(runner, session, journal, run_id)
            if not request.dry_run and plan.total:
                # Outside the event loop, before anything is journaled: Ctrl-C or end
                # of input at the prompt ends the command at once (exit 130).
                confirm_plan(plan, self.ui, yes=request.yes, live=request.live)
            self._journal_run(journal, run_id, plan)
            try:
                self._plan_rows(journal, run_id, selected)
                work = execute_and_summarize(
                    session, journal, run_id, request, self.config, self.ui, stop,
                    resumed=False, policy=self.policy, dry_run=request.dry_run,
                    read_first=request.read_first,
                )  # fmt: skip
                summary, interrupted = runner.run(work)
                status = "interrupted" if interrupted else "completed"
            finally:
                journal.set_run_status(run_id, status)
        summary.audit_head = journal.head()  # after the run's last event
        return BulkOutcome(run_id, summary, self.input.validation, interrupted)

    def _select(
        self, runner: asyncio.Runner, session: Session, journal: Journal, run_id: str
    ) -> tuple[Selected, Plan]:
        """The payments to plan: a CSV's, or the subscriptions' open ones from their list
        pages (a listing that fails for a cause that may pass keeps the run, unlisted)."""
        selected: Selected = []
        found: dict[tuple[str, str], int] = {}
        subscriptions = self.input.subscriptions
        if subscriptions:
            try:
                selected, found = runner.run(
                    select_open_payments(session, subscriptions, self.policy)
                )
            except (ProviderError, AuthError) as exc:
                if self.request.dry_run or not (exc.retryable or isinstance(exc, AuthError)):
                    raise
                keep_unlisted(journal, run_id, self.request, self.config, subscriptions, exc)
                raise
            check_selected(selected, found, self.request.max_payments, self.ui)
            per_account = Counter(a for a, _, _ in selected)
        else:
            assert self.input.validation is not None
            per_account = self.input.validation.per_account
        plan = Plan(
            per_account=per_account,
            live={a: self.config.account(a).is_live for a in per_account},
            dry_run=self.request.dry_run,
            subscriptions=subscription_counts(found),
        )
        return selected, plan

    def _journal_run(self, journal: Journal, run_id: str, plan: Plan) -> None:
        from paycancel_cli.core import host, os_user

        request, config, reason = self.request, self.config, self.reason
        journal.start_run(
            run_id,
            user=os_user(),
            host=host(),
            command=self.redactor(request.command),
            input=self.input.label,
            input_hash=self.input.sha256,
            reason=self.redactor(reason) if reason else None,
            options={
                "kind": "bulk",
                "dry_run": request.dry_run,
                "concurrency": request.concurrency or config.defaults.concurrency,
                "accounts": sorted(plan.per_account),
                "live": any(plan.live.values()),
                "sandbox": config.sandbox,
                "read_first": request.read_first,
                "interactive": request.interactive,  # see unfinished.resume_each
                **({"subscriptions": plan.subscriptions} if self.input.subscriptions else {}),
            },
        )

    def _plan_rows(self, journal: Journal, run_id: str, selected: Selected) -> None:
        """The planned payments journaled, checked against the validation's count."""
        rows: Iterable[PlanRow]
        if self.input.subscriptions:
            rows, expected = subscription_plan_rows(run_id, selected), len(selected)
        else:
            validation, reader = self.input.validation, self.input.reader
            assert validation is not None and reader is not None
            rows = csv_plan_rows(run_id, reader)
            expected = validation.valid + (validation.invalid if self.request.skip_invalid else 0)
        inserted, _ = journal.plan(run_id, rows)
        if inserted != expected:  # the snapshot is private: a guard against bugs
            raise InputError(
                f"The plan holds {inserted} payments but {expected} were validated; "
                "stopping before any cancel."
            )
