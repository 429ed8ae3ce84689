"""The README's crontab line, taken from the README itself and run the way cron runs it:
``env -i HOME=... PATH=/usr/bin:/bin /bin/sh -c '<line>' </dev/null``, no terminal, no
virtualenv on PATH, against a sandbox served by ``paycancel sandbox`` in another
process, night after night: each night's lines in ``nightly.jsonl`` carry the right
exit code and run id, and the next night finishes what an earlier one left."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import SENTINEL

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CRON = README[README.index("## Running from cron") : README.index("## Safety")]
PAYCANCEL = Path(sys.executable).parent / "paycancel"  # the venv's, as installed

# What the README names, and what the test puts there.
INSTALLED = "/opt/paycancel/bin/paycancel"
CONFIG = "/etc/paycancel/config.toml"
LOGS = "/var/log/paycancel"
JOURNAL = "/var/lib/paycancel/journal.sqlite3"
ID_SOURCE = "/usr/local/bin/returned-rentals"
METRICS = "/var/lib/prometheus/node-exporter/paycancel.prom"
PING_URL = "https://hc-ping.com/YOUR-CHECK-UUID"


class PingServer:
    """A dead-man's switch on loopback that records what it is sent: (path, body)."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[tuple[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen.append((self.path, self.rfile.read(length).decode()))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.seen = seen
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/{SENTINEL}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def crontab_line() -> tuple[list[str], str]:
    """The schedule fields and the command of the README's one crontab entry."""
    block = CRON[CRON.index("```cron") :]
    block = block[: block.index("```", 3)]
    entries = [ln for ln in block.splitlines() if re.match(r"^[\d*]", ln)]
    assert len(entries) == 1, entries
    fields = entries[0].split(None, 5)
    return fields[:5], fields[5]


