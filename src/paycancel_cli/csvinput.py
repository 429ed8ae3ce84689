"""Streaming CSV input: read, validate and yield payment rows without loading the file.

Rules (SPEC "CSV input"): a header row is expected; column names match ignoring case,
spaces, ``-`` and ``_`` (``Payment ID`` is ``payment_id``); ``payment_id`` (aliases ``id``,
``reference``) or ``subscription_id``; optional ``account``, ``reason``,
``expected_amount``, ``expected_currency``.  A single-column file whose first line is no
column name but a valid payment id for the account given is a plain list of ids without
a header (a note says so).  Account names in rows match ignoring case.  UTF-8 with or
without BOM, CRLF or LF, delimiter ``,`` ``;`` or tab sniffed from the header, blank lines
skipped, values trimmed; UTF-16 and UTF-32 are refused with "save it as UTF-8".  A
problem names the physical line where its record starts, the header being line 1.

What applies to every row is decided once, from the header, before any row is read: a
missing reason (when a cancel may be sent and the file has no reason column) or a
missing account (no account column, no account given) is one error, not one per row.
With ``only_account`` (``--account`` given), a row naming another account is a problem
on its line, never re-routed.

Invariants:
- Memory is bounded by the longest line (at most ``MAX_LINE_BYTES``), never the file:
  lines are read with a length limit, so a 100 MB line is refused, not loaded.
- Validation never touches the network.
- Standard input is spooled to a private temporary file, so it can be validated in a
  first pass and planned in a second, like a named file.
"""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import io
import itertools
import operator
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

from paycancel_cli.errors import InputError, UsageError
from paycancel_cli.models import Money, currency_exponent
from paycancel_cli.providers import adapter_class, validate_id

MAX_LINE_BYTES = 64 * 1024
MAX_PROBLEMS_KEPT = 1000
# Column names after ``_column_key`` (lower case; spaces, "-" and "_" removed).
ID_ALIASES = {"paymentid": "payment_id", "id": "payment_id", "reference": "payment_id",
              "subscriptionid": "subscription_id"}  # fmt: skip
KNOWN = {"account": "account", "reason": "reason", "expectedamount": "expected_amount",
         "expectedcurrency": "expected_currency"}  # fmt: skip
_NOT_IN_COLUMN_NAMES = re.compile(r"[\s_\-]+")


def _column_key(name: str) -> str:
    return _NOT_IN_COLUMN_NAMES.sub("", name.lower())


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    account: str
    provider: str
    payment_id: str | None
    subscription_id: str | None
    reason: str
    expected: Money | None


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str
    account: str | None = None
    payment_id: str | None = None


@dataclass
class Validation:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    duplicate_lines: list[int] = field(default_factory=list)
    per_account: Counter[str] = field(default_factory=Counter)
    kind: str = "payment_id"
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Set when --max-payments was given: whether validation alone could apply it.
    max_payments_checked: bool | None = None

    def add_problem(self, problem: Problem) -> None:
        self.invalid += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    @property
    def counted(self) -> str:
        """What ``valid`` counts: payments, or subscriptions (whose payments are not
        known until the provider lists them)."""
        return "subscriptions" if self.kind == "subscription_id" else "payments"

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": "validation",
            "kind": self.counted,
            "rows": self.rows,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "per_account": dict(sorted(self.per_account.items())),
        }
        if self.max_payments_checked is not None:
            record["max_payments_checked"] = self.max_payments_checked
        return record


