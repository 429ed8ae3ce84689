"""The typer app: parse flags, call ``core``, render.  No logic a test would want to
call without a terminal lives here.

Start-up is kept cheap: httpx, pydantic, rich tables and the adapters are imported
inside the commands that need them.
"""

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from paycancel_cli import __version__
from paycancel_cli.completion import account_names, run_ids
from paycancel_cli.errors import Declined, Interrupted, PaycancelError, UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.models import Payment, Result
    from paycancel_cli.redact import Redactor
    from paycancel_cli.render import Output

app = typer.Typer(
    name="paycancel",
    help="Cancel payments safely at FlexPortal, HedgePayments, Flex, Vipps and Compago.",
    no_args_is_help=True,
    add_completion=False,  # ours take the shell by name: see _completion_option
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Globals:
    config_path: Path | None = None
    sandbox: bool = False
    verbose: bool = False
    no_color: bool = False
    debug: bool = False
    redactor: "Redactor | None" = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def output(self, json_mode: bool) -> "Output":
        from paycancel_cli.render import Output

        return Output(json_mode=json_mode, no_color=self.no_color, redact=self.redact)

    def redact(self, text: str) -> str:
        return text if self.redactor is None else self.redactor(text)

    def config(self) -> "Config":
        from paycancel_cli.config import load_config, sandbox_config, stderr_warn

        assert self.redactor is not None
        base = load_config(self.config_path, warn=stderr_warn, on_secret=self.redactor.add)
        for secret in base.secrets():
            self.redactor.add(secret)
        if not self.sandbox:
            return base
        from paycancel_cli.sandbox import Sandbox

        sandbox = self._stack.enter_context(Sandbox())
        return sandbox_config(sandbox.account_config(), base)


def _completion_option(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from paycancel_cli import completion

    if param.name == "show_completion":
        typer.echo(completion.show_script(value))
    else:
        shell, path = completion.install_script(value)
        typer.echo(f"{shell} completion installed in {path}; it works in new shells.")
    raise typer.Exit()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paycancel {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Config file (else $PAYCANCEL_CONFIG, else the user config dir)."
        ),
    ] = None,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Start the built-in provider simulators and use one test account per provider.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log every HTTP exchange to stderr, secrets redacted."
        ),
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (NO_COLOR is honoured too).")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback for unexpected errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    install_completion: Annotated[
        str | None,
        typer.Option(
            "--install-completion",
            metavar="SHELL",
            callback=_completion_option,
            is_eager=True,
            help="Install shell completion: bash, zsh or fish.",
        ),
    ] = None,
    show_completion: Annotated[
        str | None,
        typer.Option(
            "--show-completion",
            metavar="SHELL",
            callback=_completion_option,
            is_eager=True,
            help="Print the completion script for bash, zsh or fish.",
        ),
    ] = None,
) -> None:
    """paycancel: see exactly what is about to happen, then cancel, at five providers."""
    from paycancel_cli.redact import Redactor

    redactor = ctx.obj if isinstance(ctx.obj, Redactor) else Redactor()
    g = Globals(
        config, sandbox, verbose, no_color or bool(os.environ.get("NO_COLOR")), debug, redactor
    )
    ctx.obj = g
    ctx.call_on_close(g._stack.close)
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger = logging.getLogger("paycancel")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False

        def detach() -> None:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)

        ctx.call_on_close(detach)


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.obj
    assert isinstance(obj, Globals)
    return obj


AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account",
        "-a",
        help="Account name from the config (optional when only one).",
        autocompletion=account_names,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, nothing else.")]


