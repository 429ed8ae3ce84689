"""Ten safety behaviours that a careless change could break with every other test still
green (each was shown to be caught: the bug planted by hand made its test fail).

1. bulk on a terminal: ``--yes`` without ``--live`` still asks for the typed LIVE name;
2. a resume after a crash of a cancel-first run never reports a since-paid payment as
   cancelled by this run;
3. a Vipps cancel answer whose cancelled aggregate did not grow is not a release;
4. the ``expected_amount`` guard compares the currency too;
5. declining the bulk prompt leaves nothing in the journal;
6. rejected credentials (exit 3) outrank a refusal (exit 1);
7. the before state read first is journaled with the in-flight mark (a resume shows it);
8. Vipps' ``ErrorCode 5090`` is ``not_found`` whatever the HTTP status;
9. an unreadable ``Retry-After`` waits the policy's backoff, never 0 s;
10. the production retry policy: 6 attempts, exponential waits from 0.5 s.

The retry tests run the production policy (``real_retries``): stamina's test mode off,
every wait recorded by stamina's retry hook and not slept.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from paycancel_cli.engine import RetryPolicy
from paycancel_cli.journal import Journal
from paycancel_cli.models import Money, Outcome, Result, combine
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import PtyProcess, Retries, spawn, write_config
from .test_crash_resume import wait_for
from .test_providers_unit import jresp, vipps_payment
from .test_regressions import run_engine

YES_JSON = ("--yes", "--json")


def cancels_seen(sb: Sandbox, provider: str | None = None) -> int:
    return sum(n for (p, op), n in sb.counts.items() if op == "cancel" and provider in (None, p))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def results(res: Any) -> dict[str, dict[str, Any]]:
    return {line["payment_id"]: line for line in res.json_lines() if line["type"] == "result"}


def journal_rows(path: Path) -> tuple[int, list[tuple[str, str | None]]]:
    """(runs, [(payment state, before json)]) as the journal file holds them."""
    if not path.exists():
        return 0, []
    db = sqlite3.connect(path)
    try:
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        rows = db.execute("SELECT state, before FROM payments ORDER BY seq").fetchall()
        return int(runs), [(str(s), b) for s, b in rows]
    finally:
        db.close()


# 1 -----------------------------------------------------------------------------------


def test_bulk_on_a_terminal_with_yes_but_no_live_asks_for_the_live_name(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    fields = {**sandbox.account_config()["flexportal"], "environment": "live"}
    config = write_config(tmp_path / "live.toml", {"portal_live": fields})
    ids = write_csv(tmp_path / "ids.csv", ["payment_id"], [["fpay_demo_pending_01"]])
    args = ["--config", str(config), "bulk-cancel", str(ids), "--reason", "x", "--yes"]
    proc = PtyProcess(args, dict(os.environ))
    try:
        shown = proc.read_until("type the account name (portal_live)", timeout=60)
        assert "type the account name (portal_live)" in shown, shown
        proc.type(b"portal\r")  # not the name: a stray --yes is no confirmation
        code = proc.wait(30)
    finally:
        proc.close()
    assert code == 1, proc.output
    assert "did not match" in proc.output.decode(errors="replace")
    assert cancels_seen(sandbox) == 0
    assert sandbox.payment("flexportal", "fpay_demo_pending_01")["status"] == "pending"


# 2 -----------------------------------------------------------------------------------


def test_resume_after_a_crash_never_counts_a_since_paid_payment_as_cancelled(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    from .test_cancel_first import in_flight_without_before

    # The crashed run had marked it in flight, cancel first (no before); its cancel
    # never arrived, and the customer has paid since.
    pid = sandbox.add_payment("flexportal", status="paid", total="10.00")
    in_flight_without_before(tmp_path / "journal.sqlite3", "r-paid", "flexportal", pid)
    res = cli("--config", str(config_file), "bulk-cancel", "--resume", "r-paid", "--yes", "--json")
    result = results(res)[pid]
    assert result["outcome"] == "not_cancellable", result
    assert result["error"]["code"]
    summary = res.json_lines()[-1]
    assert summary["outcomes"] == {"not_cancellable": 1}
    assert summary["cancelled_amounts"] == []
    assert res.code == 1
    assert cancels_seen(sandbox) == 0


# 3 -----------------------------------------------------------------------------------


def vipps_engine(answers: dict[str, list[dict[str, Any]]]) -> tuple[Result, dict[str, int]]:
    """One Vipps cancel through the engine; ``answers`` scripts the reads ("get") and
    the cancel answers ("cancel"), the last one repeating."""
    seen = {"get": 0, "cancel": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})
        op = "cancel" if request.method == "POST" else "get"
        script = answers[op]
        seen[op] += 1
        return jresp(200, script[min(seen[op], len(script)) - 1])

    return run_engine("vipps", handler, "ref-00000001"), seen


def test_vipps_cancel_answer_without_a_grown_cancelled_aggregate_is_no_release() -> None:
    # Read first: 10.00 NOK authorized.  A capture wins the race: the cancel answer
    # (and every read after it) shows it all captured, nothing cancelled.
    captured = vipps_payment(auth=1000, cap=1000, canc=0)
    result, seen = vipps_engine({"get": [vipps_payment(), captured], "cancel": [captured]})
    assert result.outcome is not Outcome.CANCELLED, result
    assert result.released() is None
    assert seen["cancel"] == 1


def test_vipps_cancel_answer_with_a_grown_cancelled_aggregate_releases_the_difference() -> None:
    # 2.50 captured before; the cancel releases the remaining 7.50 NOK.
    before = vipps_payment(auth=1000, cap=250, canc=0)
    after = vipps_payment(auth=1000, cap=250, canc=750)
    result, seen = vipps_engine({"get": [before], "cancel": [after]})
    assert result.outcome is Outcome.CANCELLED
    assert result.released() == Money(Decimal("7.50"), "NOK")
    assert seen == {"get": 1, "cancel": 1}


# 4 -----------------------------------------------------------------------------------


def test_expected_amount_in_another_currency_is_not_cancelled(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    eur = sandbox.add_payment("flexportal", status="pending", total="10.00", currency="EUR")
    ok = sandbox.add_payment("flexportal", status="pending", total="10.00", currency="EUR")
    rows = [["flexportal", eur, "10.00", "SEK"], ["flexportal", ok, "10.00", "EUR"]]
    header = ["account", "payment_id", "expected_amount", "expected_currency"]
    path = write_csv(tmp_path / "guard.csv", header, rows)
    res = cli("--config", str(config_file), "bulk-cancel", str(path), "--reason", "r", *YES_JSON)
    got = results(res)
    assert got[eur]["outcome"] == "not_cancellable"
    assert got[eur]["error"]["code"] == "amount_mismatch"
    assert "SEK" in got[eur]["error"]["message"]
    assert got[ok]["outcome"] == "cancelled"  # the same guard passes the right currency
    assert res.code == 1
    assert sandbox.payment("flexportal", eur)["status"] == "pending"
    assert sandbox.cancel_commits[("flexportal", eur)] == 0


# 5 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["n\n", "\n", "nope\n"])
def test_declining_the_bulk_prompt_leaves_nothing_in_the_journal(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, answer: str
) -> None:
    path = write_csv(
        tmp_path / "ids.csv",
        ["account", "payment_id"],
        [["flexportal", "fpay_demo_pending_01"], ["flex", "fpi_demo_requires_action_01"]],
    )
    res = cli("--config", str(config_file), "bulk-cancel", str(path), "--reason", "r", stdin=answer)
    assert res.code == 1, res.stderr
    assert "Not confirmed; nothing was sent." in res.stderr
    assert journal_rows(tmp_path / "journal.sqlite3") == (0, [])
    assert cancels_seen(sandbox) == 0
    shown = cli("--config", str(config_file), "runs", "--json")
    assert [line for line in shown.json_lines() if line["type"] == "run"] == []


# 6 -----------------------------------------------------------------------------------


def test_exit_code_precedence_is_3_then_1_then_5_then_0() -> None:
    assert combine([3, 1]) == 3 and combine([1, 3]) == 3
    assert combine([5, 3, 1, 0]) == 3
    assert combine([5, 1]) == 1 and combine([1, 5]) == 1
    assert combine([5, 0]) == 5
    assert combine([0, 0]) == 0 and combine([]) == 0
    assert combine([3], remaining=2) == 3
    assert combine([0], remaining=1) == 1 and combine([5], remaining=1) == 1


def test_rejected_credentials_and_a_refusal_exit_3(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    accounts = sandbox.account_config()
    revoked = {**accounts["hedgepayments"], "api_key": "sk_test_revoked000000000000"}
    config = write_config(
        tmp_path / "c.toml", {"hedge": revoked, "flexportal": accounts["flexportal"]}
    )
    path = write_csv(
        tmp_path / "mixed.csv",
        ["account", "payment_id"],
        [["flexportal", "fpay_demo_paid_01"], ["hedge", "pay_demopending01"]],
    )
    res = cli("--config", str(config), "bulk-cancel", str(path), "--reason", "r", "--yes", "--json")
    got = results(res)
    assert got["fpay_demo_paid_01"]["outcome"] == "not_cancellable"
    assert got["pay_demopending01"]["outcome"] == "failed"
    assert res.code == 3, res.stderr  # a cron line alerting on 3 learns the key is revoked


# 7 -----------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_before_state_read_first_is_journaled_with_the_in_flight_mark(
    tmp_path: Path,
) -> None:
    with Sandbox(seed_demo=False) as sb:
        pid = sb.add_payment("hedgepayments", status="pending", amount=1234, currency="usd")
        config = write_config(tmp_path / "c.toml", sb.account_config())
        path = write_csv(tmp_path / "in.csv", ["account", "payment_id"], [["hedgepayments", pid]])
        journal_path = tmp_path / "journal.sqlite3"
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(journal_path)}
        sb.faults = Faults(latency_ms=1500)  # the crash comes while the cancel is on its way
        args = ["--config", str(config), "bulk-cancel", str(path), "--reason", "r", "--yes"]
        first = spawn([*args, "--read-first", "--json"], env)
        try:
            wait_for(lambda: cancels_seen(sb) >= 1)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        (run,) = Journal(journal_path).runs()
        _, rows = journal_rows(journal_path)
        assert [state for state, _ in rows] == ["in_flight"]
        before = json.loads(rows[0][1] or "null")
        assert before is not None, "the in-flight mark lost the state the run read"
        assert before["native_status"] == "pending"
        assert before["amount"] == {"value": "12.34", "currency": "USD"}

        sb.faults = Faults()
        resumed = spawn(
            ["--config", str(config), "bulk-cancel", "--resume", run.run_id, "--yes", "--json"],
            env,
        )
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
        (result,) = [r for r in map(json.loads, out.splitlines()) if r["type"] == "result"]
        assert result["outcome"] == "cancelled"
        assert result["before"]["native_status"] == "pending"  # what was read, not implied
        assert sum(sb.cancel_commits.values()) == 1


# 8 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 409])
def test_vipps_error_code_5090_is_not_found_whatever_the_http_status(status: int) -> None:
    problem = {
        "type": "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide",
        "title": "Bad Request",
        "detail": "Payment with reference ref-00000001 not found",
        "instance": "/epayment/v1/payments/ref-00000001",
        "traceId": "t",
        "extraDetails": [{"name": "ErrorCode", "reason": "5090"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})
        return jresp(status, problem)

    result = run_engine("vipps", handler, "ref-00000001")
    assert result.outcome is Outcome.NOT_FOUND, result
    assert result.error is not None and result.error.code == "5090"


# 9 and 10 ----------------------------------------------------------------------------

PAID = {"paymentId": "p1", "total": 1, "currency": "EUR", "status": "paid"}


def flexportal_read(answers: list[httpx.Response]) -> tuple[Result, int]:
    """A FlexPortal read through the engine with the production retry policy."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return answers[min(calls, len(answers)) - 1]

    return run_engine("flexportal", handler, "p1"), calls


