"""What ``--account`` and run-id arguments take: shell completion values (account
names from the config, run ids from the journal) and the ``--account`` normalisation.

Invariants:
- Completion never fails loudly and never reads a secret: a broken or missing config
  or journal completes nothing; account names come from the file and the environment
  without running a secret command or touching the keyring.
- Everything heavy is imported inside the functions, so importing it costs `--help`
  nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RUN_ID_LIMIT = 200


def account_flag(value: str | None) -> str | None:
    """``--account`` as typed, for every option that takes one (beside its completion
    below): account names are lower case (``^[a-z][a-z0-9_]*$``), so the flag matches
    any case, as account names in CSV rows do."""
    return None if value is None else value.lower()


def _root_params(ctx: Any) -> dict[str, Any]:
    params = ctx.find_root().params
    return params if isinstance(params, dict) else {}


def _config(ctx: Any) -> Any:
    from paycancel_cli.config import Config, Defaults, load_config, sandbox_config
    from paycancel_cli.errors import PaycancelError
    from paycancel_cli.providers import ADAPTERS

    params = _root_params(ctx)
    try:
        base = load_config(params.get("config"))
    except PaycancelError:
        if not params.get("sandbox"):
            return None
        base = Config(entries={}, defaults=Defaults())
    if params.get("sandbox"):
        # The built-in accounts are named after their provider; no server is started.
        return sandbox_config({}, base), sorted(ADAPTERS)
    return base, list(base.entries)


def account_names(ctx: Any, incomplete: str) -> list[str]:
    found = _config(ctx)
    if found is None:
        return []
    _config_obj, names = found
    return [n for n in names if n.startswith(incomplete.lower())]


def run_ids(ctx: Any, incomplete: str) -> list[str]:
    from paycancel_cli.errors import PaycancelError
    from paycancel_cli.journal import Journal

    found = _config(ctx)
    if found is None:
        return []
    path: Path = found[0].journal_path
    if not path.exists():
        return []
    try:
        journal = Journal(path)
        try:
            ids = [run.run_id for run in journal.runs(limit=RUN_ID_LIMIT)]
        finally:
            journal.close()
    except (PaycancelError, OSError):
        return []
    return [i for i in ids if i.startswith(incomplete)]


SHELLS = ("bash", "zsh", "fish")
PROG = "paycancel"
COMPLETE_VAR = "_PAYCANCEL_COMPLETE"


def enable() -> None:
    """Register typer's completion classes, which speak the protocol of the scripts
    that ``--show-completion`` prints (``_PAYCANCEL_COMPLETE=complete_bash``).

    typer does this itself only for its own completion options, whose shell is
    guessed from the parent process; ours take the shell by name instead.
    """
    from typer._completion_classes import completion_init

    completion_init()


def _check_shell(shell: str) -> str:
    import typer

    if shell not in SHELLS:
        raise typer.BadParameter(f"choose one of {', '.join(SHELLS)}, e.g. bash")
    return shell


def show_script(shell: str) -> str:
    """The completion script for ``shell``, to source from the shell's start-up file."""
    from typer._completion_shared import get_completion_script

    script: str = get_completion_script(
        prog_name=PROG, complete_var=COMPLETE_VAR, shell=_check_shell(shell)
    )
    return script


def install_script(shell: str) -> tuple[str, Path]:
    """Write the script where ``shell`` loads it; ``(shell, path)``."""
    from typer._completion_shared import install

    done: tuple[str, Path] = install(
        shell=_check_shell(shell), prog_name=PROG, complete_var=COMPLETE_VAR
    )
    return done
