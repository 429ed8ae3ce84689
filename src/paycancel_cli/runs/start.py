"""Start a run from a CSV or from subscriptions: validate, select, confirm, journal,
execute, summarize.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from paycancel_cli.csvinput import Row, Validation
from paycancel_cli.engine import RetryPolicy
from paycancel_cli.errors import AuthError, InputError, ProviderError, UsageError
from paycancel_cli.journal import Journal, PlanRow
from paycancel_cli.models import Payment
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
    from paycancel_cli.config import Config
    from paycancel_cli.redact import Redactor


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
        return resume_run(
            config, request, ui, redactor=redactor, policy=policy, transport=transport
        )
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
                max_unchecked(validation, request.max_payments)
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
                check_max(validation.valid, request.max_payments)
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
                max_unchecked(validation, request.max_payments)
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
                    check_selected(selected, found, request.max_payments, ui)
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
                    confirm_plan(plan, ui, yes=request.yes, live=request.live)
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
                        execute_and_summarize(
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
