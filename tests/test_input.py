"""Input as operators have it (issue 7, points 4, 5, 6 and 10), over the sandbox:
reasons and accounts decided once for every row, --account against an account column,
subscriptions that find nothing, and CSV files without a header, with other column
spellings, in UTF-16, or with account names in another case."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.journal import Journal
from paycancel_cli.runs.summary import summarize
from paycancel_cli.sandbox import Sandbox

from .conftest import CliResult, write_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.csv"


@pytest.fixture(autouse=True)
def wide_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages are compared line by line: no terminal width from the caller."""
    monkeypatch.delenv("COLUMNS", raising=False)


def bulk(cli: Any, config: Path, *args: str, stdin: str | None = None) -> CliResult:
    return cli("--config", str(config), "bulk-cancel", *args, stdin=stdin)  # type: ignore[no-any-return]


def sent(sandbox: Sandbox) -> int:
    return sum(sandbox.counts.values())


def cancels(sandbox: Sandbox) -> int:
    return sum(n for (_, op), n in sandbox.counts.items() if op == "cancel")


def err_lines(res: CliResult) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.strip()]


# point 4: --reason where nothing is sent; one up-front error for every row


def test_bulk_dry_run_and_validate_only_need_no_reason(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(cli, config_file, str(DEMO), "--dry-run", "--json")
    results = [r for r in res.json_lines() if r["type"] == "result"]
    assert len(results) == 31 and "no reason" not in res.stderr
    assert res.json_lines()[-1]["outcomes"] == {
        "already_cancelled": 7,
        "not_cancellable": 13,
        "would_cancel": 11,
    }
    assert res.code == 1  # some would not be cancelled; not a usage error
    assert cancels(sandbox) == 0
    sandbox.reset_counters()
    res = bulk(cli, config_file, str(DEMO), "--validate-only", "--json")
    assert res.code == 0 and res.stderr == ""
    assert res.json_lines() == [
        {
            "type": "validation",
            "kind": "payments",
            "rows": 31,
            "valid": 31,
            "invalid": 0,
            "duplicates": 0,
            "per_account": {
                "compago": 4,
                "flex": 6,
                "flexportal": 5,
                "hedgepayments": 7,
                "vipps": 9,
            },
        }
    ]
    assert sent(sandbox) == 0


def test_single_cancel_dry_run_needs_no_reason(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "fpi_demo_requires_action_01",
        "--account",
        "flex",
        "--dry-run",
        "--json",
    )
    assert res.code == 0, res.stderr
    result = res.json_lines()[0]
    assert result["type"] == "result" and result["outcome"] == "would_cancel"
    assert sandbox.counts[("flex", "get")] == 1 and cancels(sandbox) == 0


def test_single_cancel_without_reason_is_one_usage_error(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "fpi_demo_requires_action_01",
        "--account",
        "flex",
        "--yes",
    )
    assert res.code == 2
    assert err_lines(res) == [
        "Error: --reason is required to cancel: say why (it goes to the provider where the "
        "API takes one, and to the journal). A --dry-run needs none. Nothing was sent."
    ]
    assert sent(sandbox) == 0


def test_a_missing_reason_for_every_row_is_one_error(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(cli, config_file, str(DEMO), "--yes")
    assert res.code == 2
    assert err_lines(res) == [
        f"Error: --reason is required: CSV {DEMO} has no reason column, and every cancel "
        "records why (it goes to the provider where the API takes one, and to the journal). "
        "Pass --reason TEXT (a reason column overrides it per row); --dry-run and "
        "--validate-only need none. Nothing was sent."
    ]
    assert sent(sandbox) == 0


def test_a_reason_column_with_a_blank_cell_names_that_line(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("payment_id,reason\npay_demopending01,r\npay_demoinitiated01,\n")
    res = bulk(cli, config_file, str(path), "--account", "hedgepayments", "--yes")
    assert res.code == 2
    assert err_lines(res)[0] == "line 3: no reason: pass --reason or fill the reason column"
    assert sent(sandbox) == 0


def test_a_missing_account_for_every_row_is_one_error(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("payment_id\npay_demopending01\nfpay_demo_pending_01\npay_demofailed01\n")
    res = bulk(cli, config_file, str(path), "--reason", "r", "--yes")
    assert res.code == 2
    assert err_lines(res) == [
        f"Error: CSV {path} has no account column and no --account was given, and several "
        "accounts are configured (compago, flex, flexportal, hedgepayments, vipps): pass "
        "--account NAME for the whole file, or add an account column. Nothing was sent."
    ]
    assert sent(sandbox) == 0


def test_subscription_without_reason_needs_one_only_when_it_may_cancel(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    args = ("--subscription", "rent_demo_01", "--account", "flexportal")
    res = bulk(cli, config_file, *args, "--yes")
    assert res.code == 2 and err_lines(res) == [
        "Error: --reason is required with --subscription: every cancel records why (it goes "
        "to the provider and to the journal). Pass --reason TEXT; --dry-run and "
        "--validate-only need none. Nothing was sent."
    ]
    assert sent(sandbox) == 0
    res = bulk(cli, config_file, *args, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    outcomes = [r["outcome"] for r in res.json_lines() if r["type"] == "result"]
    assert outcomes == ["would_cancel", "would_cancel"] and cancels(sandbox) == 0


def test_an_input_selecting_nothing_is_exit_0_but_still_needs_a_reason(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("Payment ID\r\n")
    args = (str(path), "--account", "hedgepayments", "--yes", "--json")
    res = bulk(cli, config_file, *args, "--reason", "r")
    assert res.code == 0, res.stderr
    summary = res.json_lines()[-1]
    assert (summary["type"], summary["total"], summary["outcomes"]) == ("summary", 0, {})
    # the command itself is incomplete, whatever tonight's file holds: found on the
    # first night, not on the first night with rows
    res = bulk(cli, config_file, *args)
    assert res.code == 2 and err_lines(res)[0].startswith("Error: --reason is required: CSV")
    assert sent(sandbox) == 0


# point 5: --account with an account column


def demo_accounts() -> dict[int, str]:
    with open(DEMO, newline="") as handle:
        return {n: row["account"] for n, row in enumerate(csv.DictReader(handle), 2)}


def test_account_flag_makes_rows_of_other_accounts_invalid_with_their_lines(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(cli, config_file, str(DEMO), "--account", "hedgepayments", "--validate-only")
    assert res.code == 2
    others = {n: a for n, a in demo_accounts().items() if a != "hedgepayments"}
    listed = [line for line in err_lines(res) if line.startswith("line")]
    # rows invalid in the same way are one message, with their lines
    lines: dict[str, list[int]] = {}
    for n, a in others.items():
        lines.setdefault(a, []).append(n)
    assert listed == [
        f"lines {ns[0]}-{ns[-1]}: the row names account {a!r}, but --account hedgepayments "
        "was given; fix the row, or leave out --account to use the file's accounts"
        for a, ns in lines.items()
    ]
    assert err_lines(res)[-1].startswith(f"Error: {len(others)} invalid row(s) in {DEMO}")
    assert sent(sandbox) == 0


def test_account_flag_with_skip_invalid_touches_only_that_account(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(
        cli,
        config_file,
        str(DEMO),
        "--account",
        "hedgepayments",
        "--dry-run",
        "--skip-invalid",
        "--json",
    )
    summary = res.json_lines()[-1]
    assert summary["total"] == 31 and summary["outcomes"]["invalid"] == 24
    results = [r for r in res.json_lines() if r["type"] == "result"]
    assert {r["account"] for r in results} == {"hedgepayments"} and len(results) == 7
    assert {p for (p, _), n in sandbox.counts.items() if n} == {"hedgepayments"}


def test_account_flag_fills_blank_cells_and_matches_any_case(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("payment_id,account\npay_demopending01,\npay_demoinitiated01,HedgePayments\n")
    res = bulk(
        cli, config_file, str(path), "--account", "hedgepayments", "--reason", "r", "--yes",
        "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.json_lines()[-1]["outcomes"] == {"cancelled": 2}
    assert sandbox.cancel_commits[("hedgepayments", "pay_demoinitiated01")] == 1


def test_the_account_flag_itself_matches_any_case(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("payment_id,account\npay_demopending01,\npay_demoinitiated01,hedgepayments\n")
    res = bulk(
        cli, config_file, str(path), "--account", "HedgePayments", "--reason", "r", "--yes",
        "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.json_lines()[-1]["outcomes"] == {"cancelled": 2}
    assert {r["account"] for r in res.json_lines() if r["type"] == "result"} == {"hedgepayments"}
    status = cli(
        "--config", str(config_file), "status", "pay_demopending01", "-a", "HEDGEPAYMENTS",
        "--json",
    )  # fmt: skip
    assert status.code == 0, status.stderr
    assert status.json_lines()[0]["account"] == "hedgepayments"
    check = cli("--config", str(config_file), "config", "check", "--account", "HedgePayments")
    assert check.code == 0, check.stderr
    assert sandbox.counts[("hedgepayments", "cancel")] == 2


# point 6: subscriptions


def test_a_mistyped_subscription_warns_and_the_summary_counts_it(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(
        cli, config_file, "--subscription", "rent_8812", "--account", "flexportal",
        "--reason", "x", "--yes", "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    warnings = [line for line in err_lines(res) if line.startswith("Warning")]
    assert warnings == [
        "Warning: subscription rent_8812 (flexportal) has no open payments; check the id if "
        "you expected some."
    ]
    summary = res.json_lines()[-1]
    assert summary["type"] == "summary" and summary["total"] == 0
    assert summary["outcomes"] == {} and summary["subscriptions"] == {"rent_8812": 0}
    assert cancels(sandbox) == 0


def test_a_run_that_selects_nothing_says_so_in_one_line(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(
        cli, config_file, "--subscription", "rent_8812", "--account", "flexportal",
        "--reason", "x", "--yes",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    run_id = res.stderr.split("Run id: ")[1].split()[0]
    # not a grid of empty columns ("account" over "total")
    assert res.stdout == ""
    assert f"Summary of run {run_id}: no payments selected; nothing to do.\n" in res.stderr


def test_the_plan_shows_open_payments_per_subscription(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    res = bulk(
        cli, config_file, "--subscription", "rent_8812", "--subscription", "rent_demo_01",
        "--account", "flexportal", "--reason", "x", stdin="y\n",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert re.search(r"^\s*subscription\s+open payments\s*$", res.stdout, re.M)
    assert re.search(r"^\s*rent_8812\s+0\s*$", res.stdout, re.M)
    assert re.search(r"^\s*rent_demo_01\s+2\s*$", res.stdout, re.M)
    assert "Warning: subscription rent_8812 (flexportal) has no open payments" in res.stderr
    run_id = res.stderr.split("Run id: ")[1].split()[0]
    summary = summarize(Journal(tmp_path / "journal.sqlite3"), run_id)
    assert summary.to_json()["subscriptions"] == {"rent_8812": 0, "rent_demo_01": 2}
    assert summary.outcomes == {"cancelled": 2}


def test_a_subscription_row_for_a_provider_that_cannot_list_says_so(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text("subscription_id,account\nsub_1,vipps\nrent_demo_01,flexportal\n")
    res = bulk(cli, config_file, str(path), "--reason", "r", "--yes")
    assert res.code == 2
    assert err_lines(res)[0] == (
        "line 2: account 'vipps' cannot list a subscription's payments (Vipps ePayment has "
        "no list or search endpoint); give a CSV of payment references instead"
    )
    assert "not a Vipps id" not in res.stderr and sent(sandbox) == 0


def test_validate_only_counts_subscriptions_and_says_max_payments_needs_the_list(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    args = ("--subscription", "rent_8812", "--subscription", "rent_demo_01")
    res = bulk(cli, config_file, *args, "--account", "flexportal", "--validate-only", "--json")
    assert res.code == 0 and res.json_lines() == [
        {
            "type": "validation",
            "kind": "subscriptions",
            "rows": 2,
            "valid": 2,
            "invalid": 0,
            "duplicates": 0,
            "per_account": {"flexportal": 2},
        }
    ]
    res = bulk(
        cli, config_file, *args, "--account", "flexportal", "--validate-only",
        "--max-payments", "1",
    )  # fmt: skip
    assert res.code == 0
    assert err_lines(res) == [
        "Note: --max-payments 1 is not checked: how many open payments the subscriptions have "
        "is known only from the provider's list, and --validate-only sends no request. A "
        "--dry-run lists them, applies the limit and cancels nothing.",
        "Valid: 2 subscription(s) (flexportal: 2); 0 invalid, 0 duplicate(s). Nothing was sent.",
    ]
    path = tmp_path / "subs.csv"
    path.write_text("Subscription ID,Account\nrent_demo_01,FlexPortal\n")
    res = bulk(cli, config_file, str(path), "--validate-only", "--max-payments", "1", "--json")
    assert res.code == 0
    record = res.json_lines()[-1]
    assert record["kind"] == "subscriptions" and record["max_payments_checked"] is False
    assert sent(sandbox) == 0
    # what --validate-only cannot check, a dry run does (it lists, and cancels nothing)
    res = bulk(
        cli, config_file, *args, "--account", "flexportal", "--dry-run", "--max-payments", "1"
    )
    assert res.code == 2 and "selects 2 payments, more than --max-payments 1" in res.stderr
    assert cancels(sandbox) == 0


def test_validate_only_applies_max_payments_to_payment_ids(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(cli, config_file, str(DEMO), "--validate-only", "--max-payments", "30")
    assert res.code == 2
    assert err_lines(res) == [
        "Error: The input selects 31 payments, more than --max-payments 30. Check the input "
        "or filter, or raise the limit. Nothing was sent."
    ]
    res = bulk(cli, config_file, str(DEMO), "--validate-only", "--max-payments", "31", "--json")
    assert res.code == 0 and res.json_lines()[-1]["max_payments_checked"] is True
    assert sent(sandbox) == 0


def test_the_readme_documents_the_sandbox_demo_subscription(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    readme = (ROOT / "README.md").read_text()
    command = (
        "paycancel --sandbox bulk-cancel --subscription rent_demo_01 --account flexportal --dry-run"
    )
    assert command in readme and "fpay_demo_pending_01" in readme
    res = bulk(cli, config_file, *command.split()[3:], "--json")
    assert res.code == 0, res.stderr
    assert {r["payment_id"] for r in res.json_lines() if r["type"] == "result"} == {
        "fpay_demo_pending_01",
        "fpay_demo_failed_01",
    }
    assert res.json_lines()[-1]["subscriptions"] == {"rent_demo_01": 2}


# point 10: CSV the way operators have it


def test_a_plain_list_of_ids_is_read_with_a_note(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("pay_demopending01\r\npay_demoinitiated01\r\n\r\npay_demopending01\r\n")
    res = bulk(
        cli, config_file, str(path), "--account", "hedgepayments", "--reason", "r", "--yes",
        "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert err_lines(res)[:2] == [
        f"Note: {path} has no header row: its first line 'pay_demopending01' is a payment id, "
        "so it is read as a list of payment ids for account hedgepayments.",
        "Warning: 1 duplicate row(s) collapsed (line(s) 4).",
    ]
    assert res.json_lines()[-1]["outcomes"] == {"cancelled": 2}
    assert sandbox.cancel_commits[("hedgepayments", "pay_demopending01")] == 1


def test_a_plain_list_on_stdin_names_bad_lines_counting_from_the_first(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = bulk(
        cli, config_file, "-", "--account", "hedgepayments", "--reason", "r", "--yes",
        stdin="pay_demopending01\nbad/id\n",
    )  # fmt: skip
    assert res.code == 2
    assert err_lines(res)[:2] == [
        "Note: standard input has no header row: its first line 'pay_demopending01' is a "
        "payment id, so it is read as a list of payment ids for account hedgepayments.",
        "line 2: Payment id 'bad/id' contains the character '/', which a payment id never holds.",
    ]
    assert sent(sandbox) == 0


def test_a_plain_list_with_one_account_configured_needs_no_account_flag(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "one.toml", {"flex": sandbox.account_config()["flex"]})
    path = tmp_path / "ids.csv"
    path.write_text("fpi_demo_requires_action_01\nfpi_demo_succeeded_01\n")
    res = bulk(cli, config, str(path), "--dry-run", "--json")
    outcomes = {r["payment_id"]: r["outcome"] for r in res.json_lines() if r["type"] == "result"}
    assert outcomes == {
        "fpi_demo_requires_action_01": "would_cancel",
        "fpi_demo_succeeded_01": "not_cancellable",
    }
    assert "read as a list of payment ids for account flex" in res.stderr


def test_a_plain_list_without_an_account_is_refused_with_the_fix(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("pay_demopending01\n")
    res = bulk(cli, config_file, str(path), "--reason", "r", "--yes")
    assert res.code == 2
    assert err_lines(res) == [
        f"Error: CSV {path}, line 1: no payment_id column (aliases id, reference) or "
        "subscription_id column; the header has: pay_demopending01. A plain list of payment "
        "ids without a header is read as one when --account says whose ids they are. "
        "Nothing was sent."
    ]
    # a first line that is no id for the account given is not taken as one
    path.write_text("transaction\npay_demopending01\n")
    res = bulk(cli, config_file, str(path), "--account", "hedgepayments", "--reason", "r")
    assert res.code == 2 and "Nor is 'transaction' a payment id for account" in res.stderr
    assert sent(sandbox) == 0


@pytest.mark.parametrize(
    "header",
    [
        "Payment ID,Account,Reason,Expected Amount,Expected Currency",
        "payment-id;ACCOUNT;reason;expected-amount;expected-currency",
        "PAYMENT_ID\tAccount\tREASON\tExpected_Amount\tExpected_Currency",
        " paymentId , account , Reason , expectedAmount , expectedCurrency ",
    ],
)
def test_column_names_match_ignoring_case_spaces_dashes_and_underscores(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, header: str
) -> None:
    delimiter = next(d for d in "\t;," if d in header)
    rows = [
        ["pay_demopending01", "HEDGEPAYMENTS", "row reason", "", ""],
        ["pay_demoinitiated01", "Hedgepayments", "", "1.00", "USD"],
    ]
    path = tmp_path / "in.csv"
    path.write_text(header + "\n" + "".join(delimiter.join(r) + "\n" for r in rows))
    res = bulk(cli, config_file, str(path), "--reason", "default", "--yes", "--json")
    assert res.code == 1, res.stderr
    results = {r["payment_id"]: r for r in res.json_lines() if r["type"] == "result"}
    assert results["pay_demopending01"]["outcome"] == "cancelled"
    assert results["pay_demoinitiated01"]["error"]["code"] == "amount_mismatch"
    assert (
        sandbox.payment("hedgepayments", "pay_demopending01")["cancellation_reason"] == "row reason"
    )


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-32", "UTF-32")],
)
def test_utf16_is_refused_with_save_it_as_utf8(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, encoding: str, name: str
) -> None:
    path = tmp_path / "export.csv"
    text = "payment_id,account\npay_demopending01,hedgepayments\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # with its BOM; plain utf-16-le below has none
    path.write_bytes(data)
    res = bulk(cli, config_file, str(path), "--reason", "r", "--yes")
    assert res.code == 2
    assert err_lines(res) == [
        f"Error: CSV {path}: the file is {name} text; save it as UTF-8 (in a spreadsheet: "
        '"CSV UTF-8") and try again. Nothing was sent.'
    ]
    assert "binary" not in res.stderr and sent(sandbox) == 0


def test_account_names_in_rows_match_ignoring_case_on_every_path(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    # a clean file (batch checks) and one with an amount guard (row by row)
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "payment_id,account\npay_demopending01,HedgePayments\nfpay_demo_pending_01,FLEXPORTAL\n"
    )
    guarded = tmp_path / "guarded.csv"
    guarded.write_text(
        "payment_id,account,expected_amount,expected_currency\n"
        "pay_demopending01,HedgePayments,,\nfpay_demo_pending_01,FLEXPORTAL,,\n"
    )
    for path in (plain, guarded):
        res = bulk(cli, config_file, str(path), "--validate-only", "--json")
        assert res.code == 0, res.stderr
        assert res.json_lines()[-1]["per_account"] == {"flexportal": 1, "hedgepayments": 1}
    res = bulk(cli, config_file, str(plain), "--reason", "r", "--yes", "--json")
    assert res.code == 0 and {r["account"] for r in res.json_lines() if r["type"] == "result"} == {
        "flexportal",
        "hedgepayments",
    }
