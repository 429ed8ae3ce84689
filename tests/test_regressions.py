"""Regression tests for problems an independent review found."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from paycancel_cli.config import load_config
from paycancel_cli.csvinput import Reader, Source, Validation
from paycancel_cli.engine import Canceller, Target
from paycancel_cli.journal import Journal, PlanRow
from paycancel_cli.models import ErrorInfo, Outcome, Result
from paycancel_cli.providers import make_provider
from paycancel_cli.redact import Redactor
from paycancel_cli.runs.request import BulkRequest, Plan
from paycancel_cli.runs.start import run_bulk
from paycancel_cli.sandbox import Sandbox

from .conftest import SENTINEL
from .test_engine import json_response
from .test_providers_unit import account, vipps_payment


class Appender:
    """A UI whose confirmation step appends rows to the original CSV file."""

    def __init__(self, path: Path, extra: str) -> None:
        self.path, self.extra = path, extra
        self.results: list[Result] = []

    def validated(self, validation: Validation) -> None: ...

    def warn(self, message: str) -> None: ...
    def waiting(self, message: str) -> None: ...

    def show_plan(self, plan: Plan, *, prompting: bool) -> None:
        with open(self.path, "a") as handle:
            handle.write(self.extra)

    def started(self, run_id: str, total: int, resumed: bool) -> None: ...

    def result(self, result: Result) -> None:
        self.results.append(result)

    def finished(self) -> None: ...


def test_the_confirmed_snapshot_is_what_runs(
    sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("payment_id\npay_demopending01\n")
    ui = Appender(path, "pay_demoinitiated01\n")
    outcome = run_bulk(
        load_config(config_file),
        BulkRequest(
            csv=str(path),
            account="hedgepayments",
            reason="r",
            yes=True,
            max_payments=1,
            interactive=True,
        ),
        ui,
        redactor=Redactor(),
    )
    assert [r.payment_id for r in ui.results] == ["pay_demopending01"]
    assert sandbox.cancel_commits[("hedgepayments", "pay_demoinitiated01")] == 0
    assert outcome.summary is not None and outcome.summary.total == 1


def test_resume_refuses_run_shaping_flags_and_a_sandbox_switch(cli: Any, config_file: Path) -> None:
    first = cli(
        "--sandbox", "bulk-cancel", "examples/demo.csv", "--reason", "d", "--dry-run", "--json"
    )
    run_id = first.json_lines()[-1]["run_id"]
    res = cli("--sandbox", "bulk-cancel", "--resume", run_id, "--dry-run", "--yes")
    assert res.code == 2 and "--dry-run" in res.stderr
    res = cli("--config", str(config_file), "bulk-cancel", "--resume", run_id, "--yes")
    assert res.code == 2 and "built-in sandbox" in res.stderr


def run_engine(provider: str, handler: Any, pid: str) -> Result:
    async def go() -> Result:
        acc = account(provider)
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            canceller = Canceller(make_provider(acc, client), run_id="r")
            return await canceller.process(Target(provider, pid, "why"), key="k")

    return asyncio.run(go())


def test_a_vipps_200_that_released_nothing_is_not_reported_cancelled() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return json_response(200, {"expires_in": "3599", "access_token": "tok"})
        body = vipps_payment()  # authorized 1000, nothing released, before and after
        return json_response(200, body)

    result = run_engine("vipps", handler, "ref-00000001")
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.code == "not_confirmed"


def test_an_odd_provider_answer_fails_one_payment_not_the_run() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(409, {"error": {"code": "locked", "message": "locked"}})

    result = run_engine("flexportal", handler, "p1")
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.http_status == 409


def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return json_response(
                429, {"error": {"code": "RATE", "message": "x"}}, **{"Retry-After": "soon"}
            )
        return json_response(
            200,
            {
                "success": True,
                "payment": {"paymentId": "p1", "total": 1, "currency": "EUR", "status": "paid"},
            },
        )

    result = run_engine("flexportal", handler, "p1")
    assert result.outcome is Outcome.NOT_CANCELLABLE


def test_the_journal_never_stores_a_secret_a_provider_echoed(tmp_path: Path) -> None:
    redactor = Redactor()
    redactor.add(SENTINEL)
    journal = Journal(tmp_path / "j.sqlite3", redact=redactor)
    journal.start_run(
        "r", user="u", host="h", command="c", input="i", input_hash="x", reason="r", options={}
    )
    journal.plan("r", [PlanRow("a", "flex", "fpi_1", "r", "k")])
    journal.mark_done(
        Result(
            "r",
            "a",
            "flex",
            "fpi_1",
            Outcome.FAILED,
            error=ErrorInfo("auth", f"Invalid API key {SENTINEL}", 401),
        )
    )
    journal.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("j.sqlite3*"))
    assert SENTINEL.encode() not in data


def test_blank_reason_is_no_reason(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "--subscription",
        "rent_demo_01",
        "--account",
        "flexportal",
        "--reason",
        "   ",
        "--yes",
    )
    assert res.code == 2 and "--reason" in res.stderr
    path = tmp_path / "in.csv"
    path.write_text("payment_id\npay_demopending01\n")
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        str(path),
        "--account",
        "hedgepayments",
        "--reason",
        "  ",
        "--yes",
    )
    assert res.code == 2 and "no reason" in res.stderr
    assert sandbox.counts[("hedgepayments", "cancel")] == 0


def test_duplicate_subscription_rows_do_not_lock_each_other(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text("subscription_id,account\nrent_demo_01,flexportal\nrent_demo_01,flexportal\n")
    res = cli(
        "--config", str(config_file), "bulk-cancel", str(path), "--reason", "r", "--yes", "--json"
    )
    assert res.code == 0, res.stderr
    assert res.json_lines()[-1]["outcomes"] == {"cancelled": 2}


def test_unwritable_report_path_is_refused_before_anything(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "bulk-cancel",
        "examples/demo.csv",
        "--reason",
        "r",
        "--yes",
        "--report",
        "/nonexistent-dir/r.csv",
    )
    assert res.code == 2 and "--report" in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_duplicates_across_batches_are_found(tmp_path: Path) -> None:
    ids = [f"pay_{i:06d}" for i in range(5000)] + ["pay_000001"]
    path = tmp_path / "big.csv"
    path.write_text("payment_id\n" + "\n".join(ids) + "\n")
    reader = Reader(
        Source(str(path)),
        accounts={"hedge": "hedgepayments"},
        listable=frozenset(),
        default_account="hedge",
        default_reason="r",
    )
    validation = reader.validate()
    assert (validation.valid, validation.duplicates) == (5000, 1)
    assert validation.duplicate_lines == [5002]
    reader.source.close()


def test_expected_amount_with_too_many_decimals_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "payment_id,expected_amount,expected_currency\npay_a1,25.004,USD\npay_a2,1e400000000,USD\n"
    )
    reader = Reader(
        Source(str(path)),
        accounts={"hedge": "hedgepayments"},
        listable=frozenset(),
        default_account="hedge",
        default_reason="r",
    )
    validation = reader.validate()
    assert [p.line for p in validation.problems] == [2, 3]
    assert "more decimals" in validation.problems[0].message
    reader.source.close()


def test_runs_show_marks_unprocessed_payments(cli: Any, config_file: Path, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.start_run(
        "r-x",
        user="u",
        host="h",
        command="c",
        input="i",
        input_hash="h",
        reason="r",
        options={"kind": "bulk", "accounts": ["flex"]},
    )
    journal.plan("r-x", [PlanRow("flex", "flex", "fpi_1", "r", "k")])
    lines = cli("--config", str(config_file), "runs", "show", "r-x", "--json").json_lines()
    assert lines[1]["outcome"] is None and lines[1]["state"] == "planned"
    listing = cli("--config", str(config_file), "runs", "--json").json_lines()
    run = next(r for r in listing if r["run_id"] == "r-x")
    assert run["remaining"] == 1 and run["outcomes"] == {} and run["total"] == 1
