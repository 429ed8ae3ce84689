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

from paycancel_cli.errors import InputError
from paycancel_cli.models import Money, currency_exponent
from paycancel_cli.providers import adapter_class, validate_id
from paycancel_cli.refusals import Refused, RefusedInput, Wrong

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

    def count(self, key: tuple[str, str], line: int, seen: set[int]) -> None:
        """A data row that passed every rule, as (account, id): the first of its key is
        valid, a later one a duplicate (``seen`` holds the keys' hashes)."""
        self.rows += 1
        digest = hash(key)
        if digest in seen:
            self.duplicates += 1
            if len(self.duplicate_lines) < 20:
                self.duplicate_lines.append(line)
            return
        seen.add(digest)
        self.valid += 1
        self.per_account[key[0]] += 1

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


def _expected(amount: str, currency: str, delimiter: str) -> Money | str | None:
    """A row's amount guard: None without one, the Money it names, or what is wrong."""
    if not (amount or currency):
        return None
    if not (amount and currency):
        return "expected_amount and expected_currency go together"
    value, problem = _amount(amount, currency, delimiter)
    if problem is not None or value is None:
        return problem or f"expected_amount {amount!r} is not a decimal number"
    if not value.is_finite() or value < 0 or value.adjusted() > 15:
        return f"expected_amount {amount!r} is not a plausible positive amount"
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        return f"expected_currency {currency!r} is not an ISO 4217 code"
    places = currency_exponent(currency)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return (
            f"expected_amount {amount!r} has more decimals than {currency.upper()} has ({places})"
        )
    return Money(value, currency.upper())


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

    def cell(self, record: list[str], column: str) -> str:
        """The trimmed value of a known column, "" when the file or the row has none."""
        i = self.index.get(column)
        return record[i].strip() if i is not None and i < len(record) else ""

    @property
    def quick(self) -> bool:
        """Whether the common row can take ``_Quick``'s short path: payment ids, no
        amount guard."""
        index = self.index
        return (
            self.kind == "payment_id"
            and "expected_amount" not in index
            and "expected_currency" not in index
        )


def _not_quick(record: list[str]) -> None:
    """The short path of a file whose rows all need ``Reader._row``."""
    return None


