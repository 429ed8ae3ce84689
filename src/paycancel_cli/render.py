"""Everything the user sees: rich tables on stdout, messages on stderr, JSON Lines.

The only module that knows rich.  In ``--json`` mode stdout carries JSON Lines only.
Colour follows rich's detection (off when not a terminal), ``--no-color`` and
``NO_COLOR``.  Every string that reaches a stream passes through the redactor.

Tables are ``Sheet``s, laid out here and nowhere else.  Invariants:
- A payment id, run id or amount (a *kept* cell) is printed whole on one line, at any
  width and in a pipe: never cut, never wrapped, never ellipsized.
- Columns that are empty on every row are left out.
- To a pipe or file: plain aligned rows, one line per row, nothing cut, no colour, no
  decoration, so a cron log can be grepped row by row.
- On a terminal the sheet fits its width: other columns wrap; when a row still cannot
  fit, the columns marked ``detail`` move to an indented line under their row, and if
  even that cannot fit, each row becomes a block of ``label value`` lines.
- Captions are lines under the table, left-aligned, broken only between pieces (an
  amount never splits from its currency).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, ClassVar

from rich.console import Console, ConsoleOptions
from rich.text import Text

from paycancel_cli import pipes
from paycancel_cli.models import AGGREGATES, Money, Outcome, Payment, Result

if TYPE_CHECKING:
    from rich.progress import Task

    from paycancel_cli.csvinput import Validation
    from paycancel_cli.runs.request import Plan
    from paycancel_cli.runs.summary import Summary

_OUTCOME_STYLE = {
    Outcome.CANCELLED: "green",
    Outcome.ALREADY_CANCELLED: "green",
    Outcome.WOULD_CANCEL: "cyan",
    Outcome.NOT_CANCELLABLE: "yellow",
    Outcome.NOT_FOUND: "yellow",
    Outcome.FAILED: "bold red",
    Outcome.INVALID: "red",
}


# sheets: the tables' shape, laid out for a terminal width or for a pipe

_GAP = 2  # spaces between columns
_DETAIL_INDENT = 4
_MIN_WIDTH = 8  # a wrapping column is not squeezed below this (or its widest word up to _WORD)
_WORD = 20


@dataclass(frozen=True, slots=True)
class Col:
    name: str
    keep: bool = False  # every cell is kept whole (ids, amounts, counts)
    right: bool = False
    head: bool = False  # names the row: the first line of its block
    group: bool = False  # on a terminal, a value shared by every row moves into the title
    detail: str | None = None  # may move under its row, after this prefix


@dataclass
class Sheet:
    title: Text
    cols: list[Col]
    rows: list[list[Text]] = field(default_factory=list)
    notes: list[list[Text]] = field(default_factory=list)  # lines of unbreakable pieces
    empty: str | None = None  # said (on stderr) instead of an empty table
    show_header: bool = True

    def add_row(self, *cells: Text | str) -> None:
        row = []
        for col, cell in zip(self.cols, cells, strict=True):
            text = Text(cell) if isinstance(cell, str) else cell
            if col.keep:
                text = kept(text)
            row.append(text)
        self.rows.append(row)

    def note(self, *pieces: Text | str) -> None:
        """A line under the table: text breaks between words, a ``Text`` piece never."""
        line: list[Text] = []
        for piece in pieces:
            line += [Text(w) for w in piece.split()] if isinstance(piece, str) else [piece]
        self.notes.append(line)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield from self.lines(console, options.max_width)

    def lines(self, console: Console, width: int) -> list[Text]:
        if not self.rows:
            return []
        plain = not console.is_terminal
        cols = [i for i in range(len(self.cols)) if any(r[i].plain.strip() for r in self.rows)]
        title = self.title.copy()
        if not plain and len(cols) > 1:
            for i in [i for i in cols if self.cols[i].group]:
                if len({r[i].plain for r in self.rows}) == 1:
                    title.append(" · ")
                    title.append_text(self.rows[0][i])
                    cols.remove(i)
        title.stylize("bold")
        out = [title] if title.plain else []
        if plain:
            out += self._table(console, cols, None, [])
            out += [Text(" ").join(note) for note in self.notes]
            return out
        widths = self._fit(cols, width)
        moved: list[int] = []
        if widths is None:
            moved = [i for i in cols if self.cols[i].detail is not None]
            kept_cols = [i for i in cols if i not in moved]
            widths = self._fit(kept_cols, width) if moved and kept_cols else None
            cols = kept_cols
        if widths is None:
            out += self._blocks(console, sorted(cols + moved), width)
        else:
            out += self._table(console, cols, widths, moved, width)
        for note in self.notes:
            out += _pack(console, note, " ", width, 0, 2)
        return out

    # layout

    def _natural(self, i: int) -> int:
        cells = [r[i].cell_len for r in self.rows]
        header = len(self.cols[i].name) if self.show_header else 0
        return max([header, *cells])

    def _minimum(self, i: int) -> int:
        least = 0
        for row in self.rows:
            cell = row[i]
            least = max(least, cell.cell_len if cell.no_wrap else min(_longest_word(cell), _WORD))
        if self.show_header:
            # a header may also break at "_" (see _table)
            least = max(least, min(_longest_word(Text(self.cols[i].name), r"[\s_]+"), _WORD))
        return max(least, min(self._natural(i), _MIN_WIDTH))

    def _fit(self, cols: list[int], width: int) -> list[int] | None:
        """Column widths that fit ``width``: kept cells whole, the rest shared out."""
        room = width - _GAP * (len(cols) - 1)
        natural = [self._natural(i) for i in cols]
        least = [self._minimum(i) for i in cols]
        if sum(least) > room:
            return None
        if sum(natural) <= room:
            return natural
        lo, hi = 0, max(natural)
        while lo < hi:  # the widest cap under which every column fits
            cap = (lo + hi + 1) // 2
            if sum(min(n, max(m, cap)) for n, m in zip(natural, least, strict=True)) <= room:
                lo = cap
            else:
                hi = cap - 1
        widths = [min(n, max(m, lo)) for n, m in zip(natural, least, strict=True)]
        spare = room - sum(widths)
        for k, n in enumerate(natural):
            if spare and widths[k] < n:
                widths[k] += 1
                spare -= 1
        return widths

    def _table(
        self,
        console: Console,
        cols: list[int],
        widths: list[int] | None,
        moved: list[int],
        width: int = 0,
    ) -> list[Text]:
        sizes = widths or [self._natural(i) for i in cols]
        right = [self.cols[i].right for i in cols]
        out: list[Text] = []
        if self.show_header:
            names = []
            for i, size in zip(cols, sizes, strict=True):
                name = self.cols[i].name
                if len(name) > size:
                    name = name.replace("_", " ")  # let "already_cancelled" wrap
                names.append(Text(name, style="bold"))
            out += _row(console, names, sizes, right, wrap=widths is not None)
        for row in self.rows:
            out += _row(console, [row[i] for i in cols], sizes, right, wrap=widths is not None)
            items = [Text(self.cols[i].detail or "") + row[i] for i in moved if row[i].plain]
            if items:
                out += _pack(console, items, " · ", width, _DETAIL_INDENT, _DETAIL_INDENT)
        return out

    def _blocks(self, console: Console, cols: list[int], width: int) -> list[Text]:
        heads = [i for i in cols if self.cols[i].head] or cols[:1]
        rest = [i for i in cols if i not in heads]
        label = max((len(self.cols[i].name) for i in rest), default=0)
        room = max(width - label - 4, 20)
        out: list[Text] = []
        for n, row in enumerate(self.rows):
            if n:
                out.append(Text(""))
            out.append(Text("  ").join(row[i] for i in heads).copy())
            out[-1].stylize("bold")
            for i in rest:
                cell = row[i]
                if not cell.plain.strip():
                    continue
                lines = [cell] if cell.no_wrap else list(_wrap(console, cell, room))
                for k, line in enumerate(lines):
                    name = self.cols[i].name if k == 0 else ""
                    text = Text(f"  {name.ljust(label)}  ", style="dim")
                    text.append_text(line)
                    out.append(text)
        return out


def kept(text: Text | str) -> Text:
    """A cell that is never wrapped or cut: an id, an amount, a count."""
    text = Text(text) if isinstance(text, str) else text.copy()
    text.no_wrap = True
    text.overflow = "ignore"
    return text


def _longest_word(text: Text, breaks: str = r"\s+") -> int:
    return max((len(w) for w in re.split(breaks, text.plain)), default=0)


def _wrap(console: Console, text: Text, width: int) -> list[Text]:
    lines = []
    for line in text.wrap(console, max(width, 1), overflow="fold"):
        line.rstrip()
        lines.append(line)
    return lines or [Text("")]


def _row(
    console: Console, cells: list[Text], sizes: list[int], right: list[bool], *, wrap: bool
) -> list[Text]:
    stacked = [
        _wrap(console, cell, size) if wrap and not cell.no_wrap else [cell]
        for cell, size in zip(cells, sizes, strict=True)
    ]
    out = []
    for k in range(max(len(s) for s in stacked)):
        line = Text()
        for j, (lines, size) in enumerate(zip(stacked, sizes, strict=True)):
            piece = lines[k] if k < len(lines) else Text("")
            pad = " " * max(size - piece.cell_len, 0)
            if j:
                line.append(" " * _GAP)
            if right[j]:
                line.append(pad)
                line.append_text(piece)
            else:
                line.append_text(piece)
                line.append(pad)
        line.rstrip()
        out.append(line)
    return out


def _pack(
    console: Console, items: list[Text], sep: str, width: int, first: int, indent: int
) -> list[Text]:
    """Lay ``items`` out in lines of ``width``, breaking only between items (an item
    longer than a whole line wraps on its own lines)."""
    out: list[Text] = []
    line = Text(" " * first)
    bare = True
    for item in items:
        if not bare and line.cell_len + len(sep) + item.cell_len > width:
            out.append(line)
            line, bare = Text(" " * indent), True
        if not bare:
            line.append(sep)
        if bare and line.cell_len + item.cell_len > width and not item.no_wrap:
            pieces = _wrap(console, item, width - line.cell_len)
            for piece in pieces[:-1]:
                out.append(line + piece)
                line = Text(" " * indent)
            item = pieces[-1]
        line.append_text(item)
        bare = False
    out.append(line)
    return out


# the streams


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
        self._tables = 0

    # streams

    def message(self, text: str, style: str | None = None) -> None:
        self.err.print(Text(self.redact(text), style=style or ""))

    def error(self, text: str) -> None:
        self.err.print(Text(self.redact(text), style="bold red"))

    def command_line(self, command: str) -> None:
        """A command to copy (the resume command): a line of its own on stderr, never
        wrapped or cut, whatever the terminal's width."""
        self.err.print(Text(self.redact(command)), soft_wrap=True)

    def json_line(self, obj: dict[str, Any]) -> None:
        pipes.write(self._stdout, self.redact(json.dumps(obj, default=str)) + "\n")

    def table(self, sheet: Sheet, console: Console | None = None) -> None:
        """A sheet on stdout (or ``console``), after a blank line if another came
        before; one with no rows says its ``empty`` line on stderr."""
        if not sheet.rows:
            if sheet.empty:
                self.message(sheet.empty)
            return
        if console is None or console is self.out:
            if self._tables:
                self.out.print()
            self._tables += 1
        show(console or self.out, sheet)

    # pieces

    def account_label(self, name: str, live: bool) -> Text:
        label = Text(name)
        label.append(" LIVE" if live else " test", style="bold white on red" if live else "dim")
        return label

    def status_table(
        self,
        rows: Iterable[tuple[str, str, Payment | None, str | None]],
        live: Callable[[str], bool],
    ) -> Sheet:
        sheet = Sheet(
            Text("Payments"),
            [
                Col("account", group=True),
                Col("payment id", keep=True, head=True),
                Col("status"),
                Col("provider status", detail="provider: "),
                Col("amount", keep=True, right=True),
                *(Col(a, keep=True, right=True) for a in AGGREGATES),
                Col("cancelable", detail="cancelable "),
            ],
        )
        blank = [""] * (1 + len(AGGREGATES))
        for account, pid, payment, error in rows:
            label = self.account_label(account, live(account))
            if payment is None:
                note = Text(f"no: {self.redact(error or 'not found')}", style="yellow")
                # Not a payment status (FlexPortal has a real ``failed``): the lookup
                # failed (unreachable, an answer that cannot be understood).
                found = error is None or " not found" in error
                what = "not found" if found else f"({NOT_READ})"
                sheet.add_row(label, pid, Text(what, style="yellow"), "", *blank, note)
                continue
            verdict = (
                Text("yes", style="green")
                if payment.cancelable
                else Text(f"no: {payment.why_not}", style="yellow")
            )
            if payment.amount_note:
                verdict.append(f" ({payment.amount_note})", style="dim")
            sheet.add_row(
                label,
                payment.payment_id,
                payment.status.value,
                _native(payment),
                money(payment.amount),
                *(money(getattr(payment, a)) for a in AGGREGATES),
                verdict,
            )
        return sheet

    def runs_table(self, runs: list[dict[str, Any]]) -> Sheet:
        sheet = Sheet(
            Text("Runs"),
            [
                Col("run id", keep=True, head=True),
                Col("started"),
                Col("status"),
                Col("total", keep=True, right=True),
                Col("by", detail="by "),
                Col("input", detail="input "),
                Col("reason", detail="reason: "),
                Col("outcomes", detail=""),
            ],
            empty="No runs in the journal yet.",
        )
        for run in runs:
            sheet.add_row(
                run["run_id"],
                _when(run["started_at"]),
                f"{run['status']} (dry run)" if run.get("dry_run") else run["status"],
                str(run["total"]),
                f"{run['user']}@{run['host']}",
                self.redact(str(run["input"] or "")),
                self.redact(str(run["reason"] or "")),
                ", ".join(f"{k} {v}" for k, v in sorted(run["outcomes"].items())),
            )
        return sheet

    def pending_table(self, rows: list[tuple[str, str, str]], shown: int = 20) -> Sheet:
        """The payments a stopped run has not processed yet: (account, id, state)."""
        more = f"; first {shown} shown" if len(rows) > shown else ""
        sheet = Sheet(
            Text(f"Not processed yet ({len(rows)}{more})"),
            [Col("account", group=True), Col("payment id", keep=True, head=True), Col("state")],
        )
        for account, pid, state in rows[:shown]:
            sheet.add_row(account, pid, "cancel in flight" if state == "in_flight" else state)
        return sheet

    def plan_table(self, payment: Payment, live: bool, reason: str) -> Sheet:
        sheet = Sheet(Text("About to cancel"), [Col("field"), Col("value")], show_header=False)
        sheet.add_row("account", self.account_label(payment.account, live))
        sheet.add_row("provider", payment.provider)
        sheet.add_row("payment id", kept(payment.payment_id))
        sheet.add_row("status", _status(payment))
        sheet.add_row("amount", kept(money(payment.amount)))
        if payment.authorized is not None and payment.authorized.value:  # aggregates
            sheet.add_row("to be released", kept(money(payment.releasable())))
        sheet.add_row("reason", self.redact(reason))
        return sheet

    def before_after(self, result: Result) -> Sheet:
        """Each field before, after and the change; no rows (nothing printed) when the
        payment was never read, e.g. not found: the result line says why."""
        title = Text("")
        title.append_text(kept(result.payment_id))
        title.append(f" ({result.account}): ")
        title.append(result.outcome.value, style=_OUTCOME_STYLE[result.outcome])
        sheet = Sheet(
            title,
            [Col("", head=True), Col("before"), Col("after"), Col("change", right=True)],
        )
        b, a = result.before, result.after
        if b is None and a is None:
            return sheet
        sheet.add_row(
            "status",
            "" if b is None else _status(b),
            "" if a is None else _status(a),
            ""
            if a is None or b is None or (a.status == b.status and b.was_read)
            else f"{_word(b)} -> {a.status.value}",
        )
        for name in ("amount", *AGGREGATES):
            before = None if b is None else getattr(b, name)
            after = None if a is None else getattr(a, name)
            if before is None and after is None:
                continue
            change = kept(_change(before, after))
            sheet.add_row(name, kept(money(before)), kept(money(after)), change)
        return sheet

    def result_line(self, result: Result) -> Text:
        """One line: account, payment, outcome, and why, each said once (no code the
        message starts with, no second naming of the payment)."""
        text = Text(f"{result.account} {result.payment_id}: ")
        text.append(result.outcome.value, style=_OUTCOME_STYLE[result.outcome])
        if result.error is not None:
            message = result.error.message.removesuffix(f" (payment {result.payment_id})")
            code = result.error.code
            shown = f" [{code}]" if code and not message.startswith(code) else ""
            text.append(f"{shown} {self.redact(message)}")
        return text


