"""`paycancel cancel ID`: read one payment, show it, confirm, cancel it, show the
before and after."""

import dataclasses
import shlex
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from paycancel_cli.commands.common import (
    AccountOpt,
    JsonOpt,
    by_shape,
    examples,
    globals_of,
    resume_command,
)
from paycancel_cli.errors import Declined, Interrupted, UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Account
    from paycancel_cli.models import Payment, Result
    from paycancel_cli.render import Output


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
    from paycancel_cli import core, pipes
    from paycancel_cli.engine import cancelled_totals
    from paycancel_cli.journal import Journal
    from paycancel_cli.models import Money, Outcome
    from paycancel_cli.session import Session, running

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
    interactive = sys.stdin.isatty()
    if not dry_run:
        from paycancel_cli.bulk import check_confirmable

        check_confirmable([acc], yes=yes, live=live, interactive=interactive)
    # Opened before the prompt (an unusable journal is refused before anyone confirms);
    # nothing is written to it until the operator has said yes.
    journal = None if dry_run else Journal(config.journal_path, redact=g.redact)
    began = time.monotonic()

    import asyncio

    started: list[str] = []
    with asyncio.Runner() as runner, running(runner, Session(config, redactor=g.redactor)) as s:
        result = runner.run(core.decide_one(s, acc.name, payment_id, reason=reason))
        if journal is not None and result.outcome is Outcome.WOULD_CANCEL:
            assert result.before is not None
            # Asked outside the event loop: Ctrl-C or end of input here ends the
            # command at once (exit 130), before anything is journaled or sent.
            ask_confirmation(out, acc, result.before, reason=reason, yes=yes, live=live)
            if pipes.closed():
                raise Interrupted(f"Stopped: {pipes.MESSAGE} before the cancel; nothing was sent.")
            try:
                result = runner.run(
                    core.cancel_confirmed(
                        s,
                        result,
                        reason=reason,
                        journal=journal,
                        command=shlex.join(["paycancel", *sys.argv[1:]]),
                        started=started,
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
    if json_:
        totals, unknown = cancelled_totals([result])
        out.json_line(result.to_json())
        out.json_line(
            {
                "type": "summary",
                "run_id": result.run_id,
                "total": 1,
                "outcomes": {result.outcome.value: 1},
                "cancelled_amounts": [Money(v, c).to_json() for c, v in sorted(totals.items())],
                "unknown_amounts": unknown,
                "remaining": 0,
                "requests": requests,
                "duration_s": round(time.monotonic() - began, 3),
                "audit_head": None if journal is None else journal.head(),
            }
        )
    else:
        out.table(out.before_after(result))
        released = result.released()
        if released is not None:
            out.message(f"Released: {released}")
    if result.error is not None or not result.outcome.is_success:
        out.err.print(out.result_line(result))
    if result.run_id is not None and not json_:
        out.message(f"Run id: {result.run_id}")
    raise typer.Exit(exit_code([result]))


def exit_code(results: "list[Result]") -> int:
    from paycancel_cli.models import combine, verdict

    return combine(verdict(r) for r in results)


def ask_confirmation(
    out: "Output", acc: "Account", before: "Payment", *, reason: str, yes: bool, live: bool
) -> None:
    if acc.is_live and yes and live:
        return
    if not acc.is_live and yes:
        return
    out.err.print(out.plan_table(before, acc.is_live, reason))
    from paycancel_cli import prompt

    if acc.is_live:
        typed = prompt.ask(f"LIVE account: type the account name ({acc.name}) to cancel: ")
        if typed.strip().lower() != acc.name.lower():  # names match in any case
            raise Declined(
                "Not cancelled: the typed name did not match the account; nothing was sent."
            )
        return
    if not prompt.confirm("Cancel this payment?"):
        raise Declined("Not cancelled: you did not confirm; nothing was sent.")


def register(app: typer.Typer) -> None:
    app.command(
        short_help="Cancel one payment, showing it first and asking to confirm.",
        epilog=examples(
            "paycancel cancel ID --account ACCOUNT --reason 'early return'",
            "paycancel --sandbox cancel pay_demopending01 -a hedgepayments --dry-run",
            "paycancel cancel ID -a flexportal --reason 'duplicate' --yes --json",
        ),
    )(cancel)
