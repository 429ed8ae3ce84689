"""Monitoring cron runs: `bulk-cancel --metrics-file PATH [--job-name NAME]` and
`--ping-url URL` (SPEC "Monitoring cron runs").

Every exit code a cron night can end with writes the metrics file; the last success
time survives failing nights; the file is replaced whole; a real node_exporter reads it
and promtool accepts it; pings reach a loopback server that records them, and a ping
server that is down, slow or failing changes nothing but a warning line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from paycancel_cli import monitoring
from paycancel_cli.journal import Journal
from paycancel_cli.locks import Lock
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import SENTINEL, spawn, write_config

OUTCOMES = (
    "cancelled", "already_cancelled", "not_cancellable", "not_found", "failed",
    "would_cancel", "invalid",
)  # fmt: skip


def metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The file's samples: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, job: str = "paycancel", **labels: str) -> float:
    return samples[(name, tuple(sorted({"job_name": job, **labels}.items())))]


def payments(samples: dict[Any, float], job: str = "paycancel") -> dict[str, float]:
    return {o: value(samples, "paycancel_last_run_payments", job, outcome=o) for o in OUTCOMES}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(binary: str) -> str:
    """The binary's path; a test that needs it fails in CI (which installs it) and is
    skipped only on a developer's machine without it."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; .ci/run installs it with apt-get")
        pytest.skip(f"{binary} is not installed (apt-get install prometheus-node-exporter)")
    return path


# a loopback dead-man's switch that records its pings


@dataclass
class PingServer:
    mode: str = "ok"  # ok | 500 | slow | slow_start
    pings: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, body
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.pings]


@pytest.fixture
def ping_server() -> Iterator[PingServer]:
    state = PingServer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if state.mode == "slow_start" and self.path.endswith("/start"):
                time.sleep(1.5)  # the check service hears of the start late
            state.pings.append((self.command, self.path, body))
            if state.mode == "slow":
                state.release.wait(60)
            code = 500 if state.mode == "500" else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/{SENTINEL}"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


def csv_file(path: Path, *rows: str) -> Path:
    path.write_text("account,payment_id\n" + "".join(f"{r}\n" for r in rows))
    return path


def closed_port_account(sb: Sandbox, provider: str) -> dict[str, Any]:
    return {**sb.account_config()[provider], "base_url": f"http://127.0.0.1:{free_port()}"}


# every exit code of a cron night


