"""Ctrl-C and end of input at every confirmation prompt, typed on a real terminal.

The operator must be able to back out at the prompt: the command ends at once with
exit 130, no cancel reaches the provider, and the journal holds nothing in flight or
planned (a run and its payments are journaled only after the operator confirmed).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from paycancel_cli.sandbox import Sandbox

from .conftest import PtyProcess, write_config

CTRL_C = b"\x03"
CTRL_D = b"\x04"  # end of input on a terminal
# Generous: the point is "does not keep waiting", not a speed; before the fix the
# prompt ignored Ctrl-C for ever.
EXIT_WITHIN_S = 15.0


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def unfinished_payments(path: Path) -> int:
    """Payments the journal holds as planned or in flight (none when there is no
    journal yet)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT count(*) FROM payments WHERE state != 'done'").fetchone()
        return int(row[0])
    finally:
        db.close()


def cancels_seen(sb: Sandbox) -> int:
    return sum(n for (_, op), n in sb.counts.items() if op == "cancel")


def back_out_at(args: list[str], prompt: str, key: bytes, sandbox: Sandbox) -> None:
    """Run paycancel on a terminal up to ``prompt``, type ``key``; it must end with 130
    at once, the sandbox must have seen no cancel and the journal hold nothing in flight
    or planned."""
    proc = PtyProcess(args, dict(os.environ))
    try:
        shown = proc.read_until(prompt)
        assert prompt in shown, shown
        proc.type(key)
        assert proc.wait(EXIT_WITHIN_S) == 130, proc.output
        if key == CTRL_D:  # (after Ctrl-C the terminal itself may drop output in flight)
            assert "Stopped at the prompt; nothing was sent." in proc.output.decode()
    finally:
        proc.close()
    assert cancels_seen(sandbox) == 0
    assert unfinished_payments(Path(os.environ["PAYCANCEL_DEFAULTS__JOURNAL"])) == 0


KEYS = pytest.mark.parametrize("key", [CTRL_C, CTRL_D], ids=["ctrl-c", "end-of-input"])


@KEYS
def test_cancel_prompt_backs_out_at_once(tmp_path: Path, sandbox: Sandbox, key: bytes) -> None:
    config = write_config(tmp_path / "sb.toml", sandbox.account_config())
    args = ["--config", str(config), "cancel", "fpi_demo_requires_action_01"]
    back_out_at([*args, "--account", "flex", "--reason", "x"], "[y/N]", key, sandbox)


@KEYS
def test_live_typed_name_prompt_backs_out_at_once(
    tmp_path: Path, sandbox: Sandbox, key: bytes
) -> None:
    fields = {**sandbox.account_config()["flexportal"], "environment": "live"}
    config = write_config(tmp_path / "live.toml", {"portal_live": fields})
    args = ["--config", str(config), "cancel", "fpay_demo_pending_01", "--reason", "x"]
    back_out_at(args, "type the account name (portal_live)", key, sandbox)


@KEYS
def test_bulk_prompt_backs_out_at_once(tmp_path: Path, sandbox: Sandbox, key: bytes) -> None:
    config = write_config(tmp_path / "sb.toml", sandbox.account_config())
    csv = tmp_path / "ids.csv"
    csv.write_text(
        "account,payment_id\nflex,fpi_demo_requires_action_01\nflexportal,fpay_demo_pending_01\n"
    )
    args = ["--config", str(config), "bulk-cancel", str(csv), "--reason", "x"]
    back_out_at(args, "[y/N]", key, sandbox)


def test_bulk_subscription_prompt_backs_out_at_once(tmp_path: Path, sandbox: Sandbox) -> None:
    """The plan of a subscription run is built from list pages (network) before it is
    shown: the prompt still sits outside the event loop."""
    config = write_config(tmp_path / "sb.toml", sandbox.account_config())
    args = ["--config", str(config), "bulk-cancel", "--subscription", "rent_demo_01"]
    back_out_at([*args, "--account", "flexportal", "--reason", "x"], "[y/N]", CTRL_C, sandbox)
