"""What a run was asked (``runs.request.BulkRequest``) is checked when it is made, and
what is wrong with it is said twice: below the command layer as a fact
(``refusals.Wrong``), by ``bulk-cancel`` with the flags that asked for it and fix it
(``commands.messages``)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

import paycancel_cli
from paycancel_cli.commands.messages import FLAGS, WORDS, worded
from paycancel_cli.refusals import Refusal, Refused, Wrong
from paycancel_cli.runs.request import RUN_SHAPING, BulkRequest

from .conftest import write_config

PACKAGE = Path(paycancel_cli.__file__).parent


def refusal(**asked: Any) -> Refusal:
    with pytest.raises(Refusal) as raised:
        BulkRequest(**asked)
    return raised.value


@pytest.mark.parametrize(
    ("asked", "wrong"),
    [
        ({}, Wrong.INPUT_NOT_ONE),
        ({"csv": "a.csv", "subscriptions": ["sub_1"], "reason": "r"}, Wrong.INPUT_NOT_ONE),
        ({"subscriptions": ["sub_1"]}, Wrong.NO_REASON),
        ({"subscriptions": ["sub_1"], "reason": "  "}, Wrong.NO_REASON),  # blank is none
        # which refusal wins when several apply: the resume's, as before
        ({"resume": "r1", "subscriptions": ["sub_1"]}, Wrong.RESUME_SHAPED),
        ({"resume": "r1", "max_payments": 0}, Wrong.RESUME_SHAPED),  # 0 is given
        ({"resume_unfinished": True, "resume": "r1"}, Wrong.RESUME_ALL_SHAPED),
        ({"resume_unfinished": True, "csv": "a.csv", "reason": "r"}, Wrong.RESUME_ALL_SHAPED),
        ({"resume_unfinished": True, "account": "fp_eu"}, Wrong.RESUME_ALL_SHAPED),
    ],
)
def test_a_request_that_cannot_run_is_refused_when_made(
    asked: dict[str, Any], wrong: Wrong
) -> None:
    refused = refusal(**asked)
    assert isinstance(refused, Refused) and refused.exit_code == 2
    assert refused.wrong is wrong
    # below the command layer: the fact, no flag
    assert refused.message == f"{wrong.value} Nothing was sent."


@pytest.mark.parametrize(
    "asked",
    [
        {"csv": "a.csv"},  # a CSV's reason may come from its column
        {"subscriptions": ["sub_1"], "reason": "returned"},
        {"subscriptions": ["sub_1"], "dry_run": True},
        {"subscriptions": ["sub_1"], "validate_only": True},
        {"resume": "r1", "yes": True, "live": True, "concurrency": 4, "wait": 2.0},
        {"resume_unfinished": True, "yes": True, "concurrency": 4},
        {"plan": True, "yes": True},  # a plan's flags are checked with the plan
    ],
)
def test_a_request_that_can_run_is_made(asked: dict[str, Any]) -> None:
    assert BulkRequest(**asked) is not None


def test_a_made_request_stays_valid() -> None:
    """Fields cannot be changed in place, and a changed copy is checked again."""
    request = BulkRequest(subscriptions=["sub_1"], reason="returned")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.reason = None  # type: ignore[misc]
    with pytest.raises(Refused) as raised:
        dataclasses.replace(request, reason=None)
    assert raised.value.wrong is Wrong.NO_REASON
    resumed = BulkRequest(resume_unfinished=True, yes=True)
    assert dataclasses.replace(resumed, resume="r1", resume_unfinished=False).resume == "r1"


def test_the_resume_refusal_names_the_flags_given_in_their_order() -> None:
    refused = refusal(resume="r1", read_first=True, csv="a.csv", max_payments=0)
    assert refused.facts == {"given": ["csv", "max_payments", "read_first"]}
    assert worded(refused) == (
        "--resume takes only --yes, --live, --concurrency and --wait, not a CSV file, "
        "--max-payments, --read-first: the run keeps its own input, accounts, reason and "
        "mode. Nothing was sent."
    )


def test_every_refusal_has_words_and_every_shaping_field_a_flag() -> None:
    assert set(WORDS) == set(Wrong)
    assert set(RUN_SHAPING) <= set(FLAGS)
    assert set(RUN_SHAPING) <= {f.name for f in dataclasses.fields(BulkRequest)}


# What may still name a flag below the command layer, and why (see the hand-over):
# whole command lines given as advice, and texts recorded in the journal and report as
# they are shown (a row's problem, the validation's note) before any command sees them.
ADVICE_OR_RECORDED = {
    "runs/confirm.py": ["paycancel bulk-cancel - --account", "--reason TEXT --plan-out"],
    "runs/resume.py": ["`paycancel bulk-cancel --resume", "--unfinished` lists such runs"],
    "runs/plan.py": ["--max-payments ", "and --validate-only sends", "A --dry-run lists"],
    "csvinput.py": [
        "or pass --account",
        "no reason: pass --reason",
        "but --account ",
        "or leave out --account",
    ],
}


def _texts(path: Path) -> list[str]:
    """The string pieces of a module's code, docstrings and comments left out."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_below_the_command_layer_messages_name_no_flag() -> None:
    flag = re.compile(r"(?<![\w-])--[a-z]")
    below = [*sorted((PACKAGE / "runs").glob("*.py")), PACKAGE / "csvinput.py"]
    named = []
    for path in below:
        where = path.relative_to(PACKAGE).as_posix()
        allowed = ADVICE_OR_RECORDED.get(where, [])
        for text in _texts(path):
            if flag.search(text) and not any(a in text for a in allowed):
                named.append(f"{where}: {text!r}")
    assert named == []


