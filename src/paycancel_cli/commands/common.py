"""What every command shares: the global options' values (``Globals``, set by
``cli.main_options``), the options several commands declare, and the resume line.

Imported by every command at start-up: only typer at module level.
"""

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paycancel_cli.completion import account_flag, account_names
from paycancel_cli.errors import UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.redact import Redactor
    from paycancel_cli.render import Output


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


def examples(*lines: str) -> str:
    """A help epilog listing examples, one per line, never rewrapped."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@dataclass(frozen=True)
class Command:
    """How one command module joins the app: its typer function (or sub-app of
    subcommands), the line ``paycancel --help`` shows for it (``None``: its help's first
    line) and the examples its own ``--help`` ends with.  ``cli`` registers them all."""

    target: "Callable[..., None] | typer.Typer"
    name: str | None
    short_help: str | None
    examples: tuple[str, ...]

    def register(self, app: typer.Typer) -> None:
        epilog = examples(*self.examples)
        if isinstance(self.target, typer.Typer):
            app.add_typer(self.target, name=self.name, short_help=self.short_help, epilog=epilog)
        else:
            app.command(self.name, short_help=self.short_help, epilog=epilog)(self.target)


def globals_of(ctx: typer.Context) -> Globals:
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


def by_shape(config: "Config", payment_ids: list[str]) -> str | None:
    """With several accounts and no --account: the one account the ids' shape fits."""
    if len(config.providers) < 2:
        return None
    from paycancel_cli.idshape import infer_account

    return infer_account(config.providers, payment_ids)


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


def check_report_path(path: Path, *, force: bool) -> None:
    """Refuse, before anything is sent, a ``--report`` path that cannot be written or
    that would silently replace an earlier report (``--force`` replaces it)."""
    if not (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
        raise UsageError(
            f"--report {path}: the directory does not exist or cannot be written. Nothing was sent."
        )
    if path.exists() and not force:
        raise UsageError(
            f"--report {path}: the file exists; a report is a record, so it is not "
            "replaced silently. Choose another path, or pass --force to replace it. "
            "Nothing was sent."
        )