class Sandbox:
    """``paycancel sandbox`` in a process of its own; its printed config."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [str(PAYCANCEL), "sandbox", "--port", "0", "--json", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.info: dict[str, Any] = json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Machine:
    """The README's paths under ``tmp_path``, a config, and the rental system's script."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.logs = tmp_path / "log"
        self.logs.mkdir()
        self.config = tmp_path / "etc" / "config.toml"
        self.config.parent.mkdir()
        self.journal = tmp_path / "lib" / "journal.sqlite3"
        self.ids = tmp_path / "returned.txt"  # what the script prints tonight
        self.script = tmp_path / "bin" / "returned-rentals"
        self.script.parent.mkdir()
        self.script.write_text(
            "#!/bin/sh\n"
            f'[ -e "{tmp_path}/source-fails" ] && {{ echo "rentals db down" >&2; exit 1; }}\n'
            f'[ "$1 $2" = "--since yesterday" ] || exit 64\ncat "{self.ids}"\n'
        )
        self.script.chmod(0o755)
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.seen = 0
        self.metrics = tmp_path / "node-exporter" / "paycancel.prom"
        self.metrics.parent.mkdir()
        self.pings = PingServer()
        schedule, line = crontab_line()
        assert schedule[1] not in ("2", "02"), "02:xx local is the daylight-saving hour"
        for named, here in [
            (INSTALLED, PAYCANCEL),
            (CONFIG, self.config),
            (LOGS, self.logs),
            (ID_SOURCE, self.script),
            (METRICS, self.metrics),
            (PING_URL, self.pings.url),
        ]:
            assert named in line, named
            line = line.replace(named, str(here))
        self.line = line

    def configure(self, sandbox: Sandbox, api_key: str | None = None) -> None:
        account = dict(sandbox.info["accounts"]["flexportal"])
        if api_key is not None:
            account["api_key"] = api_key
        body = f"[defaults]\njournal = {json.dumps(str(self.journal))}\n\n"
        body += "[accounts.flexportal_eu]\n"
        body += "".join(f"{k} = {json.dumps(v)}\n" for k, v in account.items())
        self.config.write_text(body)
        self.config.chmod(0o600)

    def tonight(self, ids: str) -> None:
        self.ids.write_text(ids)

    def start(self) -> subprocess.Popen[bytes]:
        """The line, as cron runs it: a clean environment, /bin/sh, no terminal."""
        return subprocess.Popen(
            ["env", "-i", f"HOME={self.home}", "PATH=/usr/bin:/bin", "/bin/sh", "-c", self.line],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # no controlling terminal
        )

    def night(self) -> list[dict[str, Any]]:
        self.start().wait(180)
        return self.lines()

    def monitored(self, tonight: dict[str, Any]) -> None:
        """Tonight's invocation reached the metrics file and the dead-man's switch with
        its own exit code, and the ping URL's secret part reached no log."""
        exit_code = tonight["exit_code"]
        assert f'paycancel_last_run_exit_code{{job_name="paycancel"}} {exit_code}.0' in (
            self.metrics.read_text()
        )
        path, body = self.pings.seen[-1]
        assert path.endswith(f"/{exit_code}"), self.pings.seen
        if tonight["run_id"]:
            assert tonight["run_id"] in body
        for log in self.logs.iterdir():
            assert SENTINEL not in log.read_text(), log

    def lines(self) -> list[dict[str, Any]]:
        """The lines this night added to nightly.jsonl."""
        lines = (self.logs / "nightly.jsonl").read_text().splitlines()
        new, self.seen = lines[self.seen :], len(lines)
        return [json.loads(line) for line in new]

    def run(self, run_id: str) -> tuple[str, dict[str, int]]:
        db = sqlite3.connect(self.journal)
        try:
            (status,) = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            counts = dict(
                db.execute(
                    "SELECT outcome, count(*) FROM payments WHERE run_id = ? GROUP BY 1", (run_id,)
                ).fetchall()
            )
        finally:
            db.close()
        return str(status), {str(k): int(v) for k, v in counts.items()}

    def cancels(self) -> list[tuple[str, str, int]]:
        """(run, payment, cancel requests sent) of every payment journaled cancelled."""
        db = sqlite3.connect(self.journal)
        try:
            return list(
                db.execute(
                    "SELECT run_id, payment_id, attempts FROM payments"
                    " WHERE outcome = 'cancelled' ORDER BY run_id, payment_id"
                )
            )
        finally:
            db.close()


def expect(line: dict[str, Any], exit_code: int, status: str, code: str | None = None) -> None:
    assert (line["exit_code"], line["status"], line["code"]) == (exit_code, status, code), line
    assert line["started_at"] and line["finished_at"]


DEMO = ["fpay_demo_pending_01", "fpay_demo_failed_01"]  # rent_demo_01's open payments


