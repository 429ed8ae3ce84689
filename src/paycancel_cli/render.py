"""Everything the user sees: rich tables on stdout, messages on stderr, JSON Lines.

The only module that knows rich.  In ``--json`` mode stdout carries JSON Lines only.
Colour follows rich's detection (off when not a terminal), ``--no-color`` and
``NO_COLOR``.  Every string that reaches a stream passes through the redactor.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from paycancel_cli.models import AGGREGATES, Money, Outcome, Payment, Result

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