def rate_limited(**headers: str) -> httpx.Response:
    return jresp(429, {"error": {"code": "RATE", "message": "slow down"}}, **headers)


@pytest.mark.parametrize("retry_after", ["soon", "", "Thu, 99 Foo 2026 25:61:00 GMT", "-"])
def test_an_unreadable_retry_after_waits_the_backoff_not_zero(
    real_retries: Retries, retry_after: str
) -> None:
    ok = jresp(200, {"success": True, "payment": PAID})
    result, calls = flexportal_read([rate_limited(**{"Retry-After": retry_after}), ok])
    assert result.outcome is Outcome.NOT_CANCELLABLE and calls == 2
    (wait,) = real_retries.waits
    policy = RetryPolicy()
    # the policy's first backoff: wait_initial plus at most wait_jitter
    assert policy.wait_initial <= wait <= policy.wait_initial + policy.wait_jitter, wait


def test_a_readable_retry_after_is_the_wait(real_retries: Retries) -> None:
    ok = jresp(200, {"success": True, "payment": PAID})
    result, _ = flexportal_read([rate_limited(**{"Retry-After": "7"}), ok])
    assert result.outcome is Outcome.NOT_CANCELLABLE
    (wait,) = real_retries.waits
    assert 7.0 <= wait <= 8.05  # plus a little spread for the herd


def test_production_retry_policy_makes_6_attempts_with_exponential_waits(
    real_retries: Retries,
) -> None:
    down = jresp(503, {"error": {"code": "DOWN", "message": "down"}})
    result, calls = flexportal_read([down])
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.transient
    assert calls == 6
    waits = real_retries.waits
    assert len(waits) == 5
    for n, wait in enumerate(waits):  # 0.5 s doubling, each plus up to 0.5 s of jitter
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.5, waits


def test_bulk_cancel_against_a_down_provider_sends_6_cancels_then_exits_5(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, real_retries: Retries
) -> None:
    pid = sandbox.add_payment("flexportal", status="pending", total="10.00")
    sandbox.add_fault("flexportal", pid, "html_502", op="cancel", status=503)
    path = write_csv(tmp_path / "one.csv", ["account", "payment_id"], [["flexportal", pid]])
    res = cli("--config", str(config_file), "bulk-cancel", str(path), "--reason", "r", *YES_JSON)
    (result,) = results(res).values()
    assert result["outcome"] == "failed" and result["attempts"] == 6
    assert sandbox.counts[("flexportal", "cancel")] == 6
    assert res.code == 5
    assert len(real_retries.waits) == 5
    assert all(w >= 0.5 for w in real_retries.waits)
