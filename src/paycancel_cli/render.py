"""Everything the user sees: rich tables on stdout, messages on stderr, JSON Lines.

The only module that knows rich.  In ``--json`` mode stdout carries JSON Lines only.
Colour follows rich's detection (off when not a terminal), ``--no-color`` and
``NO_COLOR``.  Every string that reaches a stream passes through the redactor.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from paycancel_cli.errors import Declined
from paycancel_cli.models import AGGREGATES, Money, Outcome, Payment, Result

if TYPE_CHECKING:
    from paycancel_cli.bulk import Plan, Summary
    from paycancel_cli.csvinput import Validation

_OUTCOME_STYLE = {
    Outcome.CANCELLED: "green",
    Outcome.ALREADY_CANCELLED: "green",
    Outcome.WOULD_CANCEL: "cyan",
    Outcome.NOT_CANCELLABLE: "yellow",
    Outcome.NOT_FOUND: "yellow",
    Outcome.FAILED: "bold red",
    Outcome.INVALID: "red",
}


class Output:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        no_color: bool = False,
        redact: Callable[[str], str] = lambda s: s,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.redact = redact
        self._stdout = stdout or sys.stdout
        self.out = _console(self._stdout, no_color)
        self.err = _console(stderr or sys.stderr, no_color)

    # streams

    def message(self, text: str, style: str | None = None) -> None:
        self.err.print(Text(self.redact(text), style=style or ""))

    def error(self, text: str) -> None:
        self.err.print(Text(self.redact(text), style="bold red"))

    def json_line(self, obj: dict[str, Any]) -> None:
        self._stdout.write(self.redact(json.dumps(obj, default=str)) + "\n")
        self._stdout.flush()

    def table(self, table: Table) -> None:
        self.out.print(table)

    # pieces

    def account_label(self, name: str, live: bool) -> Text:
        label = Text(name)
        label.append(" LIVE" if live else " test", style="bold white on red" if live else "dim")
        return label

    def status_table(
        self,
        rows: Iterable[tuple[str, str, Payment | None, str | None]],
        live: Callable[[str], bool],
    ) -> Table:
        table = Table(title="Payments", title_justify="left")
        for col in (
            "account",
            "payment id",
            "status",
            "provider status",
            "amount",
            *AGGREGATES,
            "cancelable",
        ):
            table.add_column(col, justify="right" if col in ("amount", *AGGREGATES) else "left")
        for account, pid, payment, error in rows:
            if payment is None:
                table.add_row(
                    self.account_label(account, live(account)),
                    pid,
                    Text("not found", style="yellow"),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    Text(self.redact(error or ""), style="yellow"),
                )
                continue
            table.add_row(
                self.account_label(account, live(account)),
                payment.payment_id,
                payment.status.value,
                payment.native_status,
                money(payment.amount),
                *(money(getattr(payment, a)) for a in AGGREGATES),
                Text("yes", style="green")
                if payment.cancelable
                else Text(f"no: {payment.why_not}", style="yellow"),
            )
        return table

    def runs_table(self, runs: list[dict[str, Any]]) -> Table:
        table = Table(title="Runs", title_justify="left")
        for col in ("run id", "started", "status", "user", "input", "reason", "total", "outcomes"):
            table.add_column(col, justify="right" if col == "total" else "left")
        for run in runs:
            table.add_row(
                run["run_id"],
                run["started_at"][:19].replace("T", " "),
                run["status"],
                f"{run['user']}@{run['host']}",
                self.redact(str(run["input"] or "")),
                self.redact(str(run["reason"] or "")),
                str(run["total"]),
                ", ".join(f"{k} {v}" for k, v in sorted(run["outcomes"].items())),
            )
        return table

    def plan_table(self, payment: Payment, live: bool, reason: str) -> Table:
        table = Table(title="About to cancel", title_justify="left", show_header=False)
        table.add_column("field")
        table.add_column("value")
        table.add_row("account", self.account_label(payment.account, live))
        table.add_row("provider", payment.provider)
        table.add_row("payment id", payment.payment_id)
        table.add_row("status", f"{payment.status.value} ({payment.native_status})")
        table.add_row("amount", money(payment.amount))
        remaining = _remaining(payment)
        if remaining is not None:
            table.add_row("to be released", str(remaining))
        table.add_row("reason", self.redact(reason))
        return table

    def before_after(self, result: Result) -> Table:
        title = Text(f"{result.payment_id} ({result.account}): ")
        title.append(result.outcome.value, style=_OUTCOME_STYLE[result.outcome])
        table = Table(title=title, title_justify="left")
        for col in ("", "before", "after", "change"):
            table.add_column(col, justify="left" if col in ("", "before", "after") else "right")
        b, a = result.before, result.after
        table.add_row(
            "status",
            "" if b is None else f"{b.status.value} ({b.native_status})",
            "" if a is None else f"{a.status.value} ({a.native_status})",
            ""
            if a is None or b is None or a.status == b.status
            else f"{b.status.value} -> {a.status.value}",
        )
        for field in ("amount", *AGGREGATES):
            before = None if b is None else getattr(b, field)
            after = None if a is None else getattr(a, field)
            if before is None and after is None:
                continue
            table.add_row(field, money(before), money(after), _change(before, after))
        return table

    def result_line(self, result: Result) -> Text:
        text = Text(f"{result.account} {result.payment_id}: ")
        text.append(result.outcome.value, style=_OUTCOME_STYLE[result.outcome])
        if result.error is not None:
            code = f" [{result.error.code}]" if result.error.code else ""
            text.append(f"{code} {self.redact(result.error.message)}")
        return text


def _console(stream: IO[str], no_color: bool) -> Console:
    console = Console(file=stream, no_color=True if no_color else None, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # a pipe or file: do not squeeze tables into 80 columns
    return console


def money(value: Money | None) -> str:
    return "" if value is None else str(value)


def _change(before: Money | None, after: Money | None) -> str:
    if before is None or after is None or before.currency != after.currency:
        return ""
    delta = after.value - before.value
    if delta == 0:
        return ""
    sign = "+" if delta > 0 else "-"
    return f"{sign}{Money(abs(delta), after.currency)}"


def _remaining(payment: Payment) -> Money | None:
    if payment.authorized is None or payment.authorized.value == 0:
        return None
    spent = sum(
        (m.value for m in (payment.captured, payment.cancelled) if m is not None), Decimal(0)
    )
    return Money(payment.authorized.value - spent, payment.authorized.currency)


class BulkView:
    """The terminal side of a bulk run: problems, plan and prompt, progress, results."""

    SMALL_RUN = 100  # up to this many payments, every result is shown in a table

    def __init__(
        self,
        out: Output,
        *,
        yes: bool,
        live: bool,
        interactive: bool,
        progress: bool,
    ) -> None:
        self.out = out
        self.yes = yes
        self.live = live
        self.interactive = interactive
        self.show_progress = progress and out.err.is_terminal
        self.results: list[Result] = []
        self.counts: Counter[str] = Counter()
        self.total = 0
        self._progress: Any = None
        self._task: Any = None

    def validated(self, validation: Validation) -> None:
        for note in validation.notes:  # first: a note may say how the lines are counted
            self._line(f"Note: {note}")
        for problem in validation.problems[:50]:
            self.out.message(f"line {problem.line}: {problem.message}", style="red")
        if validation.invalid > 50:
            self.out.message(f"... and {validation.invalid - 50} more invalid rows", style="red")
        if validation.duplicates:
            lines = ", ".join(str(n) for n in validation.duplicate_lines)
            self.out.message(
                f"Warning: {validation.duplicates} duplicate row(s) collapsed (line(s) {lines}"
                f"{', ...' if validation.duplicates > len(validation.duplicate_lines) else ''}).",
                style="yellow",
            )
        if validation.ignored_columns:
            self.out.message(
                f"Note: column(s) {', '.join(validation.ignored_columns)} are not used.",
                style="dim",
            )

    def warn(self, message: str) -> None:
        self._line(f"Warning: {message}")

    def _line(self, text: str) -> None:
        # One line in a log, however narrow the terminal (it soft-wraps on screen).
        self.out.err.print(Text(self.out.redact(text), style="yellow"), soft_wrap=True)

    def confirm(self, plan: Plan) -> None:
        table = Table(title="Plan", title_justify="left")
        table.add_column("account")
        table.add_column("payments", justify="right")
        for account, count in sorted(plan.per_account.items()):
            table.add_row(self.out.account_label(account, plan.live[account]), str(count))
        found = Table(box=None, show_edge=False)
        found.add_column("subscription", overflow="fold")
        found.add_column("open payments", justify="right")
        for sub, n in list(plan.subscriptions.items())[:20]:
            found.add_row(sub, Text(str(n), style="" if n else "yellow"))
        if len(plan.subscriptions) > 20:
            found.caption = f"and {len(plan.subscriptions) - 20} more subscription(s)"
        live_accounts = sorted(a for a, is_live in plan.live.items() if is_live)
        prompting = not self.yes or bool(live_accounts and not self.live)
        if prompting or not self.out.json_mode:  # --json --yes (cron): stderr stays quiet
            (self.out.err if self.out.json_mode else self.out.out).print(table)
            if plan.subscriptions:
                (self.out.err if self.out.json_mode else self.out.out).print(found)
        if live_accounts and not (self.yes and self.live):
            for account in live_accounts:
                typed = _prompt(f"LIVE account: type the account name ({account}) to go on")
                if typed.strip() != account:
                    raise Declined("The typed name did not match the account; nothing was sent.")
            return
        if self.yes:
            return
        answer = _prompt(f"Cancel {plan.total} payment(s)? [y/N]")
        if answer.strip().lower() not in ("y", "yes"):
            raise Declined("Not confirmed; nothing was sent.")

    def started(self, run_id: str, total: int, resumed: bool) -> None:
        self.total = total
        verb = "Resuming run" if resumed else "Run"
        self.out.message(f"{verb} {run_id}: {total} payment(s) to process.", style="bold")
        if self.show_progress and total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.out.err,
                transient=False,
            )
            self._task = self._progress.add_task("cancelling", total=total, rate="0.0")
            self._progress.start()

    def result(self, result: Result) -> None:
        self.counts[result.outcome.value] += 1
        if self.out.json_mode:
            self.out.json_line(result.to_json())
        if self.total <= self.SMALL_RUN:
            self.results.append(result)
        if self._progress is not None:
            task = self._progress.tasks[0]
            speed = task.speed or 0.0
            summary = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
            self._progress.update(self._task, advance=1, description=summary, rate=f"{speed:.1f}")

    def finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def results_table(self) -> Table:
        table = Table(title="Results", title_justify="left")
        for col in ("account", "payment id", "outcome", "before", "after", "released", "note"):
            table.add_column(col, justify="right" if col == "released" else "left")
        for r in self.results:
            released = r.released()
            table.add_row(
                r.account,
                r.payment_id,
                Text(r.outcome.value, style=_OUTCOME_STYLE[r.outcome]),
                "" if r.before is None else r.before.status.value,
                Text("unchanged", style="dim")
                if r.after is None and r.before is not None
                else ("" if r.after is None else r.after.status.value),
                money(released),
                "" if r.error is None else self.out.redact(r.error.message),
            )
        return table

    def summary_table(self, summary: Summary) -> Table:
        outcomes = [
            o.value for o in Outcome if any(o.value in c for c in summary.per_account.values())
        ]
        table = Table(title=f"Summary of run {summary.run_id}", title_justify="left")
        table.add_column("account")
        for name in outcomes:
            table.add_column(name, justify="right")
        for account, counts in sorted(summary.per_account.items()):
            table.add_row(account or "(invalid)", *(str(counts.get(o, 0)) for o in outcomes))
        table.add_row(
            Text("total", style="bold"), *(str(summary.outcomes.get(o, 0)) for o in outcomes)
        )
        amounts = (
            ", ".join(f"{v} {c}" for c, v in sorted(summary.cancelled_amounts.items())) or "none"
        )
        caption = f"cancelled amounts: {amounts}"
        if summary.unknown_amounts:
            caption += f"; {summary.unknown_amounts} cancelled with no amount from the provider"
        if summary.remaining:
            caption += f"; {summary.remaining} not processed yet"
        caption += f"; {summary.requests} requests in {summary.duration_s:.1f}s"
        table.caption = caption
        return table

    def failures_table(self, summary: Summary) -> Table:
        table = Table(
            title=f"Not cancelled ({summary.failure_count}; first {len(summary.failures)})",
            title_justify="left",
        )
        for col in ("account", "payment id", "outcome", "code", "provider's reason"):
            table.add_column(col)
        for r in summary.failures:
            table.add_row(
                r.account,
                r.payment_id,
                Text(r.outcome.value, style=_OUTCOME_STYLE[r.outcome]),
                "" if r.error is None else str(r.error.code or ""),
                "" if r.error is None else self.out.redact(r.error.message),
            )
        return table


def _prompt(text: str) -> str:
    import typer

    return str(typer.prompt(text, default="", show_default=False, err=True))
