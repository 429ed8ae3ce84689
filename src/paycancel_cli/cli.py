"""The typer app: argv handling, the global options, the one error boundary, and the
commands (``commands/``, one module each) registered in the order help lists them.

Start-up is kept cheap: httpx, pydantic, rich tables and the adapters are imported
inside the commands that need them.
"""

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperGroup

from paycancel_cli import __version__
from paycancel_cli.commands import audit, bulk_cancel, cancel, config, plan, runs, sandbox, status
from paycancel_cli.commands.common import Globals
from paycancel_cli.commands.messages import worded
from paycancel_cli.errors import Declined, PaycancelError, UsageError

if TYPE_CHECKING:
    from paycancel_cli.monitoring import Invocation
    from paycancel_cli.redact import Redactor

# Global options, accepted before or after the command name (operators type both).
GLOBAL_FLAGS = frozenset(
    {"--sandbox", "-v", "--verbose", "--no-color", "--debug", "--timestamps", "--version"}
)
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
    return _Arranger(group, ctx, args).arranged()


class _Arranger:
    """``arrange_args``'s walk: each step reads the token at ``i`` and says how many
    tokens it took."""

    def __init__(self, group: Any, ctx: Any, args: list[str]) -> None:
        self.group, self.ctx, self.args = group, ctx, args
        self.head: list[str] = []  # the root's own options, then hoisted globals
        self.rest: list[str] = []
        self.command: Any = group
        self.values: set[str] = set(GLOBAL_VALUES)
        self.optional: set[str] = set()
        self.multiple: set[str] = set()
        self.canon: dict[str, str] = {n: n for n in GLOBAL_VALUES}  # -a -> --account
        self.seen: dict[tuple[int, str], str] = {}

    def arranged(self) -> list[str]:
        i = 0
        while i < len(self.args):
            if self.args[i] == "--":
                self.rest.extend(self.args[i:])
                break
            i += self.step(i)
        return self.head + self.rest

    def step(self, i: int) -> int:
        args = self.args
        arg = args[i]
        target = self.head if self.command is self.group else self.rest
        name, eq, inline = arg.partition("=")
        nxt = args[i + 1] if i + 1 < len(args) else None
        if name in GLOBAL_VALUES or (self.command is not self.group and arg in GLOBAL_FLAGS):
            if name in GLOBAL_VALUES and not eq and nxt is not None:
                self.note(name, nxt)
                self.head.extend((arg, nxt))
                return 2
            if eq:
                self.note(name, inline)
            self.head.append(arg)
        elif name in self.optional and not eq:
            if _is_number(nxt or ""):
                self.note(name, nxt or "")
                target.extend((arg, nxt or ""))
                return 2
            self.note(name, "")
            target.append(f"{arg}=")
        elif name in self.values:
            if name not in self.multiple:
                self.note(name, inline if eq else (nxt or ""))
            target.extend(args[i : i + (1 if eq else 2)])
            return 1 if eq else 2
        elif arg.startswith("-"):
            target.append(arg)
        else:
            self.enter(arg)
        return 1

    def enter(self, arg: str) -> None:
        """A positional token: a subcommand's name switches to its option table."""
        commands = getattr(self.command, "commands", None)
        if commands is not None and arg in commands:
            self.command = commands[arg]
            self.values, self.multiple, self.optional = self.table(self.command)
        self.rest.append(arg)

    def note(self, name: str, value: str) -> None:
        option = self.canon.get(name, name)
        key = (id(self.command) if option not in GLOBAL_VALUES else 0, option)
        if key in self.seen and not self.ctx.resilient_parsing:  # (completion: never refuse)
            raise UsageError(
                f"{option} was given twice ({self.seen[key]} and {value}); give it once. "
                "Nothing was sent."
            )
        self.seen[key] = value

    def table(self, cmd: Any) -> tuple[set[str], set[str], set[str]]:
        takes: set[str] = set()
        multi: set[str] = set()
        opt: set[str] = set()
        for param in cmd.get_params(self.ctx):
            if getattr(param, "is_flag", True) or not getattr(param, "opts", None):
                continue
            names = [o for o in param.opts if o.startswith("-")]
            takes.update(names)
            self.canon.update(dict.fromkeys(names, max(names, key=len)))
            if param.multiple:
                multi.update(names)
            opt.update(n for n in names if n in OPTIONAL_VALUES)
        return takes, multi, opt


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
    timestamps: Annotated[
        bool,
        typer.Option(
            "--timestamps", help="Begin every line on stderr with the UTC time (for cron logs)."
        ),
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
        _log_exchanges(ctx)


def _log_exchanges(ctx: typer.Context) -> None:
    """``--verbose``: every HTTP exchange logged to stderr (secrets redacted where the
    exchange is logged), until the command ends."""
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


for module in (status, cancel, bulk_cancel, sandbox, config, plan, audit, runs):
    module.COMMAND.register(app)


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

    args = list(sys.argv[1:] if argv is None else argv)
    if "--timestamps" in (args[: args.index("--")] if "--" in args else args):
        from paycancel_cli.stamped import Stamped

        plain, sys.stderr = sys.stderr, Stamped(sys.stderr)
        try:
            with invocation() as this:
                return this.end(_run(argv, this))
        finally:
            sys.stderr.flush()
            sys.stderr = plain
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
        _tell_tonight(getattr(exc, "run_id", None))
        return int(stop(exc.exit_code, exc.kind, worded(exc)))
    except typer.Exit as exc:
        return closed_output(int(exc.exit_code))
    except typer.Abort:
        # click's prompt turns Ctrl-C and end of input into Abort; prompts come before
        # anything is journaled or sent.
        return int(stop(130, "interrupted", "Stopped at the prompt; nothing was sent.", label=""))
    except (KeyboardInterrupt, _CtrlC):
        return int(stop(130, "interrupted", "Interrupted; nothing more was sent.", label=""))
    except Exception as exc:
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            return _usage_error(exc, show, json_mode, ended)
        return int(
            stop(
                1,
                "internal_error",
                f"internal error: {type(exc).__name__}: {exc}. Rerun with --debug for details.",
            )
        )


def _tell_tonight(run_id: str | None) -> None:
    """An error that names the run it started (or kept): --json-summary's line says so."""
    if run_id is not None:
        from paycancel_cli import tonight

        if tonight.current is not None:
            tonight.current.run_id, tonight.current.started_run = run_id, True


def _usage_error(exc: Exception, show: Any, json_mode: bool, ended: dict[str, str]) -> int:
    """The argument parser's usage error, shown as click shows it: exit 2."""
    show()
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


def main() -> NoReturn:
    sys.exit(run())
