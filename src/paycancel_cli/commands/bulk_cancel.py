"""`paycancel bulk-cancel`: many payments from a CSV, from subscriptions, from a
reviewed plan, or a resume; the flags checked, then ``bulk.run_bulk`` and the report."""

import math
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from paycancel_cli.commands.common import (
    AccountOpt,
    ForceOpt,
    JsonOpt,
    examples,
    globals_of,
    resume_command,
)
from paycancel_cli.completion import run_ids
from paycancel_cli.errors import InputError, UsageError


def bulk_cancel(
    ctx: typer.Context,
    csv_file: Annotated[
        str | None,
        typer.Argument(
            metavar="CSV", help="CSV of payment ids (- for standard input).", show_default=False
        ),
    ] = None,
    subscription: Annotated[
        list[str] | None,
        typer.Option(
            "--subscription",
            metavar="ID",
            help="Cancel this subscription's open payments (repeatable).",
        ),
    ] = None,
    subscriptions_from: Annotated[
        str | None,
        typer.Option(
            "--subscriptions-from",
            metavar="PATH",
            help="Subscription ids from a file, one per line (- for standard input).",
        ),
    ] = None,
    subscriptions_command: Annotated[
        str | None,
        typer.Option(
            "--subscriptions-command",
            metavar="COMMAND",
            help="Subscription ids printed by COMMAND, one per line (run without a shell; "
            "if it fails, no run is started).",
        ),
    ] = None,
    account: AccountOpt = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason", metavar="TEXT", help="Why (a CSV reason column overrides per row)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read every payment; send nothing.")
    ] = False,
    validate_only: Annotated[
        bool,
        typer.Option("--validate-only", help="Validate the input and stop; no request at all."),
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Go on with the valid rows; report the others.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (live accounts also need --live).")
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="With --yes: allow LIVE accounts non-interactively.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=256,
            metavar="N",
            help="Payments in flight, 1 to 256 (default from config).",
        ),
    ] = None,
    max_payments: Annotated[
        int | None,
        typer.Option(
            "--max-payments", min=0, metavar="N", help="Refuse a run that selects more payments."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="PATH",
            help="Write one row per payment (CSV, or JSON Lines for .jsonl).",
        ),
    ] = None,
    force: ForceOpt = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Continue a stopped or crashed run.",
            autocompletion=run_ids,
        ),
    ] = None,
    resume_unfinished: Annotated[
        bool,
        typer.Option(
            "--resume-unfinished",
            help="Resume every unfinished run of the journal (`paycancel runs "
            "--unfinished`), oldest first.",
        ),
    ] = False,
    wait: Annotated[
        str | None,
        typer.Option(
            "--wait",
            metavar="[SECONDS]",
            help="If another process works on the same input or run, wait for it "
            "(at most SECONDS, then exit 4).",
        ),
    ] = None,
    read_first: Annotated[
        bool,
        typer.Option(
            "--read-first",
            help="Read each CSV payment before its cancel: the exact before state, at one "
            "more request per payment (by default a cancel goes first where the provider's "
            "answer tells what happened).",
        ),
    ] = False,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            metavar="PLAN",
            help="Apply a reviewed plan (made with --plan-out): exactly its payments, once.",
        ),
    ] = None,
    plan_out: Annotated[
        Path | None,
        typer.Option(
            "--plan-out",
            metavar="PLAN",
            help="Write a reviewable plan: a dry run, saved for `plan show|approve`.",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="DURATION",
            help="With --plan-out: how long the plan can be applied (90s, 30m, 24h, 3d; "
            "default 24h, at most 7d).",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PATH",
            help="With --plan-out: sign the plan as its author with this SSH key.",
        ),
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            metavar="PATH",
            help="When the command ends, whatever its exit code, replace this *.prom file "
            "(atomically) with Prometheus metrics for node_exporter's textfile collector.",
        ),
    ] = None,
    job_name: Annotated[
        str | None,
        typer.Option(
            "--job-name",
            metavar="NAME",
            help="The job_name label of --metrics-file's metrics (default: paycancel).",
        ),
    ] = None,
    ping_url: Annotated[
        str | None,
        typer.Option(
            "--ping-url",
            metavar="URL",
            help="Dead-man's switch (Healthchecks and compatible): ping URL/start when the "
            "run starts and URL/<exit code> when it ends. A credential: never shown in full.",
        ),
    ] = None,
    json_: JsonOpt = False,
    json_summary: Annotated[
        bool,
        typer.Option(
            "--json-summary",
            help="Only one JSON line on stdout, whatever ends the run: its run id, status, "
            "exit code, times and totals (for cron logs).",
        ),
    ] = False,
) -> None:
    """Cancel many payments from a CSV or from subscriptions' open payments.  The input is
    validated first, a plan is shown and confirmed, and every payment is journaled, so a
    stopped run can be resumed.

    CSV columns (a header row; names match ignoring case, spaces, - and _): payment_id
    (or id, reference) or subscription_id; optional account, reason, expected_amount
    and expected_currency."""
    from paycancel_cli import pipes, tonight
    from paycancel_cli.bulk import (
        BulkRequest,
        check_report_path,
        report_rows,
        run_bulk,
        write_report,
    )
    from paycancel_cli.journal import Journal
    from paycancel_cli.render import BulkView

    g = globals_of(ctx)
    assert g.redactor is not None
    monitor = None
    if metrics_file is not None or job_name is not None or ping_url is not None:
        from paycancel_cli.monitoring import watch

        monitor = watch(
            metrics_file=metrics_file, job_name=job_name, ping_url=ping_url, redactor=g.redactor
        )
    if plan is not None or plan_out is not None or expires is not None or key is not None:
        from paycancel_cli.commands.plan import check_plan_flags

        shaping = {
            "a CSV file": csv_file, "--subscription": subscription, "--account": account,
            "--reason": reason, "--dry-run": dry_run, "--validate-only": validate_only,
            "--skip-invalid": skip_invalid, "--max-payments": max_payments is not None,
            "--resume": resume, "--read-first": read_first,
        }  # fmt: skip
        check_plan_flags(
            plan=plan, plan_out=plan_out, expires=expires, key=key, given=shaping, reason=reason
        )
    night = tonight.current if json_summary else None
    if json_ and json_summary:
        raise UsageError(
            "Give --json (a line per payment, then the summary) or --json-summary (the one "
            "outcome line), not both. Nothing was sent."
        )
    if report is not None:
        check_report_path(report, force=force)
    config = g.config()
    out = g.output(json_)
    if night is not None:  # everything JSON but the one line goes nowhere
        import io

        from paycancel_cli.render import Output

        json_ = True
        out = Output(json_mode=True, no_color=g.no_color, redact=g.redact, stdout=io.StringIO())
    subscriptions = list(subscription or [])
    if subscriptions_from is not None or subscriptions_command is not None:
        from paycancel_cli import idsource

        if subscriptions_from is not None:
            subscriptions += idsource.from_file(subscriptions_from)
        if subscriptions_command is not None:
            subscriptions += idsource.from_command(subscriptions_command)
        if not subscriptions and csv_file is None and resume is None:
            said = "No subscription ids to work on: nothing to do; no run was started."
            out.message(said)
            if night is not None:
                night.status, night.message = "nothing_to_do", said
            elif json_:
                from paycancel_cli.bulk import Summary

                out.json_line({**Summary("").to_json(), "run_id": None, "subscriptions": {}})
            raise typer.Exit(0)
    interactive = sys.stdin.isatty()
    author = None
    if plan_out is not None:  # a dry run written down; the author's key is checked first
        from paycancel_cli.plans import author_of, parse_expiry

        if expires is not None:
            parse_expiry(expires)
        author = author_of(config, key.expanduser() if key else None, account)
        dry_run = True
    request = BulkRequest(
        csv=csv_file,
        subscriptions=subscriptions,
        account=account,
        reason=reason,
        dry_run=dry_run,
        validate_only=validate_only,
        skip_invalid=skip_invalid,
        yes=yes,
        live=live,
        interactive=interactive,
        concurrency=concurrency,
        max_payments=max_payments,
        resume=resume,
        wait=wait_limit(wait),
        read_first=read_first,
        command=shlex.join(["paycancel", *sys.argv[1:]]),
    )
    view = BulkView(
        out, yes=yes, live=live, interactive=interactive, progress=True, dry_run=dry_run
    )
    ui = view if monitor is None else monitor.ui(view)
    if resume_unfinished:
        import json

        from paycancel_cli.unfinished import resume_unfinished as resume_all

        def emit(line: dict[str, Any]) -> None:
            print(g.redact(json.dumps(line)), flush=True)

        raise typer.Exit(
            resume_all(
                config,
                request,
                ui,
                redactor=g.redactor,
                say=view.out.message,
                emit=None if night is None else emit,
                night=night,
            )
        )
    watched = ui if night is None else tonight.Watched(ui, night)
    if night is not None and resume:
        night.run_id = resume
    if plan is not None:
        from paycancel_cli.plans import apply_plan

        outcome = apply_plan(
            config, plan, request, watched, redactor=g.redactor, announce=out.message
        )
    else:
        outcome = run_bulk(config, request, watched, redactor=g.redactor)
    if night is not None and outcome.summary is not None:
        night.finished(
            outcome.summary.to_json(),
            exit_code=outcome.exit_code(),
            interrupted=outcome.interrupted,
        )
    if monitor is not None:
        monitor.finish(outcome)
    if outcome.summary is None:
        v = outcome.validation
        assert v is not None
        if night is not None:
            night.status, night.summary = "validated", v.to_json()
        if json_:
            out.json_line(v.to_json())
        else:
            per = ", ".join(f"{a}: {n}" for a, n in sorted(v.per_account.items())) or "none"
            out.message(
                f"Valid: {v.valid} {v.counted[:-1]}(s) ({per}); {v.invalid} invalid, "
                f"{v.duplicates} duplicate(s). Nothing was sent."
            )
        if outcome.refused:
            raise InputError(outcome.refused)
        raise typer.Exit(2 if v.invalid and not skip_invalid else 0)
    summary = outcome.summary
    if outcome.finished:
        # Nothing to resume: say so, and show the run's summary (exit 0).
        out.message(
            f"Run {outcome.run_id} is finished: every payment has its outcome, nothing was "
            f"sent. Its results: paycancel runs show {outcome.run_id}"
        )
        if json_:
            out.json_line(summary.to_json())
        else:
            out.table(view.summary_table(summary))
        raise typer.Exit(0)
    if json_:
        out.json_line(summary.to_json())
    else:
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
    if report is not None and outcome.run_id:
        try:
            journal = Journal(config.journal_path)
            rows = write_report(report, report_rows(journal, outcome.run_id), g.redact)
            out.message(f"Report: {rows} row(s) written to {report}.")
        except OSError as exc:
            out.error(
                f"The report {report} could not be written ({exc.strerror}); the journal "
                f"has every result: paycancel runs show {outcome.run_id}"
            )
    if outcome.interrupted or pipes.closed():
        assert outcome.run_id is not None
        why = f"Stopped: {pipes.MESSAGE}" if pipes.closed() else "Interrupted"
        out.message(
            f"{why}: in-flight cancels finished and were recorded. Resume with:",
            style="yellow",
        )
        out.command_line("  " + resume_command(g, outcome.run_id, yes=yes, live=live))
        raise typer.Exit(130)
    out.message(f"Run id: {outcome.run_id}")
    if plan_out is not None and author is not None:
        from paycancel_cli.commands.plan import write_plan_out

        write_plan_out(
            out, config, outcome, path=plan_out, expires=expires, author=author,
            command=g.redact(request.command), reason=(reason or "").strip(),
        )  # fmt: skip
    raise typer.Exit(outcome.exit_code())


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


def register(app: typer.Typer) -> None:
    app.command(
        "bulk-cancel",
        short_help="Cancel many payments from a CSV or subscriptions; resumable.",
        epilog=examples(
            "paycancel bulk-cancel returns.csv --reason 'early return' --dry-run",
            "paycancel bulk-cancel returns.csv --reason 'early return' --report out.csv",
            "paycancel bulk-cancel --subscription rent_8812 -a fp_eu --reason returned",
            "paycancel bulk-cancel - --validate-only < ids.csv",
            "paycancel bulk-cancel --resume RUN_ID --yes",
            "paycancel bulk-cancel night.csv --reason cleanup --yes --live --json",
        ),
    )(bulk_cancel)