class Source:
    """The input, copied first to a private temporary file (standard input or a named
    file alike), so that what is validated, confirmed and planned is one and the same
    snapshot, whatever happens to the original meanwhile."""

    def __init__(self, name: str) -> None:
        self.name = name
        fd, spool = tempfile.mkstemp(prefix="paycancel-input-", suffix=".csv")
        self.path = Path(spool)
        try:
            with os.fdopen(fd, "wb") as out:
                if name == "-":
                    stream = getattr(sys.stdin, "buffer", None)
                    if stream is not None:
                        shutil.copyfileobj(stream, out)
                    else:  # a text-only stdin (embedding, tests)
                        out.write(sys.stdin.read().encode("utf-8"))
                else:
                    with open(name, "rb") as original:
                        shutil.copyfileobj(original, out)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self.close()
            raise InputError(
                f"CSV file {name} does not exist or is not a file. Nothing was sent."
            ) from None
        except OSError as exc:
            self.close()
            raise InputError(
                f"CSV file {name} cannot be read ({exc.strerror}). Nothing was sent."
            ) from None

    @property
    def label(self) -> str:
        return "standard input" if self.name == "-" else self.name

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


class _Guard(io.RawIOBase):
    """A raw byte stream that refuses NUL bytes and over-long lines as it reads, in
    C-speed chunk scans, so the text and csv layers above never hold a huge line."""

    def __init__(self, raw: BinaryIO, label: str) -> None:
        self.raw = raw
        self.label = label
        self.line = 1  # the line the next byte belongs to
        self.carry = 0  # bytes of the current line read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(min(len(buffer), MAX_LINE_BYTES))
        if not data:
            return 0
        nul = data.find(b"\x00")
        if nul != -1:
            line = self.line + data.count(b"\n", 0, nul)
            raise InputError(
                f"{self.label}, line {line}: the line holds a NUL byte; this is a binary file, "
                "not a UTF-8 CSV. Nothing was sent."
            )
        first = data.find(b"\n")
        if (first == -1 and self.carry + len(data) > MAX_LINE_BYTES) or (
            first != -1 and self.carry + first > MAX_LINE_BYTES
        ):
            raise InputError(
                f"{self.label}, line {self.line}: the line is longer than "
                f"{MAX_LINE_BYTES // 1024} KiB; this is not a CSV of payment ids. Nothing was sent."
            )
        if first == -1:
            self.carry += len(data)
        else:
            self.line += data.count(b"\n")
            self.carry = len(data) - data.rfind(b"\n") - 1
        buffer[: len(data)] = data
        return len(data)


def _first_bad_utf8_line(path: Path) -> int:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


_GROUP_SPACES = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?:\D|$))")


def _amount(text: str, currency: str, delimiter: str) -> tuple[Decimal | None, str | None]:
    """An ``expected_amount``: a plain decimal, or, in a file whose delimiter is not a
    comma (a spreadsheet in a comma-decimal locale), a decimal comma with optional
    space-grouped thousands (``258,00``, ``1 099,99``).  A comma that could as well be a
    thousands separator (``1,099``) is refused with both readings."""
    try:
        return Decimal(text), None
    except InvalidOperation:
        pass
    if delimiter == "," or "," not in text:
        return None, None
    plain = _GROUP_SPACES.sub("", text)
    whole, _, fraction = plain.partition(",")
    if "." in plain or "," in fraction or not (whole.isdigit() and fraction.isdigit()):
        return None, (
            f"expected_amount {text!r} is not a decimal number (a decimal comma is read "
            "only without other separators, e.g. 1099,99)"
        )
    if len(fraction) == 3:  # 1,099: a thousands separator, or three decimals?
        return None, (
            f"expected_amount {text!r} is ambiguous: a decimal comma reads it as "
            f"{whole}.{fraction}, a thousands separator as {whole}{fraction}; write it "
            f"with its decimals ({whole}{fraction},00) and no thousands separator"
        )
    return Decimal(f"{whole}.{fraction}"), None


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _refuse_wide_unicode(head: bytes, label: str) -> None:
    """UTF-16 or UTF-32 (a spreadsheet's "Unicode text") is text, not a binary file: say
    how to fix it.  Without a BOM, ASCII in UTF-16 shows as every other byte NUL."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encoding = "UTF-32"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "UTF-16"
    else:
        head = head[: len(head) // 2 * 2]
        even, odd = head[0::2], head[1::2]
        if len(head) < 4 or not ((all(even) and not any(odd)) or (all(odd) and not any(even))):
            return
        encoding = "UTF-16"
    raise InputError(
        f"{label}: the file is {encoding} text; save it as UTF-8 (in a spreadsheet: "
        '"CSV UTF-8") and try again. Nothing was sent.'
    )


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the first line says: where the id is, which columns are known, how wide a
    row is, and the line the data follows (1 after a header, 0 for a plain id list)."""

    id_index: int
    kind: str
    index: dict[str, int]
    width: int
    before: int


