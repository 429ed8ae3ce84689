"""Exit 5 (try again later), resume of transient failures and of finished runs, the
validation record of a refused input, runs --limit, sandbox hints, LIVE wording, and the
resume command on a line of its own."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.journal import Journal
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import spawn, write_config


def cancels(sb: Sandbox) -> int:
    return sum(n for (_, op), n in sb.counts.items() if op == "cancel")


def closed_port_account(sb: Sandbox, provider: str) -> dict[str, Any]:
    """The sandbox's account for ``provider``, pointed at a port nothing listens on."""
    return {**sb.account_config()[provider], "base_url": "http://127.0.0.1:9"}


def test_an_unreachable_provider_exits_5_and_marks_the_failure_transient(
    cli: Any, tmp_path: Path, sandbox: Sandbox
) -> None:
    config = write_config(
        tmp_path / "c.toml", {"hedge": closed_port_account(sandbox, "hedgepayments")}
    )
    csv = tmp_path / "ids.csv"
    csv.write_text("payment_id\npay_demopending01\n")
    res = cli("--config", str(config), "bulk-cancel", str(csv), "--reason", "x", "--yes", "--json")
    assert res.code == 5, res.stderr
    result, summary = res.json_lines()[-2:]
    assert result["outcome"] == "failed"
    assert result["error"]["transient"] is True
    assert summary["type"] == "summary" and summary["outcomes"] == {"failed": 1}


def test_a_failure_a_person_must_look_at_outranks_5(
    cli: Any, tmp_path: Path, sandbox: Sandbox
) -> None:
    accounts = {
        "hedge": closed_port_account(sandbox, "hedgepayments"),
        "flexportal": sandbox.account_config()["flexportal"],
    }
    config = write_config(tmp_path / "c.toml", accounts)
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nhedge,pay_demopending01\nflexportal,fpay_demo_paid_01\n")
    res = cli("--config", str(config), "bulk-cancel", str(csv), "--reason", "x", "--yes", "--json")
    assert res.code == 1, res.stderr
    assert res.json_lines()[-1]["outcomes"] == {"failed": 1, "not_cancellable": 1}


def test_5xx_beyond_the_retries_exits_5_and_resume_finishes_the_run(
    cli: Any, config_file: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    csv = tmp_path / "ids.csv"
    csv.write_text(
        "account,payment_id\nhedgepayments,pay_demopending01\nflex,fpi_demo_requires_action_01\n"
    )
    sandbox.faults = Faults(fail_rate=1.0)
    first = cli(
        "--config", str(config_file), "bulk-cancel", str(csv), "--reason", "x", "--yes", "--json"
    )
    assert first.code == 5, first.stderr
    summary = first.json_lines()[-1]
    assert summary["outcomes"] == {"failed": 2}
    sandbox.faults = Faults()
    resumed = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "--resume",
        summary["run_id"],
        "--yes",
        "--json",
    )
    assert resumed.code == 0, resumed.stderr
    assert resumed.json_lines()[-1]["outcomes"] == {"cancelled": 2}
    assert sum(sandbox.cancel_commits.values()) == 2
    # resuming it again: finished, says so, exits 0, sends nothing
    before = cancels(sandbox)
    again = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "--resume",
        summary["run_id"],
        "--yes",
        "--json",
    )
    assert again.code == 0
    assert f"Run {summary['run_id']} is finished" in again.stderr
    assert again.json_lines()[-1]["type"] == "summary"
    assert cancels(sandbox) == before


