"""`paycancel sandbox` serves the simulators and prints a config that works as is."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def test_sandbox_command_prints_a_working_config(cli: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "paycancel_cli", "sandbox", "--port", "0", "--latency-ms", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("[accounts.compago]")):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line.rstrip("\n"))
        while (line := proc.stdout.readline().rstrip("\n")) != "":
            lines.append(line)
        config = tmp_path / "sandbox.toml"
        config.write_text("\n".join(lines[1:]) + "\n")
        config.chmod(0o600)
        assert lines[0].startswith("# paycancel sandbox on http://127.0.0.1:")
        res = cli(
            "--config",
            str(config),
            "status",
            "pay_demopending01",
            "--account",
            "hedgepayments",
            "--json",
        )
        assert res.code == 0, res.stderr
        assert res.json_lines()[0]["amount"] == {"value": "99.99", "currency": "USD"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0


def test_sandbox_command_on_a_busy_port_exits_2(cli: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = cli("sandbox", "--port", str(port))
    assert res.code == 2 and "choose another --port" in res.stderr


def test_sandbox_command_json() -> None:
    import json

    proc = subprocess.Popen(
        [sys.executable, "-m", "paycancel_cli", "sandbox", "--port", "0", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert line["type"] == "sandbox" and line["base_url"].startswith("http://127.0.0.1:")
    assert set(line["accounts"]) == {"flexportal", "hedgepayments", "flex", "vipps", "compago"}