def show(console: Console, sheet: Sheet) -> None:
    """Print a sheet line by line; no line is wrapped or cut by the console (the sheet
    already fits a terminal, and a pipe takes each row whole)."""
    for line in sheet.lines(console, console.width):
        console.print(line, soft_wrap=True)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Its reader is gone: go quiet, never raise or block (rich would exit 1)."""
        self.quiet = True
        if self.file is sys.stdout:
            pipes.mark_closed()
        else:  # stderr: messages go nowhere now, the run's outcome is unchanged
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.file.fileno())
                os.close(devnull)


def _console(stream: IO[str], no_color: bool) -> Console:
    console = _Console(file=stream, no_color=True if no_color else None, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # a pipe or file: do not squeeze messages into 80 columns
    return console


def _when(stamp: str) -> str:
    """A journal time (ISO 8601 with its offset) with its zone: ``... UTC``, or the
    offset when it is not UTC."""
    shown = stamp[:19].replace("T", " ")
    zone = re.search(r"(Z|[+-]\d\d:?\d\d)$", stamp)
    offset = zone.group(1) if zone else "Z"  # the journal writes UTC
    return f"{shown} UTC" if offset in ("Z", "+00:00", "+0000") else f"{shown} {offset}"


def money(value: Money | None) -> str:
    return "" if value is None else str(value)


def _amounts(totals: dict[str, Decimal]) -> list[Text]:
    """``12.00 EUR, 3.50 NOK`` as pieces that never split an amount from its currency."""
    items = [kept(str(Money(v, c))) for c, v in sorted(totals.items())]
    for item in items[:-1]:
        item.append(",")
    return items


def _spelling(word: str) -> str:
    """A status word without its spelling: case, separators, US ``canceled``."""
    folded = re.sub(r"[\s_-]+", "", word.lower())
    return folded.replace("canceled", "cancelled")


def _native(payment: Payment) -> str:
    """The provider's own word for the status, when it says more than ours (not when
    it differs only in spelling: ``canceled``, ``CANCELLED``)."""
    native = payment.native_status
    return "" if _spelling(native) == _spelling(payment.status.value) else native


NOT_READ = "not read"  # a before state implied by a cancel answer: nobody read it


def _status(payment: Payment) -> str:
    if not payment.was_read:
        return NOT_READ
    native = _native(payment)
    return f"{payment.status.value} ({native})" if native else payment.status.value


def _word(payment: Payment) -> str:
    return payment.status.value if payment.was_read else NOT_READ


def _status_change(result: Result) -> str:
    b, a = result.before, result.after
    if b is not None and a is not None and (a.status != b.status or not b.was_read):
        return f"{_word(b)} -> {a.status.value}"
    shown = b or a
    return "" if shown is None else _word(shown)


def _change(before: Money | None, after: Money | None) -> str:
    if before is None or after is None or before.currency != after.currency:
        return ""
    delta = after.value - before.value
    if delta == 0:
        return ""
    sign = "+" if delta > 0 else "-"
    return f"{sign}{Money(abs(delta), after.currency)}"


class _ProgressLine:
    """The progress bar's one line: label, done/total, rate and ETA first and always
    whole; then the bar; then the counts per outcome, shortened or dropped when the
    terminal is narrow."""

    _SHORT: ClassVar[dict[str, str]] = {
        "cancelled": "cancelled",
        "already_cancelled": "already",
        "not_cancellable": "refused",
        "not_found": "missing",
        "would_cancel": "would",
        "failed": "failed",
        "invalid": "invalid",
    }

    def __init__(self, console: Console, label: str, counts: Counter[str]) -> None:
        self.console = console
        self.label = label
        self.counts = counts

    def __call__(self, task: Task) -> Text:
        width = self.console.width - 1
        total = int(task.total or 0)
        speed = task.finished_speed or task.speed
        eta = task.time_remaining
        clock = "-:--:--" if eta is None else _clock(eta)
        head = (
            f"{self.label} {int(task.completed)}/{total} "
            f"{'-' if speed is None else f'{speed:.1f}'}/s ETA {clock}"
        )
        line = Text(head)
        order = [o.value for o in Outcome if self.counts.get(o.value)]
        counts = ""
        for names in (
            {o: o for o in order},
            self._SHORT,
        ):  # full names, then short ones, then as many as fit
            counts = " ".join(f"{names[o]}={self.counts[o]}" for o in order)
            if len(head) + 1 + 10 + 1 + len(counts) <= width:
                break
        while counts and len(head) + 2 + len(counts) > width:
            counts = counts.rsplit(" ", 1)[0] if " " in counts else ""
        bar = width - len(head) - 2 - (len(counts) + 1 if counts else 0)
        if bar >= 4:
            done = round(bar * (task.completed / total)) if total else 0
            line.append(" ")
            line.append("━" * done, style="bar.complete")
            line.append("━" * (bar - done), style="bar.back")
        if counts:
            line.append(" " + counts)
        return line


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class BulkView:
    """The terminal side of a bulk run: problems, the plan, progress, results.  It shows;
    ``runs.confirm`` asks."""

    SMALL_RUN = 100  # up to this many payments, every result is shown in a table

    def __init__(
        self,
        out: Output,
        *,
        progress: bool,
        dry_run: bool = False,
    ) -> None:
        self.out = out
        self.dry_run = dry_run
        self.show_progress = progress and out.err.is_terminal
        self.results: list[Result] = []
        self.counts: Counter[str] = Counter()
        self.total = 0
        self._progress: Any = None
        self._task: Any = None

    def validated(self, validation: Validation) -> None:
        for note in validation.notes:  # first: a note may say how the lines are counted
            self._line(f"Note: {note}")
        # Rows invalid in the same way (a config error, a missing column value) are one
        # message with their lines, not one line each.
        same: dict[str, list[int]] = {}
        for problem in validation.problems[:50]:
            same.setdefault(problem.message, []).append(problem.line)
        for message, numbers in same.items():
            where = f"line {numbers[0]}" if len(numbers) == 1 else f"lines {_ranges(numbers)}"
            self.out.message(f"{where}: {message}", style="red")
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

    def waiting(self, message: str) -> None:
        self._line(message)

    def show_plan(self, plan: Plan, *, prompting: bool) -> None:
        table = Sheet(Text("Plan"), [Col("account"), Col("payments", keep=True, right=True)])
        for account, count in sorted(plan.per_account.items()):
            table.add_row(self.out.account_label(account, plan.live[account]), str(count))
        found = Sheet(
            Text(""), [Col("subscription", keep=True), Col("open payments", keep=True, right=True)]
        )
        for sub, n in list(plan.subscriptions.items())[:20]:
            found.add_row(sub, Text(str(n), style="" if n else "yellow"))
        if len(plan.subscriptions) > 20:
            found.note(f"and {len(plan.subscriptions) - 20} more subscription(s)")
        if prompting or not self.out.json_mode:  # --json --yes (cron): stderr stays quiet
            console = self.out.err if self.out.json_mode else None
            self.out.table(table, console)
            self.out.table(found, console)

    def started(self, run_id: str, total: int, resumed: bool) -> None:
        self.total = total
        verb = "Resuming run" if resumed else "Dry run" if self.dry_run else "Run"
        doing = "to check" if self.dry_run else "to process"
        self.out.message(f"{verb} {run_id}: {total} payment(s) {doing}.", style="bold")
        if self.show_progress and total:
            from rich.progress import Progress, ProgressColumn

            line = _ProgressLine(
                self.out.err, "checking" if self.dry_run else "cancelling", self.counts
            )

            class Column(ProgressColumn):
                def render(self, task: Task) -> Text:
                    return line(task)

            self._progress = Progress(Column(), console=self.out.err, transient=False)
            self._task = self._progress.add_task("", total=total)
            self._progress.start()

    def result(self, result: Result) -> None:
        self.counts[result.outcome.value] += 1
        if self.out.json_mode:
            self.out.json_line(result.to_json())
        if self.total <= self.SMALL_RUN:
            self.results.append(result)
        if self._progress is not None:
            self._progress.update(self._task, advance=1)

    def finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def results_table(self, summary: Summary | None = None) -> Sheet:
        """One row per payment; a payment listed in ``summary``'s failures table has
        its message there only (each message once)."""
        listed = set() if summary is None else {(r.account, r.payment_id) for r in summary.failures}
        dry = any(r.outcome is Outcome.WOULD_CANCEL for r in self.results)
        sheet = Sheet(
            Text("Results"),
            [
                Col("account", group=True, detail=""),
                Col("payment id", keep=True, head=True),
                Col("outcome"),
                Col("status", detail=""),
                Col("would release" if dry else "released", keep=True, right=True),
                Col("note", detail=""),
            ],
        )
        for r in self.results:
            status = _status_change(r)
            note = "" if (r.account, r.payment_id) in listed else self._why(r)
            sheet.add_row(
                r.account,
                r.payment_id,
                Text(r.outcome.value, style=_OUTCOME_STYLE[r.outcome]),
                status,
                money(r.released() or r.would_release()),
                "" if note == status else note,
            )
        return sheet

    def summary_table(self, summary: Summary) -> Sheet:
        outcomes = [
            o.value for o in Outcome if any(o.value in c for c in summary.per_account.values())
        ]
        sheet = Sheet(
            Text("Summary of run ") + kept(summary.run_id),
            [Col("account", head=True), *(Col(o, keep=True, right=True) for o in outcomes)],
        )
        if not summary.total:  # no grid of empty columns: one sentence says it
            sheet.empty = f"Summary of run {summary.run_id}: no payments selected; nothing to do."
            return sheet
        for account, counts in sorted(summary.per_account.items()):
            sheet.add_row(account or "(invalid)", *(str(counts.get(o, 0)) for o in outcomes))
        sheet.add_row(
            Text("total", style="bold"), *(str(summary.outcomes.get(o, 0)) for o in outcomes)
        )
        dry = summary.dry_run or bool(summary.outcomes.get(Outcome.WOULD_CANCEL.value))
        if summary.cancelled_amounts or not dry:
            sheet.note(
                "Cancelled amounts:", *(_amounts(summary.cancelled_amounts) or [Text("none")])
            )
        if dry:
            sheet.note(
                "Would release (dry run, nothing sent):",
                *(_amounts(summary.would_release) or [Text("none")]),
            )
        if summary.would_unknown:
            sheet.note(
                f"{summary.would_unknown} would be cancelled with no amount from the provider"
            )
        if summary.unknown_amounts:
            named = [kept(pid) for pid in summary.unknown_ids]
            for item in named[:-1]:
                item.append(",")
            more = summary.unknown_amounts - len(named)
            sheet.note(
                *f"{summary.unknown_amounts} cancelled with no amount from the provider:".split(),
                *named,
                *([f"and {more} more"] if more > 0 else []),
            )
        if summary.remaining:
            sheet.note(f"{summary.remaining} not processed yet")
        if summary.requests or summary.duration_s:
            # (a summary read back from the journal, `runs show`, has no such figures)
            sheet.note(f"{summary.requests} requests in {summary.duration_s:.1f}s")
        if summary.total > self.SMALL_RUN:  # no results table: say where they are
            sheet.note(
                "All results:",
                kept(f"paycancel runs show {summary.run_id}"),
                "or",
                kept("--report PATH"),
            )
        return sheet

    def _why(self, result: Result) -> str:
        """The error message, without the "(payment ID)" that names the payment in logs
        and JSON: its row already does."""
        if result.error is None:
            return ""
        message = result.error.message.removesuffix(f" (payment {result.payment_id})")
        return self.out.redact(message)

    def failures_table(self, summary: Summary) -> Sheet:
        shown = len(summary.failures)
        count = f"{summary.failure_count}"
        if summary.failure_count > shown:
            count += f"; first {shown} shown"
        sheet = Sheet(
            Text(f"Not cancelled ({count})"),
            [
                Col("account", group=True, detail=""),
                Col("payment id", keep=True, head=True),
                Col("outcome"),
                Col("code"),
                Col("why", detail=""),
            ],
        )
        for r in summary.failures:
            sheet.add_row(
                r.account,
                r.payment_id,
                Text(r.outcome.value, style=_OUTCOME_STYLE[r.outcome]),
                (r.error.code or "") if r.error else "",
                self._why(r),
            )
        if summary.failure_count > shown:
            sheet.note(
                f"All {summary.failure_count}:",
                kept(f"paycancel runs show {summary.run_id}"),
                "or",
                kept("--report PATH"),
            )
        return sheet


def _ranges(numbers: list[int]) -> str:
    """``2-5, 8, 10-11``: sorted line numbers as runs."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
