"""The audit trail: a journal made by real CLI runs over the sandbox, tampered with in
every way a row can be (edited, inserted, deleted in the middle, deleted at the end,
the whole chain rebuilt), verified; exports in both formats against a golden file;
two runs writing one journal at once; no secret in any event."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.audit import EXPORT_FIELDS, verify
from paycancel_cli.journal import GENESIS, Journal, NewEvent, canonical, event_hash
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import SENTINEL, spawn, write_config

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SINGLE_FLAGS = ["--account", "flex", "--reason", "single", "--yes", "--json"]
DEMO_ROWS = [
    "flexportal,fpay_demo_pending_01",  # cancelled
    "flexportal,fpay_demo_paid_01",  # not cancellable
    "hedgepayments,pay_demopending01",  # cancelled
    "hedgepayments,pay_democanceled01",  # already cancelled
    "vipps,demo-authorized-0001",  # cancelled (aggregate amounts)
]


def child_env(journal: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCANCEL_")}
    return env | {
        "PAYCANCEL_DEFAULTS__JOURNAL": str(journal),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
    }


def run_cli(args: list[str], env: dict[str, str], code: int = 0) -> list[dict[str, Any]]:
    proc = spawn(args, env)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == code, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def real_journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A journal made by the CLI in its own processes: a bulk run and a single cancel.
    Yields its path and the bulk run's JSON summary."""
    base = tmp_path_factory.mktemp("real")
    journal = base / "journal.sqlite3"
    with Sandbox() as sb:
        config = write_config(base / "c.toml", sb.account_config())
        csv_path = base / "in.csv"
        csv_path.write_text("account,payment_id\n" + "\n".join(DEMO_ROWS) + "\n")
        env = child_env(journal, base)
        common = ["--config", str(config)]
        bulk = run_cli(
            [*common, "bulk-cancel", str(csv_path), "--reason", "audit", "--yes", "--json"],
            env,
            code=1,  # the paid one is not cancellable
        )
        run_cli(
            [*common, "cancel", "fpi_demo_requires_capture_01", *SINGLE_FLAGS],
            env,
        )
    yield journal, bulk[-1]


