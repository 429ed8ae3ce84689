"""Resume a stopped, crashed or unfinished run: only its payments without an outcome
(and, once more, those that failed for a transient cause).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from paycancel_cli.engine import RetryPolicy
from paycancel_cli.errors import ConfigError, PaycancelError
from paycancel_cli.journal import Journal, RunRow
from paycancel_cli.models import Payment
from paycancel_cli.refusals import Refused, Wrong
from paycancel_cli.runs.confirm import check_confirmable, confirm_plan
from paycancel_cli.runs.execute import execute_journaled
from paycancel_cli.runs.plan import (
    check_selected,
    select_open_payments,
    subscription_counts,
    subscription_plan_rows,
)
from paycancel_cli.runs.request import BulkRequest, BulkUI, Plan, find_run, no_such_run
from paycancel_cli.runs.summary import BulkOutcome, summarize

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.redact import Redactor


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
    policy: RetryPolicy | None = None,
) -> None:
    """A resumed run whose subscriptions were never listed: list them now and plan
    their open payments (see ``keep_unlisted``)."""
    from paycancel_cli.session import Session

    subscriptions = [(str(a), str(s), str(r)) for a, s, r in options["unlisted"]]

    async def go() -> tuple[list[tuple[str, str, Payment]], dict[tuple[str, str], int]]:
        async with Session(config, redactor=redactor, transport=transport) as session:
            return await select_open_payments(session, subscriptions, policy)

    try:
        selected, found = asyncio.run(go())
    except PaycancelError as exc:
        exc.run_id = run_id  # type: ignore[attr-defined]
        raise
    check_selected(selected, found, options.get("max_payments"), ui)
    journal.plan(run_id, subscription_plan_rows(run_id, selected))
    rest = {k: v for k, v in options.items() if k != "unlisted"}
    journal.set_run_options(run_id, {**rest, "subscriptions": subscription_counts(found)})


def resume_run(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    policy: RetryPolicy | None,
    transport: Any,
) -> BulkOutcome:
    """``--resume RUN_ID``: the run's payments without an outcome (and, unless it is a
    dry run, those that failed for a transient cause) executed, under the run's locks,
    after the one confirmation; a run with nothing left is said to be finished."""
    assert request.resume is not None
    journal = Journal(config.journal_path, redact=redactor)
    run = _resumable(config, journal, request.resume)
    resuming = _Resume(config, request, ui, redactor, policy, transport, journal, run)
    return resuming.locked()


def _resumable(config: Config, journal: Journal, run_id: str) -> RunRow:
    """The run ``--resume`` names, if this config can resume it."""
    run = find_run(config, journal, run_id, resuming=True)
    run_id = run.run_id
    if run.options.get("kind") not in ("bulk", "cancel"):
        raise no_such_run(config, run_id, resuming=True)
    if bool(run.options.get("sandbox")) != config.sandbox:
        raise Refused(Wrong.OTHER_SANDBOX, run_id=run_id, sandbox=bool(run.options.get("sandbox")))
    missing = [a for a in run.options.get("accounts", []) if a not in config.accounts]
    if missing:
        raise ConfigError(
            f"Run {run_id} used account(s) {', '.join(missing)}, which the config no longer has."
        )
    return run


@dataclass
class _Resume:
    """One resume of a resumable run, from its locks to its summary."""

    config: Config
    request: BulkRequest
    ui: BulkUI
    redactor: Redactor
    policy: RetryPolicy | None
    transport: Any
    journal: Journal
    run: RunRow

    @property
    def dry_run(self) -> bool:
        return bool(self.run.options.get("dry_run"))

    def locked(self) -> BulkOutcome:
        """Refuse what could never be confirmed, take the run's input and run locks, list
        what was never listed, then resume."""
        from paycancel_cli.locks import Locks

        config, request, run, run_id = self.config, self.request, self.run, self.run.run_id
        if not self.dry_run:
            check_confirmable(
                [config.account(a) for a in run.options.get("accounts", [])],
                yes=request.yes,
                live=request.live,
                interactive=request.interactive,
                from_plan="plan" in run.options,  # a reviewed plan's run (plans.py)
            )
        input_lock = Locks(config.journal_path, wait=request.wait, on_wait=self.ui.waiting)
        input_lock.take(
            f"input-{(run.input_hash or run_id)[:32]}", f"The input of run {run_id} ({run.input})"
        )
        try:
            input_lock.take(f"run-{run_id}", f"Run {run_id}")
            if run.options.get("unlisted") and not self.dry_run:
                list_unlisted(
                    config, self.journal, run_id, run.options, self.ui, redactor=self.redactor,
                    transport=self.transport, policy=self.policy,
                )  # fmt: skip
            return self.left()
        finally:
            input_lock.release()

    def left(self) -> BulkOutcome:
        """Under the run's locks: what is left, confirmed, then executed."""
        config, journal, request, run = self.config, self.journal, self.request, self.run
        run_id, dry_run = run.run_id, self.dry_run
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
            confirm_plan(plan, self.ui, yes=request.yes, live=request.live)
        if retry:
            journal.requeue_transient(run_id)
        journal.set_run_status(run_id, "running")
        concurrency = request.concurrency or run.options.get("concurrency")
        summary, interrupted = execute_journaled(
            config, journal, run_id, replace(request, concurrency=concurrency), self.ui,
            redactor=self.redactor, transport=self.transport, policy=self.policy, resumed=True,
            dry_run=dry_run, read_first=bool(run.options.get("read_first")),
            planned="plan" in run.options,
        )  # fmt: skip
        summary.audit_head = journal.head()  # after the run's last event
        return BulkOutcome(run_id, summary, None, interrupted)
