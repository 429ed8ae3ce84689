"""The typer app: parse flags, call ``core``, render.  No logic a test would want to
call without a terminal lives here.

Start-up is kept cheap: httpx, pydantic, rich tables and the adapters are imported
inside the commands that need them.
"""

import contextlib
import dataclasses
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperGroup

from paycancel_cli import __version__
from paycancel_cli.completion import account_flag, account_names, run_ids
from paycancel_cli.errors import Declined, InputError, Interrupted, PaycancelError, UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.models import Payment, Result
    from paycancel_cli.monitoring import Invocation
    from paycancel_cli.redact import Redactor
    from paycancel_cli.render import Output

# Global options, accepted before or after the command name (operators type both).
GLOBAL_FLAGS = frozenset({"--sandbox", "-v", "--verbose", "--no-color", "--debug", "--version"})
GLOBAL_VALUES = frozenset({"--config"})
# Options whose value may be left out (``--wait`` alone waits without a limit).
OPTIONAL_VALUES = frozenset({"--wait"})


def arrange_args(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """Move global options written after the command to before it, give a bare
    optional-value option its empty value, and refuse a single-value option given
    twice (``--account a --account b`` must not quietly pick one).

    Walks the tokens with the option table of the command being parsed, so a global
    option's name given as another option's value (``--reason -v``) stays a value.
    """
    head: list[str] = []  # the root's own options, then hoisted globals
    rest: list[str] = []
    command: Any = group
    values: set[str] = set(GLOBAL_VALUES)
    optional: set[str] = set()
    canon: dict[str, str] = {n: n for n in GLOBAL_VALUES}  # -a -> --account
    seen: dict[tuple[int, str], str] = {}
    i = 0

    def note(name: str, value: str) -> None:
        option = canon.get(name, name)
        key = (id(command) if option not in GLOBAL_VALUES else 0, option)
        if key in seen and not ctx.resilient_parsing:  # (shell completion: never refuse)
            raise UsageError(
                f"{option} was given twice ({seen[key]} and {value}); give it once. "
                "Nothing was sent."
            )
        seen[key] = value

    def table(cmd: Any) -> tuple[set[str], set[str], set[str]]:
        takes: set[str] = set()
        multi: set[str] = set()
        opt: set[str] = set()
        for param in cmd.get_params(ctx):
            if getattr(param, "is_flag", True) or not getattr(param, "opts", None):
                continue
            names = [o for o in param.opts if o.startswith("-")]
            takes.update(names)
            canon.update(dict.fromkeys(names, max(names, key=len)))
            if param.multiple:
                multi.update(names)
            opt.update(n for n in names if n in OPTIONAL_VALUES)
        return takes, multi, opt

    multiple: set[str] = set()
    while i < len(args):
        arg = args[i]
        target = head if command is group else rest
        if arg == "--":
            rest.extend(args[i:])
            break
        name, eq, inline = arg.partition("=")
        if name in GLOBAL_VALUES or (command is not group and arg in GLOBAL_FLAGS):
            if name in GLOBAL_VALUES and not eq and i + 1 < len(args):
                note(name, args[i + 1])
                head.extend(args[i : i + 2])
                i += 2
                continue
            if eq:
                note(name, inline)
            head.append(arg)
        elif name in optional and not eq:
            nxt = args[i + 1] if i + 1 < len(args) else ""
            if _is_number(nxt):
                note(name, nxt)
                target.extend((arg, nxt))
                i += 2
                continue
            note(name, "")
            target.append(f"{arg}=")
        elif name in values:
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
            if name not in multiple:
                note(name, value)
            target.extend(args[i : i + (1 if eq else 2)])
            i += 1 if eq else 2
            continue
        elif arg.startswith("-"):
            target.append(arg)
        else:
            commands = getattr(command, "commands", None)
            if commands is not None and arg in commands:
                command = commands[arg]
                values, multiple, optional = table(command)
            rest.append(arg)
        i += 1
    return head + rest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _CtrlC(Exception):
    """Ctrl-C inside a command, carried past typer (which would end the command with a
    bare exit 130: no line for the operator, no error record for a monitor)."""


class PaycancelGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, arrange_args(self, ctx, args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _CtrlC() from None


class ShownArgument(TyperArgument):
    """A positional argument shown by its metavar alone (``ID...``, ``[CSV]``): typer
    would add the Python type (``<list[str]>``) and brace required ones."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.metavar or (self.name or "").upper()
        return name if self.required or name.startswith("[") else f"[{name}]"


def plain_arguments(command: Any) -> Any:
    """Show every command's positional arguments by metavar (see ``ShownArgument``),
    and give every command a whole summary: click would cut the first sentence of the
    help to fit a column ("Show payments: ... amounts,..."); a summary wraps instead."""
    for param in getattr(command, "params", []):
        if type(param) is TyperArgument:
            param.__class__ = ShownArgument
    if not command.short_help and command.help:
        paragraph = " ".join(command.help.strip().split("\n\n")[0].split())
        sentence, dot, _ = paragraph.partition(". ")
        command.short_help = sentence + dot.strip()
    for sub in getattr(command, "commands", {}).values():
        plain_arguments(sub)
    return command


app = typer.Typer(
    name="paycancel",
    cls=PaycancelGroup,
    help="Cancel payments safely at FlexPortal, HedgePayments, Flex, Vipps and Compago.",
    no_args_is_help=True,
    add_completion=False,  # ours take the shell by name: see _completion_option
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="\b\nExamples:\n"
    "  paycancel --sandbox bulk-cancel examples/demo.csv --reason demo --yes\n"
    "  paycancel status ID --account ACCOUNT\n"
    "  paycancel cancel ID --account ACCOUNT --reason TEXT\n"
    "  paycancel COMMAND -h   (each command's options and examples)",
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

    def tell_retries(self, ctx: typer.Context) -> None:
        """At a terminal, say on stderr what is retried and why after each failed
        attempt (an unreachable provider is otherwise a silent quarter of a minute)."""
        if not sys.stderr.isatty() or self.verbose:  # the verbose log has its own lines
            return
        import logging

        redact = self.redact

        class Redacted(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return redact(record.getMessage())

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(Redacted())
        logger = logging.getLogger("paycancel.retrying")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

        def detach() -> None:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)

        ctx.call_on_close(detach)

    def config(self) -> "Config":
        from paycancel_cli.config import load_config, sandbox_config, stderr_warn

        assert self.redactor is not None
        base = load_config(self.config_path, warn=stderr_warn, on_secret=self.redactor.add)
        for secret in base.secrets():
            self.redactor.add(secret)
        if not self.sandbox:
            return base
        if self.config_path is not None:
            # Decided: --sandbox never sends to the accounts of a real config, but an
            # explicit --config still gives its [defaults] (journal, concurrency).
            stderr_warn(
                f"Note: --sandbox uses the built-in sandbox accounts; from {self.config_path} "
                "only [defaults] (journal, concurrency) applies, its accounts are not used."
            )
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


def examples(*lines: str) -> str:
    """A help epilog listing examples, one per line, never rewrapped."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


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
            "--config",
            metavar="PATH",
            help="Config file (else $PAYCANCEL_CONFIG, else the user config dir).",
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
        metavar="ACCOUNT",
        help="Account name from the config (optional when only one).",
        autocompletion=account_names,
        callback=account_flag,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, nothing else.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing --report file.")]


@app.command(
    short_help="Show payments and whether each can be cancelled.",
    epilog=examples(
        "paycancel --sandbox status pay_demopending01 --account hedgepayments",
        "paycancel status ID1 ID2 ID3 --account flexportal --json",
        "paycancel --sandbox status fpi_demo_requires_action_01 -a flex",
    ),
)
def status(
    ctx: typer.Context,
    payment_ids: Annotated[
        list[str],
        typer.Argument(metavar="ID...", help="One or more payment ids.", show_default=False),
    ],
    account: AccountOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show payments: normalized and provider status, amounts, and whether each can be
    cancelled now (and if not, why).  Read-only."""
    from paycancel_cli import core
    from paycancel_cli.session import Session

    g = _globals(ctx)
    config = g.config()
    acc = config.account(account or _by_shape(config, payment_ids))
    out = g.output(json_)
    g.tell_retries(ctx)

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
                        "type": "payment_error",
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
    # 0 every payment found; 5 the only failures were transient (try again later); else 1
    failed = [ln.error for ln in lines if ln.payment is None]
    raise typer.Exit(
        0 if not failed else 5 if all(e is not None and e.transient for e in failed) else 1
    )


@app.command(
    short_help="Cancel one payment, showing it first and asking to confirm.",
    epilog=examples(
        "paycancel cancel ID --account ACCOUNT --reason 'early return'",
        "paycancel --sandbox cancel pay_demopending01 -a hedgepayments --dry-run",
        "paycancel cancel ID -a flexportal --reason 'duplicate' --yes --json",
    ),
)
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

    g = _globals(ctx)
    reason = (reason or "").strip()
    if not reason and not dry_run:
        raise UsageError(
            "--reason is required to cancel: say why (it goes to the provider where the API "
            "takes one, and to the journal). A --dry-run needs none. Nothing was sent."
        )
    config = g.config()
    acc = config.account(account or _by_shape(config, [payment_id]))
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


def _by_shape(config: "Config", payment_ids: list[str]) -> str | None:
    """With several accounts and no --account: the one account the ids' shape fits."""
    if len(config.providers) < 2:
        return None
    from paycancel_cli.idshape import infer_account

    return infer_account(config.providers, payment_ids)


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


def resume_command(g: Globals, run_id: str, *, yes: bool, live: bool) -> str:
    """The command that resumes ``run_id`` the way it was started (same config, same
    sandbox choice), ready to copy from any directory (a cron log is read elsewhere)."""
    import shlex

    parts = ["paycancel"]
    if g.config_path is not None:
        parts += ["--config", shlex.quote(os.path.abspath(g.config_path))]
    if g.sandbox:
        parts.append("--sandbox")
    parts += ["bulk-cancel", "--resume", run_id]
    parts += ["--yes"] if yes else []
    parts += ["--live"] if live else []
    return " ".join(parts)


@app.command(
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
)
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

    g = _globals(ctx)
    assert g.redactor is not None
    monitor = None
    if metrics_file is not None or job_name is not None or ping_url is not None:
        from paycancel_cli.monitoring import watch

        monitor = watch(
            metrics_file=metrics_file, job_name=job_name, ping_url=ping_url, redactor=g.redactor
        )
    if plan is not None or plan_out is not None or expires is not None or key is not None:
        from paycancel_cli.plancmd import check_plan_flags

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
        from paycancel_cli.plancmd import write_plan_out

        write_plan_out(
            out, config, outcome, path=plan_out, expires=expires, author=author,
            command=g.redact(request.command), reason=(reason or "").strip(),
        )  # fmt: skip
    raise typer.Exit(outcome.exit_code())


from paycancel_cli.configcmd import config_app  # noqa: E402 (registered after the commands)
from paycancel_cli.plancmd import plan_app  # noqa: E402

app.add_typer(
    config_app,
    name="config",
    epilog=examples(
        "paycancel config show",
        "paycancel config check --json",
        "paycancel config example > config.toml",
    ),
)

app.add_typer(
    plan_app,
    name="plan",
    short_help="Reviewed plans: `plan show PLAN`, `plan approve PLAN --key PATH`.",
    epilog=examples(
        "paycancel bulk-cancel night.csv -a fp_eu --reason R --plan-out p.json --key KEY",
        "paycancel plan show p.json",
        "paycancel plan approve p.json --key ~/.ssh/id_ed25519",
        "paycancel bulk-cancel --plan p.json --yes --live",
    ),
)

from paycancel_cli.auditcmd import audit_app  # noqa: E402 (registered after the commands)

app.add_typer(
    audit_app,
    name="audit",
    short_help="Verify the journal's hash chain; export its events.",
    epilog=examples(
        "paycancel audit verify",
        "paycancel audit verify --head SEQ:SHA256 --json",
        "paycancel audit export --since 2026-12-01 --format csv -o audit.csv",
    ),
)

runs_app = typer.Typer(
    help="The journal as history.", no_args_is_help=False, invoke_without_command=True
)
app.add_typer(
    runs_app,
    name="runs",
    short_help="List past runs; `runs show RUN_ID` shows one.",
    epilog=examples(
        "paycancel runs",
        "paycancel runs --limit 5 --json",
        "paycancel runs --unfinished",
        "paycancel runs show RUN_ID",
        "paycancel runs prune --older-than 400",
    ),
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

    g = _globals(ctx)
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
    from paycancel_cli.bulk import (
        check_report_path,
        find_run,
        report_rows,
        summarize,
        write_report,
    )
    from paycancel_cli.journal import Journal
    from paycancel_cli.render import BulkView

    g = _globals(ctx)
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
    from paycancel_cli.plans import describe_run_plan

    applied = describe_run_plan(journal, run_id)
    if applied is not None:
        out.message(applied)
    view = BulkView(out, yes=True, live=False, interactive=False, progress=False)
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

    g = _globals(ctx)
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
    from paycancel_cli.plans import plan_json

    return plan_json(journal, run_id)


@app.command(
    short_help="Serve the providers' simulators on loopback; print a config.",
    epilog=examples(
        "paycancel sandbox --output sb.toml   (then, in another terminal:)",
        "paycancel --config sb.toml status pay_demopending01 -a hedgepayments",
        "paycancel sandbox --port 0 --latency-ms 50 --requests-per-minute 600",
    ),
)
def sandbox(
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, metavar="N", help="Port on 127.0.0.1 (0: a free one)."
        ),
    ] = 8765,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, metavar="N", help="Added to every answer.")
    ] = 0,
    fail_rate: Annotated[
        float,
        typer.Option(
            "--fail-rate", metavar="F", help="Share of requests answered with a 5xx, 0 to 1."
        ),
    ] = 0.0,
    requests_per_minute: Annotated[
        int | None,
        typer.Option(
            "--requests-per-minute",
            min=1,
            metavar="N",
            help="Rate limit per credential (429 beyond).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Write the config to PATH (mode 0600) instead of printing it.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Serve the five providers' simulators on loopback and print a config that points at them."""
    from paycancel_cli.sandbox import Faults, Sandbox
    from paycancel_cli.sandboxconfig import config_text, write_private

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
        if output is not None:
            try:
                write_private(output, config_text(sb.base_url, sb.account_config()))
            except OSError as exc:
                raise UsageError(
                    f"--output {output}: cannot be written ({exc.strerror})."
                ) from None
            typer.echo(
                f"paycancel sandbox on {sb.base_url}; config written to {output} (mode 0600). "
                f"Use it with: paycancel --config {output} ...  Ctrl-C stops the sandbox.",
                err=True,
            )
        elif json_:
            import json

            line = {"type": "sandbox", "base_url": sb.base_url, "accounts": sb.account_config()}
            typer.echo(json.dumps(line))
        else:
            typer.echo(config_text(sb.base_url, sb.account_config()), nl=False)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code.  The one error boundary.

    Every expected failure ends here as one paragraph on stderr and its exit code;
    under ``--json`` the last stdout line is then the error record
    ``{"type": "error", "exit_code", "code", "message"}`` (the message as on stderr,
    without the "Error: " label), so a monitor reading the last line never sees an
    older run's summary.  Whatever the exit code, the invocation's end then goes to the
    monitor a command attached (``--metrics-file``, ``--ping-url``).
    """
    from paycancel_cli.monitoring import invocation

    with invocation() as this:
        return this.end(_run(argv, this))


def _run(argv: list[str] | None, this: "Invocation") -> int:
    from paycancel_cli.redact import Redactor

    if "_PAYCANCEL_COMPLETE" in os.environ:
        from paycancel_cli.completion import enable

        enable()
    args = list(sys.argv[1:] if argv is None else argv)
    options = args[: args.index("--")] if "--" in args else args
    debug = "--debug" in options
    json_mode = "--json" in options
    redactor = Redactor()
    command = plain_arguments(typer.main.get_command(app))
    ended: dict[str, str] = {}  # the code and message of an invocation that stopped early

    def stop(code: int, kind: str, message: str, label: str = "Error: ") -> int:
        if debug and code != 130:
            import traceback

            print(redactor(traceback.format_exc()), file=sys.stderr)
        print(redactor(f"{label}{message}"), file=sys.stderr)
        ended.update(code=kind, message=message)
        this.error = redactor(message)
        if json_mode:
            import json

            record = {"type": "error", "exit_code": code, "code": kind, "message": message}
            print(redactor(json.dumps(record)), flush=True)
        return code

    if "--json-summary" not in options:
        return _invoke(command, args, redactor, stop, json_mode, ended)
    # One line, whatever stops the invocation (a SIGTERM too: stopped like Ctrl-C).
    import json
    import signal

    from paycancel_cli import tonight

    night = tonight.begin()
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread (an embedding caller): its signals, not ours
        previous = None
    try:
        code = _invoke(command, args, redactor, stop, json_mode, ended)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        tonight.end()
    if not night.written:
        print(redactor(json.dumps(night.line(code, **ended))), flush=True)
    return code


def _invoke(
    command: Any,
    args: list[str],
    redactor: "Redactor",
    stop: Any,
    json_mode: bool,
    ended: dict[str, str],
) -> int:
    """The command, with every way it can end turned into an exit code (see ``run``)."""
    from paycancel_cli import pipes

    def closed_output(code: int) -> int:
        """A closed stdout ends a command as an interruption (see ``pipes``); a usage,
        config, credential or lock error keeps its own code."""
        if code in (2, 3, 4, 130) or not pipes.closed():
            return code
        return int(stop(130, "output_closed", f"Stopped: {pipes.MESSAGE}.", label=""))

    try:
        code = command.main(args=args, prog_name="paycancel", standalone_mode=False, obj=redactor)
        return closed_output(code if isinstance(code, int) else 0)
    except BrokenPipeError:
        pipes.mark_closed()
        return closed_output(0)
    except Declined as exc:
        return int(stop(exc.exit_code, exc.kind, exc.message, label=""))
    except PaycancelError as exc:
        run_id = getattr(exc, "run_id", None)
        if run_id is not None:
            from paycancel_cli import tonight

            if tonight.current is not None:
                tonight.current.run_id, tonight.current.started_run = run_id, True
        return int(stop(exc.exit_code, exc.kind, exc.message))
    except typer.Exit as exc:
        return closed_output(int(exc.exit_code))
    except typer.Abort:
        # click's prompt turns Ctrl-C and end of input into Abort; prompts come before
        # anything is journaled or sent.
        return int(
            stop(130, "interrupted", "Stopped at the prompt; nothing was sent.", label="")
        )
    except (KeyboardInterrupt, _CtrlC):
        return int(stop(130, "interrupted", "Interrupted; nothing more was sent.", label=""))
    except Exception as exc:
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()  # the argument parser's usage error: exit 2
            code = int(getattr(exc, "exit_code", 2))
            fmt = getattr(exc, "format_message", None)
            message = fmt() if callable(fmt) else str(exc)
            if code:
                ended.update(code="usage_error", message=message)
            if json_mode and code:
                import json

                record = {"type": "error", "exit_code": code, "code": "usage_error"}
                print(json.dumps({**record, "message": message}), flush=True)
            return code
        return int(
            stop(
                1,
                "internal_error",
                f"internal error: {type(exc).__name__}: {exc}. Rerun with --debug for details.",
            )
        )


def main() -> NoReturn:
    sys.exit(run())
