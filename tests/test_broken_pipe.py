"""A closed standard output (``| head -1``, a monitor that stops reading) at three
points of a real bulk run: before the first cancel, mid-run, during the summary.  The
process ends within seconds (the hang guard is a generous ``wait`` timeout, not a
speed target), exits 130 with the resume command on stderr, leaves nothing
``in_flight``, and ``--resume`` finishes the run with every payment cancelled exactly
once by the sandbox's own count."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from paycancel_cli.journal import Journal
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import write_config

PAYCANCEL = [sys.executable, "-m", "paycancel_cli"]
HANG_GUARD_S = 60  # a hang, not a slowness: the run itself takes about a second


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class Setup:
    def __init__(self, tmp_path: Path, sb: Sandbox, n: int) -> None:
        self.sb = sb
        self.ids = [sb.add_payment("hedgepayments", status="pending", amount=100) for _ in range(n)]
        self.config = write_config(tmp_path / "c.toml", sb.account_config())
        self.csv = tmp_path / "in.csv"
        self.csv.write_text("payment_id\n" + "\n".join(self.ids) + "\n")
        self.journal = tmp_path / "j.sqlite3"
        self.env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(self.journal)}
        self.err = tmp_path / "stderr.txt"

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        args = [
            *("--config", str(self.config), "bulk-cancel", str(self.csv)),
            *("--account", "hedgepayments", "--reason", "pipe", "--yes", *extra),
        ]
        return subprocess.Popen(
            [*PAYCANCEL, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.err.open("wb"),
            env=self.env,
        )

    def run_status(self) -> str | None:
        runs = Journal(self.journal).runs() if self.journal.exists() else []
        return runs[0].status if runs else None

    def check_stopped_cleanly(self, proc: subprocess.Popen[bytes]) -> str:
        """Exit 130 with the resume command; every payment either planned or done."""
        code = proc.wait(HANG_GUARD_S)
        err = self.err.read_text()
        assert code == 130, err
        assert "Traceback" not in err and "Exception ignored" not in err, err
        assert "paycancel --config" in err and "bulk-cancel --resume" in err, err
        (run,) = Journal(self.journal).runs()
        rows = list(Journal(self.journal).payments(run.run_id))
        assert {r.state for r in rows} <= {"planned", "done"}, err  # nothing left in_flight
        recorded = {r.payment_id for r in rows if r.outcome is not None}
        committed = {pid for (_, pid), n in self.sb.cancel_commits.items() if n}
        assert recorded == committed  # every cancel the provider took is journaled
        return run.run_id

    def resume_finishes_exactly_once(self, run_id: str) -> None:
        resumed = subprocess.run(
            [
                *PAYCANCEL,
                "--config",
                str(self.config),
                "bulk-cancel",
                "--resume",
                run_id,
                "--yes",
                "--json",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=HANG_GUARD_S,
        )
        assert resumed.returncode == 0, resumed.stderr
        summary = json.loads(resumed.stdout.splitlines()[-1])
        assert summary["type"] == "summary" and summary["remaining"] == 0
        assert summary["outcomes"] == {"cancelled": len(self.ids)}
        assert all(self.sb.cancel_commits[("hedgepayments", i)] == 1 for i in self.ids)
        assert self.run_status() == "completed"


@pytest.mark.timeout(180)
def test_stdout_closed_before_the_first_cancel_sends_nothing(tmp_path: Path) -> None:
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=20)) as sb:
        s = Setup(tmp_path, sb, 20)
        proc = s.start("--json")
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone before the run starts
        run_id = s.check_stopped_cleanly(proc)
        assert sum(sb.cancel_commits.values()) == 0
        assert s.run_status() == "interrupted"
        s.resume_finishes_exactly_once(run_id)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["--json", "--no-color"])
def test_stdout_closed_mid_run_stops_new_cancels(tmp_path: Path, mode: str) -> None:
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=40)) as sb:
        s = Setup(tmp_path, sb, 60)
        proc = s.start(mode, "--concurrency", "2")
        assert proc.stdout is not None
        wait_for(lambda: sum(sb.cancel_commits.values()) >= 4)
        if mode == "--json":
            proc.stdout.readline()  # a reader that took one line and left (`| head -1`)
        proc.stdout.close()
        run_id = s.check_stopped_cleanly(proc)
        assert 4 <= sum(sb.cancel_commits.values()) < 60
        assert s.run_status() == "interrupted"
        s.resume_finishes_exactly_once(run_id)


@pytest.mark.timeout(180)
def test_stdout_closed_during_the_summary(tmp_path: Path) -> None:
    with Sandbox(seed_demo=False) as sb:
        s = Setup(tmp_path, sb, 90)  # results and summary: more than the pipe holds
        proc = s.start("--no-color")
        assert proc.stdout is not None
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        wait_for(lambda: s.run_status() == "completed")  # every payment done; now printing
        proc.stdout.close()
        run_id = s.check_stopped_cleanly(proc)
        assert sum(sb.cancel_commits.values()) == 90
        s.resume_finishes_exactly_once(run_id)


def closed_from_the_start(args: list[str], tmp_path: Path) -> str:
    """Run paycancel with its stdout's reader gone from the start; its stderr, once it
    ended with exit 130 and no traceback."""
    env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3")}
    proc = subprocess.Popen(
        [*PAYCANCEL, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(HANG_GUARD_S) == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "standard output was closed" in err, err
    return err


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args",
    [
        ["status", "pay_demopending01", "--account", "hedgepayments"],
        ["status", "pay_demopending01", "--account", "hedgepayments", "--json"],
        ["runs", "--json"],
        ["config", "show"],
    ],
    ids=["status", "status-json", "runs-json", "config-show"],
)
def test_read_only_commands_end_on_a_closed_stdout(tmp_path: Path, args: list[str]) -> None:
    closed_from_the_start(["--sandbox", *args], tmp_path)


@pytest.mark.timeout(120)
def test_single_cancel_with_stdout_closed_sends_nothing(tmp_path: Path) -> None:
    with Sandbox(seed_demo=False) as sb:
        pid = sb.add_payment("hedgepayments", status="pending", amount=1000)
        config = write_config(tmp_path / "c.toml", sb.account_config())
        args = ["--config", str(config), "cancel", pid, "-a", "hedgepayments", "--reason", "r"]
        err = closed_from_the_start([*args, "--yes", "--json"], tmp_path)
        assert "nothing was sent" in err, err
        assert sum(sb.cancel_commits.values()) == 0
