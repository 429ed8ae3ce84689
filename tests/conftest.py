"""Shared fixtures: a clean environment, the sandbox, config files, and the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import stamina
from hypothesis import settings

from paycancel_cli.cli import run
from paycancel_cli.sandbox import Faults, Sandbox

# Shared machines are noisy: no per-example time limit (a slow example is not a bug here).
settings.register_profile("paycancel", deadline=None, print_blob=True)
settings.load_profile("paycancel")

SENTINEL = "SENTINEL-s3cr3t-d0-not-leak-4242"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PAYCANCEL_* from the machine; user dirs inside tmp_path; retries without sleeping."""
    for name in list(os.environ):
        if name.startswith("PAYCANCEL_") or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAYCANCEL_DEFAULTS__JOURNAL", str(tmp_path / "journal.sqlite3"))


@pytest.fixture(autouse=True)
def no_retry_sleep() -> Iterator[None]:
    stamina.set_testing(True, attempts=8)
    yield
    stamina.set_testing(False)


@dataclass
class Retries:
    """What the production retry policy did: the wait stamina chose before each retry."""

    waits: list[float]


@pytest.fixture
def real_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[Retries]:
    """The production retry policy, as it runs for an operator: its own attempt count
    and backoff (stamina's test mode, which overrides both, is off).  Each wait stamina
    chose is recorded through its retry hook; the sleep itself takes no time."""
    import asyncio

    from stamina.instrumentation import (
        RetryDetails,
        get_on_retry_hooks,
        set_on_retry_hooks,
    )

    seen = Retries([])
    hooks = get_on_retry_hooks()

    def record(details: RetryDetails) -> None:
        seen.waits.append(details.wait_for)

    real_sleep = asyncio.sleep

    async def no_sleep(delay: float, result: Any = None) -> Any:
        return await real_sleep(0, result)

    stamina.set_testing(False)
    set_on_retry_hooks([*hooks, record])
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    yield seen
    set_on_retry_hooks(hooks)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """``make_sandbox(**kw)`` starts a ``Sandbox`` that is stopped after the test, which
    then asserts that no simulator handler failed."""
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        sandbox = Sandbox(**kwargs).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()
        assert sandbox.handler_errors == []


def write_config(path: Path, accounts: dict[str, dict[str, Any]], mode: int = 0o600) -> Path:
    lines = []
    for name, fields in accounts.items():
        lines.append(f"[accounts.{name}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in fields.items())
        lines.append("")
    path.write_text("\n".join(lines))
    path.chmod(mode)
    return path


@pytest.fixture
def config_file(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A config with the sandbox's five accounts."""
    return write_config(tmp_path / "config.toml", sandbox.account_config())


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the CLI in-process; ``stdin`` text makes it look like a terminal."""

    def invoke(*args: str, stdin: str | None = None) -> CliResult:
        capsys.readouterr()
        if stdin is not None:
            stream = io.StringIO(stdin)
            stream.isatty = lambda: True  # type: ignore[method-assign]
            monkeypatch.setattr("sys.stdin", stream)
        else:
            monkeypatch.setattr("sys.stdin", io.StringIO(""))
        code = run(list(args))
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return invoke


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """paycancel in its own process (signals, locks, crashes), stdin closed."""
    return subprocess.Popen(
        [sys.executable, "-m", "paycancel_cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


class PtyProcess:
    """paycancel on a pseudo-terminal, as an operator runs it: stdin, stdout and stderr
    are the terminal, and Ctrl-C or Ctrl-D typed on it reach the process the way a
    keyboard's do (the line discipline turns them into SIGINT and end of input)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become paycancel
            os.execvpe(sys.executable, [sys.executable, "-m", "paycancel_cli", *args], env)  # noqa: S606
        self.output = b""
        self.code: int | None = None

    def read_until(self, text: str, timeout: float = 60.0) -> str:
        """Everything shown so far, once ``text`` has appeared (or the process ended)."""
        import select
        import time

        deadline = time.monotonic() + timeout
        while text.encode() not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                self.output += chunk
        return self.output.decode(errors="replace")

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_until("\x00", timeout=0.05)  # keep draining so it never blocks
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                self.read_until("\x00", timeout=1.0)  # what it wrote just before it ended
                return self.code
        return None

    def close(self) -> None:
        import signal

        if self.code is None:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)


__all__ = ["SENTINEL", "CliResult", "Faults", "PtyProcess", "Retries", "write_config"]