@pytest.fixture
def copy(real_journal: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A copy of the real journal where the CLI under test looks for it."""
    target = tmp_path / "journal.sqlite3"
    source = sqlite3.connect(real_journal[0])
    dest = sqlite3.connect(target)
    source.backup(dest)
    source.close()
    dest.close()
    return target


def tamper(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    db = sqlite3.connect(path)
    with db:
        for sql, args in statements:
            db.execute(sql, args)
    db.close()


def event(path: Path, where: str, args: tuple[Any, ...] = ()) -> dict[str, Any]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    row = db.execute(f"SELECT * FROM events WHERE {where} ORDER BY seq LIMIT 1", args).fetchone()  # noqa: S608
    db.close()
    assert row is not None, where
    return dict(row)


def last_seq(path: Path) -> int:
    db = sqlite3.connect(path)
    (seq,) = db.execute("SELECT max(seq) FROM events").fetchone()
    db.close()
    return int(seq)


def audit_verify(cli: Any, *extra: str) -> tuple[int, dict[str, Any], str]:
    human = cli("audit", "verify", *extra)
    res = cli("audit", "verify", *extra, "--json")
    assert res.code == human.code
    (record,) = res.json_lines()
    return res.code, record, human.stdout


def assert_names(cli: Any, seq: int, run_id: str | None, what: str, *extra: str) -> None:
    code, record, text = audit_verify(cli, *extra)
    assert code == 1, text
    assert record["intact"] is False
    assert record["problem"]["seq"] == seq, record
    assert record["problem"]["run_id"] == run_id, record
    assert what in record["problem"]["what"], record
    assert f"event {seq}" in text and what in text
    if run_id is not None:
        assert f"run {run_id}" in text


# verify


def test_the_real_journal_verifies(cli: Any, copy: Path, real_journal: Any) -> None:
    _, summary = real_journal
    head = summary["audit_head"]
    code, record, text = audit_verify(cli)
    assert code == 0 and record["intact"] and record["problem"] is None, text
    # the bulk run's summary head is its own run_finished event; the cancel came after
    assert event(copy, "seq = ?", (head["seq"],))["sha256"] == head["sha256"]
    assert event(copy, "seq = ?", (head["seq"],))["type"] == "run_finished"
    assert record["events"] == last_seq(copy) > head["seq"]
    code, record, text = audit_verify(cli, "--head", f"{head['seq']}:{head['sha256']}")
    assert code == 0 and record["checked_head"] == head
    assert "still holds the head" in text


CANCELLED = "type = 'payment_finished' AND data LIKE '%\"outcome\":\"cancelled\"%'"
EDITS = {
    # what is edited: (which event, the field, its new value)
    "outcome": (CANCELLED, "outcome", "failed"),
    "amount": ("type = 'payment_finished' AND data LIKE '%\"released\":\"%'", "released", "0.01"),
    "user": ("type = 'run_started'", "user", "someone-else"),
    "payment id": ("type = 'payment_sent'", "payment_id", "pay_other"),
}  # fmt: skip


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_event_is_named(cli: Any, copy: Path, edit: str) -> None:
    where, name, value = EDITS[edit]
    target = event(copy, where)
    fields = json.loads(target["data"])
    assert fields[name] != value
    data = canonical(fields | {name: value})  # as the journal would have written it
    tamper(copy, ("UPDATE events SET data = ? WHERE seq = ?", (data, target["seq"])))
    assert_names(cli, target["seq"], target["run_id"], "was edited")


def test_an_edited_time_is_named(cli: Any, copy: Path) -> None:
    target = event(copy, "type = 'payment_sent'")
    earlier = "2020-01-01T00:00:00.000+00:00"
    tamper(copy, ("UPDATE events SET at = ? WHERE seq = ?", (earlier, target["seq"])))
    assert_names(cli, target["seq"], target["run_id"], "was edited")


def _shift_up_from(path: Path, seq: int) -> None:
    """Make room at ``seq`` as an attacker would: every later event one place up."""
    tamper(
        path,
        ("UPDATE events SET seq = -seq - 1 WHERE seq >= ?", (seq,)),
        ("UPDATE events SET seq = -seq WHERE seq < 0", ()),
    )


def test_an_inserted_copy_of_an_event_is_named(cli: Any, copy: Path) -> None:
    """A payment_finished event duplicated in the middle (a second outcome)."""
    original = event(copy, "type = 'payment_finished'")
    at = original["seq"] + 2
    _shift_up_from(copy, at)
    row = {**original, "seq": at}
    tamper(copy, ("INSERT INTO events VALUES (:seq,:at,:type,:run_id,:data,:prev,:sha256)", row))  # type: ignore[arg-type]
    assert_names(cli, at, original["run_id"], "an event before it was deleted, inserted")


def test_a_forged_event_with_a_valid_hash_is_caught_at_the_next(cli: Any, copy: Path) -> None:
    """A careful forger gives the inserted event a right prev and hash: the event after
    it no longer fits (its prev is the hash of the event before the insertion)."""
    before = event(copy, "type = 'payment_sent'")
    at = before["seq"] + 1
    fields = json.loads(before["data"]) | {"payment_id": "pay_forged"}
    data = canonical(fields)
    forged = event_hash(at, before["at"], "payment_sent", before["run_id"], data, before["sha256"])
    _shift_up_from(copy, at)
    tamper(
        copy,
        (
            "INSERT INTO events VALUES (?,?,?,?,?,?,?)",
            (at, before["at"], "payment_sent", before["run_id"], data, before["sha256"], forged),
        ),
    )
    after = event(copy, "seq = ?", (at + 1,))
    assert_names(cli, at + 1, after["run_id"], "its prev is not event")


def test_an_event_deleted_in_the_middle_is_named(cli: Any, copy: Path) -> None:
    gone = event(copy, CANCELLED)
    tamper(copy, ("DELETE FROM events WHERE seq = ?", (gone["seq"],)))
    follower = event(copy, "seq > ?", (gone["seq"],))
    assert_names(cli, gone["seq"] + 1, follower["run_id"], f"event {gone['seq']} was deleted")


def test_the_first_event_deleted_is_named(cli: Any, copy: Path) -> None:
    tamper(copy, ("DELETE FROM events WHERE seq = 1", ()))
    second = event(copy, "seq = 2")
    assert_names(cli, 2, second["run_id"], "event 1 was deleted")


def test_events_deleted_at_the_end_need_the_head(cli: Any, copy: Path) -> None:
    """Deleting the newest events leaves an intact, shorter chain: only a head kept
    elsewhere shows it."""
    head = event(copy, "seq = ?", (last_seq(copy),))
    kept = f"{head['seq']}:{head['sha256']}"
    tamper(copy, ("DELETE FROM events WHERE seq > ?", (head["seq"] - 3,)))
    code, record, _ = audit_verify(cli)
    assert code == 0 and record["events"] == head["seq"] - 3  # invisible from inside
    first_gone = head["seq"] - 2
    assert_names(cli, first_gone, None, "deleted from the end", "--head", kept)


def test_a_rebuilt_chain_passes_alone_and_fails_against_the_head(cli: Any, copy: Path) -> None:
    """Someone with write access edits an event and recomputes every hash after it:
    the chain is intact again (what verify cannot see), but not the head kept elsewhere."""
    head = event(copy, "seq = ?", (last_seq(copy),))
    target = event(copy, CANCELLED)
    db = sqlite3.connect(copy)
    with db:
        prev = GENESIS
        rows = db.execute("SELECT seq, at, type, run_id, data FROM events ORDER BY seq").fetchall()
        for seq, at, type_, run_id, data in rows:
            if seq == target["seq"]:
                data = data.replace('"outcome":"cancelled"', '"outcome":"failed"')
            digest = event_hash(seq, at, type_, run_id, data, prev)
            db.execute(
                "UPDATE events SET data = ?, prev = ?, sha256 = ? WHERE seq = ?",
                (data, prev, digest, seq),
            )
            prev = digest
    db.close()
    code, _, _ = audit_verify(cli)
    assert code == 0
    kept = f"{head['seq']}:{head['sha256']}"
    assert_names(cli, head["seq"], head["run_id"], "the chain was rebuilt", "--head", kept)


def test_a_bad_head_is_a_usage_error(cli: Any, copy: Path) -> None:
    res = cli("audit", "verify", "--head", "12:nothex", "--json")
    assert res.code == 2 and "SEQ:SHA256" in res.stderr


def test_no_journal_is_not_created(cli: Any, tmp_path: Path) -> None:
    res = cli("audit", "verify")
    assert res.code == 2 and "no journal" in res.stderr
    assert not (tmp_path / "journal.sqlite3").exists()


# runs show and summaries


def test_runs_show_prints_the_runs_audit_head(cli: Any, copy: Path, real_journal: Any) -> None:
    _, summary = real_journal
    run_id, head = summary["run_id"], summary["audit_head"]
    shown = cli("runs", "show", run_id, "--json")
    assert shown.code == 0
    assert shown.json_lines()[0]["audit_head"] == head
    human = cli("runs", "show", run_id)
    assert f"Audit head: {head['seq']}:{head['sha256']}" in human.stderr


def test_a_single_cancel_summary_carries_the_head(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    res = cli(
        "--config", str(config_file), "cancel", "pay_demopending01", "--account",
        "hedgepayments", "--reason", "r", "--yes", "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    summary = res.json_lines()[-1]
    journal = Journal(tmp_path / "journal.sqlite3")
    assert summary["audit_head"] == journal.head()
    types = [e.type for e in journal.events()]
    assert types == [
        "run_started",
        "payments_planned",
        "payment_sent",
        "payment_finished",
        "run_finished",
    ]


# export


def normalize(rows: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """Times, run ids, keys, hashes, user and host, and temporary paths made stable."""
    names: dict[str, str] = {}

    def name(kind: str, value: str | None) -> str | None:
        if value in (None, ""):
            return value
        assert value is not None
        if value == GENESIS:
            return "GENESIS"
        if value not in names:
            names[value] = f"<{kind}{sum(n.startswith(f'<{kind}') for n in names.values()) + 1}>"
        return names[value]

    out = []
    for row in rows:
        row = dict(row)
        row["time"] = "<time>"
        for field in ("run_id", "idempotency_key", "prev", "sha256"):
            row[field] = name(field, row[field])
        row["user"], row["host"] = "<user>", "<host>"
        for field in ("command", "input"):
            if row[field]:
                row[field] = row[field].replace(str(tmp), "<tmp>")
        out.append(row)
    return out


def golden_run(
    cli: Any, tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("account,payment_id\n" + "\n".join(DEMO_ROWS[:4]) + "\n")
    args = [
        "--config", str(config_file), "bulk-cancel", str(path), "--reason", "early return",
        "--yes", "--concurrency", "1", "--json",
    ]  # fmt: skip
    monkeypatch.setattr("sys.argv", ["paycancel", *args])  # the command line journaled
    res = cli(*args)
    assert res.code == 1, res.stderr


def golden(name: str, text: str) -> str:
    """The golden file's text; REGEN_GOLDEN=1 rewrites it (then review
    the diff)."""
    if os.environ.get("REGEN_GOLDEN"):
        (GOLDEN / name).write_text(text)
    return (GOLDEN / name).read_text()


def test_export_matches_the_golden_files(
    cli: Any, tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden_run(cli, tmp_path, config_file, monkeypatch)
    jsonl = cli("audit", "export")
    assert jsonl.code == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert all(list(r) == list(EXPORT_FIELDS) for r in rows)
    got = "".join(json.dumps(r) + "\n" for r in normalize(rows, tmp_path))
    assert got == golden("audit_export.jsonl", got)

    out = tmp_path / "audit.csv"
    res = cli("audit", "export", "--format", "csv", "--output", str(out))
    assert res.code == 0 and "Exported 11 event(s)" in res.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert tuple(table[0]) == EXPORT_FIELDS
    as_json = [
        {k: (None if v == "" else int(v) if k == "seq" else v) for k, v in r.items()} for r in table
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in normalize(as_json, tmp_path):
        writer.writerow(r)
    assert buffer.getvalue() == golden("audit_export.csv", buffer.getvalue())
    # the same events either way
    assert [r["sha256"] for r in table] == [r["sha256"] for r in rows]


def test_export_chains_up(
    cli: Any, tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's prev and sha256 chain up to the journal's head."""
    golden_run(cli, tmp_path, config_file, monkeypatch)
    rows = [json.loads(line) for line in cli("audit", "export").stdout.splitlines()]
    prev = GENESIS
    for row in rows:
        assert row["prev"] == prev
        prev = row["sha256"]
    assert verify(Journal(tmp_path / "journal.sqlite3").events()).head["sha256"] == prev


