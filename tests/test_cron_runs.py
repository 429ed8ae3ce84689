"""What a cron line needs, done by paycancel: subscription ids from a file, stdin or a
command; one outcome line per invocation (``--json-summary``) whatever stops it;
unfinished runs found and resumed; lock files removed; old runs pruned."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import spawn

BULK = ("bulk-cancel", "--account", "flexportal", "--reason", "early return", "--yes")


def outcome(res: Any) -> dict[str, Any]:
    """The one line ``--json-summary`` writes: nothing else on stdout."""
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout
    line = json.loads(lines[0])
    assert line["type"] == "outcome"
    for key in ("run_id", "status", "exit_code", "started_at", "finished_at"):
        assert key in line, key
    assert line["exit_code"] == res.code
    return line


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_ids_from_a_file_with_crlf_and_blank_lines(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    a = sandbox.seed_subscription("rent_file_a", {"pending": 2})
    b = sandbox.seed_subscription("rent_file_b", {"pending": 1, "paid": 1})
    ids = tmp_path / "returned.txt"
    ids.write_bytes(b"\xef\xbb\xbfrent_file_a\r\n\r\n  rent_file_b  \r\n\n")
    res = cli("--config", str(config_file), *BULK, "--subscriptions-from", str(ids),
              "--json-summary")  # fmt: skip
    line = outcome(res)
    assert res.code == 0, res.stderr
    assert line["status"] == "completed" and line["outcomes"] == {"cancelled": 3}
    assert line["subscriptions"] == {"rent_file_a": 2, "rent_file_b": 1}
    assert sum(sandbox.cancel_commits.values()) == len(a) + len(b) - 1


def test_ids_from_standard_input_and_a_bad_line(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    sandbox.seed_subscription("rent_stdin", {"pending": 1})
    res = cli("--config", str(config_file), *BULK, "--subscriptions-from", "-", "--json-summary",
              stdin="rent_stdin\r\nrent with space\r\n")  # fmt: skip
    line = outcome(res)
    assert (res.code, line["status"], line["code"]) == (2, "not_started", "input_error")
    assert "line 2: 'rent with space' is not one id" in line["message"]
    assert not sandbox.cancel_commits


def test_ids_from_a_command_and_its_failures(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    sandbox.seed_subscription("rent_cmd", {"pending": 2})
    good = script(tmp_path, "good", "print('rent_cmd\\r\\n')")
    res = cli("--config", str(config_file), *BULK, "--subscriptions-command", good,
              "--json-summary")  # fmt: skip
    line = outcome(res)
    assert (res.code, line["status"], line["outcomes"]) == (0, "completed", {"cancelled": 2})

    failing = script(tmp_path, "failing", "import sys; print('rent_x'); sys.exit(3)")
    missing = str(tmp_path / "no-such-script")
    empty = script(tmp_path, "empty", "print()")
    for command, code, status, kind, said in [
        (failing, 2, "not_started", "id_source_failed", "failed with exit status 3"),
        (missing, 2, "not_started", "id_source_failed", "was not found"),
        (empty, 0, "nothing_to_do", None, "nothing to do; no run was started"),
    ]:
        res = cli("--config", str(config_file), *BULK, "--subscriptions-command", command,
                  "--json-summary")  # fmt: skip
        line = outcome(res)
        assert (res.code, line["status"], line["code"]) == (code, status, kind), line
        assert said in line["message"] and line["run_id"] is None
    assert sum(sandbox.cancel_commits.values()) == 2


def test_the_outcome_line_for_an_early_stop(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = cli("--config", str(config_file), *BULK, "--no-such-flag", "--json-summary")
    assert outcome(res)["status"] == "not_started" and res.code == 2
    res = cli("--config", str(config_file), "bulk-cancel", "--subscription", "rent_demo_01",
              "--account", "flexportal", "--yes", "--json-summary")  # fmt: skip
    line = outcome(res)
    assert (line["code"], line["status"]) == ("usage_error", "not_started")
    assert "--reason is required" in line["message"]


def test_provider_down_before_listing_keeps_the_night_for_a_resume(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    """The list fails (provider down): the run is journaled with its subscriptions still
    to list, found by `runs --unfinished`, and `--resume-unfinished` finishes it."""
    ids = sandbox.seed_subscription("rent_down", {"pending": 3})
    sandbox.faults = Faults(fail_rate=1.0)
    res = cli("--config", str(config_file), *BULK, "--subscription", "rent_down",
              "--json-summary")  # fmt: skip
    line = outcome(res)
    assert (res.code, line["status"], line["code"]) == (5, "failed", "unavailable"), line
    run_id = line["run_id"]
    assert run_id and f"--resume {run_id}" in line["message"]

    listed = cli("--config", str(config_file), "runs", "--unfinished", "--json")
    assert [r["run_id"] for r in listed.json_lines()] == [run_id]
    # still down: the resume fails the same way and keeps the run
    res = cli("--config", str(config_file), "bulk-cancel", "--resume-unfinished", "--yes",
              "--json-summary")  # fmt: skip
    assert res.code == 5 and json.loads(res.stdout)["run_id"] == run_id

    sandbox.faults = Faults()
    res = cli("--config", str(config_file), "bulk-cancel", "--resume-unfinished", "--yes",
              "--json-summary")  # fmt: skip
    line = outcome(res)
    assert (res.code, line["run_id"], line["status"]) == (0, run_id, "completed")
    assert line["outcomes"] == {"cancelled": 3}
    assert sandbox.cancel_commits == {("flexportal", i): 1 for i in ids}
    listed = cli("--config", str(config_file), "runs", "--unfinished", "--json")
    assert listed.stdout == "" and "No unfinished runs." in listed.stderr
    res = cli("--config", str(config_file), "bulk-cancel", "--resume-unfinished", "--yes",
              "--json-summary")  # fmt: skip
    assert outcome(res)["status"] == "nothing_to_do"


def test_an_exit_5_run_is_unfinished_until_resumed(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    ids = [sandbox.add_payment("hedgepayments", status="pending", amount=100) for _ in range(4)]
    for payment_id in ids:
        sandbox.add_fault("hedgepayments", payment_id, "html_502", op="any", status=503)
    csv = tmp_path / "four.csv"
    csv.write_text("payment_id\n" + "\n".join(ids) + "\n")
    res = cli("--config", str(config_file), "bulk-cancel", str(csv), "--account",
              "hedgepayments", "--reason", "r", "--yes", "--json-summary")  # fmt: skip
    line = outcome(res)
    assert (res.code, line["status"]) == (5, "unfinished")
    listed = cli("--config", str(config_file), "runs", "--unfinished")
    assert line["run_id"] in listed.stdout
    assert "--resume-unfinished" in listed.stderr
    sandbox.faults = Faults()
    res = cli("--config", str(config_file), "bulk-cancel", "--resume", line["run_id"], "--yes",
              "--json-summary")  # fmt: skip
    assert outcome(res)["outcomes"] == {"cancelled": 4}


def test_sigterm_mid_run_leaves_the_interrupted_line(sandbox: Sandbox, config_file: Path,
                                                     tmp_path: Path) -> None:  # fmt: skip
    import os
    import time

    sandbox.seed_subscription("rent_slow", {"pending": 40})
    sandbox.faults = Faults(latency_ms=150)
    env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3")}
    proc = spawn(["--config", str(config_file), *BULK, "--subscription", "rent_slow",
                  "--concurrency", "1", "--json-summary"], env)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the run has finished a payment
        time.sleep(0.2)
        try:
            db = sqlite3.connect(tmp_path / "j.sqlite3")
            done = db.execute("SELECT count(*) FROM payments WHERE state = 'done'").fetchone()[0]
            db.close()
        except sqlite3.Error:
            continue
        if done:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = json.loads(out)
    assert (line["status"], line["exit_code"]) == ("interrupted", 130)
    assert line["run_id"] and line["remaining"] > 0


def test_lock_files_are_removed_when_their_run_ends(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    for n in range(3):
        sandbox.seed_subscription(f"rent_lock_{n}", {"pending": 1})
        res = cli("--config", str(config_file), *BULK, "--subscription", f"rent_lock_{n}")
        assert res.code == 0, res.stderr
    locks = tmp_path / "journal.sqlite3.locks"
    assert locks.is_dir() and list(locks.iterdir()) == []


def test_prune_removes_old_finished_runs_and_keeps_unfinished_ones(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    sandbox.seed_subscription("rent_old", {"pending": 1})
    sandbox.seed_subscription("rent_new", {"pending": 1})
    sandbox.seed_subscription("rent_stuck", {"pending": 1})
    ids = {}
    for rental in ("rent_old", "rent_new"):
        res = cli("--config", str(config_file), *BULK, "--subscription", rental, "--json-summary")
        ids[rental] = outcome(res)["run_id"]
    sandbox.faults = Faults(fail_rate=1.0)
    res = cli("--config", str(config_file), *BULK, "--subscription", "rent_stuck",
              "--json-summary")  # fmt: skip
    ids["rent_stuck"] = outcome(res)["run_id"]
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    with db:
        db.execute(
            "UPDATE runs SET started_at = '2020-01-01T00:00:00.000+00:00' WHERE run_id IN (?, ?)",
            (ids["rent_old"], ids["rent_stuck"]),
        )
    res = cli("--config", str(config_file), "runs", "prune", "--older-than", "30", "--json")
    assert res.code == 0
    assert res.json_lines()[0] | {"before": None} == {
        "type": "pruned", "before": None, "runs": 1, "payments": 1,
    }  # fmt: skip
    left = {r[0] for r in db.execute("SELECT run_id FROM runs")}
    assert left == {ids["rent_new"], ids["rent_stuck"]}
    assert not list(db.execute("SELECT 1 FROM payments WHERE run_id = ?", (ids["rent_old"],)))


def test_resume_unfinished_leaves_a_run_started_at_a_terminal(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    sandbox.seed_subscription("rent_by_hand", {"pending": 1})
    sandbox.faults = Faults(fail_rate=1.0)
    res = cli("--config", str(config_file), *BULK, "--subscription", "rent_by_hand",
              "--json-summary", stdin="")  # fmt: skip  (a terminal)
    run_id = outcome(res)["run_id"]
    sandbox.faults = Faults()
    listed = cli("--config", str(config_file), "runs", "--unfinished", "--json")
    assert [r["run_id"] for r in listed.json_lines()] == [run_id]
    res = cli("--config", str(config_file), "bulk-cancel", "--resume-unfinished", "--yes",
              "--json-summary")  # fmt: skip
    assert outcome(res)["status"] == "nothing_to_do"
    assert f"Not resumed: {run_id}, started at a terminal" in res.stderr
    assert not sandbox.cancel_commits
