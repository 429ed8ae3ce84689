"""bulk-cancel over real HTTP against the sandbox: outcomes, summary, report, input checks."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.sandbox import DEMO_PAYMENTS, Sandbox

from .conftest import SENTINEL, CliResult, write_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.csv"

EXPECTED = {
    "fpay_demo_pending_01": "cancelled",
    "fpay_demo_failed_01": "cancelled",
    "fpay_demo_processing_01": "not_cancellable",
    "fpay_demo_paid_01": "not_cancellable",
    "fpay_demo_cancelled_01": "already_cancelled",
    "pay_demopending01": "cancelled",
    "pay_demoinitiated01": "cancelled",
    "pay_demoprocessing01": "not_cancellable",
    "pay_demosucceeded01": "not_cancellable",
    "pay_demofailed01": "not_cancellable",
    "pay_democanceled01": "already_cancelled",
    "pay_demorefunded01": "not_cancellable",
    "fpi_demo_requires_payment_method_01": "cancelled",
    "fpi_demo_requires_capture_01": "cancelled",
    "fpi_demo_requires_action_01": "cancelled",
    "fpi_demo_processing_01": "not_cancellable",
    "fpi_demo_succeeded_01": "not_cancellable",
    "fpi_demo_canceled_01": "already_cancelled",
    "demo-created-0001": "cancelled",
    "demo-authorized-0001": "cancelled",
    "demo-partcapture-0001": "cancelled",
    "demo-captured-0001": "not_cancellable",
    "demo-cancelled-0001": "already_cancelled",
    "demo-refunded-0001": "not_cancellable",
    "demo-aborted-0001": "already_cancelled",
    "demo-expired-0001": "not_cancellable",
    "demo-terminated-0001": "already_cancelled",
    "7d3f0b4e-0000-4000-8000-000000000001": "cancelled",
    "7d3f0b4e-0000-4000-8000-000000000002": "not_cancellable",
    "7d3f0b4e-0000-4000-8000-000000000003": "not_cancellable",
    "7d3f0b4e-0000-4000-8000-000000000004": "already_cancelled",
}


def bulk(cli: Any, config: Path, *args: str, stdin: str | None = None) -> CliResult:
    return cli("--config", str(config), "bulk-cancel", *args, stdin=stdin)  # type: ignore[no-any-return]


def test_demo_csv_ends_with_exact_outcomes_summary_and_report(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    assert {pid for items in DEMO_PAYMENTS.values() for pid, _ in items} == set(EXPECTED)
    report = tmp_path / "report.csv"
    res = bulk(
        cli, config_file, str(DEMO), "--reason", "demo", "--yes", "--json", "--report", str(report)
    )
    assert res.code == 1, res.stderr  # some payments could not be cancelled
    lines = res.json_lines()
    results = {line["payment_id"]: line for line in lines if line["type"] == "result"}
    assert {pid: r["outcome"] for pid, r in results.items()} == EXPECTED
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["total"] == 31
    assert summary["outcomes"] == {"cancelled": 11, "already_cancelled": 7, "not_cancellable": 13}
    assert summary["cancelled_amounts"] == [
        {"currency": "EUR", "value": "307.90"},  # 258.00 + 49.90
        {"currency": "NOK", "value": "516.50"},  # 499.00 + 10.00 + 7.50
        {"currency": "USD", "value": "314.98"},  # 99.99 + 25.00 + 49.99 + 120.00 + 20.00
    ]
    assert summary["unknown_amounts"] == 1  # Compago's slim read has no amount
    # cancel first where the adapter declares it: FlexPortal and HedgePayments one cancel
    # each (5 + 7); Flex one per cancelled, cancel + read per refusal (3 + 3 * 2); Vipps
    # reads first (9 reads, 3 cancels, 1 token); Compago cancel + read each (4 * 2)
    assert summary["requests"] == 12 + 9 + 13 + 8
    for pid, outcome in EXPECTED.items():
        provider = next(p for p, items in DEMO_PAYMENTS.items() if pid in dict(items))
        assert sandbox.cancel_commits[(provider, pid)] == (1 if outcome == "cancelled" else 0)
    with open(report, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 31 and {r["payment_id"]: r["outcome"] for r in rows} == EXPECTED
    # a refusal's code tells the state, the same in the JSON and the report: Vipps keeps
    # AUTHORIZED after a capture or a refund, so its code is the state it means
    codes = {pid: r["error"]["code"] for pid, r in results.items() if r["error"]}
    assert (codes["demo-captured-0001"], codes["demo-refunded-0001"]) == ("succeeded", "refunded")
    assert codes["demo-expired-0001"] == "expired"  # one normalized code per refusal
    assert codes["7d3f0b4e-0000-4000-8000-000000000003"] == "succeeded"
    provider = {pid: r["error"]["provider_code"] for pid, r in results.items() if r["error"]}
    assert provider["demo-expired-0001"] == "EXPIRED"  # the provider's own word beside it
    assert provider["7d3f0b4e-0000-4000-8000-000000000003"] == "cannot_cancel"
    assert {r["payment_id"]: r["error_code"] for r in rows if r["error_code"]} == codes
    vipps = next(r for r in rows if r["payment_id"] == "demo-partcapture-0001")
    assert (vipps["released"], vipps["released_currency"]) == ("7.50", "NOK")
    assert all(r["line"] for r in rows)


def test_rerun_is_idempotent_and_jsonl_report(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    assert bulk(cli, config_file, str(DEMO), "--reason", "demo", "--yes").code == 1
    sandbox.reset_counters()
    report = tmp_path / "again.jsonl"
    res = bulk(
        cli, config_file, str(DEMO), "--reason", "demo", "--yes", "--json", "--report", str(report)
    )
    outcomes = {r["payment_id"]: r["outcome"] for r in res.json_lines() if r["type"] == "result"}
    assert {k for k, v in outcomes.items() if v == "cancelled"} == set()
    assert sum(sandbox.cancel_commits.values()) == 0
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(rows) == 31 and all(r["type"] == "result" for r in rows)


def test_human_output_has_results_summary_and_run_id(cli: Any, config_file: Path) -> None:
    res = bulk(cli, config_file, str(DEMO), "--reason", "demo", "--yes")
    assert "Results" in res.stdout and "Summary of run" in res.stdout
    assert "307.90 EUR" in res.stdout and "Not cancelled (13" in res.stdout
    assert "Run id:" in res.stderr
    assert "\x1b[" not in res.stdout + res.stderr  # not a terminal: no escape codes


def test_dry_run_reports_without_writing(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    res = bulk(cli, config_file, str(DEMO), "--reason", "demo", "--dry-run", "--json")
    outcomes = {r["payment_id"]: r["outcome"] for r in res.json_lines() if r["type"] == "result"}
    expected = {k: ("would_cancel" if v == "cancelled" else v) for k, v in EXPECTED.items()}
    assert outcomes == expected
    assert res.code == 1
    assert sum(n for (p, op), n in sandbox.counts.items() if op == "cancel") == 0


def test_a_dry_run_with_nothing_to_cancel_says_it_would_release_none(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    csv_path = tmp_path / "ids.csv"
    csv_path.write_text(
        "account,payment_id\nflex,fpi_demo_canceled_01\nflex,fpi_demo_succeeded_01\n"
    )
    res = bulk(cli, config_file, str(csv_path), "--dry-run")
    assert res.code == 1, res.stderr
    assert "Would release (dry run, nothing sent): none\n" in res.stdout
    assert "Cancelled amounts" not in res.stdout


def test_validate_only_sends_nothing(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    res = bulk(cli, config_file, str(DEMO), "--validate-only", "--json", "--reason", "x")
    assert res.code == 0
    (line,) = res.json_lines()
    assert line["valid"] == 31 and line["invalid"] == 0
    assert sum(sandbox.counts.values()) == 0


def write_csv(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_csv_dialects_aliases_duplicates_and_per_row_fields(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    text = (
        "\ufeffReference ; ACCOUNT ;Reason;expected_amount;expected_currency\r\n"
        "pay_demopending01;hedgepayments;row reason;99.99;usd\r\n"
        "\r\n"
        "  pay_demoinitiated01 ;hedgepayments;;1.00;USD\r\n"
        "pay_demopending01;hedgepayments;dup;;\r\n"
    )
    path = write_csv(tmp_path / "in.csv", text.encode("utf-8"))
    res = bulk(cli, config_file, str(path), "--reason", "default", "--yes", "--json")
    results = {r["payment_id"]: r for r in res.json_lines() if r["type"] == "result"}
    assert results["pay_demopending01"]["outcome"] == "cancelled"
    assert results["pay_demoinitiated01"]["outcome"] == "not_cancellable"
    assert results["pay_demoinitiated01"]["error"]["code"] == "amount_mismatch"
    assert "duplicate" in res.stderr and "line(s) 5" in res.stderr
    assert (
        sandbox.payment("hedgepayments", "pay_demopending01")["cancellation_reason"] == "row reason"
    )
    assert sandbox.cancel_commits[("hedgepayments", "pay_demoinitiated01")] == 0


def test_stdin_input(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "-",
        "--account",
        "flex",
        "--reason",
        "r",
        "--yes",
        "--json",
        stdin="id\nfpi_demo_requires_action_01\n",
    )
    assert res.code == 0, res.stderr
    assert sandbox.cancel_commits[("flex", "fpi_demo_requires_action_01")] == 1


BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "missing id column": (b"account,reason\nflex,x\n", "line 1"),
    "unknown account": (b"payment_id,account\npay_demopending01,nope\n", "line 2"),
    "slash": (b"payment_id\nabc/../refunds\n", "line 2"),
    "dotdot": (b"payment_id\nabc..def\n", "line 2"),
    "question": (b"payment_id\nx?y=1\n", "line 2"),
    "hash": (b"payment_id\nx#y\n", "line 2"),
    "percent": (b"payment_id\nx%2Fy\n", "line 2"),
    "inner space": (b"payment_id\nfpay_a b\n", "line 2"),
    "control": (b"payment_id\nfpay_a\x07b\n", "line 2"),
    "nul byte": (b"payment_id\nfpay_a\x00b\n", "line 2"),
    "binary garbage": (bytes(range(256)) * 8, "line 1"),
    "not utf-8": (b"payment_id\nfpay_\xff\xfe\n", "line 2"),
    "empty file": (b"", "line 1"),
    "header only, blank": (b"\n\n", "line 1"),
    "bad quote": (b'payment_id\n"fpay_open\n', "line 2"),
    "too many fields": (b"payment_id\nfpay_a,extra\n", "line 2"),
    "bad amount": (b"payment_id,expected_amount,expected_currency\nfpay_a,12x,EUR\n", "line 2"),
    "amount without currency": (b"payment_id,expected_amount\nfpay_a,12\n", "line 2"),
    "multi-line record reports its start": (
        b'payment_id,reason\nfpay_ok,r\nfpay_ok2,"two\nlines"\nfpay_bad/x,r\n',
        "line 5",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_line_and_sends_nothing(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, case: str
) -> None:
    data, where = BAD_INPUTS[case]
    path = write_csv(tmp_path / "bad.csv", data)
    res = bulk(cli, config_file, str(path), "--account", "flexportal", "--reason", "r", "--yes")
    assert res.code == 2, (case, res.stdout, res.stderr)
    assert where in res.stderr, (case, res.stderr)
    assert "Traceback" not in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_a_100_mb_line_is_refused_without_loading_it(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.write(b"payment_id\nfpay_ok\n")
        chunk = b"a" * (1 << 20)
        for _ in range(100):
            handle.write(chunk)
        handle.write(b"\n")
    res = bulk(cli, config_file, str(path), "--account", "flexportal", "--reason", "r", "--yes")
    assert res.code == 2 and "line 3" in res.stderr and "longer than" in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_skip_invalid_goes_on_and_reports_invalid_rows(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "mixed.csv",
        "payment_id,account\npay_demopending01,hedgepayments\nbad/id,hedgepayments\n"
        "fpay_demo_pending_01,nope\n",
    )
    res = bulk(cli, config_file, str(path), "--reason", "r", "--yes", "--json", "--skip-invalid")
    results = [r for r in res.json_lines() if r["type"] == "result"]
    assert [r["outcome"] for r in results] == ["cancelled"]
    summary = res.json_lines()[-1]
    assert summary["outcomes"] == {"cancelled": 1, "invalid": 2} and summary["total"] == 3
    assert res.code == 1


def test_max_payments_refuses_and_sends_nothing(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(cli, config_file, str(DEMO), "--reason", "r", "--yes", "--max-payments", "30")
    assert res.code == 2 and "more than --max-payments 30" in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_non_interactive_without_yes_exits_2(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    res = bulk(cli, config_file, str(DEMO), "--reason", "r")
    assert res.code == 2 and sum(sandbox.counts.values()) == 0


def test_interactive_plan_and_prompt(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    res = bulk(cli, config_file, str(DEMO), "--reason", "r", stdin="n\n")
    assert res.code == 1 and "Plan" in res.stdout and "nothing was sent" in res.stderr
    assert sum(n for (p, op), n in sandbox.counts.items() if op == "cancel") == 0


def test_live_accounts_need_yes_live(cli: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    fields = {**sandbox.account_config()["flexportal"], "environment": "live"}
    config = write_config(tmp_path / "live.toml", {"portal_live": fields})
    path = write_csv(tmp_path / "in.csv", "payment_id\nfpay_demo_pending_01\n")
    assert bulk(cli, config, str(path), "--reason", "r", "--yes").code == 2
    assert sum(sandbox.counts.values()) == 0
    assert bulk(cli, config, str(path), "--reason", "r", "--yes", "--live").code == 0


def test_auth_failure_exits_3_without_hammering(cli: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    fields = {**sandbox.account_config()["hedgepayments"], "api_key": "sk_test_" + SENTINEL}
    config = write_config(tmp_path / "bad.toml", {"hedge": fields})
    ids = "\n".join(p for p, _ in DEMO_PAYMENTS["hedgepayments"])
    path = write_csv(tmp_path / "in.csv", f"payment_id\n{ids}\n")
    res = bulk(cli, config, str(path), "--reason", "r", "--yes", "--json", "--concurrency", "1")
    assert res.code == 3
    assert SENTINEL not in res.stdout + res.stderr
    # one request (the first row's cancel, sent first): the rest were not tried
    assert sum(sandbox.counts.values()) == sandbox.counts[("hedgepayments", "cancel")] == 1


def test_runs_history(cli: Any, config_file: Path) -> None:
    first = bulk(cli, config_file, str(DEMO), "--reason", "history", "--yes", "--json")
    run_id = first.json_lines()[-1]["run_id"]
    listing = cli("--config", str(config_file), "runs", "--json").json_lines()
    run = next(r for r in listing if r["run_id"] == run_id)
    assert run["status"] == "completed" and run["reason"] == "history" and run["total"] == 31
    assert run["outcomes"]["cancelled"] == 11 and run["user"]
    shown = cli("--config", str(config_file), "runs", "show", run_id, "--json").json_lines()
    assert shown[0]["type"] == "run" and len(shown) == 32
    human = cli("--config", str(config_file), "runs", "show", run_id)
    assert run_id in human.stdout and "Results" in human.stdout


def test_cancelled_amounts_are_decimal_exact(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    ids = [sandbox.add_payment("flexportal", status="pending", total="0.10") for _ in range(30)]
    path = write_csv(tmp_path / "dimes.csv", "payment_id\n" + "\n".join(ids) + "\n")
    res = bulk(
        cli, config_file, str(path), "--account", "flexportal", "--reason", "r", "--yes", "--json"
    )
    summary = res.json_lines()[-1]
    assert summary["cancelled_amounts"] == [{"currency": "EUR", "value": "3.00"}]
    assert Decimal(summary["cancelled_amounts"][0]["value"]) == Decimal("3.00")
