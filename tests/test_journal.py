"""The journal: file mode, fail-closed writes, sandbox history apart from the real one."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.config import Config, Defaults
from paycancel_cli.errors import JournalError
from paycancel_cli.journal import Journal, PlanRow
from paycancel_cli.sandbox import Sandbox

from .conftest import Retries


def test_journal_file_is_private_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "j.sqlite3"
    journal = Journal(path)
    journal.start_run(
        "r1",
        user="u",
        host="h",
        command="c",
        input="i",
        input_hash="x",
        reason="why",
        options={"kind": "bulk"},
    )
    journal.plan("r1", [PlanRow("a", "flex", "fpi_1", "why", "k1")])
    journal.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    again = Journal(path)
    assert again.count_pending("r1") == 1
    assert [r.idempotency_key for r in again.pending("r1")] == ["k1"]


def test_a_journal_that_cannot_be_written_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    journal.start_run(
        "r1", user="u", host="h", command="c", input="i", input_hash="x", reason="why", options={}
    )
    journal.db.close()
    journal.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(JournalError, match="no cancel goes unrecorded"):
        journal.set_run_status("r1", "completed")


def test_a_journal_opened_while_another_process_writes_it_waits_its_turn(
    tmp_path: Path, real_retries: Retries
) -> None:
    """Two runs starting at once on a new journal: while one holds the write lock, the
    other's switch to write-ahead logging is answered "locked" at once (SQLite calls no
    busy handler there), so opening waits and tries again rather than failing the run."""
    path = tmp_path / "j.sqlite3"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE scratch (n INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO scratch VALUES (1)")  # the write lock, not yet in WAL mode
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        journal = Journal(path)
    finally:
        release.join()
        other.close()
    assert real_retries.waits, "the first attempt cannot have succeeded under the lock"
    assert journal.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    journal.start_run(
        "r1", user="u", host="h", command="c", input="i", input_hash="x", reason="why", options={}
    )
    assert journal.count_pending("r1") == 0


def test_unopenable_journal_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot be opened"):
        Journal(blocker / "j.sqlite3")


def test_journal_failure_mid_run_sends_no_unrecorded_cancel(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Journal, *args: Any) -> None:
        raise JournalError("The journal could not record it (disk I/O error); stopping.")

    monkeypatch.setattr(Journal, "mark_in_flight", broken)
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("payment_id\npay_demopending01\npay_demoinitiated01\n")
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        str(csv_path),
        "--account",
        "hedgepayments",
        "--reason",
        "r",
        "--yes",
    )
    assert res.code == 1 and "could not record" in res.stderr
    assert sandbox.counts[("hedgepayments", "cancel")] == 0


def test_sandbox_runs_have_their_own_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYCANCEL_DEFAULTS__JOURNAL")
    real = Config(entries={}, defaults=Defaults())
    sandbox = Config(entries={}, defaults=Defaults(), sandbox=True)
    assert real.journal_path.name == "journal.sqlite3"
    assert sandbox.journal_path.name == "journal-sandbox.sqlite3"
    assert real.journal_path.parent == sandbox.journal_path.parent
