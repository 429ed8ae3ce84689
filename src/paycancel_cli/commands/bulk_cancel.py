"""`paycancel bulk-cancel`: many payments from a CSV, from subscriptions, from a
reviewed plan, or a resume; the flags checked, then ``bulk.run_bulk`` and the report."""

import math
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from paycancel_cli.commands.common import (
    AccountOpt,
    Command,
    ForceOpt,
    Globals,
    JsonOpt,
    check_report_path,
    globals_of,
    resume_command,
)
from paycancel_cli.completion import run_ids
from paycancel_cli.errors import UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.monitoring import Monitor
    from paycancel_cli.plans import Author
    from paycancel_cli.render import BulkView, Output
    from paycancel_cli.runs.request import BulkRequest, BulkUI
    from paycancel_cli.runs.summary import BulkOutcome, Summary
    from paycancel_cli.tonight import Tonight


CsvFileArg = Annotated[
    str | None,
    typer.Argument(
        metavar="CSV", help="CSV of payment ids (- for standard input).", show_default=False
    ),
]

SubscriptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--subscription",
        metavar="ID",
        help="Cancel this subscription's open payments (repeatable).",
    ),
]

SubscriptionsFromOpt = Annotated[
    str | None,
    typer.Option(
        "--subscriptions-from",
        metavar="PATH",
        help="Subscription ids from a file, one per line (- for standard input).",
    ),
]

SubscriptionsCommandOpt = Annotated[
    str | None,
    typer.Option(
        "--subscriptions-command",
        metavar="COMMAND",
        help="Subscription ids printed by COMMAND, one per line (run without a shell; "
        "if it fails, no run is started).",
    ),
]

ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", metavar="TEXT", help="Why (a CSV reason column overrides per row)."),
]

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Read every payment; send nothing.")]

ValidateOnlyOpt = Annotated[
    bool,
    typer.Option("--validate-only", help="Validate the input and stop; no request at all."),
]

SkipInvalidOpt = Annotated[
    bool, typer.Option("--skip-invalid", help="Go on with the valid rows; report the others.")
]

YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask (live accounts also need --live).")
]

LiveOpt = Annotated[
    bool, typer.Option("--live", help="With --yes: allow LIVE accounts non-interactively.")
]

ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        max=256,
        metavar="N",
        help="Payments in flight, 1 to 256 (default from config).",
    ),
]

MaxPaymentsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-payments", min=0, metavar="N", help="Refuse a run that selects more payments."
    ),
]

ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        metavar="PATH",
        help="Write one row per payment (CSV, or JSON Lines for .jsonl).",
    ),
]

ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        metavar="RUN_ID",
        help="Continue a stopped or crashed run.",
        autocompletion=run_ids,
    ),
]

ResumeUnfinishedOpt = Annotated[
    bool,
    typer.Option(
        "--resume-unfinished",
        help="Resume every unfinished run of the journal (`paycancel runs "
        "--unfinished`), oldest first.",
    ),
]

WaitOpt = Annotated[
    str | None,
    typer.Option(
        "--wait",
        metavar="[SECONDS]",
        help="If another process works on the same input or run, wait for it "
        "(at most SECONDS, then exit 4).",
    ),
]

ReadFirstOpt = Annotated[
    bool,
    typer.Option(
        "--read-first",
        help="Read each CSV payment before its cancel: the exact before state, at one "
        "more request per payment (by default a cancel goes first where the provider's "
        "answer tells what happened).",
    ),
]

PlanOpt = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        metavar="PLAN",
        help="Apply a reviewed plan (made with --plan-out): exactly its payments, once.",
    ),
]

PlanOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--plan-out",
        metavar="PLAN",
        help="Write a reviewable plan: a dry run, saved for `plan show|approve`.",
    ),
]

ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires",
        metavar="DURATION",
        help="With --plan-out: how long the plan can be applied (90s, 30m, 24h, 3d; "
        "default 24h, at most 7d).",
    ),
]

KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="PATH",
        help="With --plan-out: sign the plan as its author with this SSH key.",
    ),
]

MetricsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        metavar="PATH",
        help="When the command ends, whatever its exit code, replace this *.prom file "
        "(atomically) with Prometheus metrics for node_exporter's textfile collector.",
    ),
]

JobNameOpt = Annotated[
    str | None,
    typer.Option(
        "--job-name",
        metavar="NAME",
        help="The job_name label of --metrics-file's metrics (default: paycancel).",
    ),
]

PingUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--ping-url",
        metavar="URL",
        help="Dead-man's switch (Healthchecks and compatible): ping URL/start when the "
        "run starts and URL/<exit code> when it ends. A credential: never shown in full.",
    ),
]

JsonSummaryOpt = Annotated[
    bool,
    typer.Option(
        "--json-summary",
        help="Only one JSON line on stdout, whatever ends the run: its run id, status, "
        "exit code, times and totals (for cron logs).",
    ),
]


def bulk_cancel(
    ctx: typer.Context,
    csv_file: CsvFileArg = None,
    subscription: SubscriptionOpt = None,
    subscriptions_from: SubscriptionsFromOpt = None,
    subscriptions_command: SubscriptionsCommandOpt = None,
    account: AccountOpt = None,
    reason: ReasonOpt = None,
    dry_run: DryRunOpt = False,
    validate_only: ValidateOnlyOpt = False,
    skip_invalid: SkipInvalidOpt = False,
    yes: YesOpt = False,
    live: LiveOpt = False,
    concurrency: ConcurrencyOpt = None,
    max_payments: MaxPaymentsOpt = None,
    report: ReportOpt = None,
    force: ForceOpt = False,
    resume: ResumeOpt = None,
    resume_unfinished: ResumeUnfinishedOpt = False,
    wait: WaitOpt = None,
    read_first: ReadFirstOpt = False,
    plan: PlanOpt = None,
    plan_out: PlanOutOpt = None,
    expires: ExpiresOpt = None,
    key: KeyOpt = None,
    metrics_file: MetricsFileOpt = None,
    job_name: JobNameOpt = None,
    ping_url: PingUrlOpt = None,
    json_: JsonOpt = False,
    json_summary: JsonSummaryOpt = False,
) -> None:
    """Cancel many payments from a CSV or from subscriptions' open payments.  The input is
    validated first, a plan is shown and confirmed, and every payment is journaled, so a
    stopped run can be resumed.

    CSV columns (a header row; names match ignoring case, spaces, - and _): payment_id
    (or id, reference) or subscription_id; optional account, reason, expected_amount
    and expected_currency."""
    from paycancel_cli import tonight
    from paycancel_cli.render import BulkView
    from paycancel_cli.runs.request import Observed

    f = Flags(
        csv_file, subscription, subscriptions_from, subscriptions_command, account, reason,
        dry_run, validate_only, skip_invalid, yes, live, concurrency, max_payments, report,
        force, resume, resume_unfinished, wait, read_first, plan, plan_out, expires, key,
        metrics_file, job_name, ping_url, json_, json_summary,
    )  # fmt: skip
    g = globals_of(ctx)
    monitor = _check_flags(g, f)
    night = tonight.current if f.json_summary else None
    config = g.config()
    out = _output(g, f, night)
    subscriptions = _subscription_ids(f, out, night)
    author = _author(config, f)
    request = _request(config, f, subscriptions)
    view = BulkView(out, progress=True, dry_run=f.dry_run)
    on_start = [] if monitor is None else [monitor.started]  # the start ping
    if f.resume_unfinished:
        ui = Observed(view, *on_start)
        raise typer.Exit(_resume_all(g, config, request, ui, night, say=out.message))
    if night is not None:  # --json-summary's line names the run it started
        on_start.append(night.run_started)
        night.run_id = f.resume or night.run_id
    outcome = _run(g, config, f, request, Observed(view, *on_start), announce=out.message)
    _tell_end(outcome, night, monitor)
    if outcome.summary is None:
        _validated(out, outcome, night, skip_invalid=f.skip_invalid)
    _show(g, config, f, view, outcome)
    if f.plan_out is not None and author is not None:
        from paycancel_cli.commands.plan import write_plan_out

        write_plan_out(
            out, config, outcome, path=f.plan_out, expires=f.expires, author=author,
            command=g.redact(request.command), reason=(f.reason or "").strip(),
        )  # fmt: skip
    raise typer.Exit(outcome.exit_code())