@app.command()
def status(
    ctx: typer.Context,
    payment_ids: Annotated[
        list[str], typer.Argument(help="One or more payment ids.", show_default=False)
    ],
    account: AccountOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show payments: normalized and provider status, amounts, and whether each can be cancelled."""
    from paycancel_cli import core
    from paycancel_cli.session import Session

    g = _globals(ctx)
    config = g.config()
    acc = config.account(account)
    out = g.output(json_)

    async def go() -> list[core.StatusLine]:
        async with Session(config, redactor=g.redactor) as session:
            return await core.status(session, acc.name, payment_ids)

    import asyncio

    lines = asyncio.run(go())
    if json_:
        for line in lines:
            if line.payment is not None:
                out.json_line({"type": "payment", **line.payment.to_json()})
            else:
                out.json_line(
                    {
                        "type": "error",
                        "account": line.account,
                        "payment_id": line.payment_id,
                        "error": line.error.to_json() if line.error else None,
                    }
                )
    else:
        out.table(
            out.status_table(
                (
                    (ln.account, ln.payment_id, ln.payment, ln.error.message if ln.error else None)
                    for ln in lines
                ),
                live=lambda name: config.account(name).is_live,
            )
        )
    raise typer.Exit(0 if all(ln.payment is not None for ln in lines) else 1)


@app.command()
def cancel(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(help="The payment id.", show_default=False)],
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
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
    """Cancel one payment: read, show what will happen, confirm, cancel, show before and after."""
    from paycancel_cli import core
    from paycancel_cli.engine import cancelled_totals
    from paycancel_cli.journal import Journal
    from paycancel_cli.models import Money
    from paycancel_cli.session import Session

    g = _globals(ctx)
    reason = (reason or "").strip()
    if not reason and not dry_run:
        raise UsageError(
            "--reason is required to cancel: say why (it goes to the provider where the API "
            "takes one, and to the journal). A --dry-run needs none. Nothing was sent."
        )
    config = g.config()
    acc = config.account(account)
    out = g.output(json_)
    interactive = sys.stdin.isatty()
    if not dry_run:
        from paycancel_cli.bulk import check_confirmable

        check_confirmable([acc], yes=yes, live=live, interactive=interactive)
    journal = None if dry_run else Journal(config.journal_path, redact=g.redact)
    began = time.monotonic()

    def confirm(before: "Payment") -> None:
        ask_confirmation(out, acc, before, reason=reason, yes=yes, live=live)

    async def go() -> "Result":
        async with Session(config, redactor=g.redactor) as session:
            result = await core.cancel_one(
                session,
                acc.name,
                payment_id,
                reason=reason,
                dry_run=dry_run,
                confirm=confirm,
                journal=journal,
                command=" ".join(sys.argv),
                started=started,
            )
            requests.append(session.counter.requests)
            return result

    import asyncio

    requests: list[int] = []
    started: list[str] = []
    try:
        result = asyncio.run(go())
    except KeyboardInterrupt:
        if not started:
            raise
        where = f" --config {g.config_path}" if g.config_path else ""
        where += " --sandbox" if g.sandbox else ""
        flags = " --yes" + (" --live" if acc.is_live else "")
        raise Interrupted(
            f"Interrupted while the cancel of {payment_id} may have been in flight; run "
            f"{started[0]} records it. To finish it (the payment is read first, and the cancel "
            f"re-sent only if still needed): paycancel{where} bulk-cancel --resume "
            f"{started[0]}{flags}"
        ) from None
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
                "requests": sum(requests),
                "duration_s": round(time.monotonic() - began, 3),
            }
        )
    else:
        out.table(out.before_after(result))
    if result.error is not None or not result.outcome.is_success:
        out.err.print(out.result_line(result))
    raise typer.Exit(exit_code([result]))


def exit_code(results: "list[Result]") -> int:
    from paycancel_cli.engine import AUTH_FAILED

    if any(r.error is not None and r.error.code == AUTH_FAILED for r in results):
        return 3
    return 0 if all(r.outcome.is_success for r in results) else 1


def ask_confirmation(
    out: "Output", acc: "Account", before: "Payment", *, reason: str, yes: bool, live: bool
) -> None:
    if acc.is_live and yes and live:
        return
    if not acc.is_live and yes:
        return
    out.err.print(out.plan_table(before, acc.is_live, reason))
    if acc.is_live:
        typed = typer.prompt(
            f"LIVE account: type the account name ({acc.name}) to cancel",
            err=True,
            default="",
            show_default=False,
        )
        if typed.strip() != acc.name:
            raise Declined("The typed name did not match the account; nothing was sent.")
        return
    if not typer.confirm("Cancel this payment?", default=False, err=True):
        raise Declined("Not confirmed; nothing was sent.")


@app.command("bulk-cancel")
def bulk_cancel(
    ctx: typer.Context,
    csv_file: Annotated[
        str | None,
        typer.Argument(help="CSV of payment ids (- for standard input).", show_default=False),
    ] = None,
    subscription: Annotated[
        list[str] | None,
        typer.Option(
            "--subscription", help="Cancel this subscription's open payments (repeatable)."
        ),
    ] = None,
    account: AccountOpt = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (a CSV reason column overrides per row).")
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
            "--concurrency", min=1, max=256, help="Payments in flight (default from config)."
        ),
    ] = None,
    max_payments: Annotated[
        int | None,
        typer.Option("--max-payments", min=0, help="Refuse a run that selects more payments."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write one row per payment (CSV, or JSON Lines for .jsonl)."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", help="Continue a stopped or crashed run.", autocompletion=run_ids
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for another process working on the same input.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Cancel many payments from a CSV or subscriptions' open payments; journaled, resumable."""
    from paycancel_cli.bulk import BulkRequest, report_rows, run_bulk, write_report
    from paycancel_cli.journal import Journal
    from paycancel_cli.render import BulkView

    g = _globals(ctx)
    if report is not None and not (report.parent.is_dir() and os.access(report.parent, os.W_OK)):
        raise UsageError(
            f"--report {report}: the directory does not exist or cannot be written. "
            "Nothing was sent."
        )
    config = g.config()
    out = g.output(json_)
    interactive = sys.stdin.isatty()
    request = BulkRequest(
        csv=csv_file,
        subscriptions=list(subscription or []),
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
        wait=wait,
        command=" ".join(["paycancel", *sys.argv[1:]]),
    )
    view = BulkView(
        out, yes=yes, live=live, interactive=interactive, progress=True, dry_run=dry_run
    )
    assert g.redactor is not None
    outcome = run_bulk(config, request, view, redactor=g.redactor)
    if outcome.summary is None:
        v = outcome.validation
        assert v is not None
        if json_:
            out.json_line(v.to_json())
        else:
            per = ", ".join(f"{a}: {n}" for a, n in sorted(v.per_account.items())) or "none"
            out.message(
                f"Valid: {v.valid} {v.counted[:-1]}(s) ({per}); {v.invalid} invalid, "
                f"{v.duplicates} duplicate(s). Nothing was sent."
            )
        raise typer.Exit(2 if v.invalid and not skip_invalid else 0)
    summary = outcome.summary
    if json_:
        out.json_line(summary.to_json())
    else:
        if view.results and outcome.run_id:
            order = {
                (row.account, row.payment_id): row.seq
                for row in Journal(config.journal_path).payments(outcome.run_id)
            }
            view.results.sort(key=lambda r: order.get((r.account, r.payment_id), 0))
            out.table(view.results_table())
        out.table(view.summary_table(summary))
        if summary.failures:
            out.table(view.failures_table(summary))
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
    if outcome.interrupted:
        flags = " --yes" if yes else ""
        flags += " --live" if live else ""
        where = f" --config {g.config_path}" if g.config_path else ""
        where += " --sandbox" if g.sandbox else ""
        out.message(
            f"Interrupted: in-flight cancels finished and were recorded. Resume with:\n"
            f"  paycancel{where} bulk-cancel --resume {outcome.run_id}{flags}",
            style="yellow",
        )
    else:
        out.message(f"Run id: {outcome.run_id}")
    raise typer.Exit(outcome.exit_code())


from paycancel_cli.configcmd import config_app  # noqa: E402 (registered after the commands)

app.add_typer(config_app, name="config")

runs_app = typer.Typer(
    help="The journal as history.", no_args_is_help=False, invoke_without_command=True
)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List runs: when, who, which input, reason, counts per outcome."""
    if ctx.invoked_subcommand is not None:
        return
    from paycancel_cli.journal import Journal

    g = _globals(ctx)
    config = g.config()
    out = g.output(json_)
    journal = Journal(config.journal_path)
    rows = journal.runs()
    if json_:
        for run in rows:
            out.json_line(run_json(journal, run))
    else:
        out.table(out.runs_table([run_json(journal, run) for run in rows]))


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(help="The run id.", show_default=False, autocompletion=run_ids),
    ],
    json_: JsonOpt = False,
) -> None:
    """Show one run and the result of each of its payments."""
    from paycancel_cli.bulk import summarize
    from paycancel_cli.journal import Journal
    from paycancel_cli.render import BulkView

    g = _globals(ctx)
    config = g.config()
    out = g.output(json_)
    journal = Journal(config.journal_path)
    run = journal.run(run_id)
    if run is None:
        raise UsageError(
            f"No run {run_id!r} in the journal {config.journal_path}; `paycancel runs` lists them."
        )
    info = run_json(journal, run)
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
    view = BulkView(out, yes=True, live=False, interactive=False, progress=False)
    view.results = [row.result(run_id) for row in rows if row.outcome is not None]
    out.table(view.results_table())
    summary = summarize(journal, run_id)
    out.table(view.summary_table(summary))


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
        "total": journal.count_payments(run.run_id),
        "outcomes": counts,
        "remaining": journal.count_pending(run.run_id),
    }


@app.command()
def sandbox(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")
    ] = 8765,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, help="Added to every answer.")
    ] = 0,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", help="Share of requests answered with a 5xx, 0 to 1.")
    ] = 0.0,
    requests_per_minute: Annotated[
        int | None,
        typer.Option(
            "--requests-per-minute", min=1, help="Rate limit per credential (429 beyond)."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Serve the five providers' simulators on loopback and print a config that points at them."""
    from paycancel_cli.sandbox import Faults, Sandbox

    if not 0 <= fail_rate <= 1:
        raise UsageError("--fail-rate must be between 0 and 1.")
    faults = Faults(latency_ms=latency_ms, fail_rate=fail_rate)
    server = Sandbox(faults=faults, requests_per_minute=requests_per_minute, port=port)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(
            f"Cannot serve on 127.0.0.1:{port} ({exc.strerror}); choose another --port "
            "(0 picks a free one)."
        ) from None
    with server as sb:
        if json_:
            import json

            line = {"type": "sandbox", "base_url": sb.base_url, "accounts": sb.account_config()}
            typer.echo(json.dumps(line))
        else:
            typer.echo(f"# paycancel sandbox on {sb.base_url}; Ctrl-C stops it. Config:\n")
            for name, fields in sb.account_config().items():
                typer.echo(f"[accounts.{name}]")
                for key, value in fields.items():
                    typer.echo(f'{key} = "{value}"')
                typer.echo("")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code.  The one error boundary."""
    from paycancel_cli.redact import Redactor

    command = typer.main.get_command(app)
    if "_PAYCANCEL_COMPLETE" in os.environ:
        from paycancel_cli.completion import enable

        enable()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    redactor = Redactor()
    try:
        code = command.main(args=argv, prog_name="paycancel", standalone_mode=False, obj=redactor)
        return code if isinstance(code, int) else 0
    except PaycancelError as exc:
        _fail(exc.message, redactor=redactor, debug=debug)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("Interrupted; nothing more was sent.", file=sys.stderr)
        return 130
    except Exception as exc:
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()  # the argument parser's usage error: exit 2
            return int(getattr(exc, "exit_code", 2))
        _fail(
            f"internal error: {type(exc).__name__}: {exc}. Rerun with --debug for details.",
            redactor=redactor,
            debug=debug,
        )
        return 1


def _fail(message: str, *, redactor: "Redactor", debug: bool) -> None:
    if debug:
        import traceback

        print(redactor(traceback.format_exc()), file=sys.stderr)
    print(redactor(f"Error: {message}"), file=sys.stderr)


def main() -> NoReturn:
    sys.exit(run())