@pytest.mark.timeout(600)
def test_the_readme_crontab_night_after_night(tmp_path: Path) -> None:
    machine = Machine(tmp_path)

    # A revoked key: the run is journaled with its subscriptions still to list (exit 3).
    sandbox = Sandbox()
    machine.configure(sandbox, api_key=f"fpk_revoked_{SENTINEL}")
    machine.tonight("rent_demo_01\n")
    resumed, revoked = machine.night()
    expect(resumed, 0, "nothing_to_do")
    expect(revoked, 3, "failed", "auth_failed")
    machine.monitored(revoked)
    assert machine.run(revoked["run_id"]) == ("interrupted", {})
    assert SENTINEL not in (machine.logs / "errors.log").read_text()

    # The night after, key fixed, no returns: the revoked night's run is finished.
    machine.configure(sandbox)
    machine.tonight("")
    resumed, tonight = machine.night()
    expect(resumed, 0, "completed")
    assert resumed["run_id"] == revoked["run_id"] and resumed["outcomes"] == {"cancelled": 2}
    expect(tonight, 0, "nothing_to_do")
    assert tonight["run_id"] is None
    machine.monitored(tonight)
    sandbox.stop()

    # A normal night (a fresh sandbox: rent_demo_01 open again); CRLF and a blank line.
    sandbox = Sandbox()
    machine.configure(sandbox)
    machine.tonight("rent_demo_01\r\n\r\n")
    resumed, normal = machine.night()
    expect(resumed, 0, "nothing_to_do")
    expect(normal, 0, "completed")
    machine.monitored(normal)
    assert normal["outcomes"] == {"cancelled": 2} and normal["subscriptions"] == {"rent_demo_01": 2}
    assert machine.run(normal["run_id"]) == ("completed", {"cancelled": 2})

    # A malformed id: nothing is started (exit 2).
    machine.tonight("rent_demo_01\nrent demo 02\n")
    _, malformed = machine.night()
    expect(malformed, 2, "not_started", "input_error")
    machine.monitored(malformed)
    assert "line 2" in malformed["message"] and malformed["run_id"] is None

    # The id source fails: no run, and the night says so (exit 2), never a quiet night.
    (tmp_path / "source-fails").touch()
    _, failing = machine.night()
    expect(failing, 2, "not_started", "id_source_failed")
    machine.monitored(failing)
    assert "exit status 1" in failing["message"]
    assert "rentals db down" in (machine.logs / "errors.log").read_text()
    (tmp_path / "source-fails").unlink()
    sandbox.stop()

    # The provider down (nothing listens): the run is kept with tonight's subscriptions.
    machine.tonight("rent_demo_01\n")
    resumed, down = machine.night()
    expect(resumed, 0, "nothing_to_do")
    expect(down, 5, "failed", "unavailable")
    machine.monitored(down)
    assert down["run_id"] and f"--resume {down['run_id']}" in down["message"]

    # The night after, the provider back (fresh: rent_demo_01 open) and no returns: the
    # line finishes the earlier night's run, each payment cancelled once.
    sandbox = Sandbox()
    machine.configure(sandbox)
    machine.tonight("")
    resumed, tonight = machine.night()
    expect(resumed, 0, "completed")
    assert resumed["run_id"] == down["run_id"] and resumed["outcomes"] == {"cancelled": 2}
    expect(tonight, 0, "nothing_to_do")
    assert machine.run(down["run_id"]) == ("completed", {"cancelled": 2})
    sandbox.stop()

    # Two runs overlapping (a slow provider): one does the work, the other gets the lock
    # error (exit 4); neither line hides the other.
    sandbox = Sandbox("--latency-ms", "3000")
    machine.configure(sandbox)
    machine.tonight("rent_demo_01\n")
    first = machine.start()
    time.sleep(2.0)
    second = machine.start()
    first.wait(180)
    second.wait(180)
    sandbox.stop()
    lines = machine.lines()
    assert len(lines) == 4, lines
    tonights = [ln for ln in lines if ln["status"] != "nothing_to_do"]
    by_code = {ln["exit_code"]: ln for ln in tonights}
    assert sorted(by_code) == [0, 4], tonights
    expect(by_code[4], 4, "not_started", "locked")
    assert by_code[4]["run_id"] is None
    expect(by_code[0], 0, "completed")
    assert by_code[0]["outcomes"] == {"cancelled": 2}

    # Each sandbox's two open payments were cancelled by one run, with one cancel each
    # (four sandboxes: the revoked night's, the down night's, the normal and the
    # overlapping nights'), and nothing is left unfinished.
    cancels = machine.cancels()
    runs = [revoked["run_id"], normal["run_id"], down["run_id"], by_code[0]["run_id"]]
    assert cancels == sorted((run, p, 1) for run in runs for p in DEMO), cancels
    listed = subprocess.run(
        [str(PAYCANCEL), "--config", str(machine.config), "runs", "--unfinished", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout == ""
    preflight = [
        json.loads(ln) for ln in (machine.logs / "preflight.jsonl").read_text().splitlines()
    ]
    assert preflight, "config check runs first every night"
    # every line paycancel wrote to errors.log says when (the id source's own line aside)
    stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
    log = (machine.logs / "errors.log").read_text().splitlines()
    assert log and all(stamped.match(ln) or ln == "rentals db down" for ln in log if ln), log
    machine.pings.stop()
