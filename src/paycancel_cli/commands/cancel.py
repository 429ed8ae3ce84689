"""`paycancel cancel ID`: one payment as a one-row run (``runs.single``): read it, show
what will happen, confirm, cancel it, show the before and after."""

import dataclasses
import shlex
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from paycancel_cli.commands.common import (
    AccountOpt,
    Command,
    Globals,
    JsonOpt,
    by_shape,
    globals_of,
    resume_command,
)
from paycancel_cli.errors import Interrupted, UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.journal import Journal
    from paycancel_cli.models import Result
    from paycancel_cli.render import Output
    from paycancel_cli.runs.summary import Summary


def cancel(
    ctx: typer.Context,
    payment_id: Annotated[
        str, typer.Argument(metavar="ID", help="The payment id.", show_default=False)
    ],
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why: sent where the provider takes it, always journaled (not for --dry-run).",
            show_default=False,
        ),
    ] = None,
    account: AccountOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and show what would happen; send nothing.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask (test accounts; live ones also need --live)."),
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="With --yes: allow cancelling on a LIVE account without typing its name."
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Cancel one payment: read it, show what will happen, ask to confirm, cancel, and
    show the status and amounts before and after."""
    from paycancel_cli.journal import Journal
    from paycancel_cli.runs.confirm import check_confirmable
    from paycancel_cli.runs.single import summary_of

    g = globals_of(ctx)
    reason = (reason or "").strip()
    if not reason and not dry_run:
        raise UsageError(
            "--reason is required to cancel: say why (it goes to the provider where the API "
            "takes one, and to the journal). A --dry-run needs none. Nothing was sent."
        )
    config = g.config()
    acc = config.account(account or by_shape(config, [payment_id]))
    out = g.output(json_)
    g.tell_retries(ctx)
    if not dry_run:
        check_confirmable([acc], yes=yes, live=live, interactive=sys.stdin.isatty())
    # Opened before the prompt (an unusable journal is refused before anyone confirms);
    # nothing is written to it until the operator has said yes.
    journal = None if dry_run else Journal(config.journal_path, redact=g.redact)
    began = time.monotonic()
    result, requests = _run_one(
        g, config, acc, payment_id, reason=reason, journal=journal, out=out, yes=yes, live=live
    )
    summary = summary_of(
        result,
        requests=requests,
        duration_s=time.monotonic() - began,
        audit_head=None if journal is None else journal.head(),
    )
    _show(out, result, summary, json_=json_)
    raise typer.Exit(summary.exit_code(interrupted=False))


def _run_one(
    g: Globals,
    config: "Config",
    acc: "Account",
    payment_id: str,
    *,
    reason: str,
    journal: "Journal | None",
    out: "Output",
    yes: bool,
    live: bool,
) -> "tuple[Result, int]":
    """The one-row run: plan (one read), the one confirmation outside the event loop
    (Ctrl-C or end of input there ends the command, nothing journaled or sent), then
    execute; without ``journal`` (``--dry-run``) only the read.  Returns the result and
    the requests sent."""
    import asyncio

    from paycancel_cli import pipes
    from paycancel_cli.models import Outcome
    from paycancel_cli.runs.confirm import confirm_one
    from paycancel_cli.runs.single import cancel_confirmed, decide_one
    from paycancel_cli.session import Session, running

    started: list[str] = []
    with asyncio.Runner() as runner, running(runner, Session(config, redactor=g.redactor)) as s:
        result = runner.run(decide_one(s, acc.name, payment_id, reason=reason))
        if journal is not None and result.outcome is Outcome.WOULD_CANCEL:
            before = result.before
            assert before is not None
            confirm_one(
                acc,
                lambda: out.err.print(out.plan_table(before, acc.is_live, reason)),
                yes=yes,
                live=live,
            )
            if pipes.closed():
                raise Interrupted(f"Stopped: {pipes.MESSAGE} before the cancel; nothing was sent.")
            command = shlex.join(["paycancel", *sys.argv[1:]])
            try:
                result = runner.run(
                    cancel_confirmed(
                        s, result, reason=reason, journal=journal, command=command, started=started
                    )
                )
            except KeyboardInterrupt:
                if not started:
                    raise
                raise Interrupted(
                    f"Interrupted while the cancel of {payment_id} may have been in flight; "
                    f"run {started[0]} records it. To finish it (the payment is read first, "
                    "and the cancel re-sent only if still needed), run:\n  "
                    + resume_command(g, started[0], yes=True, live=acc.is_live)
                ) from None
        requests = s.counter.requests
    if not started:
        # Nothing sent, nothing journaled: no run id that `runs show` could not find.
        result = dataclasses.replace(result, run_id=None)
    return result, requests


def _show(out: "Output", result: "Result", summary: "Summary", *, json_: bool) -> None:
    """The single cancel's table (or JSON lines), its problem line and its run id."""
    if json_:
        out.json_line(result.to_json())
        out.json_line({**summary.to_json(), "run_id": result.run_id})
    else:
        out.table(out.before_after(result))
        released = result.released()
        if released is not None:
            out.message(f"Released: {released}")
    if result.error is not None or not result.outcome.is_success:
        out.err.print(out.result_line(result))
    if result.run_id is not None and not json_:
        out.message(f"Run id: {result.run_id}")


COMMAND = Command(
    cancel,
    name=None,
    short_help="Cancel one payment, showing it first and asking to confirm.",
    examples=(
        "paycancel cancel ID --account ACCOUNT --reason 'early return'",
        "paycancel --sandbox cancel pay_demopending01 -a hedgepayments --dry-run",
        "paycancel cancel ID -a flexportal --reason 'duplicate' --yes --json",
    ),
)
