"""First contact, as a new operator meets paycancel: no config yet, the example config,
the sandbox command, and the help's examples at 80 columns."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PAYCANCEL = [sys.executable, "-m", "paycancel_cli"]


def test_an_unknown_account_with_no_config_says_how_to_start(cli: Any) -> None:
    res = cli("status", "pay_123", "--account", "hedge")
    assert res.code == 2
    assert "Unknown account 'hedge'" in res.stderr
    for hint in ("searched:", "config example", "--sandbox"):
        assert hint in res.stderr, res.stderr
    assert "Configured accounts: none" not in res.stderr


def test_config_show_with_no_config_names_the_searched_paths_once_and_the_journal(
    cli: Any, tmp_path: Path
) -> None:
    res = cli("config", "show")
    searched = str(tmp_path / "xdg-config" / "paycancel" / "config.toml")
    assert (res.stdout + res.stderr).count(searched) == 1, res.stdout + res.stderr
    assert f"Journal: {tmp_path / 'journal.sqlite3'}" in res.stdout
    record = cli("config", "show", "--json").json_lines()[-1]
    assert record["journal"] == str(tmp_path / "journal.sqlite3")


def test_the_example_configs_placeholders_are_not_keys(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(cli("config", "example").stdout)
    config.chmod(0o600)
    for name in ("FLEXPORTAL_EU", "HEDGE", "FLEX", "VIPPS_NO", "COMPAGO"):  # never a real host
        monkeypatch.setenv(f"PAYCANCEL_ACCOUNTS__{name}__BASE_URL", "http://127.0.0.1:9")
    shown = cli("--config", str(config), "config", "show")
    assert shown.stdout.count("placeholder, not a key") >= 5, shown.stdout
    secrets = [
        s
        for line in cli("--config", str(config), "config", "show", "--json").json_lines()
        if line["type"] == "account"
        for s in line["secrets"]
    ]
    assert secrets and all(s["placeholder"] for s in secrets if s["field"] == "api_key")
    checked = cli("--config", str(config), "config", "check")
    assert checked.code == 2, checked.stdout + checked.stderr
    assert checked.stdout.count("placeholder, not a key") == 5, checked.stdout
    assert "unreachable" not in checked.stdout  # nothing was sent


def test_sandbox_output_writes_a_private_config_with_its_own_journal(
    cli: Any, tmp_path: Path
) -> None:
    path = tmp_path / "sb.toml"
    proc = subprocess.Popen(
        [*PAYCANCEL, "sandbox", "--port", "0", "--output", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        while not path.exists() or b"compago" not in path.read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "journal-sandbox.sqlite3" in path.read_text()
        res = cli("--config", str(path), "status", "pay_demopending01", "-a", "hedgepayments")
        assert res.code == 0, res.stderr
        assert "readable" not in res.stderr and "mode" not in res.stderr, res.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


COMMANDS = [[], ["status"], ["cancel"], ["bulk-cancel"], ["runs"], ["runs", "show"]]
COMMANDS += [["sandbox"], ["config"], ["config", "show"], ["config", "check"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "paycancel")
def test_help_examples_fit_80_columns_and_say_sandbox_where_they_need_it(
    command: list[str],
) -> None:
    shown = subprocess.run(
        [*PAYCANCEL, *command, "-h"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=60,
    ).stdout
    examples = shown.split("Examples:", 1)[1].splitlines()
    assert examples
    for line in examples:
        assert len(line) <= 80, line  # a terminal would break it inside an argument
        if "demo" in line and "sb.toml" not in line:  # demo payments live in the sandbox
            assert "--sandbox" in line, line


def test_bulk_cancel_help_names_the_csv_columns() -> None:
    shown = subprocess.run(
        [*PAYCANCEL, "bulk-cancel", "-h"], capture_output=True, text=True, timeout=60
    ).stdout
    flat = " ".join(shown.split())
    for column in ("payment_id", "subscription_id", "account", "reason", "expected_amount",
                   "expected_currency"):  # fmt: skip
        assert column in flat, column


def test_readme_says_what_status_shows_for_hedgepayments_and_how_to_get_paycancel_back(
    cli: Any,
) -> None:
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    shown = cli("--sandbox", "status", "pay_demopending01", "-a", "hedgepayments").stdout
    header = next(line for line in shown.splitlines() if "payment id" in line).split()
    assert "refunded" in header and "authorized" not in header and "captured" not in header
    assert "HedgePayments gives one aggregate, its refunded amount" in readme
    assert "in a new shell, activate it again" in readme
