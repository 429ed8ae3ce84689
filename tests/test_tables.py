"""Every table, rendered at 80, 120 and 200 columns and to a pipe, from real runs against
the sandbox (all five providers, real HTTP, a real journal): payment ids, run ids and
amounts always appear whole, a terminal table never runs past its width, and a pipe
gets one plain line per row."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress

from paycancel_cli import core
from paycancel_cli.commands.runs import run_json
from paycancel_cli.config import Config, load_config
from paycancel_cli.journal import Journal
from paycancel_cli.models import AGGREGATES, Money, Outcome, Payment, Result
from paycancel_cli.redact import Redactor
from paycancel_cli.render import BulkView, Output, Sheet, _ProgressLine, show
from paycancel_cli.runs import single
from paycancel_cli.runs.request import BulkRequest
from paycancel_cli.runs.start import run_bulk
from paycancel_cli.runs.summary import Summary, summarize
from paycancel_cli.sandbox import Sandbox
from paycancel_cli.session import Session

from .conftest import PtyProcess, write_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.csv"
WIDTHS = [80, 120, 200, None]  # None: a pipe
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MISSING = {
    "flexportal": "fpay_missing_01",
    "hedgepayments": "pay_missing01",
    "flex": "fpi_missing_01",
    "vipps": "demo-missing-0001",
    "compago": "7d3f0b4e-0000-4000-8000-0000000000ff",
}


def demo_ids() -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    with DEMO.open() as f:
        for row in csv.DictReader(f):
            ids.setdefault(row["account"], []).append(row["payment_id"])
    return ids


def render(sheet: Sheet, width: int | None) -> str:
    """The sheet as a terminal of ``width`` columns shows it, or as a pipe gets it."""
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width or 80,
        force_terminal=width is not None,
        color_system=None,
        highlight=False,
    )
    show(console, sheet)
    return buf.getvalue()


def whole(token: str, text: str) -> bool:
    """``token`` on one line, not part of a longer id or number."""
    return re.search(rf"(?<![\w.-]){re.escape(token)}(?![\w-])", text) is not None


def amounts(payment: Payment | None) -> list[str]:
    if payment is None:
        return []
    found = [getattr(payment, name) for name in ("amount", *AGGREGATES)]
    return [str(m) for m in found if m is not None]


def check(text: str, width: int | None, tokens: list[str]) -> None:
    assert "…" not in text and "..." not in text, text
    missing = [t for t in tokens if not whole(t, text)]
    assert not missing, f"cut or missing: {missing}\n{text}"
    if width is not None:
        too_wide = [line for line in text.splitlines() if len(line) > width]
        assert not too_wide, f"past {width} columns: {too_wide}"
    # an amount never ends a line without its currency
    assert not re.search(r"\d\.\d+\s*$", text, re.M), text


@dataclass
class World:
    """What the sandbox answered, once per module: statuses, single cancels, runs."""

    config: Config
    statuses: dict[str, list[core.StatusLine]] = field(default_factory=dict)
    cancels: list[Result] = field(default_factory=list)
    runs: dict[str, tuple[str, list[Result], Summary]] = field(default_factory=dict)


def _bulk(config: Config, request: BulkRequest) -> tuple[str, list[Result], Summary]:
    view = BulkView(
        Output(stdout=io.StringIO(), stderr=io.StringIO()),
        progress=False,
        dry_run=request.dry_run,
    )
    outcome = run_bulk(config, request, view, redactor=Redactor())
    assert outcome.summary is not None and outcome.run_id
    return outcome.run_id, view.results, outcome.summary


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("tables")
    with pytest.MonkeyPatch.context() as mp, Sandbox() as sb:
        for name in list(os.environ):
            if name.startswith("PAYCANCEL_"):
                mp.delenv(name)
        mp.setenv("XDG_DATA_HOME", str(tmp / "data"))
        mp.setenv("PAYCANCEL_DEFAULTS__JOURNAL", str(tmp / "journal.sqlite3"))
        config = load_config(write_config(tmp / "config.toml", sb.account_config()))
        w = World(config)
        ids = demo_ids()

        async def reads_and_cancels() -> None:
            async with Session(config, redactor=Redactor()) as session:
                for account, pids in ids.items():
                    w.statuses[account] = await core.status(
                        session, account, [*pids, MISSING[account]]
                    )
                journal = Journal(config.journal_path)
                for account, pid in (
                    ("flexportal", "fpay_demo_pending_01"),
                    ("hedgepayments", "pay_demopending01"),
                    ("flex", "fpi_demo_requires_capture_01"),
                    ("vipps", "demo-partcapture-0001"),
                    ("compago", "7d3f0b4e-0000-4000-8000-000000000001"),
                    ("vipps", "demo-captured-0001"),
                    ("hedgepayments", MISSING["hedgepayments"]),
                ):
                    # as `cancel --yes` does: read and decide, then send what can be
                    decided = await single.decide_one(session, account, pid, reason="returned")
                    if decided.outcome is Outcome.WOULD_CANCEL:
                        decided = await single.cancel_confirmed(
                            session, decided, reason="returned", journal=journal, command="test"
                        )
                    w.cancels.append(decided)

        w.runs["dry"] = _bulk(config, BulkRequest(csv=str(DEMO), reason="look", dry_run=True))
        asyncio.run(reads_and_cancels())
        mismatch = tmp / "mismatch.csv"
        mismatch.write_text(
            "account,payment_id,expected_amount,expected_currency\n"
            "hedgepayments,pay_demoinitiated01,1.00,USD\n"
        )
        w.runs["mismatch"] = _bulk(config, BulkRequest(csv=str(mismatch), reason="r", yes=True))
        w.runs["demo"] = _bulk(config, BulkRequest(csv=str(DEMO), reason="demo", yes=True))
        many = tmp / "many.csv"
        many.write_text("payment_id\n" + "".join(f"pay_gone{n:04d}\n" for n in range(101)))
        w.runs["many"] = _bulk(
            config, BulkRequest(csv=str(many), account="hedgepayments", reason="r", yes=True)
        )
        yield w


def output() -> Output:
    return Output(stdout=io.StringIO(), stderr=io.StringIO())


def view_of(results: list[Result]) -> BulkView:
    view = BulkView(output(), progress=False)
    view.results = results
    return view


# status


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("provider", list(MISSING))
def test_status_of_many_payments_keeps_ids_and_amounts_whole(
    world: World, provider: str, width: int | None
) -> None:
    lines = world.statuses[provider]
    sheet = output().status_table(
        (
            (ln.account, ln.payment_id, ln.payment, ln.error.message if ln.error else None)
            for ln in lines
        ),
        live=lambda _name: False,
    )
    text = render(sheet, width)
    tokens = [ln.payment_id for ln in lines] + [a for ln in lines for a in amounts(ln.payment)]
    check(text, width, tokens)
    assert "not found" in text
    if width is None:  # a pipe: one line per payment, with its amount
        for ln in lines:
            row = next(line for line in text.splitlines() if whole(ln.payment_id, line))
            assert all(whole(a, row) for a in amounts(ln.payment)), row


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("provider", list(MISSING))
def test_status_of_one_payment(world: World, provider: str, width: int | None) -> None:
    line = world.statuses[provider][0]
    assert line.payment is not None
    sheet = output().status_table(
        [(line.account, line.payment_id, line.payment, None)], live=lambda _name: False
    )
    check(render(sheet, width), width, [line.payment_id, *amounts(line.payment)])


def test_status_leaves_out_empty_and_redundant_columns(world: World) -> None:
    hedge = [
        ln
        for ln in world.statuses["hedgepayments"]
        if ln.payment_id in ("pay_demopending01", "pay_demosucceeded01")
    ]
    sheet = output().status_table(
        ((ln.account, ln.payment_id, ln.payment, None) for ln in hedge), live=lambda _n: False
    )
    text = render(sheet, 80)
    header = text.splitlines()[1]
    assert header.split() == ["payment", "id", "status", "amount", "refunded", "cancelable"]
    assert text.splitlines()[0] == "Payments · hedgepayments test"  # one account: in the title
    assert re.search(r"^pay_demopending01 +pending +99\.99 USD +0\.00 USD +yes$", text, re.M)
    # a pipe keeps the account on every row, for grep
    assert re.search(
        r"^hedgepayments test +pay_demosucceeded01 +succeeded ", render(sheet, None), re.M
    )


def test_status_too_wide_for_80_columns_becomes_one_block_per_payment(world: World) -> None:
    lines = world.statuses["vipps"]
    sheet = output().status_table(
        ((ln.account, ln.payment_id, ln.payment, None) for ln in lines if ln.payment),
        live=lambda _n: False,
    )
    text = render(sheet, 80)
    assert "\ndemo-captured-0001\n" in text
    assert re.search(r"^  provider status +AUTHORIZED$", text, re.M)
    assert re.search(r"^  captured +20\.00 NOK$", text, re.M)
    # at 120 they fit as rows once the provider status and cancelable move under them
    mid = render(sheet, 120)
    assert re.search(
        r"^demo-captured-0001 +succeeded +20\.00 NOK +20\.00 NOK +20\.00 NOK "
        r"+0\.00 NOK +0\.00 NOK\n"
        r"    provider: AUTHORIZED · cancelable no: captured: refund instead$",
        mid,
        re.M,
    ), mid
    # at 200 columns the same payments are one row each
    wide = render(sheet, 200)
    assert re.search(r"^demo-captured-0001 +succeeded +AUTHORIZED +20\.00 NOK", wide, re.M)


# cancel


@pytest.mark.parametrize("width", WIDTHS)
def test_before_after_of_each_provider(world: World, width: int | None) -> None:
    for result in world.cancels:
        text = render(output().before_after(result), width)
        if result.before is None and result.after is None:
            assert text == "", text  # not found: no empty table, the result line says it
            continue
        tokens = [result.payment_id, *amounts(result.before), *amounts(result.after)]
        check(text, width, tokens)
    partial = next(r for r in world.cancels if r.payment_id == "demo-partcapture-0001")
    text = render(output().before_after(partial), width)
    assert re.search(r"^cancelled +0\.00 NOK +7\.50 NOK +\+7\.50 NOK$", text, re.M), text


# bulk: results, summary, failures


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("run", ["demo", "dry", "mismatch", "many"])
def test_bulk_results_summary_and_failures(world: World, run: str, width: int | None) -> None:
    run_id, results, summary = world.runs[run]
    view = view_of(results)
    text = render(view.results_table(), width)
    released = [str(m) for r in results if (m := r.released() or r.would_release())]
    check(text, width, [r.payment_id for r in results] + released)
    if width is None:
        for r in results:
            row = next(line for line in text.splitlines() if whole(r.payment_id, line))
            assert r.outcome.value in row and r.account in row, row
    totals = {**summary.cancelled_amounts, **summary.would_release}
    text = render(view.summary_table(summary), width)
    check(text, width, [run_id, *(str(Money(v, c)) for c, v in totals.items())])
    text = render(view.failures_table(summary), width)
    check(text, width, [r.payment_id for r in summary.failures])


def test_demo_run_numbers(world: World) -> None:
    run_id, results, summary = world.runs["demo"]
    assert len(results) == 31
    view = view_of(results)
    text = render(view.summary_table(summary), 80)
    assert f"Summary of run {run_id}" in text
    # captions are left-aligned lines, an amount never split from its currency
    assert re.search(r"^Cancelled amounts: \S+ EUR, \S+ NOK, \S+ USD$", text, re.M), text
    text = render(view.results_table(), 80)
    # 80 columns: account, status and note move to a line under each row
    assert re.search(
        r"^7d3f0b4e-0000-4000-8000-000000000003 +not_cancellable\n"
        r"    compago · succeeded · confirmed \(paid\): refund instead$",
        text,
        re.M,
    ), text
    wide = render(view.failures_table(summary), 200)
    # the row names the payment: the message does not repeat it
    assert re.search(r"^vipps +demo-captured-0001 .* captured: refund instead$", wide, re.M), wide
    failures = render(view.failures_table(summary), 80)
    assert failures.startswith(f"Not cancelled ({summary.failure_count})\n")
    # Vipps keeps AUTHORIZED after a capture or a refund: the code says which, as the
    # JSON record and the report do
    assert re.search(r"^demo-captured-0001 +not_cancellable +succeeded$", failures, re.M), failures
    assert re.search(r"^demo-refunded-0001 +not_cancellable +refunded$", failures, re.M), failures
    # one normalized code for every refusal (Compago's CONFIRMED is paid: succeeded)
    assert re.search(
        r"^7d3f0b4e-0000-4000-8000-000000000003 +not_cancellable +succeeded$", failures, re.M
    ), failures


def test_dry_run_says_what_it_would_release(world: World) -> None:
    _, results, summary = world.runs["dry"]
    view = view_of(results)
    text = render(view.summary_table(summary), 80)
    # the demo's cancelable payments (seeded amounts): EUR 258.00 + 49.90,
    # NOK 499.00 + 10.00 + 7.50 (remaining after a 2.50 capture), USD 99.99 + 25.00 +
    # 49.99 + 120.00 + 20.00; Compago's read gives no amount
    assert "Would release (dry run, nothing sent): 307.90 EUR, 516.50 NOK, 314.98 USD\n" in text
    assert "1 would be cancelled with no amount from the provider" in text
    assert "Cancelled amounts" not in text
    results_text = render(view.results_table(), 200)
    assert re.search(
        r"^vipps +demo-partcapture-0001 +would_cancel +partially_captured +7\.50 NOK$",
        results_text,
        re.M,
    ), results_text
    assert "  would release  " in results_text.splitlines()[1]


def test_amount_mismatch_is_not_called_the_providers_reason(world: World) -> None:
    _, results, summary = world.runs["mismatch"]
    for width in WIDTHS:
        text = render(view_of(results).failures_table(summary), width)
        assert "amount_mismatch" in text and "provider's reason" not in text
    text = render(view_of(results).failures_table(summary), 200)
    assert text.splitlines()[1].split() == ["payment", "id", "outcome", "code", "why"]


def test_many_failures_point_to_runs_show_and_report(world: World) -> None:
    run_id, results, summary = world.runs["many"]
    assert summary.failure_count == 101 and len(summary.failures) == 20
    assert results == []  # more than BulkView.SMALL_RUN: no results table
    for width in WIDTHS:
        view = view_of(results)
        text = render(view.failures_table(summary), width)
        assert text.startswith("Not cancelled (101; first 20 shown)")
        assert re.search(rf"^All 101: paycancel runs show {run_id}\s+or --report PATH$", text, re.M)
        text = render(view.summary_table(summary), width)
        assert re.search(
            rf"^All results: paycancel runs show {run_id}\s+or --report PATH$", text, re.M
        )


# runs and runs show


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_and_runs_show(world: World, width: int | None) -> None:
    journal = Journal(world.config.journal_path)
    runs = [run_json(journal, run) for run in journal.runs()]
    assert len(runs) >= 8  # four bulk runs and the single cancels
    text = render(output().runs_table(runs), width)
    check(text, width, [r["run_id"] for r in runs])
    if width is None:
        for r in runs:
            row = next(line for line in text.splitlines() if r["run_id"] in line)
            assert r["status"] in row and r["user"] in row, row
    if width == 80:
        first = runs[0]
        # times carry their zone
        row = rf"^{first['run_id']} +{first['started_at'][:10]} [\d:]+ UTC +{first['status']} +"
        row += rf"{first['total']}\n"
        assert re.search(row + rf"    by {re.escape(first['user'])}@", text, re.M), text
    run_id = world.runs["demo"][0]
    rows = [row.result(run_id) for row in journal.payments(run_id)]
    view = view_of(rows)
    text = render(view.results_table(), width)
    check(text, width, [r.payment_id for r in rows] + [str(m) for r in rows if (m := r.released())])
    text = render(view.summary_table(summarize(journal, run_id)), width)
    check(text, width, [run_id])
    # the journal keeps no request count: no "0 requests in 0.0s" for a run that made 42
    assert "requests in" not in text, text


# through the command line: COLUMNS set, stdout a pipe


def paycancel(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "paycancel_cli", "--sandbox", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_piped_status_at_80_columns_keeps_every_row_whole() -> None:
    res = paycancel(
        "status", "pay_demopending01", "pay_demosucceeded01", "--account", "hedgepayments"
    )
    assert res.returncode == 0, res.stderr
    assert re.search(
        r"^hedgepayments test +pay_demopending01 +pending +99\.99 USD +0\.00 USD +yes$",
        res.stdout,
        re.M,
    ), res.stdout
    compago = demo_ids()["compago"]
    res = paycancel("status", *compago, "--account", "compago")
    assert res.returncode == 0, res.stderr
    for pid in compago:
        assert len([line for line in res.stdout.splitlines() if whole(pid, line)]) == 1


def test_piped_demo_dry_run_and_runs_at_80_columns() -> None:
    res = paycancel("bulk-cancel", str(DEMO), "--dry-run", "--reason", "look", "--yes")
    assert res.returncode == 1, res.stderr  # some payments would not be cancelled
    assert "…" not in res.stdout
    ids = [pid for pids in demo_ids().values() for pid in pids]
    assert all(whole(pid, res.stdout) for pid in ids)
    run_id = re.search(r"Run id: (\S+)", res.stderr)
    assert run_id is not None
    runs = paycancel("runs")
    assert runs.returncode == 0 and whole(run_id[1], runs.stdout), runs.stdout


def test_runs_with_none_says_so(cli: Any, config_file: Path) -> None:
    res = cli("--config", str(config_file), "runs")
    assert res.code == 0 and res.stdout == ""
    assert res.stderr.strip() == "No runs in the journal yet."


def test_cancel_of_a_payment_not_found_prints_no_empty_table(cli: Any, config_file: Path) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "pay_missing01",
        "--account",
        "hedgepayments",
        "--reason",
        "r",
        "--yes",
    )
    assert res.code == 1 and res.stdout == ""
    assert "hedgepayments pay_missing01: not_found" in res.stderr


# the progress bar


def test_progress_line_keeps_done_total_rate_and_eta_at_80_columns() -> None:
    now = [0.0]
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    counts = {
        "cancelled": 4000,
        "already_cancelled": 300,
        "not_cancellable": 250,
        "not_found": 20,
        "failed": 7,
        "invalid": 3,
    }
    from collections import Counter

    line = _ProgressLine(console, "cancelling", Counter(counts))
    progress = Progress(console=console, get_time=lambda: now[0])
    task_id = progress.add_task("", total=10000)
    for _ in range(50):
        now[0] += 1.0
        progress.update(task_id, advance=100)
    task = progress.tasks[0]
    text = line(task).plain
    assert text.startswith("cancelling 5000/10000 100.0/s ETA 0:00:50 "), text
    assert len(text) <= 79
    assert "━" in text  # the bar, then as many counts as fit
    wide = Console(file=io.StringIO(), width=200, force_terminal=True)
    full = _ProgressLine(wide, "cancelling", Counter(counts))(task).plain
    assert "already_cancelled=300" in full and "invalid=3" in full


def test_progress_and_tables_on_an_80_column_terminal(tmp_path: Path) -> None:
    with Sandbox() as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        proc = PtyProcess(
            ["--config", str(config), "bulk-cancel", str(DEMO), "--dry-run", "--reason", "x"],
            {**os.environ, "COLUMNS": "80", "TERM": "xterm"},
        )
        try:
            code = proc.wait(120)
            shown = proc.output.decode("utf-8", "replace")
        finally:
            proc.close()
    assert code == 1, shown
    frames = [ANSI.sub("", f) for f in re.split(r"[\r\n]", shown)]
    bars = [f for f in frames if f.startswith("checking ")]
    assert bars and all(len(f) <= 80 for f in frames), [f for f in frames if len(f) > 80]
    assert all(re.match(r"checking \d+/31 [\d.-]+/s ETA [\d:-]+", f) for f in bars), bars
    assert any(f.startswith("checking 31/31 ") for f in bars)
    assert "cancelling" not in shown
    for pid in (pid for pids in demo_ids().values() for pid in pids):
        assert any(whole(pid, f) for f in frames), pid


def test_status_of_a_bad_answer_is_not_called_not_found(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    sandbox.add_fault("hedgepayments", "pay_demopending01", "html_502", op="get")
    args = ["status", "pay_demopending01", "pay_missing01", "--account", "hedgepayments"]
    res = cli("--config", str(config_file), *args)
    assert res.code == 1, res.stderr
    # a lookup that failed is not a payment status (FlexPortal has a real `failed`)
    assert re.search(r"^hedgepayments test +pay_demopending01 +\(not read\) +no: .*HTML page",
                     res.stdout, re.M), res.stdout  # fmt: skip
    assert re.search(r"^hedgepayments test +pay_missing01 +not found +no: ", res.stdout, re.M)


@pytest.mark.parametrize("width", WIDTHS)
def test_about_to_cancel(world: World, width: int | None) -> None:
    line = next(ln for ln in world.statuses["vipps"] if ln.payment_id == "demo-partcapture-0001")
    assert line.payment is not None
    text = render(output().plan_table(line.payment, False, "early return"), width)
    check(text, width, ["demo-partcapture-0001", "10.00 NOK", "7.50 NOK"])
    assert re.search(r"^to be released +7\.50 NOK$", text, re.M), text
    assert re.search(r"^status +partially_captured \(AUTHORIZED\)$", text, re.M), text
