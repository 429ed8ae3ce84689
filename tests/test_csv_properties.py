"""Property-based tests of the CSV reader and the id checks (hypothesis)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paycancel_cli.csvinput import Reader, Row, Source
from paycancel_cli.errors import InputError
from paycancel_cli.providers import ADAPTERS, validate_id
from paycancel_cli.providers.base import segment

ACCOUNTS = {"hedge": "hedgepayments", "fp": "flexportal"}
FORBIDDEN = ["/", "?", "#", "%", " ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "\\", ".."]

hedge_ids = st.from_regex(r"pay_[A-Za-z0-9]{1,20}", fullmatch=True)


def reader_for(data: bytes) -> Reader:
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=".csv")  # noqa: SIM115
    handle.write(data)
    handle.close()
    return Reader(
        Source(handle.name),
        accounts=ACCOUNTS,
        listable=frozenset({"flexportal"}),
        default_account="hedge",
        default_reason="r",
    )


@given(
    base=st.text(min_size=0, max_size=20),
    bad=st.sampled_from(FORBIDDEN),
    where=st.integers(min_value=0, max_value=20),
    provider=st.sampled_from(list(ADAPTERS)),
)
def test_ids_with_forbidden_characters_are_always_refused(
    base: str, bad: str, where: int, provider: str
) -> None:
    payment_id = base[:where] + bad + base[where:]
    with pytest.raises(InputError):
        validate_id(provider, payment_id)


@given(st.text(max_size=40), st.sampled_from(list(ADAPTERS)))
def test_an_accepted_id_stays_one_path_segment(payment_id: str, provider: str) -> None:
    try:
        validate_id(provider, payment_id)
    except InputError:
        return
    encoded = segment(payment_id)
    assert "/" not in encoded and "?" not in encoded and "#" not in encoded
    assert encoded not in ("", ".", "..")


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(
    ids=st.lists(hedge_ids, min_size=0, max_size=30),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    header=st.sampled_from(["payment_id", "ID", " Reference ", "Payment_Id"]),
    blanks=st.lists(st.integers(min_value=0, max_value=30), max_size=5),
    pad=st.booleans(),
)
def test_reader_round_trips_what_a_csv_writer_wrote(
    ids: list[str],
    delimiter: str,
    newline: str,
    bom: bool,
    header: str,
    blanks: list[int],
    pad: bool,
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow([header, "account"])
    expected_lines = []
    line = 1
    for i, pid in enumerate(ids):
        if i in blanks:
            out.write(newline)
            line += 1
        writer.writerow([f"  {pid} " if pad else pid, "hedge"])
        line += 1
        expected_lines.append(line)
    data = (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")
    reader = reader_for(data)
    try:
        validation = reader.validate()
        rows = [r for r in reader.rows() if isinstance(r, Row)]
    finally:
        Path(reader.source.path).unlink()
    assert validation.invalid == 0
    assert validation.rows == len(ids)
    assert validation.valid == len(set(ids))
    assert validation.duplicates == len(ids) - len(set(ids))
    assert [r.payment_id for r in rows] == ids
    assert [r.line for r in rows] == expected_lines
    assert all(r.account == "hedge" and r.provider == "hedgepayments" for r in rows)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_input_errors_or_problems_never_crashes(data: bytes) -> None:
    reader = reader_for(b"payment_id,account\n" + data)
    try:
        validation = reader.validate()
    except InputError as exc:
        assert "line " in exc.message and "Nothing was sent" in exc.message
        return
    finally:
        Path(reader.source.path).unlink()
    for problem in validation.problems:
        assert problem.line >= 2
    assert validation.rows == validation.valid + validation.duplicates + validation.invalid


@settings(max_examples=100)
@given(st.lists(st.sampled_from(["fp", "hedge", "nope", ""]), min_size=1, max_size=10))
def test_every_invalid_row_is_named_by_its_line(accounts: list[str]) -> None:
    text = "payment_id,account\n" + "".join(
        f"{'pay_x' + str(i) if a in ('hedge', '') else 'fpay_' + str(i)},{a}\n"
        for i, a in enumerate(accounts)
    )
    reader = reader_for(text.encode())
    try:
        validation = reader.validate()
    finally:
        Path(reader.source.path).unlink()
    bad = [i + 2 for i, a in enumerate(accounts) if a == "nope"]
    assert [p.line for p in validation.problems] == bad
    assert validation.valid == len(accounts) - len(bad)


@given(
    base=st.text(max_size=20),
    bad=st.sampled_from(FORBIDDEN),
    where=st.integers(min_value=0, max_value=20),
    provider=st.sampled_from(list(ADAPTERS)),
)
def test_no_provider_pattern_admits_a_forbidden_character(
    base: str, bad: str, where: int, provider: str
) -> None:
    from paycancel_cli.providers import adapter_class

    assert not adapter_class(provider).id_pattern.fullmatch(base[:where] + bad + base[where:])


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(hedge_ids, st.sampled_from(["fpay_ok", "bad/id", "", "pay_dup"])),
            st.sampled_from(["hedge", "fp", "", "nope"]),
        ),
        max_size=25,
    ),
    blank_at=st.integers(min_value=-1, max_value=25),
)
def test_batch_and_row_by_row_validation_agree(rows: list[tuple[str, str]], blank_at: int) -> None:
    lines = ["payment_id,account"] + [f"{pid},{acc}" for pid, acc in rows]
    if 0 <= blank_at < len(lines):
        lines.insert(blank_at + 1, "")
    reader = reader_for(("\n".join(lines) + "\n").encode())
    try:
        fast = reader.validate()
        slow = reader._validate_rows()
    finally:
        Path(reader.source.path).unlink()
    assert (fast.rows, fast.valid, fast.invalid, fast.duplicates) == (
        slow.rows,
        slow.valid,
        slow.invalid,
        slow.duplicates,
    )
    assert fast.per_account == slow.per_account
    assert [p.line for p in fast.problems] == [p.line for p in slow.problems]


@st.composite
def spelled(draw: st.DrawFn, name: str) -> str:
    """``name`` as an operator's spreadsheet might spell it: any case, words joined by
    nothing, spaces, ``-`` or ``_``, padded."""
    text = draw(st.sampled_from(["", " ", "-", "_", " - ", "__"])).join(name.split("_"))
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    pad = draw(st.sampled_from(["", " "]))
    return pad + "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True)) + pad


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(
    id_column=st.one_of(spelled("payment_id"), spelled("id"), spelled("reference")),
    account_column=spelled("account"),
    reason_column=spelled("reason"),
    ids=st.lists(hedge_ids, min_size=1, max_size=10, unique=True),
    account_cells=st.lists(st.sampled_from(["hedge", "HEDGE", "Hedge", "hEdGe", ""]), min_size=10),
)
def test_column_and_account_spellings_read_as_the_canonical_file(
    id_column: str,
    account_column: str,
    reason_column: str,
    ids: list[str],
    account_cells: list[str],
) -> None:
    text = f"{id_column},{account_column},{reason_column}\n" + "".join(
        f"{pid},{acc},why\n" for pid, acc in zip(ids, account_cells, strict=False)
    )
    reader = reader_for(text.encode())
    try:
        validation = reader.validate()
        rows = [r for r in reader.rows() if isinstance(r, Row)]
    finally:
        Path(reader.source.path).unlink()
    assert (validation.valid, validation.invalid, validation.kind) == (len(ids), 0, "payment_id")
    assert validation.ignored_columns == []
    assert [(r.payment_id, r.account, r.reason, r.line) for r in rows] == [
        (pid, "hedge", "why", n) for n, pid in enumerate(ids, 2)
    ]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(hedge_ids, st.sampled_from(["fpay_ok", "pay_dup", "bad/id"])),
            st.sampled_from(["hedge", "HEDGE", "Hedge", "fp", "FP", "", "nope"]),
        ),
        max_size=25,
    ),
    only=st.sampled_from([None, "hedge", "fp"]),
    sends=st.booleans(),
)
def test_account_case_and_only_account_agree_on_every_path(
    rows: list[tuple[str, str]], only: str | None, sends: bool
) -> None:
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=".csv")  # noqa: SIM115
    handle.write(("payment_id,account\n" + "".join(f"{p},{a}\n" for p, a in rows)).encode())
    handle.close()
    default = only or "hedge"
    reader = Reader(
        Source(handle.name),
        accounts=ACCOUNTS,
        listable=frozenset({"flexportal"}),
        default_account=default,
        default_reason="r" if sends else None,
        only_account=only,
        need_reason=sends,
    )
    try:
        fast = reader.validate()
        slow = reader._validate_rows()
        planned = list(reader.rows())
    finally:
        Path(reader.source.path).unlink()
    # the model: names ignore case, a blank cell is the default, --account admits no other
    bad_lines, keys = [], []
    for line, (pid, acc) in enumerate(rows, 2):
        account = acc.lower() or default
        provider = ACCOUNTS.get(account)
        ok = provider is not None and (only is None or account == only)
        if ok:
            try:
                validate_id(str(provider), pid)
            except InputError:
                ok = False
        if ok:
            keys.append((account, pid))
        else:
            bad_lines.append(line)
    for result in (fast, slow):
        assert [p.line for p in result.problems] == bad_lines
        assert (result.valid, result.duplicates) == (len(set(keys)), len(keys) - len(set(keys)))
        assert result.per_account == Counter(a for a, _ in dict.fromkeys(keys))
    assert [(r.account, r.payment_id) for r in planned if isinstance(r, Row)] == keys


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=100)
@given(
    ids=st.lists(hedge_ids, min_size=1, max_size=20),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    blanks=st.lists(st.integers(min_value=1, max_value=20), max_size=4),
)
def test_a_plain_id_list_is_read_with_physical_line_numbers(
    ids: list[str], newline: str, bom: bool, blanks: list[int]
) -> None:
    lines, expected = [], []
    for i, pid in enumerate(ids):
        if i in blanks:
            lines.append("")
        lines.append(pid)
        expected.append((pid, len(lines)))
    data = (("\ufeff" if bom else "") + newline.join(lines) + newline).encode()
    reader = reader_for(data)
    try:
        validation = reader.validate()
        rows = [r for r in reader.rows() if isinstance(r, Row)]
    finally:
        Path(reader.source.path).unlink()
    assert validation.invalid == 0 and validation.rows == len(ids)
    assert len(validation.notes) == 1 and "no header row" in validation.notes[0]
    assert [(r.payment_id, r.line) for r in rows] == expected


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda t: t.encode("utf-8")),
        st.text(max_size=100).map(lambda t: t.encode("utf-16")),
    )
)
def test_any_first_line_gives_an_input_error_or_rows_never_a_crash(data: bytes) -> None:
    reader = reader_for(data)
    try:
        validation = reader.validate()
        planned = list(reader.rows())
    except InputError as exc:
        assert "Nothing was sent" in exc.message
        return
    finally:
        Path(reader.source.path).unlink()
    first = 1 if validation.notes else 2  # a plain id list starts on line 1
    assert all(p.line >= first for p in validation.problems)
    assert len([r for r in planned if isinstance(r, Row)]) == validation.rows


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    record=st.lists(
        st.sampled_from(
            ["pay_a1", " pay_b2 ", "fpay_ok", "bad/id", "", " ", "hedge", "HEDGE", "fp", "nope"]
        ),
        min_size=1,
        max_size=4,
    ),
    need_reason=st.booleans(),
    only=st.sampled_from([None, "hedge", "fp"]),
)
def test_the_short_path_accepts_only_what_the_row_rules_accept(
    record: list[str], need_reason: bool, only: str | None
) -> None:
    """The common row's short path (``_Quick``) and ``Reader._row``, which states every
    rule, agree: what the short path accepts, ``_row`` accepts as the same row."""
    from paycancel_cli.csvinput import Validation, _Quick

    handle = tempfile.NamedTemporaryFile(delete=False, suffix=".csv")  # noqa: SIM115
    handle.write(b"payment_id,account,reason\n")
    handle.close()
    reader = Reader(
        Source(handle.name),
        accounts=ACCOUNTS,
        listable=frozenset({"flexportal"}),
        default_account=only or "hedge",
        default_reason=None,
        only_account=only,
        need_reason=need_reason,
    )
    try:
        with reader._open(Validation()) as (_, layout):
            key = _Quick(reader, layout).key(list(record))
            row = reader._row(list(record), 2, layout)
    finally:
        Path(reader.source.path).unlink()
        Path(handle.name).unlink()
    if key is not None:
        assert isinstance(row, Row) and (row.account, row.payment_id) == key
