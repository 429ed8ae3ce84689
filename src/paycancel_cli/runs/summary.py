"""A run's summary (counts, totals, the exit code), its report, and what a run
reports of the reviewed plan it applied.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paycancel_cli.csvinput import Validation
from paycancel_cli.journal import Journal
from paycancel_cli.models import Money, Outcome, PaymentStatus, Result, combine, verdict
from paycancel_cli.refusals import RefusedInput

if TYPE_CHECKING:
    pass


MAX_FAILURES_SHOWN = 20


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

    def add(self, result: Result) -> None:
        """One processed payment's share of the counts, the amounts and the exit code:
        the one place where a run's totals are summed (bulk, resume, plan, single)."""
        outcome = result.outcome
        self.total += 1
        self.outcomes[outcome.value] += 1
        self.per_account.setdefault(result.account, Counter())[outcome.value] += 1
        if outcome is Outcome.CANCELLED:
            money = result.released()
            if money is None:
                self.unknown_amounts += 1
                if len(self.unknown_ids) < 3:
                    self.unknown_ids.append(result.payment_id)
            else:
                _add(self.cancelled_amounts, money)
        if outcome is Outcome.WOULD_CANCEL:
            would = result.would_release()
            if would is None:
                self.would_unknown += 1
            else:
                _add(self.would_release, would)
        if not outcome.is_success:
            self.failure_count += 1
            if len(self.failures) < MAX_FAILURES_SHOWN:
                self.failures.append(result)
        self.verdicts.add(verdict(result))

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
        if row.outcome is None:
            summary.total += 1
            summary.remaining += 1
        else:
            summary.add(row.result(run_id))
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


@dataclass
class BulkOutcome:
    run_id: str | None
    summary: Summary | None
    validation: Validation | None
    interrupted: bool = False
    finished: bool = False  # --resume of a run with nothing left to do
    refused: RefusedInput | None = None  # --validate-only: why the input cannot run as it is

    def exit_code(self) -> int:
        if self.summary is None or self.finished:
            return 0
        return self.summary.exit_code(interrupted=self.interrupted)