def test_export_filters_by_run_and_time(
    cli: Any, tmp_path: Path, sandbox: Sandbox, config_file: Path
) -> None:
    single = ["--config", str(config_file), "cancel", "--reason", "r", "--yes", "--json"]
    first = cli(*single, "pay_demopending01", "--account", "hedgepayments")
    time.sleep(0.05)
    between = Journal(tmp_path / "journal.sqlite3").head()
    (stamp,) = [e.at for e in Journal(tmp_path / "journal.sqlite3").events()][-1:]
    time.sleep(0.05)
    second = cli(*single, "fpi_demo_requires_capture_01", "--account", "flex")
    run_a, run_b = first.json_lines()[-1]["run_id"], second.json_lines()[-1]["run_id"]

    def exported(*args: str) -> list[dict[str, Any]]:
        res = cli("audit", "export", *args)
        assert res.code == 0, res.stderr
        return [json.loads(line) for line in res.stdout.splitlines()]

    everything = exported()
    assert {r["run_id"] for r in everything} == {run_a, run_b} and len(everything) == 10
    assert [r["run_id"] for r in exported("--run", run_b)] == [run_b] * 5
    assert exported("--run", "no-such-run") == []
    # --since includes its time; a time just after run A's last event splits the runs
    after = exported("--since", stamp)
    assert between["seq"] in [r["seq"] for r in after] and after[-1]["run_id"] == run_b
    later = exported("--since", _plus_ms(stamp))
    assert {r["run_id"] for r in later} == {run_b} and len(later) == 5
    earlier = exported("--until", _plus_ms(stamp))
    assert {r["run_id"] for r in earlier} == {run_a} and len(earlier) == 5
    naive = _plus_ms(stamp).replace("+00:00", "")  # a time without an offset is UTC
    assert exported("--since", naive) == later
    # dates alone: midnight UTC; --until excludes
    assert exported("--since", "2000-01-01") == everything
    assert exported("--until", "2000-01-01") == []
    csv_rows = cli("audit", "export", "--run", run_a, "--format", "csv").stdout.splitlines()
    assert len(csv_rows) == 6  # header and five events
    bad = cli("audit", "export", "--since", "last tuesday")
    assert bad.code == 2 and "YYYY-MM-DD" in bad.stderr


