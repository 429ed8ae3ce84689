"""Under --json the last stdout line is always this invocation's outcome: a command
that stops before its summary ends with one error record, the message as on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.csvinput import Source
from paycancel_cli.locks import Lock
from paycancel_cli.sandbox import Sandbox

from .conftest import CliResult, write_config


def error_record(res: CliResult, exit_code: int, code: str) -> str:
    """Assert the error record and the one stderr line agree; return the message."""
    assert res.code == exit_code, res.stderr
    last = json.loads(res.stdout.splitlines()[-1])
    assert set(last) == {"type", "exit_code", "code", "message"}
    assert (last["type"], last["exit_code"], last["code"]) == ("error", exit_code, code)
    message: str = last["message"]
    assert message in res.stderr
    return message


def test_config_error_exit_2(cli: Any, config_file: Path) -> None:
    res = cli("--config", str(config_file), "status", "pay_demopending01", "-a", "nope", "--json")
    message = error_record(res, 2, "config_error")
    assert res.stderr.splitlines()[-1] == f"Error: {message}"


def test_usage_error_from_the_parser_exit_2(cli: Any) -> None:
    res = cli("status", "X", "--json", "--bogus")
    message = error_record(res, 2, "usage_error")
    assert message == "No such option: --bogus"


def test_repeated_option_exit_2(cli: Any) -> None:
    res = cli("status", "X", "--json", "-a", "a", "-a", "b")
    message = error_record(res, 2, "usage_error")
    assert res.stderr == f"Error: {message}\n"


def test_rejected_credentials_exit_3(cli: Any, tmp_path: Path, sandbox: Sandbox) -> None:
    fields = {**sandbox.account_config()["hedgepayments"], "api_key": "sk_test_wrong"}
    config = write_config(tmp_path / "bad.toml", {"hedge": fields})
    res = cli("--config", str(config), "status", "pay_demopending01", "--json")
    message = error_record(res, 3, "auth_failed")
    assert "rejected the credentials of account 'hedge'" in message


def test_a_401_result_carries_its_http_status(cli: Any, tmp_path: Path, sandbox: Sandbox) -> None:
    fields = {**sandbox.account_config()["hedgepayments"], "api_key": "sk_test_wrong"}
    config = write_config(tmp_path / "bad.toml", {"hedge": fields})
    csv = tmp_path / "ids.csv"
    csv.write_text("payment_id\npay_demopending01\n")
    res = cli("--config", str(config), "bulk-cancel", str(csv), "--reason", "x", "--yes", "--json")
    assert res.code == 3
    result = next(line for line in res.json_lines() if line["type"] == "result")
    assert result["error"]["code"] == "auth_failed"
    assert result["error"]["http_status"] == 401


def test_lock_held_exit_4_and_wait_with_a_limit(
    cli: Any, config_file: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nhedgepayments,pay_demopending01\n")
    journal = Path(tmp_path / "journal.sqlite3")
    holder = Lock(journal, f"input-{Source(str(csv)).sha256()[:32]}")
    holder.acquire(what="test")
    try:
        args = ["--config", str(config_file), "bulk-cancel", str(csv), "--reason", "x", "--yes"]
        res = cli(*args, "--json")
        message = error_record(res, 4, "locked")
        assert message.startswith(f"The same input ({csv}) is being worked on by process ")
        waited = cli(*args, "--json", "--wait", "0.3")
        message = error_record(waited, 4, "locked")
        assert "after waiting 0.3 s" in message
        assert "Waiting for process" in waited.stderr and "(at most 0.3 s)" in waited.stderr
        # a dry run sends nothing and takes no lock
        dry = cli(*args, "--dry-run", "--json")
        assert dry.code == 0, dry.stderr
        assert dry.json_lines()[-1]["type"] == "summary"
        checked = cli(*args, "--validate-only", "--json")
        assert checked.code == 0, checked.stderr
        assert checked.json_lines()[-1]["type"] == "validation"
    finally:
        holder.release()
    assert sum(n for (_, op), n in sandbox.counts.items() if op == "cancel") == 0


def test_end_of_input_at_the_prompt_exit_130(cli: Any, config_file: Path) -> None:
    args = ["--config", str(config_file), "cancel", "fpi_demo_requires_action_01", "-a", "flex"]
    res = cli(*args, "--reason", "x", "--json", stdin="")
    message = error_record(res, 130, "interrupted")
    assert message == "Stopped at the prompt; nothing was sent."
    assert res.stderr.splitlines()[-1] == message


@pytest.mark.parametrize("answer", ["n\n", "\n", "no\n"])
def test_declining_is_a_plain_sentence(cli: Any, config_file: Path, answer: str) -> None:
    args = ["--config", str(config_file), "cancel", "fpi_demo_requires_action_01", "-a", "flex"]
    res = cli(*args, "--reason", "x", stdin=answer)
    assert res.code == 1
    assert res.stderr.splitlines()[-1].endswith(
        "Not cancelled: you did not confirm; nothing was sent."
    )
    assert "Error" not in res.stderr


def test_a_signal_during_a_read_ends_with_the_error_record(tmp_path: Path) -> None:
    """Ctrl-C while `status` waits for the provider: typer would turn it into a silent
    exit 130; the monitor still gets its error record and the operator one line."""
    import os
    import signal
    import time

    from paycancel_cli.sandbox import Faults

    from .conftest import spawn

    with Sandbox(faults=Faults(latency_ms=20_000)) as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        proc = spawn(
            [
                "--config",
                str(config),
                "status",
                "pay_demopending01",
                "-a",
                "hedgepayments",
                "--json",
            ],
            dict(os.environ),
        )
        deadline = time.monotonic() + 60
        while not sb.counts[("hedgepayments", "get")] and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(out.splitlines()[-1]) == {
        "type": "error",
        "exit_code": 130,
        "code": "interrupted",
        "message": "Interrupted; nothing more was sent.",
    }
    assert err.splitlines()[-1] == "Interrupted; nothing more was sent."