# The operator's words, end to end (the texts no other test pins).


def test_bulk_cancel_words_the_requests_refusals(cli: Any, config_file: Path) -> None:
    config = ("--config", str(config_file))
    neither = cli(*config, "bulk-cancel", "--reason", "r")
    assert (neither.code, neither.stderr.strip()) == (
        2,
        "Error: Give either a CSV file (or - for standard input) or --subscription ID, not "
        "both and not neither; or --resume RUN_ID.",
    )
    resume = cli(*config, "bulk-cancel", "--resume", "r1", "--reason", "r", "--dry-run")
    assert resume.code == 2
    assert resume.stderr.strip() == (
        "Error: --resume takes only --yes, --live, --concurrency and --wait, not --reason, "
        "--dry-run: the run keeps its own input, accounts, reason and mode. Nothing was sent."
    )
    every = cli(*config, "bulk-cancel", "--resume-unfinished", "-a", "hedgepayments", "--json")
    assert every.code == 2
    assert every.json_lines()[-1] == {
        "type": "error",
        "exit_code": 2,
        "code": "usage_error",
        "message": "--resume-unfinished takes only --yes, --live, --concurrency, --wait and "
        "--json-summary: each run keeps its own input, accounts and reason. Nothing was sent.",
    }


def test_bulk_cancel_words_the_runs_refusals(cli: Any, config_file: Path, tmp_path: Path) -> None:
    csv = tmp_path / "ids.csv"
    csv.write_text("account,payment_id\nhedgepayments,pay_demopending01\n")
    unconfirmed = cli("--config", str(config_file), "bulk-cancel", str(csv), "--reason", "r")
    assert (unconfirmed.code, unconfirmed.stderr.strip()) == (
        2,
        "Error: Refusing to cancel without confirmation: there is no terminal to ask on. Pass "
        "--yes to confirm non-interactively, or --dry-run to only look. Nothing was sent.",
    )
    run_id = cli("--sandbox", "bulk-cancel", str(csv), "--dry-run", "--json").json_lines()[-1][
        "run_id"
    ]
    config = write_config(
        tmp_path / "c.toml", {"hedgepayments": {"provider": "hedgepayments", "api_key": "sk_x"}}
    )
    elsewhere = cli("--config", str(config), "bulk-cancel", "--resume", run_id, "--yes")
    assert (elsewhere.code, elsewhere.stderr.strip()) == (
        2,
        f"Error: Run {run_id} ran against the built-in sandbox; resume it the same way (with "
        "--sandbox). Nothing was sent.",
    )


def test_the_account_is_checked_before_the_reason_as_before(cli: Any, config_file: Path) -> None:
    """Made with the config, the request checks its account first: an unknown one wins
    over a missing reason, as when the run checked it."""
    res = cli("--config", str(config_file), "bulk-cancel", "--subscription", "s1", "-a", "nosuch")
    assert res.code == 2
    assert res.stderr.startswith("Error: Unknown account 'nosuch'")
    res = cli("--config", str(config_file), "bulk-cancel", "--subscription", "s1", "-a", "flex")
    assert res.code == 2
    assert res.stderr.startswith("Error: --reason is required with --subscription")