def _plus_ms(stamp: str) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(stamp) + timedelta(milliseconds=1)).isoformat()


def test_export_streams_a_large_journal_in_chunks(tmp_path: Path) -> None:
    """More events than one read chunk come out whole, in order (the reader pages by
    sequence number rather than loading the table)."""
    journal = Journal(tmp_path / "j.sqlite3")
    journal.append_events(NewEvent("payment_sent", "r", {"n": n}) for n in range(12_345))
    seqs = [e.seq for e in journal.events(chunk=1000)]
    assert seqs == list(range(1, 12_346))
    assert verify(journal.events(chunk=1000)).intact


# concurrency


@pytest.mark.timeout(120)
def test_two_runs_writing_one_journal_at_once_leave_one_chain(tmp_path: Path) -> None:
    # each run writes for about two seconds: long enough to overlap on a loaded machine
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=40)) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=100) for _ in range(200)]
        config = write_config(tmp_path / "c.toml", sb.account_config())
        journal = tmp_path / "shared.sqlite3"
        env = child_env(journal, tmp_path)
        procs = []
        for half, name in ((ids[:100], "a.csv"), (ids[100:], "b.csv")):
            path = tmp_path / name
            path.write_text("payment_id\n" + "\n".join(half) + "\n")
            args = ["--config", str(config), "bulk-cancel", str(path), "--account"]
            args += ["hedgepayments", "--reason", "r", "--yes", "--json", "--concurrency", "2"]
            procs.append(spawn(args, env))
        outs = [p.communicate(timeout=90) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
        assert all(sb.cancel_commits[("hedgepayments", i)] == 1 for i in ids)
    store = Journal(journal)
    result = verify(store.events())
    assert result.intact, result.problem
    events = list(store.events())
    runs = [e.run_id for e in events]
    assert len(set(runs)) == 2
    # the two runs really wrote at the same time: their events interleave
    switches = sum(1 for a, b in itertools.pairwise(runs) if a != b)
    assert switches > 2, runs
    # one event per change: per run, start, plan, 100 sends, 100 outcomes, finish
    for run_id in set(runs):
        types = [e.type for e in events if e.run_id == run_id]
        assert types.count("payment_sent") == types.count("payment_finished") == 100
        assert types[:2] == ["run_started", "payments_planned"] and types[-1] == "run_finished"
        assert len(types) == 203


# upgrade


OLD_SCHEMA_JOURNAL = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
    status TEXT NOT NULL, user TEXT NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL,
    input TEXT, input_hash TEXT, reason TEXT, options TEXT NOT NULL DEFAULT '{}');
