"""Early-return cleanups: --subscription selection through FlexPortal's list API,
request efficiency, locks between cron runs, --max-payments, cron-like conditions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import spawn, write_config

MIX = {"pending": 150, "failed": 60, "paid": 12, "processing": 8}  # 230 payments


def subscription(sb: Sandbox, rental: str = "rent_early_230") -> tuple[str, list[str]]:
    return rental, sb.seed_subscription(rental, MIX)


def test_subscription_cleanup_cancels_exactly_the_open_payments(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    rental, ids = subscription(sandbox)
    other = sandbox.seed_subscription("rent_other", {"pending": 3})
    sandbox.reset_counters()
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "--subscription",
        rental,
        "--account",
        "flexportal",
        "--reason",
        "early return",
        "--yes",
        "--json",
    )
    assert res.code == 0, res.stderr
    lines = res.json_lines()
    summary = lines[-1]
    assert summary["outcomes"] == {"cancelled": 210} and summary["total"] == 210
    assert summary["cancelled_amounts"][0]["currency"] == "EUR"
    for pid in ids:
        status_before = sandbox.payment("flexportal", pid)
        assert sandbox.cancel_commits[("flexportal", pid)] == (
            1 if status_before["status"] == "cancelled" else 0
        )
    statuses = {sandbox.payment("flexportal", pid)["status"] for pid in ids}
    assert statuses == {"cancelled", "paid", "processing"}
    assert all(sandbox.cancel_commits[("flexportal", pid)] == 0 for pid in other)
    # list pages gave the before state and cancel answers the after state: no GET per payment
    pages = sandbox.counts[("flexportal", "list")]
    assert pages == 3  # pending: 100 + 50, failed: 60
    assert sandbox.counts[("flexportal", "get")] == 0
    assert summary["requests"] == sandbox.counts[("flexportal", "cancel")] + pages
    assert summary["requests"] <= 210 + pages + 2
    result = next(line for line in lines if line["type"] == "result")
    assert result["before"]["status"] in ("pending", "failed")
    assert result["after"]["status"] == "cancelled"


def test_a_second_run_finds_nothing_open_and_exits_0(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    rental, _ = subscription(sandbox)
    args = (
        "--config",
        str(config_file),
        "bulk-cancel",
        "--subscription",
        rental,
        "--account",
        "flexportal",
        "--reason",
        "r",
        "--yes",
        "--json",
    )
    assert cli(*args).code == 0
    again = cli(*args)
    assert again.code == 0
    summary = again.json_lines()[-1]
    assert summary["total"] == 0 and summary["outcomes"] == {}


def test_already_cancelled_by_the_platform_is_a_success(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    rental, ids = subscription(sandbox)
    path = tmp_path / "subs.csv"
    path.write_text(f"subscription_id,account\n{rental},flexportal\n")
    # the platform voided part of the rental's payments after our list call: simulate it
    # by cancelling some now and then passing their ids in a CSV
    first = cli(
        "--config", str(config_file), "bulk-cancel", str(path), "--reason", "r", "--yes", "--json"
    )
    assert first.code == 0, first.stderr
    ids_csv = tmp_path / "ids.csv"
    voided = [i for i in ids if sandbox.payment("flexportal", i)["status"] == "cancelled"][:20]
    ids_csv.write_text("payment_id,account\n" + "".join(f"{i},flexportal\n" for i in voided))
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        str(ids_csv),
        "--reason",
        "r",
        "--yes",
        "--json",
    )
    outcomes = {r["outcome"] for r in res.json_lines() if r["type"] == "result"}
    assert outcomes == {"already_cancelled"} and res.code == 0


@pytest.mark.parametrize("provider", ["vipps", "compago", "hedgepayments", "flex"])
def test_providers_that_cannot_list_say_so(
    cli: Any, sandbox: Sandbox, config_file: Path, provider: str
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "--subscription",
        "sub_1",
        "--account",
        provider,
        "--reason",
        "r",
        "--yes",
    )
    assert res.code == 2
    assert "cannot list" in res.stderr and "CSV" in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_max_payments_refuses_before_any_cancel(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    rental, _ = subscription(sandbox)
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "--subscription",
        rental,
        "--account",
        "flexportal",
        "--reason",
        "r",
        "--yes",
        "--max-payments",
        "100",
    )
    assert res.code == 2 and "selects 210 payments" in res.stderr
    assert sandbox.counts[("flexportal", "cancel")] == 0


def test_overlapping_cron_runs_do_not_double_cancel(tmp_path: Path) -> None:
    with Sandbox(faults=Faults(latency_ms=30)) as sb:
        rental, ids = subscription(sb)
        second_rental = sb.seed_subscription("rent_second", {"pending": 5})
        config = write_config(tmp_path / "c.toml", sb.account_config())
        env = {
            **os.environ,
            "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3"),
            "NO_COLOR": "1",
        }
        base = [
            "--config",
            str(config),
            "bulk-cancel",
            "--account",
            "flexportal",
            "--reason",
            "early return",
            "--yes",
            "--json",
            "--concurrency",
            "2",
        ]
        first = spawn([*base, "--subscription", rental], env)
        deadline = time.monotonic() + 30
        while sum(sb.cancel_commits.values()) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        # the same subscription, and an overlapping set, while the first still runs
        same = spawn([*base, "--subscription", rental], env)
        overlap = spawn([*base, "--subscription", "rent_second", "--subscription", rental], env)
        _, same_err = same.communicate(timeout=60)
        overlap.communicate(timeout=60)
        assert same.returncode == 4 and "being worked on" in same_err
        assert overlap.returncode == 4
        waiting = spawn([*base, "--subscription", rental, "--wait"], env)
        first.communicate(timeout=120)
        waiting.communicate(timeout=120)
        assert first.returncode == 0 and waiting.returncode == 0
        assert max(sb.cancel_commits.values()) == 1
        assert sum(sb.cancel_commits[("flexportal", i)] for i in ids) == 210
        assert all(sb.cancel_commits[("flexportal", i)] == 0 for i in second_rental)


def test_cron_like_conditions_print_no_escape_codes_or_progress(tmp_path: Path) -> None:
    with Sandbox() as sb:
        rentals = [subscription(sb, f"rent_cron_{n}")[0] for n in range(3)]
        config = write_config(tmp_path / "c.toml", sb.account_config())
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TERM")}
        env.update(
            {
                "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3"),
                "NO_COLOR": "1",
                "TERM": "xterm-256color",
            }
        )

        def cron(*args: str) -> tuple[int, str, str]:
            read_end, write_end = os.pipe()
            os.close(write_end)  # stdin at end of file from the start, as under cron
            command = [
                sys.executable,
                "-m",
                "paycancel_cli",
                "--config",
                str(config),
                "bulk-cancel",
                "--account",
                "flexportal",
                "--reason",
                "cron",
                *args,
            ]
            proc = subprocess.Popen(
                command,
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            os.close(read_end)
            out, err = proc.communicate(timeout=120)
            return proc.returncode, out, err

        for rental, extra in ((rentals[0], []), (rentals[1], ["--json"])):
            code, out, err = cron("--subscription", rental, "--yes", *extra)
            assert code == 0, err
            assert "\x1b" not in out + err
            assert "ETA" not in err and "cancelling" not in err  # no progress bar
        # without --yes, a cron run refuses instead of prompting
        code, _, err = cron("--subscription", rentals[2])
        assert code == 2 and "--yes" in err
        assert all(
            sb.cancel_commits[("flexportal", p)] == 0
            for p in sb.seed_subscription("rent_unused", {"pending": 1})
        )


def test_progress_bar_shows_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import select

    with Sandbox(faults=Faults(latency_ms=5)) as sb:
        rental, _ = subscription(sb)
        config = write_config(tmp_path / "c.toml", sb.account_config())
        env = {
            **os.environ,
            "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3"),
            "TERM": "xterm",
            "COLUMNS": "120",
        }
        env.pop("NO_COLOR", None)
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "paycancel_cli",
                "--config",
                str(config),
                "bulk-cancel",
                "--subscription",
                rental,
                "--account",
                "flexportal",
                "--reason",
                "r",
                "--yes",
                "--json",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        chunks = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal closed with the child
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(60)
        os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "210/210" in shown and "cancelled=210" in shown  # done/total, counts per outcome
    assert "ETA" in shown and "/s" in shown  # estimated time left and rate
