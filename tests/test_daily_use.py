"""A day's work through the CLI: the runs history, a single cancel, ids that name their
account, and spreadsheet CSVs with a decimal comma."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from paycancel_cli.sandbox import Sandbox

from .conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "examples" / "demo.csv")
PAYCANCEL = [sys.executable, "-m", "paycancel_cli"]


def paycancel(*args: str, close_stdout: bool = False) -> subprocess.CompletedProcess[str]:
    """paycancel in its own process (the journaled command line is its real argv)."""
    if not close_stdout:
        return subprocess.run(
            [*PAYCANCEL, *args], capture_output=True, text=True, timeout=120, env=os.environ
        )
    proc = subprocess.Popen(
        [*PAYCANCEL, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # an interrupted run: stopped before its first cancel
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def test_runs_show_zones_dry_runs_quoting_pending_payments_and_id_prefixes(
    cli: Any, tmp_path: Path
) -> None:
    dry = paycancel("--sandbox", "bulk-cancel", DEMO, "--dry-run")
    assert dry.returncode == 1, dry.stderr
    stopped = paycancel(
        "--sandbox", "bulk-cancel", DEMO, "--reason", "early return", "--yes", "--json",
        close_stdout=True,
    )  # fmt: skip
    assert stopped.returncode == 130, stopped.stderr
    runs = cli("--sandbox", "runs", "--json").json_lines()
    newest, older = runs
    assert newest["command"].endswith("--reason 'early return' --yes --json"), newest
    assert (newest["dry_run"], older["dry_run"]) == (False, True)
    table = cli("--sandbox", "runs").stdout
    assert re.search(rf"{older['run_id']} +\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC +completed "
                     r"\(dry run\)", table), table  # fmt: skip
    # a unique prefix of the run id; the payments not processed yet are listed
    prefix = newest["run_id"][:18]
    shown = cli("--sandbox", "runs", "show", prefix)
    assert shown.code == 0, shown.stderr
    assert "Not processed yet (31; first 20 shown)" in shown.stdout
    assert re.search(r"^flexportal +fpay_demo_pending_01 +planned$", shown.stdout, re.M)
    ambiguous = cli("--sandbox", "runs", "show", newest["run_id"][:8])
    assert ambiguous.code == 2 and older["run_id"] in ambiguous.stderr
    resumed = cli("--sandbox", "bulk-cancel", "--resume", prefix, "--yes", "--json")
    assert resumed.code == 1, resumed.stderr
    assert resumed.json_lines()[-1]["run_id"] == newest["run_id"]


def test_single_cancel_shows_run_id_and_released_amount_and_says_each_thing_once(
    cli: Any,
) -> None:
    done = cli("--sandbox", "cancel", "pay_demopending01", "-a", "hedgepayments",
               "--reason", "x", "--yes")  # fmt: skip
    assert done.code == 0, done.stderr
    assert "Released: 99.99 USD" in done.stderr
    run_id = re.search(r"^Run id: (\S+)$", done.stderr, re.M)
    assert run_id is not None, done.stderr
    # the provider's `canceled` is only a spelling of ours: not shown beside it
    assert "canceled" not in done.stdout, done.stdout
    refused = cli("--sandbox", "cancel", "pay_demosucceeded01", "-a", "hedgepayments",
                  "--reason", "x", "--yes")  # fmt: skip
    assert refused.code == 1
    (line,) = [ln for ln in refused.stderr.splitlines() if "not_cancellable" in ln]
    why = line.split(": ", 1)[1]
    assert why == "not_cancellable succeeded: refund instead", line
    assert line.count("pay_demosucceeded01") == 1, line
    status = cli("--sandbox", "status", "pay_democanceled01", "-a", "hedgepayments")
    assert " canceled " not in status.stdout and "cancelled" in status.stdout, status.stdout


def test_the_live_prompt_accepts_the_account_name_in_any_case(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    fields = {**sandbox.account_config()["flexportal"], "environment": "live"}
    config = write_config(tmp_path / "live.toml", {"fp_live": fields})
    res = cli("--config", str(config), "cancel", "fpay_demo_pending_01", "--reason", "r",
              stdin="FP_LIVE\n")  # fmt: skip
    assert res.code == 0, res.stderr
    assert sandbox.cancel_commits[("flexportal", "fpay_demo_pending_01")] == 1


def test_an_id_whose_shape_fits_one_account_needs_no_account(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert cli("--sandbox", "status", "pay_demopending01").code == 0
    assert cli("--sandbox", "status", "fpay_demo_pending_01", "fpay_demo_paid_01").code == 0
    dry = cli("--sandbox", "cancel", "fpi_demo_requires_action_01", "--dry-run", "--json")
    assert dry.code == 0 and dry.json_lines()[0]["account"] == "flex", dry.stderr
    compago = cli("--sandbox", "status", "7d3f0b4e-0000-4000-8000-000000000001", "--json")
    assert compago.code == 0 and compago.json_lines()[0]["account"] == "compago"
    vipps = cli("--sandbox", "status", "demo-created-0001")  # a Vipps reference: any text
    assert vipps.code == 2 and "--account" in vipps.stderr
    mixed = cli("--sandbox", "status", "pay_demopending01", "fpay_demo_pending_01")
    assert mixed.code == 2 and "different accounts" in mixed.stderr
    hedge = sandbox.account_config()["hedgepayments"]
    accounts = {"hedge_a": hedge, "hedge_b": hedge, "flex": sandbox.account_config()["flex"]}
    config = write_config(tmp_path / "two.toml", accounts)
    both = cli("--config", str(config), "status", "pay_demopending01")
    assert both.code == 2 and "hedge_a, hedge_b" in both.stderr, both.stderr
    assert sandbox.counts[("hedgepayments", "get")] == 0  # refused before any request


def test_a_decimal_comma_from_a_spreadsheet_is_read_where_unambiguous(
    cli: Any, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "account;payment_id;expected_amount;expected_currency\n"
        "flexportal;fpay_demo_pending_01;258,00;EUR\n"
        "hedgepayments;pay_demopending01;99,99;USD\n"
        "flex;fpi_demo_requires_action_01;1 099,99;USD\n"
    )
    res = cli("--sandbox", "bulk-cancel", str(path), "--dry-run", "--json")
    results = {ln["payment_id"]: ln for ln in res.json_lines() if ln["type"] == "result"}
    assert results["fpay_demo_pending_01"]["outcome"] == "would_cancel", res.stderr
    assert results["pay_demopending01"]["outcome"] == "would_cancel"
    mismatch = results["fpi_demo_requires_action_01"]["error"]
    assert mismatch["code"] == "amount_mismatch" and "expected 1099.99 USD" in mismatch["message"]
    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text(
        "account;payment_id;expected_amount;expected_currency\n"
        "flexportal;fpay_demo_pending_01;1,099;EUR\n"
    )
    res = cli("--sandbox", "bulk-cancel", str(ambiguous), "--validate-only")
    assert res.code == 2
    assert "ambiguous" in res.stderr and "1.099" in res.stderr and "1099" in res.stderr
    # a comma-delimited file: a comma inside an amount is not a decimal comma
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('account,payment_id,expected_amount,expected_currency\n'
                      'flexportal,fpay_demo_pending_01,"258,00",EUR\n')  # fmt: skip
    assert cli("--sandbox", "bulk-cancel", str(quoted), "--validate-only").code == 2


def test_rows_invalid_in_the_same_way_are_one_message(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("account,payment_id\n" + "hedge,pay_demopending01\n" * 1
                    + "".join(f"hedge,pay_demo{n:04d}x\n" for n in range(30)))  # fmt: skip
    res = cli("--sandbox", "bulk-cancel", str(path), "--validate-only")
    assert res.code == 2
    problems = [ln for ln in res.stderr.splitlines() if "unknown account 'hedge'" in ln]
    assert problems == [
        "lines 2-32: unknown account 'hedge' (configured: compago, flex, flexportal, "
        "hedgepayments, vipps)"
    ], res.stderr