CREATE TABLE payments (run_id TEXT NOT NULL REFERENCES runs(run_id), seq INTEGER NOT NULL,
    account TEXT NOT NULL, provider TEXT NOT NULL, payment_id TEXT NOT NULL, line INTEGER,
    reason TEXT NOT NULL, expected TEXT, known TEXT, idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL, outcome TEXT, before TEXT, after TEXT, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, account, payment_id));
"""


def test_a_journal_from_an_earlier_version_gets_its_runs_as_first_events(
    cli: Any, copy: Path, tmp_path: Path
) -> None:
    """The real journal with its events table dropped is what an earlier version left;
    opened again, its runs become the chain's first events, and verify says so."""
    db = sqlite3.connect(copy)
    with db:
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        started = [r for (r,) in db.execute("SELECT run_id FROM runs ORDER BY started_at, run_id")]
        original = db.execute("SELECT type, run_id FROM events ORDER BY seq").fetchall()
        db.execute("DROP TABLE events")
    db.close()
    code, record, text = audit_verify(cli)
    assert code == 0, text
    kept = [t for t in original if t[0] != "payments_planned"]  # not in the old rows
    assert record["upgraded_at"] is not None and record["reconstructed"] == len(kept)
    assert "reconstructed" in text and "earlier version" in text
    rebuilt = Journal(copy)
    events = list(rebuilt.events())
    assert events[0].type == "journal_upgraded" and events[0].fields()["runs"] == runs
    # the same facts per run (payment by payment, not interleaved as the run wrote them)
    assert Counter((e.type, e.run_id) for e in events[1:]) == Counter(kept)
    # run after run, in the order they started (two runs in one second: their ids need
    # not sort that way)
    order = [e.run_id for e in events[1:]]
    assert sorted(order, key=started.index) == order
    # new runs chain on after the reconstructed ones
    rebuilt.set_run_status(events[1].run_id or "", "completed")
    assert verify(rebuilt.events()).intact