@dataclass
class Flags:
    """bulk-cancel's flags as given; the helpers below check and use them."""

    csv_file: str | None
    subscription: list[str] | None
    subscriptions_from: str | None
    subscriptions_command: str | None
    account: str | None
    reason: str | None
    dry_run: bool
    validate_only: bool
    skip_invalid: bool
    yes: bool
    live: bool
    concurrency: int | None
    max_payments: int | None
    report: Path | None
    force: bool
    resume: str | None
    resume_unfinished: bool
    wait: str | None
    read_first: bool
    plan: Path | None
    plan_out: Path | None
    expires: str | None
    key: Path | None
    metrics_file: Path | None
    job_name: str | None
    ping_url: str | None
    json_: bool
    json_summary: bool


def _check_flags(g: Globals, f: Flags) -> "Monitor | None":
    """Every check of the flags that needs no config: exit 2 before anything is read."""
    assert g.redactor is not None
    monitor = None
    if f.metrics_file is not None or f.job_name is not None or f.ping_url is not None:
        from paycancel_cli.monitoring import watch

        monitor = watch(
            metrics_file=f.metrics_file, job_name=f.job_name, ping_url=f.ping_url,
            redactor=g.redactor,
        )  # fmt: skip
    if f.plan is not None or f.plan_out is not None or f.expires is not None or f.key is not None:
        from paycancel_cli.commands.plan import check_plan_flags

        shaping = {
            "a CSV file": f.csv_file, "--subscription": f.subscription, "--account": f.account,
            "--reason": f.reason, "--dry-run": f.dry_run, "--validate-only": f.validate_only,
            "--skip-invalid": f.skip_invalid, "--max-payments": f.max_payments is not None,
            "--resume": f.resume, "--read-first": f.read_first,
        }  # fmt: skip
        check_plan_flags(
            plan=f.plan, plan_out=f.plan_out, expires=f.expires, key=f.key, given=shaping,
            reason=f.reason,
        )  # fmt: skip
    if f.json_ and f.json_summary:
        raise UsageError(
            "Give --json (a line per payment, then the summary) or --json-summary (the one "
            "outcome line), not both. Nothing was sent."
        )
    if f.report is not None:
        check_report_path(f.report, force=f.force)
    return monitor


def _output(g: Globals, f: Flags, night: "Tonight | None") -> "Output":
    """Where the command writes; with --json-summary, everything JSON but the one line
    goes nowhere."""
    if night is None:
        return g.output(f.json_)
    import io

    from paycancel_cli.render import Output

    f.json_ = True
    return Output(json_mode=True, no_color=g.no_color, redact=g.redact, stdout=io.StringIO())


def _subscription_ids(f: Flags, out: "Output", night: "Tonight | None") -> list[str]:
    """--subscription's ids, then those of --subscriptions-from and --subscriptions-command;
    none at all from a source ends the command here: nothing to do (exit 0)."""
    subscriptions = list(f.subscription or [])
    if f.subscriptions_from is None and f.subscriptions_command is None:
        return subscriptions
    from paycancel_cli import idsource

    if f.subscriptions_from is not None:
        subscriptions += idsource.from_file(f.subscriptions_from)
    if f.subscriptions_command is not None:
        subscriptions += idsource.from_command(f.subscriptions_command)
    if not subscriptions and f.csv_file is None and f.resume is None:
        said = "No subscription ids to work on: nothing to do; no run was started."
        out.message(said)
        if night is not None:
            night.status, night.message = "nothing_to_do", said
        elif f.json_:
            from paycancel_cli.runs.summary import Summary

            out.json_line({**Summary("").to_json(), "run_id": None, "subscriptions": {}})
        raise typer.Exit(0)
    return subscriptions


