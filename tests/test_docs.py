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


@pytest.mark.parametrize(("check", "bulk", "logged"), [(0, 5, 5), (0, 1, 1), (3, 0, 3)])
def test_the_crontab_logs_the_real_exit_code(
    tmp_path: Path, check: int, bulk: int, logged: int
) -> None:
    """The README's crontab line, run by bash with stand-ins for paycancel and the rental
    system: exit.log must hold the exit code of the run (or of the failed pre-flight)."""
    import re
    import subprocess

    cron = README[README.index("```cron") :]
    line = next(ln for ln in cron.splitlines() if re.match(r"^[\d*]+\s+[\d*]+\s+", ln))
    command = line.split(None, 5)[5].replace("\\%", "%")
    logs = tmp_path / "log"
    logs.mkdir()
    command = command.replace("/var/log/paycancel", str(logs))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "paycancel").write_text(
        f'#!/bin/sh\ncase "$1" in config) exit {check};; *) exit {bulk};; esac\n'
    )
    (bin_dir / "returned-rentals").write_text("#!/bin/sh\necho rent_1\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["bash", "-c", command], env=env, check=False, timeout=60)
    assert (logs / "exit.log").read_text().split()[-1] == str(logged)