class _Quick:
    """The common row checked in a few C-level calls instead of ``Reader._row``: a row
    as wide as the header, a valid payment id of an account a row may name, spelled as
    configured (or the default account), and a reason where one is needed.  A row these
    checks do not accept goes to ``Reader._row``, which states every rule and says what
    is wrong; so they only ever accept what ``_row`` accepts.  ``key`` checks one row,
    ``count`` a batch."""

    __slots__ = ("default", "get_account", "get_id", "get_reason", "patterns", "width")

    def __init__(self, reader: Reader, layout: _Layout) -> None:
        index = layout.index
        self.width = layout.width
        self.default = reader.default_account or ""
        self.patterns = {
            name: adapter_class(provider).id_pattern.fullmatch
            for name, provider in reader._allowed.items()
        }
        self.get_id = operator.itemgetter(layout.id_index)
        account_i = index.get("account")
        self.get_account = None if account_i is None else operator.itemgetter(account_i)
        # The header was checked (``Reader._check_every_row``): a needed reason has its
        # column.
        reason_i = index.get("reason")
        needed = reader.need_reason and not reader.default_reason and reason_i is not None
        self.get_reason = operator.itemgetter(reason_i) if needed else None

    def key(self, record: list[str]) -> tuple[str, str] | None:
        """(account, payment id) of a row that passes, else None."""
        if len(record) != self.width:
            return None
        pid = self.get_id(record).strip()
        account = self.default
        if self.get_account is not None:
            account = self.get_account(record).strip() or account
        match = self.patterns.get(account)
        if match is None or not match(pid):
            return None  # another spelling, another account: ``_row`` says
        if self.get_reason is not None and not self.get_reason(record).strip():
            return None
        return account, pid

    def count(self, batch: list[list[str]], seen: set[int], per_account: Counter[str]) -> bool:
        """The same checks over a batch: True when every row passes and none repeats a
        key in ``seen`` (the batch then counted), False at the first irregular row."""
        if set(map(len, batch)) != {self.width}:
            return False  # blank or ragged rows
        strip = str.strip
        ids = list(map(strip, map(self.get_id, batch)))
        if self.get_reason is not None and not all(map(strip, map(self.get_reason, batch))):
            return False
        accounts, names = self._accounts(batch)
        if not self._match(ids, accounts, names):
            return False
        before = len(seen)
        if accounts is None:
            # One account for the whole file: the id alone is the key (the same choice on
            # every batch, so duplicates across batches show).
            seen.update(map(hash, ids))
            per_account[self.default] += len(ids)
        elif len(names) == 1:
            name = next(iter(names))
            seen.update(map(hash, zip(itertools.repeat(name), ids)))
            per_account[name] += len(ids)
        else:
            seen.update(map(hash, zip(accounts, ids, strict=True)))
            per_account.update(accounts)
        return len(seen) - before == len(batch)  # else a duplicate: ``_row`` names its line

    def _accounts(self, batch: list[list[str]]) -> tuple[list[str] | None, set[str]]:
        """Each row's account (None: the default for every row) and the names used."""
        if self.get_account is None:
            return None, {self.default}
        default = self.default
        accounts = [a or default for a in map(str.strip, map(self.get_account, batch))]
        names = set(accounts)
        if not names.issubset(self.patterns):
            # Names match ignoring case: each spelling is mapped once.
            spelled = {name: name.lower() for name in names}
            accounts = list(map(spelled.__getitem__, accounts))
            names = set(spelled.values())
        return accounts, names

    def _match(self, ids: list[str], accounts: list[str] | None, names: set[str]) -> bool:
        """Whether every id is valid for its row's account."""
        for name in names:
            match = self.patterns.get(name)
            if match is None:
                return False  # unknown, missing, or not --account's
            group = (
                ids
                if len(names) == 1
                else [pid for pid, acc in zip(ids, accounts or (), strict=True) if acc == name]
            )
            if not all(map(match, group)):
                return False
        return True


