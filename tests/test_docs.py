"""Every command has help text and is documented in the README (sqlite-utils style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from paycancel_cli.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def commands() -> list[tuple[str, Any]]:
    group: Any = typer.main.get_command(app)
    out = []
    for name, command in group.commands.items():
        out.append((name, command))
        for sub, subcommand in getattr(command, "commands", {}).items():
            out.append((f"{name} {sub}", subcommand))
    return out


@pytest.mark.parametrize(("name", "command"), commands(), ids=[n for n, _ in commands()])
def test_command_has_help_and_readme_section(name: str, command: Any) -> None:
    assert (command.help or "").strip(), f"{name} has no help text"
    assert f"`paycancel {name}" in README, f"README does not document `paycancel {name}`"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), f"{name} {param.opts} has no help"


def test_quick_start_commands_are_in_readme() -> None:
    assert "paycancel --sandbox bulk-cancel examples/demo.csv --reason demo --yes" in README
    assert "python -m pytest -q" in README
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "python -m pytest -q" in ci