def _author(config: "Config", f: Flags) -> "Author | None":
    """--plan-out: a dry run written down; its author's key is checked first."""
    if f.plan_out is None:
        return None
    from paycancel_cli.plans import author_of, parse_expiry

    if f.expires is not None:
        parse_expiry(f.expires)
    author = author_of(config, f.key.expanduser() if f.key else None, f.account)
    f.dry_run = True
    return author


def _request(config: "Config", f: Flags, subscriptions: list[str]) -> "BulkRequest":
    from paycancel_cli.runs.request import BulkRequest

    return BulkRequest(
        csv=f.csv_file,
        subscriptions=subscriptions,
        account=f.account,
        reason=f.reason,
        dry_run=f.dry_run,
        validate_only=f.validate_only,
        skip_invalid=f.skip_invalid,
        yes=f.yes,
        live=f.live,
        interactive=sys.stdin.isatty(),
        concurrency=f.concurrency,
        max_payments=f.max_payments,
        resume=f.resume,
        resume_unfinished=f.resume_unfinished,
        plan=f.plan is not None,
        wait=wait_limit(f.wait),
        read_first=f.read_first,
        command=shlex.join(["paycancel", *sys.argv[1:]]),
        config=config,
    )


def _resume_all(
    g: Globals,
    config: "Config",
    request: "BulkRequest",
    ui: "BulkUI",
    night: "Tonight | None",
    *,
    say: Callable[[str], None],
) -> int:
    """--resume-unfinished: each unfinished run resumed; the exit code of them all."""
    import json

    from paycancel_cli.commands.messages import worded
    from paycancel_cli.unfinished import resume_unfinished

    assert g.redactor is not None

    def emit(line: dict[str, Any]) -> None:
        print(g.redact(json.dumps(line)), flush=True)

    return resume_unfinished(
        config,
        request,
        ui,
        redactor=g.redactor,
        say=say,
        emit=None if night is None else emit,
        night=night,
        word=worded,
    )


def _run(
    g: Globals,
    config: "Config",
    f: Flags,
    request: "BulkRequest",
    ui: "BulkUI",
    *,
    announce: Callable[[str], None],
) -> "BulkOutcome":
    """The run the flags ask for: a reviewed plan applied, or a run from the input (or a
    resume)."""
    assert g.redactor is not None
    if f.plan is not None:
        from paycancel_cli.runs.fromplan import apply_plan

        return apply_plan(config, f.plan, request, ui, redactor=g.redactor, announce=announce)
    from paycancel_cli.runs.start import run_bulk

    return run_bulk(config, request, ui, redactor=g.redactor)


def _tell_end(outcome: "BulkOutcome", night: "Tonight | None", monitor: "Monitor | None") -> None:
    """What the run summed up, for --json-summary's line and --metrics-file/--ping-url."""
    if night is not None and outcome.summary is not None:
        night.finished(
            outcome.summary.to_json(),
            exit_code=outcome.exit_code(),
            interrupted=outcome.interrupted,
        )
    if monitor is not None:
        monitor.finish(outcome)


def _validated(
    out: "Output", outcome: "BulkOutcome", night: "Tonight | None", *, skip_invalid: bool
) -> NoReturn:
    """--validate-only's report: the counts, then exit 0, or 2 with invalid rows."""
    v = outcome.validation
    assert v is not None
    if night is not None:
        night.status, night.summary = "validated", v.to_json()
    if out.json_mode:
        out.json_line(v.to_json())
    else:
        per = ", ".join(f"{a}: {n}" for a, n in sorted(v.per_account.items())) or "none"
        out.message(
            f"Valid: {v.valid} {v.counted[:-1]}(s) ({per}); {v.invalid} invalid, "
            f"{v.duplicates} duplicate(s). Nothing was sent."
        )
    if outcome.refused:
        raise outcome.refused
    raise typer.Exit(2 if v.invalid and not skip_invalid else 0)


