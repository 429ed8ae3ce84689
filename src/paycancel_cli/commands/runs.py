"""`paycancel runs`, `runs show RUN_ID`, `runs prune`: the journal as history."""

from pathlib import Path
from typing import Annotated, Any

import typer

from paycancel_cli.commands.common import (
    Command,
    ForceOpt,
    JsonOpt,
    check_report_path,
    examples,
    globals_of,
    resume_command,
)
from paycancel_cli.completion import run_ids

runs_app = typer.Typer(
    help="The journal as history.", no_args_is_help=False, invoke_without_command=True
)


@runs_app.callback()
def runs(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, metavar="N", help="Show the newest N runs."),
    ] = 20,
    unfinished: Annotated[
        bool,
        typer.Option(
            "--unfinished",
            help="Only the runs a resume would still do something for (interrupted, "
            "crashed, exit 5, subscriptions never listed), oldest first.",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """List runs, newest first: when, who, which input, reason, counts per outcome."""
    if ctx.invoked_subcommand is not None:
        return
    from paycancel_cli.journal import Journal

    g = globals_of(ctx)
    config = g.config()
    out = g.output(json_)
    journal = Journal(config.journal_path)
    if unfinished:
        from paycancel_cli.unfinished import unfinished_runs

        rows = unfinished_runs(config)
        if not rows:
            out.message("No unfinished runs.")
            return
        if not json_:
            out.table(out.runs_table([run_json(journal, run) for run in rows]))
            out.message("Resume one with the first line, or every one with the second:")
            out.command_line("  " + resume_command(g, "RUN_ID", yes=True, live=False))
            every = resume_command(g, "RUN_ID", yes=True, live=False)
            out.command_line("  " + every.replace("--resume RUN_ID", "--resume-unfinished"))
            return
    else:
        rows = journal.runs(limit)
    if json_:
        for run in rows:
            out.json_line(run_json(journal, run))
    else:
        out.table(out.runs_table([run_json(journal, run) for run in rows]))


@runs_app.command(
    "show",
    short_help="Show one run and each of its payments' results.",
    epilog=examples(
        "paycancel runs show RUN_ID",
        "paycancel runs show RUN_ID --json",
        "paycancel runs show RUN_ID --report run.csv",
    ),
)
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(
            metavar="RUN_ID", help="The run id.", show_default=False, autocompletion=run_ids
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="PATH",
            help="Write the run's report, as bulk-cancel --report does (CSV or .jsonl).",
        ),
    ] = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Show one run and the result of each of its payments."""
    from paycancel_cli.journal import Journal
    from paycancel_cli.render import BulkView
    from paycancel_cli.runs.request import find_run
    from paycancel_cli.runs.summary import report_rows, summarize, write_report

    g = globals_of(ctx)
    if report is not None:
        check_report_path(report, force=force)
    config = g.config()
    out = g.output(json_)
    journal = Journal(config.journal_path)
    run = find_run(config, journal, run_id)  # a unique prefix is enough
    run_id = run.run_id
    if report is not None:  # the report of a past run, made later: the journal has it all
        rows_written = write_report(report, report_rows(journal, run_id), g.redact)
        out.message(f"Report: {rows_written} row(s) written to {report}.")
    info = run_json(journal, run) | {"audit_head": journal.run_head(run_id)}
    rows = list(journal.payments(run_id))
    if json_:
        out.json_line(info)
        for row in rows:
            line = row.result(run_id).to_json()
            if row.outcome is None:  # not processed yet (an interrupted run)
                line["outcome"] = None
                line["state"] = row.state
            out.json_line(line)
        return
    out.table(out.runs_table([info]))
    from paycancel_cli.runs.summary import describe_run_plan

    applied = describe_run_plan(journal, run_id)
    if applied is not None:
        out.message(applied)
    view = BulkView(out, progress=False)
    view.results = [row.result(run_id) for row in rows if row.outcome is not None]
    out.table(view.results_table())
    out.table(
        out.pending_table([(r.account, r.payment_id, r.state) for r in rows if r.outcome is None])
    )
    summary = summarize(journal, run_id)
    out.table(view.summary_table(summary))
    if info["audit_head"] is not None:  # to keep elsewhere: `audit verify --head` checks it
        out.message(f"Audit head: {info['audit_head']['seq']}:{info['audit_head']['sha256']}")
    if summary.remaining or run.options.get("unlisted"):  # stopped, crashed, never listed
        out.message("Not finished. Resume with:")
        out.command_line("  " + resume_command(g, run_id, yes=False, live=False))


@runs_app.command(
    "prune",
    short_help="Remove finished runs older than a number of days from the journal.",
    epilog=examples(
        "paycancel runs prune --older-than 400", "paycancel runs prune --older-than 90 --json"
    ),
)
def runs_prune(
    ctx: typer.Context,
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            min=1,
            metavar="DAYS",
            help="Remove runs started more than DAYS days ago (unfinished runs are kept).",
        ),
    ],
    json_: JsonOpt = False,
) -> None:
    """Remove runs started more than DAYS days ago, with their payments, from the
    journal; a run a resume would still do something for is kept, whatever its age."""
    from datetime import UTC, datetime, timedelta

    from paycancel_cli.journal import Journal

    g = globals_of(ctx)
    config = g.config()
    out = g.output(json_)
    before = (datetime.now(UTC) - timedelta(days=older_than)).isoformat(timespec="milliseconds")
    runs_removed, payments_removed = Journal(config.journal_path).prune_runs(before)
    if json_:
        out.json_line(
            {"type": "pruned", "before": before, "runs": runs_removed, "payments": payments_removed}
        )
    else:
        out.message(
            f"Removed {runs_removed} run(s) and {payments_removed} payment row(s) started "
            f"before {before} from {config.journal_path}."
        )


def run_json(journal: Any, run: Any) -> dict[str, Any]:
    counts = journal.outcome_counts(run.run_id)
    return {
        "type": "run",
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "user": run.user,
        "host": run.host,
        "command": run.command,
        "input": run.input,
        "reason": run.reason,
        "dry_run": bool(run.options.get("dry_run")),
        "total": journal.count_payments(run.run_id),
        "outcomes": counts,
        "remaining": journal.count_pending(run.run_id),
        **_plan_of(journal, run.run_id),
    }


def _plan_of(journal: Any, run_id: str) -> dict[str, Any]:
    from paycancel_cli.runs.summary import plan_json

    return plan_json(journal, run_id)


COMMAND = Command(
    runs_app,
    name="runs",
    short_help="List past runs; `runs show RUN_ID` shows one.",
    examples=(
        "paycancel runs",
        "paycancel runs --limit 5 --json",
        "paycancel runs --unfinished",
        "paycancel runs show RUN_ID",
        "paycancel runs prune --older-than 400",
    ),
)
