"""Truthful records and the report as a finance record, through the CLI: a before state
nobody read reads as not read; a lookup that failed is not a payment status; every
refusal has one normalized code in every mode, the provider's own code beside it; the
report carries the reason, refuses to replace an earlier one, and can be made later
from the journal; at 80x40 the summary comes last and no message is printed twice."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from paycancel_cli.models import Outcome, PaymentStatus
from paycancel_cli.sandbox import Sandbox

from .conftest import PtyProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "examples" / "demo.csv")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The normalized codes of a refusal (README "Refusal codes"): the status that forbids it,
# or a guard of ours.
CODES = {s.value for s in PaymentStatus} | {"amount_mismatch"}


def report(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["payment_id"]: row for row in csv.DictReader(handle)}


def test_a_before_state_nobody_read_is_reported_as_not_read(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    res = cli("--sandbox", "bulk-cancel", DEMO, "--reason", "x", "--yes", "--report", str(out))
    assert res.code == 1, res.stderr
    rows = report(out)
    # cancelled first, nothing read: FlexPortal's `failed` and Hedge's `initiated` are
    # not guessed as `pending`
    for pid in ("fpay_demo_failed_01", "pay_demoinitiated01", "pay_demopending01"):
        assert rows[pid]["outcome"] == "cancelled"
        assert rows[pid]["status_before"] == "", rows[pid]
        assert rows[pid]["status_after"] == "cancelled"
    # the released amount is exact and stays
    assert (rows["fpay_demo_failed_01"]["released"], rows["fpay_demo_failed_01"]["currency"]) == (
        "49.90",
        "EUR",
    )
    # a state that was read (Vipps reads its aggregates) is still shown
    assert rows["demo-authorized-0001"]["status_before"] == "authorized"
    table = re.search(r"^flexportal +fpay_demo_failed_01 +cancelled +(.+?) {2,}", res.stdout, re.M)
    assert table is not None and table.group(1) == "not read -> cancelled", res.stdout


def test_a_subscription_run_still_shows_the_before_it_read(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    res = cli(
        "--sandbox", "bulk-cancel", "--subscription", "rent_demo_01", "-a", "flexportal",
        "--reason", "x", "--yes", "--report", str(out),
    )  # fmt: skip
    assert res.code in (0, 1), res.stderr
    rows = report(out)
    assert rows and all(r["status_before"] in ("pending", "failed") for r in rows.values()), rows


def test_a_lookup_that_failed_does_not_look_like_a_payment_status(cli: Any, tmp_path: Path) -> None:
    with Sandbox() as sb:
        accounts = sb.account_config()
        accounts["hedgepayments"]["base_url"] = "http://127.0.0.1:9"  # nothing listens
        config = write_config(tmp_path / "c.toml", accounts)
        res = cli("--config", str(config), "status", "pay_demopending01", "-a", "hedgepayments")
        assert res.code == 5, res.stderr
        row = next(ln for ln in res.stdout.splitlines() if "pay_demopending01" in ln)
        assert " failed " not in row and "(not read)" in row, res.stdout
        # FlexPortal's real `failed` payment still says failed
        res = cli("--config", str(config), "status", "fpay_demo_failed_01", "-a", "flexportal")
        row = next(ln for ln in res.stdout.splitlines() if "fpay_demo_failed_01" in ln)
        assert re.search(r"fpay_demo_failed_01 +failed ", row), res.stdout


def test_every_refusal_has_one_normalized_code_in_dry_and_real_runs(cli: Any) -> None:
    dry = cli("--sandbox", "bulk-cancel", DEMO, "--dry-run", "--json").json_lines()
    real = cli("--sandbox", "bulk-cancel", DEMO, "--reason", "x", "--yes", "--json").json_lines()

    def codes(lines: list[dict[str, Any]]) -> dict[str, str]:
        return {
            ln["payment_id"]: ln["error"]["code"]
            for ln in lines
            if ln["type"] == "result" and ln["outcome"] == "not_cancellable"
        }

    assert codes(dry) == codes(real) and len(codes(real)) == 13
    assert set(codes(real).values()) <= CODES, codes(real)
    assert codes(real)["fpay_demo_paid_01"] == "succeeded"
    assert codes(real)["demo-captured-0001"] == "succeeded"
    assert codes(real)["demo-expired-0001"] == "expired"
    assert codes(real)["7d3f0b4e-0000-4000-8000-000000000002"] == "expired"
    provider = {
        ln["payment_id"]: ln["error"]["provider_code"]
        for ln in real
        if ln["type"] == "result" and ln["error"]
    }
    assert provider["fpay_demo_paid_01"] == "ALREADY_PAID"  # kept beside it
    assert provider["pay_demofailed01"] == "payment_not_cancelable"
    # the summary's outcomes in the human summary's column order
    order = [o.value for o in Outcome]
    keys = list(real[-1]["outcomes"])
    assert keys == sorted(keys, key=order.index) == ["cancelled", "already_cancelled",
                                                     "not_cancellable"]  # fmt: skip


def test_the_report_is_a_finance_record(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    res = cli("--sandbox", "bulk-cancel", DEMO, "--reason", "early return", "--yes",
              "--report", str(out))  # fmt: skip
    assert res.code == 1, res.stderr
    rows = report(out)
    assert len(rows) == 31 and {r["reason"] for r in rows.values()} == {"early return"}
    # refused and already cancelled with no read: the refusal named the state
    assert rows["fpay_demo_paid_01"]["status_before"] == "succeeded"
    assert rows["pay_demofailed01"]["status_before"] == "failed"
    assert rows["fpay_demo_cancelled_01"]["status_before"] == "cancelled"
    assert rows["fpay_demo_paid_01"]["provider_code"] == "ALREADY_PAID"
    run_id = json.loads(cli("--sandbox", "runs", "--json").stdout.splitlines()[0])["run_id"]

    # an existing report is not replaced silently, and nothing is sent
    before = out.read_bytes()
    again = cli("--sandbox", "bulk-cancel", DEMO, "--reason", "x", "--yes", "--report", str(out))
    assert again.code == 2 and "--force" in again.stderr, again.stderr
    assert out.read_bytes() == before
    assert len(cli("--sandbox", "runs", "--json").stdout.splitlines()) == 1  # no new run

    # made later from the journal: the same rows
    later = tmp_path / "later.csv"
    shown = cli("--sandbox", "runs", "show", run_id, "--report", str(later))
    assert shown.code == 0, shown.stderr
    assert later.read_bytes() == before
    assert cli("--sandbox", "runs", "show", run_id, "--report", str(later)).code == 2
    forced = cli("--sandbox", "runs", "show", run_id, "--report", str(later), "--force")
    assert forced.code == 0 and later.read_bytes() == before
    assert not list(tmp_path.glob("*.partial"))


def test_demo_run_at_80x40_ends_with_the_summary_and_says_each_message_once(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "COLUMNS": "80", "LINES": "40", "TERM": "xterm"}
    env["PAYCANCEL_DEFAULTS__JOURNAL"] = str(tmp_path / "j.sqlite3")
    proc = PtyProcess(["--sandbox", "bulk-cancel", DEMO, "--reason", "x", "--yes"], env)
    try:
        code = proc.wait(120)
        shown = proc.output.decode("utf-8", "replace")
    finally:
        proc.close()
    assert code == 1, shown
    lines = [ANSI.sub("", ln).rstrip() for ln in shown.replace("\r", "").split("\n")]
    lines = [ln for ln in lines if ln]
    screen = "\n".join(lines[-40:])  # what is still on an 80x40 screen at the end
    assert "Summary of run" in screen and "Cancelled amounts: 307.90 EUR" in screen, screen
    assert lines.index(next(ln for ln in lines if ln.startswith("Not cancelled"))) < lines.index(
        next(ln for ln in lines if ln.startswith("Summary of run"))
    )
    text = " ".join(" ".join(lines).split())
    assert "no amount from the provider: 7d3f0b4e-0000-4000-8000-000000000001" in text, text
    for message in (
        "is already paid; refund it instead.",
        "Current status: refunded.",
        "is processing; wait for the result.",
    ):
        assert text.count(message) == 1, message


def test_report_jsonl_has_the_new_columns(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    res = cli("--sandbox", "bulk-cancel", DEMO, "--reason", "x", "--yes", "--report", str(out))
    assert res.code == 1
    first = json.loads(io.StringIO(out.read_text()).readline())
    assert first["reason"] == "x" and "provider_code" in first


def test_status_at_a_terminal_says_what_is_retried_and_why(
    cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    with Sandbox() as sb:
        accounts = sb.account_config()
        accounts["hedgepayments"]["base_url"] = "http://127.0.0.1:9"  # nothing listens
        config = write_config(tmp_path / "c.toml", accounts)
        monkeypatch.setattr("sys.stderr.isatty", lambda: True)
        res = cli("--config", str(config), "status", "pay_demopending01", "-a", "hedgepayments")
        assert res.code == 5
        notes = [ln for ln in res.stderr.splitlines() if "Retrying in" in ln]
        assert notes and "could not connect" in notes[0], res.stderr
        assert "(retry 1)" in notes[0]
        # not a terminal (cron, a pipe): quiet as before
        monkeypatch.setattr("sys.stderr.isatty", lambda: False)
        res = cli("--config", str(config), "status", "pay_demopending01", "-a", "hedgepayments")
        assert "Retrying" not in res.stderr