class Reader:
    """Parses and validates rows; ``accounts`` maps account name to provider key.

    ``default_account`` fills rows that name none (``--account``, or the only account
    configured); ``only_account`` (``--account`` given) makes a row naming another
    account a problem.  ``need_reason`` is false for dry runs and ``--validate-only``,
    which send no cancel.
    """

    def __init__(
        self,
        source: Source,
        *,
        accounts: Mapping[str, str],
        listable: frozenset[str],
        default_account: str | None,
        default_reason: str | None,
        only_account: str | None = None,
        need_reason: bool = True,
    ) -> None:
        self.source = source
        self.accounts = accounts
        self.listable = listable
        self.default_account = default_account
        self.default_reason = default_reason
        self.only_account = only_account
        self.need_reason = need_reason
        self.delimiter = ","  # sniffed from the header (a decimal comma needs another one)
        # The accounts a row may name: every configured one, or only --account's.
        self._allowed = {
            name: provider
            for name, provider in accounts.items()
            if only_account is None or name == only_account
        }

    def validate(self) -> Validation:
        """Pass one: every row checked, problems and counts collected; no row kept.

        A clean file (the usual case) is checked in batches of C-level calls; at the first
        irregular row (a problem, a blank or ragged row, a duplicate) the file is checked
        again row by row, which names every problem by its line.
        """
        # The pass makes millions of short-lived rows and no reference cycles: the cyclic
        # collector would only rescan them (half the time of a large file).
        collecting = gc.isenabled()
        gc.disable()
        try:
            fast = self._validate_clean()
            return fast if fast is not None else self._validate_rows()
        finally:
            if collecting:
                gc.enable()

    def _validate_clean(self) -> Validation | None:
        result = Validation()
        patterns = {
            name: adapter_class(provider).id_pattern.fullmatch
            for name, provider in self._allowed.items()
        }
        seen: set[int] = set()
        with self._open(result) as (reader, layout):
            index, width = layout.index, layout.width
            if (
                layout.kind != "payment_id"
                or "expected_amount" in index
                or "expected_currency" in index
            ):
                return None
            account_i = index.get("account")
            reason_i = index.get("reason")
            check_reason = self.need_reason and not self.default_reason
            if check_reason and reason_i is None:
                return None
            default = self.default_account or ""
            get_id = operator.itemgetter(layout.id_index)
            get_account = None if account_i is None else operator.itemgetter(account_i)
            get_reason = operator.itemgetter(reason_i or 0) if check_reason else None
            strip = str.strip
            try:
                while batch := list(itertools.islice(reader, 4096)):
                    if set(map(len, batch)) != {width}:
                        return None  # blank or ragged rows
                    ids = list(map(strip, map(get_id, batch)))
                    if get_reason is not None and not all(map(strip, map(get_reason, batch))):
                        return None
                    if get_account is None:
                        accounts: list[str] | None = None
                        names = {default}
                    else:
                        accounts = [a or default for a in map(strip, map(get_account, batch))]
                        names = set(accounts)
                        if not names.issubset(patterns):
                            # Names match ignoring case: each spelling is mapped once.
                            spelled = {name: name.lower() for name in names}
                            accounts = list(map(spelled.__getitem__, accounts))
                            names = set(spelled.values())
                    for name in names:
                        match = patterns.get(name)
                        if match is None:
                            return None  # unknown, missing, or not --account's
                        group = (
                            ids
                            if len(names) == 1
                            else [
                                pid
                                for pid, acc in zip(ids, accounts or (), strict=True)
                                if acc == name
                            ]
                        )
                        if not all(map(match, group)):
                            return None
                    before = len(seen)
                    if accounts is None:
                        # One account for the whole file: the id alone is the key (the
                        # same choice on every batch, so duplicates across batches show).
                        seen.update(map(hash, ids))
                        result.per_account[default] += len(batch)
                    elif len(names) == 1:
                        name = next(iter(names))
                        seen.update(map(hash, zip(itertools.repeat(name), ids)))
                        result.per_account[name] += len(batch)
                    else:
                        seen.update(map(hash, zip(accounts or (), ids, strict=True)))
                        result.per_account.update(accounts or ())
                    if len(seen) - before != len(batch):
                        return None  # a duplicate: the row-by-row pass names its line
                    result.rows += len(batch)
            except csv.Error:
                return None
        result.valid = result.rows
        return result

    def _validate_rows(self) -> Validation:
        """Row by row, naming each problem and duplicate by its line.  The common row (a
        valid id of a known account, no amount guard) still takes a short path; anything
        else goes through ``_row`` for its message."""
        result = Validation()
        seen: set[int] = set()
        per_account: Counter[str] = result.per_account
        label = f"CSV {self.source.label}"
        patterns = {
            name: adapter_class(provider).id_pattern for name, provider in self._allowed.items()
        }
        with self._open(result) as (reader, layout):
            id_index, id_kind, index, width = (
                layout.id_index,
                layout.kind,
                layout.index,
                layout.width,
            )
            account_i = index.get("account")
            reason_i = index.get("reason")
            needs_reason = self.need_reason and not self.default_reason
            simple = (
                id_kind == "payment_id"
                and "expected_amount" not in index
                and "expected_currency" not in index
                and (not needs_reason or reason_i is not None)
            )
            default = self.default_account or ""
            rows = valid = duplicates = 0
            seen_add = seen.add
            fullmatch = {a: p.fullmatch for a, p in patterns.items()}.get
            previous = layout.before  # the physical line the last record ended on
            try:
                for record in reader:
                    start = previous + 1
                    previous = reader.line_num + layout.before
                    if not record:
                        continue
                    if simple and len(record) == width:
                        pid = record[id_index].strip()
                        if account_i is None:
                            account = default
                        else:
                            account = record[account_i].strip() or default
                        # Another spelling, account or a missing reason: ``_row`` says.
                        match = fullmatch(account)
                        if (
                            match is not None
                            and match(pid)
                            and not (needs_reason and not record[reason_i].strip())
                        ):
                            rows += 1
                            key = hash((account, pid))
                            if key in seen:
                                duplicates += 1
                                if len(result.duplicate_lines) < 20:
                                    result.duplicate_lines.append(start)
                            else:
                                seen_add(key)
                                valid += 1
                                per_account[account] += 1
                            continue
                    if all(not value.strip() for value in record):
                        continue
                    item = self._row(record, start, id_index, id_kind, index, width)
                    if isinstance(item, Problem):
                        result.add_problem(item)
                        continue
                    rows += 1
                    key = hash((item.account, item.payment_id or item.subscription_id))
                    if key in seen:
                        duplicates += 1
                        if len(result.duplicate_lines) < 20:
                            result.duplicate_lines.append(item.line)
                        continue
                    seen_add(key)
                    valid += 1
                    per_account[item.account] += 1
            except csv.Error as exc:
                raise InputError(
                    f"{label}, line {previous + 1}: malformed CSV ({exc}). Nothing was sent."
                ) from None
            # Every data row read: valid, duplicate or invalid alike.
            result.rows = rows + result.invalid
            result.valid, result.duplicates = valid, duplicates
        return result

    def rows(self) -> Iterator[Row | Problem]:
        """Pass two: every row in file order (duplicates are left to the caller)."""
        yield from self._records(Validation())

    @contextmanager
    def _open(self, result: Validation) -> Iterator[tuple[Any, _Layout]]:
        """The csv reader over the data rows, and what the first line says."""
        label = f"CSV {self.source.label}"
        with open(self.source.path, "rb") as raw:
            _refuse_wide_unicode(raw.read(64), label)
            raw.seek(0)
            text = io.TextIOWrapper(
                io.BufferedReader(_Guard(raw, label), MAX_LINE_BYTES),
                encoding="utf-8-sig",
                newline="",
            )
            try:
                first = text.readline()
                if not first.strip():
                    raise InputError(
                        f"{label}, line 1: the file is empty; a header row is required (e.g. "
                        "payment_id,account). Nothing was sent."
                    )
                delimiter = self.delimiter = _delimiter(first)
                header = next(csv.reader([first], delimiter=delimiter), [])
                lines: Iterator[str] = text
                if self._is_plain_id_list(header):
                    layout = _Layout(0, "payment_id", {}, 1, 0)
                    lines = itertools.chain([first], text)
                    result.notes.append(
                        f"{self.source.label} has no header row: its first line "
                        f"{header[0].strip()!r} is a payment id, so it is read as a "
                        f"list of payment ids for account {self.default_account}."
                    )
                else:
                    id_index, id_kind, index = self._header(header, label, result)
                    layout = _Layout(id_index, id_kind, index, len(header), 1)
                result.kind = layout.kind
                self._check_every_row(label, layout.index)
                yield csv.reader(lines, delimiter=delimiter, strict=True), layout
            except UnicodeDecodeError:
                line = _first_bad_utf8_line(self.source.path)
                raise InputError(
                    f"{label}, line {line}: not UTF-8 text; save the file as UTF-8 CSV. "
                    "Nothing was sent."
                ) from None
            except csv.Error as exc:
                raise InputError(f"{label}: malformed CSV ({exc}). Nothing was sent.") from None

    def _is_plain_id_list(self, header: list[str]) -> bool:
        """A single column whose first line is no column name but a valid payment id for
        the account given."""
        if len(header) != 1 or self.default_account is None:
            return False
        value = header[0].strip()
        key = _column_key(value)
        provider = self.accounts.get(self.default_account)
        if not value or key in ID_ALIASES or key in KNOWN or provider is None:
            return False
        try:
            validate_id(provider, value)
        except InputError:
            return False
        return True

    def _check_every_row(self, label: str, index: dict[str, int]) -> None:
        """What the header alone decides for every row: one error, not one per row."""
        if "account" not in index and self.default_account is None:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise UsageError(
                f"{label} has no account column and no --account was given, and several "
                f"accounts are configured ({known}): pass --account NAME for the whole file, "
                "or add an account column. Nothing was sent."
            )
        if self.need_reason and not self.default_reason and "reason" not in index:
            raise UsageError(
                f"--reason is required: {label} has no reason column, and every cancel "
                "records why (it goes to the provider where the API takes one, and to the "
                "journal). Pass --reason TEXT (a reason column overrides it per row); "
                "--dry-run and --validate-only need none. Nothing was sent."
            )

    def _records(self, result: Validation) -> Iterator[Row | Problem]:
        label = f"CSV {self.source.label}"
        with self._open(result) as (reader, layout):
            previous = layout.before
            while True:
                start = previous + 1
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise InputError(
                        f"{label}, line {start}: malformed CSV ({exc}). Nothing was sent."
                    ) from None
                previous = reader.line_num + layout.before
                if not record or all(not value.strip() for value in record):
                    continue
                yield self._row(
                    record, start, layout.id_index, layout.kind, layout.index, layout.width
                )

    def _header(
        self, names: list[str], label: str, result: Validation
    ) -> tuple[int, str, dict[str, int]]:
        shown = [name.strip() for name in names]
        keys = [_column_key(name) for name in names]
        ids = [(i, ID_ALIASES[k]) for i, k in enumerate(keys) if k in ID_ALIASES]
        if not ids:
            hint = ""
            if len(shown) == 1 and shown[0]:
                if self.default_account is None:
                    hint = (
                        " A plain list of payment ids without a header is read as one when "
                        "--account says whose ids they are."
                    )
                else:
                    hint = (
                        f" Nor is {shown[0]!r} a payment id for account "
                        f"{self.default_account!r}, so the file is not read as a plain list "
                        "of ids."
                    )
            raise InputError(
                f"{label}, line 1: no payment_id column (aliases id, reference) or "
                f"subscription_id column; the header has: {', '.join(shown) or 'nothing'}."
                f"{hint} Nothing was sent."
            )
        if len(ids) > 1:
            raise InputError(
                f"{label}, line 1: more than one id column "
                f"({', '.join(shown[i] for i, _ in ids)}); keep exactly one. Nothing was sent."
            )
        index: dict[str, int] = {}
        for i, (key, name) in enumerate(zip(keys, shown, strict=True)):
            column = KNOWN.get(key)
            if column is not None:
                if column in index:
                    raise InputError(
                        f"{label}, line 1: column {column!r} appears twice. Nothing was sent."
                    )
                index[column] = i
            elif name and key not in ID_ALIASES:
                result.ignored_columns.append(name)
        return ids[0][0], ids[0][1], index

    def _row(
        self,
        record: list[str],
        line: int,
        id_index: int,
        id_kind: str,
        index: dict[str, int],
        width: int,
    ) -> Row | Problem:
        while len(record) > width and not record[-1].strip():
            record.pop()
        too_wide = len(record) > width

        def get(name: str) -> str:
            i = index.get(name)
            return record[i].strip() if i is not None and i < len(record) else ""

        value = record[id_index].strip() if id_index < len(record) else ""
        named = get("account")
        account = named.lower() or self.default_account  # account names ignore case

        def bad(message: str) -> Problem:
            return Problem(line, message, account or None, value or None)

        if too_wide:
            return bad(f"{len(record)} fields, but the header has {width}")
        if not value:
            return bad(f"empty {id_kind}")
        if not account:
            return bad("no account: add an account column or pass --account")
        if self.only_account is not None and account != self.only_account:
            return bad(
                f"the row names account {named!r}, but --account {self.only_account} was "
                "given; fix the row, or leave out --account to use the file's accounts"
            )
        provider = self.accounts.get(account)
        if provider is None:
            known = ", ".join(sorted(self.accounts)) or "none"
            return bad(f"unknown account {named!r} (configured: {known})")
        if id_kind == "subscription_id" and provider not in self.listable:
            adapter: Any = adapter_class(provider)
            why = getattr(adapter, "no_list_reason", "the provider has no list API")
            ids = getattr(adapter, "list_ids", "payment ids")
            return Problem(
                line,
                f"account {account!r} cannot list a subscription's payments ({why}); "
                f"give a CSV of {ids} instead",
                account,
            )
        try:
            validate_id(provider, value)
        except InputError as exc:
            return bad(exc.message.removesuffix(" Nothing was sent; check the id."))
        reason = get("reason") or self.default_reason
        if not reason:
            if self.need_reason:
                return bad("no reason: pass --reason or fill the reason column")
            reason = ""  # a dry run or --validate-only: nothing is sent
        expected = None
        amount, currency = get("expected_amount"), get("expected_currency")
        if amount or currency:
            if not (amount and currency):
                return bad("expected_amount and expected_currency go together")
            value_dec, problem = _amount(amount, currency, self.delimiter)
            if problem is not None or value_dec is None:
                return bad(problem or f"expected_amount {amount!r} is not a decimal number")
            if not value_dec.is_finite() or value_dec < 0 or value_dec.adjusted() > 15:
                return bad(f"expected_amount {amount!r} is not a plausible positive amount")
            if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
                return bad(f"expected_currency {currency!r} is not an ISO 4217 code")
            places = currency_exponent(currency)
            exponent = value_dec.as_tuple().exponent
            if isinstance(exponent, int) and -exponent > places:
                return bad(
                    f"expected_amount {amount!r} has more decimals than {currency.upper()} "
                    f"has ({places})"
                )
            expected = Money(value_dec, currency.upper())
        return Row(
            line=line,
            account=account,
            provider=provider,
            payment_id=value if id_kind == "payment_id" else None,
            subscription_id=value if id_kind == "subscription_id" else None,
            reason=reason,
            expected=expected,
        )