def test_every_exit_code_writes_the_file_and_only_success_moves_the_last_success(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    prom_dir = tmp_path / "textfile"
    prom_dir.mkdir()
    prom = prom_dir / "paycancel.prom"
    good = write_config(tmp_path / "good.toml", sandbox.account_config())
    bad_key = write_config(
        tmp_path / "bad.toml",
        {"hedgepayments": {**sandbox.account_config()["hedgepayments"], "api_key": "sk_test_x"}},
    )
    down = write_config(
        tmp_path / "down.toml", {"hedgepayments": closed_port_account(sandbox, "hedgepayments")}
    )
    journal = tmp_path / "journal.sqlite3"

    def night(config: Path, csv: Path, *extra: str) -> Any:
        args = ["--config", str(config), "bulk-cancel", str(csv), "--reason", "r", "--yes"]
        return cli(*args, "--json", "--metrics-file", str(prom), *extra)

    def pending() -> str:
        return "hedgepayments," + sandbox.add_payment("hedgepayments", status="pending", amount=250)

    # A reader polling the file all night long: every read is a whole file.
    reads: list[str] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):
                reads.append(prom.read_text())
            time.sleep(0.0005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        assert not prom.exists()
        first = night(good, csv_file(tmp_path / "n0.csv", pending(), pending()))
        assert first.code == 0, first.stderr
        samples = metrics(prom)
        success = value(samples, "paycancel_last_success_timestamp_seconds")
        assert value(samples, "paycancel_last_run_timestamp_seconds") == success
        assert value(samples, "paycancel_last_run_exit_code") == 0
        assert payments(samples)["cancelled"] == 2 and sum(payments(samples).values()) == 2
        assert value(samples, "paycancel_last_run_released", currency="USD") == 5.0
        assert value(samples, "paycancel_last_run_requests") == 2
        assert value(samples, "paycancel_last_run_duration_seconds") > 0

        paid = "flexportal,fpay_demo_paid_01"
        lines = csv_file(tmp_path / "n4.csv", pending())
        nights: list[tuple[int, Any, dict[str, int]]] = []
        nights.append((1, lambda: night(good, csv_file(tmp_path / "n1.csv", paid, pending())),
                       {"not_cancellable": 1, "cancelled": 1}))  # fmt: skip
        nights.append((2, lambda: night(good, csv_file(tmp_path / "n2.csv", "hedgepayments,a/b")),
                       {}))  # fmt: skip
        nights.append((3, lambda: night(bad_key, csv_file(tmp_path / "n3.csv", pending())),
                       {"failed": 1}))  # fmt: skip

        def locked() -> Any:
            digest = hashlib.sha256(lines.read_bytes()).hexdigest()
            holder = Lock(journal, f"input-{digest[:32]}")
            holder.acquire(what="another night")
            try:
                return night(good, lines)
            finally:
                holder.release()

        nights.append((4, locked, {}))
        nights.append((5, lambda: night(down, csv_file(tmp_path / "n5.csv", pending())),
                       {"failed": 1}))  # fmt: skip
        for code, go, counts in nights:
            time.sleep(0.01)  # each night's end time differs from the last
            with open(prom) as old:  # held open: its inode cannot be reused meanwhile
                res = go()
                # replaced by a rename, never rewritten in place
                assert os.fstat(old.fileno()).st_ino != prom.stat().st_ino
            assert res.code == code, (code, res.stderr)
            samples = metrics(prom)
            assert value(samples, "paycancel_last_run_exit_code") == code
            assert payments(samples) == {o: counts.get(o, 0) for o in OUTCOMES}, code
            assert value(samples, "paycancel_last_success_timestamp_seconds") == success, code
            assert value(samples, "paycancel_last_run_timestamp_seconds") > success
            assert sorted(p.name for p in prom_dir.iterdir()) == ["paycancel.prom"], code

        # A success again moves it; with no payment at all, a night is a success too.
        (tmp_path / "empty.csv").write_text("account,payment_id\n")
        again = night(good, tmp_path / "empty.csv")
        assert again.code == 0, again.stderr
        samples = metrics(prom)
        assert value(samples, "paycancel_last_success_timestamp_seconds") > success
        assert sum(payments(samples).values()) == 0
    finally:
        done.set()
        poller.join()
    assert len(reads) > 10
    for text in reads:  # the old file or the new one, never a part of one
        assert text.endswith("\n") and "paycancel_last_run_requests{" in text
        metrics_families = list(text_string_to_metric_families(text))
        assert len(metrics_families) == 7


def test_an_interrupted_night_writes_130_and_keeps_the_last_success(tmp_path: Path) -> None:
    prom = tmp_path / "paycancel.prom"
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=30)) as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3")}
        args = ["--config", str(config), "bulk-cancel", "--reason", "r", "-a", "hedgepayments"]
        args += ["--yes", "--metrics-file", str(prom), "--job-name", "nightly"]
        first = tmp_path / "first.csv"
        first.write_text(
            "payment_id\n" + sb.add_payment("hedgepayments", status="pending", amount=100) + "\n"
        )
        proc = spawn([*args, str(first)], env)
        assert proc.wait(60) == 0, proc.communicate()
        success = value(metrics(prom), "paycancel_last_success_timestamp_seconds", "nightly")
        ids = [sb.add_payment("hedgepayments", status="pending", amount=100) for _ in range(40)]
        second = tmp_path / "second.csv"
        second.write_text("payment_id\n" + "\n".join(ids) + "\n")
        proc = spawn([*args, str(second), "--concurrency", "2"], env)
        deadline = time.monotonic() + 60
        while sum(sb.cancel_commits.values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
    samples = metrics(prom)
    assert value(samples, "paycancel_last_run_exit_code", "nightly") == 130
    assert value(samples, "paycancel_last_success_timestamp_seconds", "nightly") == success
    done = payments(samples, "nightly")
    assert 3 <= done["cancelled"] < 40 and sum(done.values()) == done["cancelled"]
    assert sorted(p.name for p in tmp_path.iterdir() if "prom" in p.name) == ["paycancel.prom"]


def test_a_file_of_another_job_or_not_prometheus_text_starts_afresh(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    prom = tmp_path / "paycancel.prom"
    csv = csv_file(tmp_path / "in.csv", "flexportal,fpay_demo_paid_01")
    args = ["--config", str(config_file), "bulk-cancel", str(csv), "--reason", "r", "--yes"]
    prom.write_text('paycancel_last_success_timestamp_seconds{job_name="other"} 5\n')
    res = cli(*args, "--metrics-file", str(prom))
    assert res.code == 1
    assert not any("success" in name for name, _ in metrics(prom))
    prom.write_text("this is not { prometheus\n")
    res = cli(*args, "--metrics-file", str(prom))
    assert res.code == 1
    warnings = [line for line in res.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "is not Prometheus text" in warnings[0]
    assert value(metrics(prom), "paycancel_last_run_exit_code") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics-file", "{tmp}/paycancel.txt"], "name it *.prom"),
        (["--metrics-file", "{tmp}/missing/paycancel.prom"], "does not exist or cannot be"),
        (["--job-name", "nightly"], "give --metrics-file PATH too"),
        (["--ping-url", f"ftp://ping.example/{SENTINEL}"], "absolute https:// URL"),
        (["--ping-url", f"http://ping.example/{SENTINEL}"], "only allowed on loopback"),
        (["--ping-url", "https://ping.example/"], "names no check"),
        (["--ping-url", f"https://ping.example:port/{SENTINEL}"], "absolute https:// URL"),
        (["--ping-url", f"https://[::1/{SENTINEL}"], "not a URL"),
    ],
)
def test_bad_monitoring_options_exit_2_before_anything_is_sent(
    cli: Any, config_file: Path, sandbox: Sandbox, tmp_path: Path, extra: list[str], message: str
) -> None:
    csv = csv_file(tmp_path / "in.csv", "hedgepayments,pay_demopending01")
    args = ["--config", str(config_file), "bulk-cancel", str(csv), "--reason", "r", "--yes"]
    res = cli(*args, *(e.format(tmp=tmp_path) for e in extra))
    assert res.code == 2
    assert message in res.stderr and "Nothing was sent." in res.stderr
    assert SENTINEL not in res.stdout + res.stderr
    assert sum(sandbox.counts.values()) == 0


# a real node_exporter and promtool read the file


def test_node_exporter_serves_the_file_and_promtool_accepts_it(
    cli: Any, config_file: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    exporter = require("prometheus-node-exporter")
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    prom = textfile / "paycancel.prom"
    pending = sandbox.add_payment("hedgepayments", status="pending", amount=1234)
    csv = csv_file(tmp_path / "in.csv", f"hedgepayments,{pending}", "flexportal,fpay_demo_paid_01")
    args = ["--config", str(config_file), "bulk-cancel", str(csv), "--reason", "r", "--yes"]
    assert cli(*args, "--metrics-file", str(prom), "--job-name", "nightly").code == 1
    port = free_port()
    proc = subprocess.Popen(
        [
            exporter,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfile}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    assert scraped.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("node_textfile_scrape_error", ())] == 0
    assert value(samples, "paycancel_last_run_exit_code", "nightly") == 1
    assert payments(samples, "nightly") == {
        o: {"cancelled": 1, "not_cancellable": 1}.get(o, 0) for o in OUTCOMES
    }
    assert value(samples, "paycancel_last_run_released", "nightly", currency="USD") == 12.34
    assert ("paycancel_last_success_timestamp_seconds", (("job_name", "nightly"),)) not in samples
    assert families["paycancel_last_run_exit_code"].type == "gauge"
    assert "exit code" in families["paycancel_last_run_exit_code"].documentation
    promtool = require("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=prom.read_text(), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# pings


def test_a_slow_start_ping_still_reaches_the_check_before_the_end_ping(
    cli: Any, config_file: Path, sandbox: Sandbox, tmp_path: Path, ping_server: PingServer
) -> None:
    # the pings run on threads of their own: the end must not overtake a slow start,
    # or the check would read the run as started after it ended
    ping_server.mode = "slow_start"
    pending = sandbox.add_payment("hedgepayments", status="pending", amount=100)
    csv = csv_file(tmp_path / "in.csv", f"hedgepayments,{pending}")
    args = ["--config", str(config_file), "bulk-cancel", str(csv), "--reason", "r", "--yes"]
    res = cli(*args, "--ping-url", ping_server.url)
    assert res.code == 0, res.stderr
    assert ping_server.paths() == [f"/{SENTINEL}/start", f"/{SENTINEL}/0"]


def test_pings_start_then_the_exit_code_with_a_summary(
    cli: Any, config_file: Path, sandbox: Sandbox, tmp_path: Path, ping_server: PingServer
) -> None:
    pending = sandbox.add_payment("hedgepayments", status="pending", amount=1234)
    csv = csv_file(tmp_path / "in.csv", f"hedgepayments,{pending}", "flexportal,fpay_demo_paid_01")
    args = ["--config", str(config_file), "bulk-cancel", str(csv), "--reason", "r", "--yes"]
    res = cli(*args, "--json", "--ping-url", ping_server.url)
    assert res.code == 1, res.stderr
    summary = res.json_lines()[-1]
    assert [(m, p) for m, p, _ in ping_server.pings] == [
        ("GET", f"/{SENTINEL}/start"),
        ("POST", f"/{SENTINEL}/1"),
    ]
    body = ping_server.pings[-1][2]
    assert body.splitlines() == [
        "paycancel bulk-cancel: exit 1",
        f"run: {summary['run_id']}",
        "payments: 2 (cancelled 1, not_cancellable 1)",
        "released: 12.34 USD",
        "requests: 2",
    ]
    assert "Warning" not in res.stderr
    # stopped before the run started (an invalid row): no start, the error in the body
    bad = csv_file(tmp_path / "bad.csv", "hedgepayments,a/b")
    res = cli("--config", str(config_file), "bulk-cancel", str(bad), "--reason", "r", "--yes",
              "--ping-url", ping_server.url)  # fmt: skip
    assert res.code == 2
    assert ping_server.paths()[2:] == [f"/{SENTINEL}/2"]
    body = ping_server.pings[-1][2]
    assert body.startswith("paycancel bulk-cancel: exit 2\nrun: none started\n")
    assert f"stopped early: 1 invalid row(s) in {bad}" in body


@pytest.mark.parametrize("mode", ["down", "500", "slow"])
def test_a_failing_ping_server_changes_nothing_but_a_warning_line(
    cli: Any,
    config_file: Path,
    sandbox: Sandbox,
    tmp_path: Path,
    ping_server: PingServer,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    monkeypatch.setattr(monitoring, "PING_BOUND_S", 1.0)  # the bound, made short to test
    ping_server.mode = mode
    url = ping_server.url
    if mode == "down":
        url = f"http://127.0.0.1:{free_port()}/{SENTINEL}"

    def rows(name: str) -> str:
        pending = sandbox.add_payment("hedgepayments", status="pending", amount=100)
        return str(
            csv_file(tmp_path / name, f"hedgepayments,{pending}", "flexportal,fpay_demo_paid_01")
        )

    args = ["--config", str(config_file), "bulk-cancel", "--reason", "r", "--yes", "--json"]
    plain = cli(*args, rows("a.csv"))
    began = time.monotonic()
    pinged = cli(*args, rows("b.csv"), "--ping-url", url)
    took = time.monotonic() - began
    assert pinged.code == plain.code == 1
    outcomes = [res.json_lines()[-1]["outcomes"] for res in (plain, pinged)]
    assert outcomes == [{"cancelled": 1, "not_cancellable": 1}] * 2
    warnings = [line for line in pinged.stderr.splitlines() if "ping" in line]
    shown = url.replace(SENTINEL, "[REDACTED]")
    problem = {
        "down": "ConnectError: All connection attempts failed",
        "500": "answered 500",
        "slow": "no answer within 1 s",
    }[mode]
    assert warnings == [
        f"Warning: the ping to {shown}/{suffix} failed ({problem}); the run and its exit "
        "code are not affected."
        for suffix in ("start", "1")
    ]
    if mode == "500":  # retried within the bound
        assert ping_server.paths().count(f"/{SENTINEL}/1") > 1
    # each ping ends within its bound (1 s here, 10 s in use): never the server's 60 s
    assert took < 1.0 * 2 + 8
    assert SENTINEL not in pinged.stdout + pinged.stderr


def test_the_ping_url_reaches_no_output_journal_report_or_runs_line(
    tmp_path: Path, ping_server: PingServer
) -> None:
    ping_server.mode = "500"  # warnings too
    with Sandbox() as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        journal = tmp_path / "journal" / "j.sqlite3"
        journal.parent.mkdir()
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(journal)}
        csv = csv_file(tmp_path / "in.csv", "hedgepayments,pay_demopending01")
        report = tmp_path / "report.jsonl"
        prom = tmp_path / "paycancel.prom"
        args = ["--config", str(config), "-v", "bulk-cancel", str(csv), "--reason", "r"]
        args += ["--yes", "--json", "--report", str(report), "--metrics-file", str(prom)]
        proc = spawn([*args, f"--ping-url={ping_server.url}"], env)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert ping_server.paths()[:1] == [f"/{SENTINEL}/start"]
        runs = spawn(["--config", str(config), "runs"], env).communicate(timeout=60)
        runs_json = spawn(["--config", str(config), "runs", "--json"], env).communicate(timeout=60)
    (run,) = Journal(journal).runs()
    # the journal keeps no part of a ping URL but the option's name
    assert run.command.endswith("--ping-url=[REDACTED]"), run.command
    assert "HTTP" in err or "->" in err  # -v logged the exchanges
    texts = [out, err, *runs, *runs_json, report.read_text(), prom.read_text()]
    texts += [p.read_bytes().decode("latin-1") for p in journal.parent.rglob("*") if p.is_file()]
    for text in texts:
        assert SENTINEL not in text


def test_help_loads_neither_prometheus_client_nor_a_ping_client() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from paycancel_cli.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    run(['--help']); run(['bulk-cancel', '--help'])\n"
        "print(sorted(m for m in ('prometheus_client', 'httpx') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# the README's alert rules


def test_the_readme_alert_rules_load_and_fire_on_a_stale_success(tmp_path: Path) -> None:
    import yaml

    promtool = require("promtool")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### Monitoring cron runs") :]
    block = section[section.index("```yaml\n") + 8 :]
    rules = tmp_path / "rules.yml"
    rules.write_text(block[: block.index("```")])
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (stale,) = [
        r for r in yaml.safe_load(rules.read_text())["groups"][0]["rules"]
        if r["alert"] == "PaycancelNoSuccessIn26h"
    ]  # fmt: skip
    # the last success at 0 (the epoch), then evaluated 1 h and 27 h later
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1h",
                "input_series": [
                    {
                        "series": 'paycancel_last_success_timestamp_seconds{job_name="paycancel"}',
                        "values": "0x30",
                    }
                ],
                "alert_rule_test": [
                    {"eval_time": "1h", "alertname": stale["alert"], "exp_alerts": []},
                    {
                        "eval_time": "27h",
                        "alertname": stale["alert"],
                        "exp_alerts": [
                            {
                                "exp_labels": {"job_name": "paycancel", **stale["labels"]},
                                "exp_annotations": stale["annotations"],
                            }
                        ],
                    },
                ],
            }
        ],
    }
    spec = tmp_path / "tests.yml"
    spec.write_text(yaml.safe_dump(tests))
    tested = subprocess.run([promtool, "test", "rules", str(spec)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
