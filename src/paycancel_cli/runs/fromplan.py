"""Apply a reviewed plan (``bulk-cancel --plan``): every check first, then a run
whose planned payments are exactly the plan's (see ``plans`` for the plan file, its
signatures and its checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paycancel_cli.engine import idempotency_key
from paycancel_cli.journal import Journal, PlanRow
from paycancel_cli.models import ErrorInfo, Outcome
from paycancel_cli.plans import Plan, evaluate, payment_of, read_plan, refusal
from paycancel_cli.runs.confirm import check_confirmable, confirm_plan
from paycancel_cli.runs.execute import execute_journaled
from paycancel_cli.runs.request import BulkRequest, BulkUI
from paycancel_cli.runs.request import Plan as Confirm
from paycancel_cli.runs.summary import BulkOutcome

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.engine import RetryPolicy
    from paycancel_cli.redact import Redactor


def planned_rows(plan: Plan, run_id: str) -> Iterator[Any]:
    """The journal's rows for a plan: ``would_cancel`` payments to process (each with
    the state the plan recorded); the others settled at once with their planned outcome."""
    for p in plan.payments:
        state = payment_of(p) if p["state"] is not None else None
        outcome = Outcome(p["plan"])
        todo = outcome is Outcome.WOULD_CANCEL
        error = (
            None
            if p.get("code") is None and p.get("why") is None
            else ErrorInfo(p.get("code"), str(p.get("why") or ""))
        )
        yield PlanRow(
            account=p["account"],
            provider=p.get("provider") or "",
            payment_id=p["payment_id"],
            reason=p.get("reason") or plan.data["reason"],
            key=idempotency_key(run_id, p["account"], p["payment_id"]) if todo else "",
            line=p.get("line"),
            known=state,
            error=None if todo else error,
            outcome=None if todo else outcome,
        )


def apply_plan(
    config: Config,
    path: Path,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    announce: Callable[[str], None],
    policy: RetryPolicy | None = None,
    transport: Any = None,
) -> BulkOutcome:
    """Apply exactly the plan at ``path``: every check first, then a run whose planned
    payments are the plan's (``bulk-cancel --plan``)."""
    from paycancel_cli.core import new_run_id
    from paycancel_cli.journal import Journal
    from paycancel_cli.locks import Lock, Locks

    plan = read_plan(path)
    journal = Journal(config.journal_path, redact=redactor)
    verdict = evaluate(plan, config, journal)
    if not verdict.applicable:
        raise refusal(verdict)
    accounts = [config.account(a["name"]) for a in plan.accounts]
    check_confirmable(
        accounts, yes=request.yes, live=request.live, interactive=request.interactive,
        from_plan=True,
    )  # fmt: skip
    locks = Locks(config.journal_path, wait=request.wait, on_wait=ui.waiting)
    locks.take(f"input-plan-{plan.digest.removeprefix('sha256:')[:32]}", f"Plan {plan.plan_id}")
    run_lock: Lock | None = None
    try:
        verdict = evaluate(plan, config, journal)  # again, under the lock: applied meanwhile?
        if not verdict.applicable:
            raise refusal(verdict)
        approvers = verdict.approvers
        announce(
            f"Plan {plan.plan_id}, made by {plan.author_label} at {plan.data['created_at']}; "
            + (f"approved by {', '.join(approvers)}" if approvers else "no approvals needed")
            + f"; expires {plan.data['expires_at']}."
        )
        per_account = plan.would_cancel()
        live = {a["name"]: config.account(a["name"]).is_live for a in plan.accounts}
        if per_account:
            confirm = Confirm(per_account=per_account, live=live, dry_run=False)
            confirm_plan(confirm, ui, yes=request.yes, live=request.live)
        run_id = new_run_id()
        run_lock = Lock(config.journal_path, f"run-{run_id}")
        run_lock.acquire(what=f"Run {run_id}")
        _journal_run(journal, run_id, plan, path, request, config, redactor, live, approvers)
        try:
            journal.plan(run_id, planned_rows(plan, run_id))
        except BaseException:
            journal.set_run_status(run_id, "interrupted")
            raise
        summary, interrupted = execute_journaled(
            config, journal, run_id, request, ui, redactor=redactor, transport=transport,
            policy=policy, resumed=False, dry_run=False, read_first=False, planned=True,
        )  # fmt: skip
        return BulkOutcome(run_id, summary, None, interrupted)
    finally:
        if run_lock is not None:
            run_lock.release()
        locks.release()


def _journal_run(
    journal: Journal,
    run_id: str,
    plan: Plan,
    path: Path,
    request: BulkRequest,
    config: Config,
    redactor: Redactor,
    live: dict[str, bool],
    approvers: list[str],
) -> None:
    """The plan's run, and the plan it applies (once: a plan applied meanwhile by
    another process is refused here)."""
    from paycancel_cli.core import host, os_user
    from paycancel_cli.journal import AppliedPlan, record_plan

    journal.start_run(
        run_id,
        user=os_user(),
        host=host(),
        command=redactor(request.command),
        input=f"plan {path.name} ({plan.plan_id})",
        input_hash=plan.digest,
        reason=redactor(plan.data["reason"]),
        options={
            "kind": "bulk",
            "dry_run": False,
            "concurrency": request.concurrency or config.defaults.concurrency,
            "accounts": sorted(live),
            "live": any(live.values()),
            "sandbox": config.sandbox,
            "read_first": False,
            "plan": plan.plan_id,
        },
    )
    record = AppliedPlan(run_id, plan.plan_id, plan.digest, plan.author_label, approvers)
    if not record_plan(journal, run_id, record):
        journal.set_run_status(run_id, "completed")
        raise refusal(evaluate(plan, config, journal))