def test_an_earlier_journal_opened_by_several_at_once_is_upgraded_once(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA_JOURNAL)
    db.execute(
        "INSERT INTO runs VALUES ('r1', '2025-01-01T00:00:00.000+00:00', NULL, 'interrupted',"
        " 'u', 'h', 'paycancel bulk-cancel x', 'x', 'hash', 'why', '{\"kind\": \"bulk\"}')"
    )
    db.commit()
    db.close()
    start = threading.Barrier(4)

    def open_it() -> list[str]:
        start.wait()
        return [e.type for e in Journal(path).events()]

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(lambda _: open_it(), range(4)))
    assert seen == [["journal_upgraded", "run_started", "run_interrupted"]] * 4
    assert verify(Journal(path).events()).intact


# secrets


def test_no_secret_reaches_an_event(cli: Any, tmp_path: Path) -> None:
    creds = {
        "flexportal": {"api_key": SENTINEL},
        "hedgepayments": {"api_key": "sk_test_" + SENTINEL},
        "vipps": {"client_secret": SENTINEL, "subscription_key": SENTINEL + "-sub"},
    }
    with Sandbox(credentials=creds) as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        path = tmp_path / "in.csv"
        path.write_text("account,payment_id\n" + "\n".join(DEMO_ROWS) + "\n")
        # a reason that quotes a secret is redacted too
        res = cli(
            "--config", str(config), "-v", "bulk-cancel", str(path), "--reason",
            f"cleanup {SENTINEL}", "--yes", "--json",
        )  # fmt: skip
        assert res.code == 1, res.stderr
    journal = Journal(tmp_path / "journal.sqlite3")
    # a ping URL is a credential: the journaled command line never holds one
    journal.start_run(
        "r-ping",
        user="u",
        host="h",
        command=f"paycancel bulk-cancel x --ping-url https://hc-ping.com/{SENTINEL} "
        f"--ping-url=https://hc-ping.com/{SENTINEL}",
        input="x",
        input_hash="h",
        reason="r",
        options={"kind": "bulk"},
    )
    exports = [cli("audit", "export").stdout, cli("audit", "export", "--format", "csv").stdout]
    assert len(exports[0].splitlines()) > 10 and "[REDACTED]" in exports[0]
    assert all(SENTINEL not in text for text in exports)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite3*") if p.is_file())
    assert SENTINEL.encode() not in stored
    assert verify(journal.events()).intact


