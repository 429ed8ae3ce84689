"""`paycancel audit verify|export`: check the journal's hash chain, hand its events on.

Invariants:
- Both commands only read the journal; neither creates one where there is none.
- ``export`` streams the events (bounded memory whatever the journal's size), to
  stdout or to a file written beside its destination and renamed into place.
- Imported by ``cli`` at start-up: only typer at module level.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paycancel_cli.commands.common import Command, Globals, JsonOpt, globals_of

if TYPE_CHECKING:
    from paycancel_cli.journal import Journal

audit_app = typer.Typer(
    help="The audit trail: verify the journal's hash chain, export its events.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="SEQ:SHA256",
            help="A head kept elsewhere (a run's audit_head): the chain must still hold it.",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Recompute the journal's hash chain: exit 0 when intact, 1 naming the first event
    that does not fit (sequence number, run, what).

    A chain shows an edited, inserted or deleted event, but not the newest events
    deleted from its end: --head with an audit_head kept elsewhere (a cron log, a
    ticket, a metrics file) shows that too.

    \b
    Examples:
      paycancel audit verify
      paycancel audit verify --head SEQ:SHA256   (a run's audit_head, kept elsewhere)
      paycancel audit verify --json
    """
    from paycancel_cli.audit import parse_head
    from paycancel_cli.audit import verify as check

    g = globals_of(ctx)
    wanted = None if head is None else parse_head(head)
    journal = _open(g)
    out = g.output(json_)
    result = check(journal.events(), wanted)
    if json_:
        out.json_line(result.to_json())
    else:
        out.out.print(result.describe(), soft_wrap=True, highlight=False, markup=False)
    raise typer.Exit(0 if result.intact else 1)


@audit_app.command("export")
def export(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DATE", help="From this date or time on (UTC).", show_default=False
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="DATE",
            help="Before this date or time (UTC), not including it.",
            show_default=False,
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN_ID", help="Only this run's events.", show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="jsonl|csv", help="JSON Lines (default) or CSV."),
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Write here, not to stdout.", show_default=False
        ),
    ] = None,
) -> None:
    """Export the audit events, one per line, oldest first: time (UTC), user, host, event
    type, run, account, provider, payment id, outcome, amounts, reason, idempotency key,
    plan id and approvers, sequence number and hash.

    \b
    Examples:
      paycancel audit export --since 2026-12-01 --until 2026-12-02 -o day.jsonl
      paycancel audit export --run RUN_ID --format csv
      paycancel audit export --since "$(date -u -d yesterday +%F)" | your-log-shipper
    """
    from paycancel_cli.audit import parse_time, write_export
    from paycancel_cli.errors import UsageError

    g = globals_of(ctx)
    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"--format {fmt!r} is not jsonl or csv.")
    start = None if since is None else parse_time(since, "--since")
    end = None if until is None else parse_time(until, "--until")
    journal = _open(g)
    events = journal.events(since=start, until=end, run_id=run_id)
    if output is None:
        try:
            write_export(events, sys.stdout, fmt)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped (`| head`): end as `cat` would
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        return
    partial = output.with_name(output.name + ".partial")
    try:
        fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with open(fd, "w", newline="", encoding="utf-8") as handle:
            count = write_export(events, handle, fmt)
        partial.replace(output)
    except OSError as exc:
        raise UsageError(
            f"The export {output} could not be written ({exc.strerror}); choose a path in a "
            "directory you can write."
        ) from None
    g.output(False).message(f"Exported {count} event(s) to {output}.")


def _open(g: Globals) -> Journal:
    """The configured journal, read as it is: a missing one is not created."""
    from paycancel_cli.errors import UsageError
    from paycancel_cli.journal import Journal

    path: Path = g.config().journal_path
    if not path.exists():
        raise UsageError(
            f"There is no journal at {path}: nothing to verify or export. Check "
            "defaults.journal in the config (and --sandbox, which has its own journal)."
        )
    return Journal(path)


COMMAND = Command(
    audit_app,
    name="audit",
    short_help="Verify the journal's hash chain; export its events.",
    examples=(
        "paycancel audit verify",
        "paycancel audit verify --head SEQ:SHA256 --json",
        "paycancel audit export --since 2026-12-01 --format csv -o audit.csv",
    ),
)
