"""Help that says what goes where, global options anywhere, and one value per option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from paycancel_cli.cli import app, arrange_args, plain_arguments

from .conftest import CliResult


def command_paths() -> list[list[str]]:
    group: Any = typer.main.get_command(app)
    out: list[list[str]] = []
    for name, command in group.commands.items():
        out.append([name])
        out.extend([name, sub] for sub in getattr(command, "commands", {}))
    return out


@pytest.mark.parametrize("path", [[], *command_paths()], ids=lambda p: " ".join(p) or "paycancel")
def test_every_command_has_h_examples_and_plain_metavars(cli: Any, path: list[str]) -> None:
    short = cli(*path, "-h")
    assert short.code == 0
    assert short.stdout == cli(*path, "--help").stdout
    assert "Examples:\n    paycancel " in short.stdout
    # metavars say what goes there, never a Python type
    for python_type in ("<str>", "<int", "<float", "<list", "<path>", "<bool>", "{"):
        assert python_type not in short.stdout, (path, python_type)


def test_option_metavars_name_what_goes_there(cli: Any) -> None:
    text = cli("bulk-cancel", "-h").stdout
    for shown in (
        "[CSV]",
        "--subscription ID",
        "-a, --account ACCOUNT",
        "--reason TEXT",
        "--concurrency N",
        "--max-payments N",
        "--report PATH",
        "--resume RUN_ID",
        "--wait [SECONDS]",
    ):
        assert shown in text, shown
    assert "Usage: paycancel status [OPTIONS] ID..." in cli("status", "-h").stdout
    assert "Usage: paycancel runs show [OPTIONS] RUN_ID" in cli("runs", "show", "-h").stdout
    assert "--config PATH" in cli("-h").stdout


def test_top_level_summaries_are_whole_at_80_columns(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("-h").stdout
    group: Any = plain_arguments(typer.main.get_command(app))
    for path in [[], *command_paths()]:
        listing = cli(*path, "-h").stdout.partition("Commands:")[2].partition("Examples:")[0]
        assert "..." not in listing, path
    for name, command in group.commands.items():
        summary = command.get_short_help_str()
        assert summary.endswith("."), name
        assert " ".join(summary.split()) in " ".join(text.split()), name


def test_global_options_after_the_command(
    cli: Any, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    after = cli("status", "pay_demopending01", "-a", "hedgepayments", "--config", str(config_file))
    assert after.code == 0, after.stderr
    verbose = cli(
        "--config", str(config_file), "status", "pay_demopending01", "-a", "hedgepayments", "-v"
    )
    assert verbose.code == 0, verbose.stderr
    assert "GET " in verbose.stderr  # -v after the command logged the exchange
    assert cli("runs", "--version").stdout.startswith("paycancel ")
    sandboxed = cli("status", "pay_demopending01", "--sandbox", "--account", "hedgepayments")
    assert sandboxed.code == 0, sandboxed.stderr
    assert "pay_demopending01" in sandboxed.stdout


def test_arrange_args_keeps_option_values_in_place() -> None:
    group: Any = typer.main.get_command(app)
    import typer._click as click

    ctx = click.Context(group)
    args = ["cancel", "X", "--reason", "-v", "--sandbox", "--config", "c.toml", "--no-color"]
    assert arrange_args(group, ctx, args) == [
        "--sandbox",
        "--config",
        "c.toml",
        "--no-color",
        "cancel",
        "X",
        "--reason",
        "-v",
    ]
    assert arrange_args(group, ctx, ["runs", "show", "R1", "--debug"]) == [
        "--debug",
        "runs",
        "show",
        "R1",
    ]
    # --wait alone takes no value; a number after it is its limit
    wait = ["bulk-cancel", "a.csv", "--wait"]
    assert arrange_args(group, ctx, wait) == ["bulk-cancel", "a.csv", "--wait="]
    wait = ["bulk-cancel", "--wait", "a.csv"]
    assert arrange_args(group, ctx, wait) == ["bulk-cancel", "--wait=", "a.csv"]
    wait = ["bulk-cancel", "--wait", "30", "a.csv"]
    assert arrange_args(group, ctx, wait) == wait


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["status", "X", "--account", "a", "--account", "b"],
            "Error: --account was given twice (a and b); give it once. Nothing was sent.",
        ),
        (
            ["cancel", "X", "-a", "flex", "--reason", "x", "--account", "flexportal"],
            "Error: --account was given twice (flex and flexportal); give it once. "
            "Nothing was sent.",
        ),
        (
            ["--config", "a.toml", "runs", "--config", "b.toml"],
            "Error: --config was given twice (a.toml and b.toml); give it once. Nothing was sent.",
        ),
    ],
)
def test_a_single_value_option_given_twice_is_refused(cli: Any, args: list[str], line: str) -> None:
    res: CliResult = cli(*args)
    assert res.code == 2
    assert res.stderr.splitlines() == [line]
    assert res.stdout == ""