def test_help_lists_audit(cli: Any) -> None:
    res = cli("audit", "--help")
    assert res.code == 0 and "verify" in res.stdout and "export" in res.stdout


def test_export_to_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`audit export | head -1`: no traceback, the exit code `cat` would give (141)."""
    path = tmp_path / "j.sqlite3"
    Journal(path).append_events(NewEvent("payment_sent", "r", {"n": n}) for n in range(50_000))
    proc = spawn(["audit", "export"], child_env(path, tmp_path))
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["seq"] == 1
    proc.stdout.close()
    assert proc.wait(60) == 141
    assert proc.stderr.read() == ""


def test_a_secret_in_any_field_is_scrubbed_and_the_event_stays_json(tmp_path: Path) -> None:
    from paycancel_cli.redact import Redactor

    redactor = Redactor()
    redactor.add(SENTINEL)
    redactor.add('","user":"')  # a secret that is JSON punctuation: scrubbed per value
    journal = Journal(tmp_path / "j.sqlite3", redact=redactor)
    fields = {"reason": f"why {SENTINEL}", "note": 'a","user":"b', "list": [SENTINEL]}
    journal.append_events([NewEvent("payment_sent", "r", fields)])
    (stored,) = journal.events()
    assert SENTINEL not in stored.data and '","user":"' not in json.loads(stored.data)["note"]
    assert stored.fields()["reason"] == "why [REDACTED]" and stored.fields()["user"] == journal.user
    assert verify(journal.events()).intact


def test_a_reviewed_plans_fields_reach_the_trail(cli: Any, tmp_path: Path) -> None:
    """A run applying a plan names it in its run_started event (options ``plan``), and
    its plan_applied event carries the digest, author and approvers to the export."""
    from paycancel_cli.journal import plan_event

    journal = Journal(tmp_path / "journal.sqlite3")
    journal.start_run(
        "r-plan", user="u", host="h", command="paycancel bulk-cancel --plan p.json",
        input="plan p.json", input_hash="d", reason="r",
        options={"kind": "bulk", "plan": "plan-123"},
    )  # fmt: skip
    approvers = ["carol@example.com", "bob@example.com"]
    digest = "sha256:" + "ab" * 32
    journal.append_events([plan_event("r-plan", "plan-123", digest, "alice", approvers)])
    rows = [json.loads(line) for line in cli("audit", "export").stdout.splitlines()]
    assert rows[0]["plan_id"] == "plan-123" and rows[0]["plan_approvers"] is None
    assert rows[1]["type"] == "plan_applied"
    assert (rows[1]["plan_id"], rows[1]["plan_digest"], rows[1]["plan_author"]) == (
        "plan-123",
        digest,
        "alice",
    )
    assert rows[1]["plan_approvers"] == sorted(approvers)
    table = list(csv.DictReader(io.StringIO(cli("audit", "export", "--format", "csv").stdout)))
    assert table[1]["plan_approvers"] == "bob@example.com;carol@example.com"


def test_invalid_rows_kept_by_skip_invalid_are_events_too(
    cli: Any, tmp_path: Path, config_file: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("account,payment_id\nhedgepayments,pay_demopending01\nhedgepayments,bad/id\n")
    args = ["--config", str(config_file), "bulk-cancel", str(path), "--reason", "r"]
    res = cli(*args, "--yes", "--skip-invalid", "--json")
    assert res.code == 1, res.stderr
    events = list(Journal(tmp_path / "journal.sqlite3").events())
    planned = next(e for e in events if e.type == "payments_planned").fields()
    assert planned["payments"] == 2 and planned["settled"] == 1
    finished = [e.fields() for e in events if e.type == "payment_finished"]
    assert sorted((f["payment_id"], f["outcome"]) for f in finished) == [
        ("bad/id", "invalid"),
        ("pay_demopending01", "cancelled"),
    ]
    assert verify(events).intact