def _show(g: Globals, config: "Config", f: Flags, view: "BulkView", outcome: "BulkOutcome") -> None:
    """The run's results, failures and summary, its report, and how to resume it when it
    stopped early (exit 130); a resume with nothing left says so (exit 0)."""
    from paycancel_cli import pipes

    out, summary = view.out, outcome.summary
    assert summary is not None
    if outcome.finished:
        # Nothing to resume: say so, and show the run's summary (exit 0).
        out.message(
            f"Run {outcome.run_id} is finished: every payment has its outcome, nothing was "
            f"sent. Its results: paycancel runs show {outcome.run_id}"
        )
        if f.json_:
            out.json_line(summary.to_json())
        else:
            out.table(view.summary_table(summary))
        raise typer.Exit(0)
    if f.json_:
        out.json_line(summary.to_json())
    else:
        _tables(config, view, outcome, summary)
    if f.report is not None and outcome.run_id:
        _report(g, config, out, f.report, outcome.run_id)
    if outcome.interrupted or pipes.closed():
        assert outcome.run_id is not None
        why = f"Stopped: {pipes.MESSAGE}" if pipes.closed() else "Interrupted"
        out.message(
            f"{why}: in-flight cancels finished and were recorded. Resume with:",
            style="yellow",
        )
        out.command_line("  " + resume_command(g, outcome.run_id, yes=f.yes, live=f.live))
        raise typer.Exit(130)
    out.message(f"Run id: {outcome.run_id}")


def _tables(config: "Config", view: "BulkView", outcome: "BulkOutcome", summary: "Summary") -> None:
    from paycancel_cli.journal import Journal

    out = view.out
    if view.results and outcome.run_id:
        order = {
            (row.account, row.payment_id): row.seq
            for row in Journal(config.journal_path).payments(outcome.run_id)
        }
        view.results.sort(key=lambda r: order.get((r.account, r.payment_id), 0))
        out.table(view.results_table(summary))
    if summary.failures:
        out.table(view.failures_table(summary))
    out.table(view.summary_table(summary))  # last: the totals stay on screen


def _report(g: Globals, config: "Config", out: "Output", report: Path, run_id: str) -> None:
    from paycancel_cli.journal import Journal
    from paycancel_cli.runs.summary import report_rows, write_report

    try:
        rows = write_report(report, report_rows(Journal(config.journal_path), run_id), g.redact)
        out.message(f"Report: {rows} row(s) written to {report}.")
    except OSError as exc:
        out.error(
            f"The report {report} could not be written ({exc.strerror}); the journal "
            f"has every result: paycancel runs show {run_id}"
        )


def wait_limit(text: str | None) -> float | None:
    """``--wait`` alone (an empty value): no limit; ``--wait SECONDS``: that long."""
    if text is None:
        return None
    if not text.strip():
        return math.inf
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < math.inf:
        raise UsageError(
            f"--wait {text}: give the most seconds to wait (a positive number), or --wait "
            "alone to wait without a limit."
        )
    return seconds


COMMAND = Command(
    bulk_cancel,
    name="bulk-cancel",
    short_help="Cancel many payments from a CSV or subscriptions; resumable.",
    examples=(
        "paycancel bulk-cancel returns.csv --reason 'early return' --dry-run",
        "paycancel bulk-cancel returns.csv --reason 'early return' --report out.csv",
        "paycancel bulk-cancel --subscription rent_8812 -a fp_eu --reason returned",
        "paycancel bulk-cancel - --validate-only < ids.csv",
        "paycancel bulk-cancel --resume RUN_ID --yes",
        "paycancel bulk-cancel night.csv --reason cleanup --yes --live --json",
    ),
)