def test_a_finished_run_with_refusals_resumes_to_exit_0(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nflexportal,fpay_demo_paid_01\n")
    args = ["--config", str(config_file), "bulk-cancel"]
    first = cli(*args, str(csv), "--reason", "x", "--yes", "--json")
    assert first.code == 1
    run_id = first.json_lines()[-1]["run_id"]
    again = cli(*args, "--resume", run_id, "--yes")
    assert again.code == 0
    assert again.stderr.splitlines()[0] == (
        f"Run {run_id} is finished: every payment has its outcome, nothing was sent. Its "
        f"results: paycancel runs show {run_id}"
    )


def test_status_and_cancel_unreachable_exit_5(cli: Any, tmp_path: Path, sandbox: Sandbox) -> None:
    account = closed_port_account(sandbox, "hedgepayments")
    config = write_config(tmp_path / "c.toml", {"hedge": account})
    status = cli("--config", str(config), "status", "pay_demopending01", "--json")
    assert status.code == 5
    line = status.json_lines()[-1]
    assert line["type"] == "payment_error" and line["error"]["transient"] is True
    args = ["--config", str(config), "cancel", "pay_demopending01", "--reason", "x", "--yes"]
    cancel = cli(*args, "--json")
    assert cancel.code == 5
    result, summary = cancel.json_lines()
    assert result["outcome"] == "failed" and result["error"]["transient"] is True
    assert summary["outcomes"] == {"failed": 1} and summary["remaining"] == 0


def test_cancel_json_summary_has_remaining(cli: Any, config_file: Path) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "pay_demopending01",
        "-a",
        "hedgepayments",
        "--reason",
        "x",
        "--yes",
        "--json",
    )
    assert res.code == 0, res.stderr
    summary = res.json_lines()[-1]
    assert summary["type"] == "summary" and summary["remaining"] == 0
    assert summary["outcomes"] == {"cancelled": 1}


