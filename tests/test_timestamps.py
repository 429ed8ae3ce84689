"""``--timestamps``: every line paycancel writes to stderr begins with the UTC time, so a
cron log that collects many nights says which night said what; stdout is untouched."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

from paycancel_cli.stamped import Stamped

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
ROOT = Path(__file__).resolve().parent.parent


def paycancel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paycancel_cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_every_stderr_line_of_a_run_begins_with_the_time() -> None:
    done = paycancel(
        "--sandbox", "bulk-cancel", str(ROOT / "examples" / "demo.csv"),
        "--reason", "demo", "--yes", "--json-summary", "--timestamps",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # some demo payments cannot be cancelled
    lines = [ln for ln in done.stderr.splitlines() if ln]
    assert lines and all(STAMP.match(ln) for ln in lines), lines
    (outcome,) = [json.loads(ln) for ln in done.stdout.splitlines()]
    assert outcome["type"] == "outcome" and outcome["exit_code"] == 1


def test_an_error_line_is_stamped_and_says_error() -> None:
    done = paycancel("--timestamps", "bulk-cancel", "no-such.csv", "--reason", "x")
    assert done.returncode == 2
    (line,) = [ln for ln in done.stderr.splitlines() if ln]
    assert STAMP.match(line) and line[len("2026-12-05T03:17:02Z ") :].startswith("Error: ")


def test_without_the_option_nothing_is_stamped() -> None:
    done = paycancel("bulk-cancel", "no-such.csv", "--reason", "x")
    assert done.returncode == 2 and done.stderr.startswith("Error: ")


def test_a_line_written_in_pieces_is_stamped_once() -> None:
    inner = io.StringIO()
    stream = Stamped(inner)  # type: ignore[arg-type]
    stream.write("Run 1: ")
    stream.write("3 payments\nsecond")
    stream.write(" line\n")
    lines = inner.getvalue().splitlines()
    assert len(lines) == 2 and all(STAMP.match(ln) for ln in lines), lines
    assert [STAMP.sub("", ln) for ln in lines] == ["Run 1: 3 payments", "second line"]