class Reader:
    """Parses and validates rows; ``accounts`` maps account name to provider key.

    ``default_account`` fills rows that name none (``--account``, or the only account
    configured); ``only_account`` (``--account`` given) makes a row naming another
    account a problem.  ``need_reason`` is false for dry runs and ``--validate-only``,
    which send no cancel.

    The rules: what the header decides for every row, ``_check_every_row``; each row,
    ``_row`` (``_Quick`` is its short path for the common row).
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
        """A clean file, in batches (``_Quick.count``); None at the first irregular row."""
        result = Validation()
        seen: set[int] = set()
        with self._open(result) as (reader, layout):
            if not layout.quick:
                return None
            quick = _Quick(self, layout)
            try:
                while batch := list(itertools.islice(reader, 4096)):
                    if not quick.count(batch, seen, result.per_account):
                        return None
                    result.rows += len(batch)
            except csv.Error:
                return None
        result.valid = result.rows
        return result

    def _validate_rows(self) -> Validation:
        """Row by row, naming each problem and duplicate by its line.  The common row
        takes ``_Quick``'s short path; anything else goes through ``_row``."""
        result = Validation()
        seen: set[int] = set()
        label = f"CSV {self.source.label}"
        with self._open(result) as (reader, layout):
            quick = _Quick(self, layout).key if layout.quick else _not_quick
            previous = layout.before  # the physical line the last record ended on
            try:
                for record in reader:
                    start = previous + 1
                    previous = reader.line_num + layout.before
                    if not record:
                        continue
                    key = quick(record)
                    if key is None:
                        if all(not value.strip() for value in record):
                            continue
                        item = self._row(record, start, layout)
                        if isinstance(item, Problem):
                            result.add_problem(item)
                            continue
                        key = (item.account, item.payment_id or item.subscription_id or "")
                    result.count(key, start, seen)
            except csv.Error as exc:
                raise InputError(
                    f"{label}, line {previous + 1}: malformed CSV ({exc}). Nothing was sent."
                ) from None
        # Every data row read: valid, duplicate or invalid alike.
        result.rows += result.invalid
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
            raise Refused(Wrong.CSV_NO_ACCOUNT, label=label, known=sorted(self.accounts))
        if self.need_reason and not self.default_reason and "reason" not in index:
            raise Refused(Wrong.CSV_NO_REASON, label=label)

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
                yield self._row(record, start, layout)

    def _header(
        self, names: list[str], label: str, result: Validation
    ) -> tuple[int, str, dict[str, int]]:
        shown = [name.strip() for name in names]
        keys = [_column_key(name) for name in names]
        ids = [(i, ID_ALIASES[k]) for i, k in enumerate(keys) if k in ID_ALIASES]
        if not ids:
            plain = None  # why a one-column file is not read as a plain list of ids
            if len(shown) == 1 and shown[0]:
                plain = "needs_account" if self.default_account is None else "not_an_id"
            raise RefusedInput(
                Wrong.NO_ID_COLUMN,
                label=label,
                header=shown,
                plain=plain,
                account=self.default_account,
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

    def _row(self, record: list[str], line: int, layout: _Layout) -> Row | Problem:
        """One data row against every rule: the row, or its first problem."""
        width = layout.width
        while len(record) > width and not record[-1].strip():
            record.pop()
        value = record[layout.id_index].strip() if layout.id_index < len(record) else ""
        named = layout.cell(record, "account")
        account = named.lower() or self.default_account  # account names ignore case

        def bad(message: str) -> Problem:
            return Problem(line, message, account or None, value or None)

        if len(record) > width:
            return bad(f"{len(record)} fields, but the header has {width}")
        if not value:
            return bad(f"empty {layout.kind}")
        if not account:
            return bad("no account: add an account column or pass --account")
        problem = self._account_problem(account, named)
        if problem is not None:
            return bad(problem)
        provider = self.accounts[account]
        if layout.kind == "subscription_id" and provider not in self.listable:
            return Problem(line, _unlistable(account, provider), account)
        try:
            validate_id(provider, value)
        except InputError as exc:
            return bad(exc.message.removesuffix(" Nothing was sent; check the id."))
        reason = layout.cell(record, "reason") or self.default_reason or ""
        if not reason and self.need_reason:
            return bad("no reason: pass --reason or fill the reason column")
        expected = _expected(
            layout.cell(record, "expected_amount"),
            layout.cell(record, "expected_currency"),
            self.delimiter,
        )
        if isinstance(expected, str):
            return bad(expected)
        return Row(
            line=line,
            account=account,
            provider=provider,
            payment_id=value if layout.kind == "payment_id" else None,
            subscription_id=value if layout.kind == "subscription_id" else None,
            reason=reason,  # "" for a dry run or --validate-only: nothing is sent
            expected=expected,
        )

    def _account_problem(self, account: str, named: str) -> str | None:
        """What is wrong with the account a row names (``account``: lower case), if
        anything."""
        if self.only_account is not None and account != self.only_account:
            return (
                f"the row names account {named!r}, but --account {self.only_account} was "
                "given; fix the row, or leave out --account to use the file's accounts"
            )
        if account not in self.accounts:
            known = ", ".join(sorted(self.accounts)) or "none"
            return f"unknown account {named!r} (configured: {known})"
        return None


def _unlistable(account: str, provider: str) -> str:
    adapter: Any = adapter_class(provider)
    why = getattr(adapter, "no_list_reason", "the provider has no list API")
    ids = getattr(adapter, "list_ids", "payment ids")
    return (
        f"account {account!r} cannot list a subscription's payments ({why}); "
        f"give a CSV of {ids} instead"
    )