def test_validate_only_json_prints_the_validation_record_of_invalid_rows(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nhedgepayments,pay_demopending01\nhedgepayments,bad/id\n")
    res = cli("--config", str(config_file), "bulk-cancel", str(csv), "--validate-only", "--json")
    assert res.code == 2
    validation, error = res.json_lines()[-2:]
    assert validation["type"] == "validation"
    # rows counts every data row, the invalid one too
    assert (validation["rows"], validation["valid"], validation["invalid"]) == (2, 1, 1)
    assert (error["type"], error["exit_code"], error["code"]) == ("error", 2, "input_error")
    assert error["message"].startswith(f"1 invalid row(s) in {csv}")


def test_runs_limit(cli: Any, config_file: Path, tmp_path: Path) -> None:
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nhedgepayments,pay_demopending01\n")
    ids = []
    for _ in range(3):
        res = cli("--config", str(config_file), "bulk-cancel", str(csv), "--dry-run", "--json")
        ids.append(res.json_lines()[-1]["run_id"])
        time.sleep(0.01)  # start times have millisecond resolution
    listed = cli("--config", str(config_file), "runs", "--limit", "2", "--json")
    assert [line["run_id"] for line in listed.json_lines()] == ids[::-1][:2]
    assert cli("--config", str(config_file), "runs", "--limit", "0").code == 2


def test_a_sandbox_run_id_without_sandbox_gets_a_hint(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYCANCEL_DEFAULTS__JOURNAL")  # the sandbox keeps its own journal
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nhedgepayments,pay_demopending01\n")
    run = cli("--sandbox", "bulk-cancel", str(csv), "--dry-run", "--json")
    run_id = run.json_lines()[-1]["run_id"]
    config = write_config(
        tmp_path / "c.toml", {"h": {"provider": "hedgepayments", "api_key": "sk_test_x"}}
    )
    shown = cli("--config", str(config), "runs", "show", run_id)
    assert shown.code == 2
    assert shown.stderr.splitlines()[-1].endswith(
        "It is a run in the built-in sandbox: add --sandbox "
        f"(paycancel --sandbox runs show {run_id})."
    )
    resumed = cli("--config", str(config), "bulk-cancel", "--resume", run_id, "--yes")
    assert resumed.code == 2
    assert resumed.stderr.splitlines()[-1].endswith(
        f"add --sandbox (paycancel --sandbox bulk-cancel --resume {run_id})."
    )
    assert cli("--sandbox", "runs", "show", run_id).code == 0


def test_sandbox_with_config_says_what_it_takes_from_it(cli: Any, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml", {"h": {"provider": "hedgepayments", "api_key": "sk_test_x"}}
    )
    res = cli(
        "--sandbox", "--config", str(config), "status", "pay_demopending01", "-a", "hedgepayments"
    )
    assert res.code == 0, res.stderr
    assert res.stderr.splitlines()[0] == (
        f"Note: --sandbox uses the built-in sandbox accounts; from {config} only [defaults] "
        "(journal, concurrency) applies, its accounts are not used."
    )


def test_one_live_account_is_named_in_the_singular(
    cli: Any, tmp_path: Path, sandbox: Sandbox
) -> None:
    fields = {**sandbox.account_config()["flexportal"], "environment": "live"}
    config = write_config(tmp_path / "live.toml", {"portal_live": fields})
    res = cli("--config", str(config), "cancel", "fpay_demo_pending_01", "--reason", "r", "--yes")
    assert res.code == 2
    assert res.stderr.splitlines() == [
        "Error: Account portal_live is LIVE and there is no terminal to confirm on: pass "
        "--yes --live to cancel on it non-interactively. Nothing was sent."
    ]


def test_the_resume_command_is_one_unwrapped_line(tmp_path: Path) -> None:
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=30)) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=100) for _ in range(40)]
        # a long path: the command is far wider than the 40 columns the terminal claims
        deep = tmp_path / ("a-rather-long-directory-name-" * 3)
        deep.mkdir()
        config = write_config(deep / "config.toml", sb.account_config())
        csv_path = tmp_path / "in.csv"
        csv_path.write_text("payment_id\n" + "\n".join(ids) + "\n")
        env = {
            **os.environ,
            "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3"),
            "COLUMNS": "40",
        }
        args = ["--config", str(config), "bulk-cancel", str(csv_path), "--reason", "r"]
        proc = spawn([*args, "-a", "hedgepayments", "--yes", "--concurrency", "2"], env)
        deadline = time.monotonic() + 60
        while sum(sb.cancel_commits.values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        (run,) = Journal(tmp_path / "j.sqlite3").runs()
        expected = f"  paycancel --config {config} bulk-cancel --resume {run.run_id} --yes"
        assert expected in err.splitlines()


def test_an_interrupted_single_cancel_prints_its_resume_command_on_its_own_line(
    tmp_path: Path,
) -> None:
    with Sandbox(faults=Faults(latency_ms=1500)) as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3")}
        args = ["--config", str(config), "cancel", "pay_demopending01", "-a", "hedgepayments"]
        proc = spawn([*args, "--reason", "r", "--yes"], env)
        deadline = time.monotonic() + 60
        while sb.counts[("hedgepayments", "cancel")] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (run,) = Journal(tmp_path / "j.sqlite3").runs()
    lines = err.splitlines()
    assert lines[-1] == f"  paycancel --config {config} bulk-cancel --resume {run.run_id} --yes"
    assert lines[-2].startswith("Error: Interrupted while the cancel of pay_demopending01 may")


def test_requeue_puts_back_only_transient_failures_read_first_where_sent(tmp_path: Path) -> None:
    from paycancel_cli.journal import PlanRow
    from paycancel_cli.models import ErrorInfo, Outcome, Result

    journal = Journal(tmp_path / "j.sqlite3")
    journal.start_run(
        "r1", user="u", host="h", command="c", input="i", input_hash="x", reason="r",
        options={"kind": "bulk", "accounts": ["a"]},
    )  # fmt: skip
    journal.plan("r1", [PlanRow("a", "hedgepayments", p, "r", f"k-{p}") for p in "xyzw"])
    unreachable = ErrorInfo("unavailable", "down", 503, transient=True)
    for pid, outcome, error, attempts in (
        ("x", Outcome.FAILED, unreachable, 0),  # failed on its read: nothing sent
        ("y", Outcome.FAILED, unreachable, 3),  # cancels sent: may have been applied
        ("z", Outcome.FAILED, ErrorInfo("bad_answer", "unreadable"), 1),  # a person looks
        ("w", Outcome.NOT_CANCELLABLE, ErrorInfo("paid", "paid"), 0),
    ):
        journal.mark_done(
            Result("r1", "a", "hedgepayments", pid, outcome, error=error, attempts=attempts)
        )
    assert journal.transient_per_account("r1") == {"a": 2}
    assert journal.requeue_transient("r1") == 2
    states = {row.payment_id: (row.state, row.outcome) for row in journal.payments("r1")}
    assert states == {
        "x": ("planned", None),
        "y": ("in_flight", None),
        "z": ("done", Outcome.FAILED),
        "w": ("done", Outcome.NOT_CANCELLABLE),
    }


def test_the_resume_command_names_the_config_by_its_whole_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given as `--config sb.toml`, the command still works when copied from a cron log
    into a shell in another directory."""
    from paycancel_cli.commands.common import Globals, resume_command

    monkeypatch.chdir(tmp_path)
    g = Globals(config_path=Path("sb.toml"))
    assert resume_command(g, "RUN", yes=True, live=False) == (
        f"paycancel --config {tmp_path / 'sb.toml'} bulk-cancel --resume RUN --yes"
    )
