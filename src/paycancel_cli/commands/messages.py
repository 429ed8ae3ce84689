"""The operator's words for a refusal (``refusals``): what the layers below found wrong,
said with the flags that asked for it and the flags that fix it.  The one error
boundary (``cli``) and the per-run lines of ``--resume-unfinished`` word through here.
"""

from collections.abc import Callable

from paycancel_cli.errors import PaycancelError
from paycancel_cli.refusals import Refusal, Wrong

# A run request's fields (``runs.request.BulkRequest``) by the flag that sets them.
FLAGS = {
    "csv": "a CSV file",
    "subscriptions": "--subscription",
    "reason": "--reason",
    "dry_run": "--dry-run",
    "validate_only": "--validate-only",
    "skip_invalid": "--skip-invalid",
    "max_payments": "--max-payments",
    "account": "--account",
    "read_first": "--read-first",
}

NOTHING_SENT = "Nothing was sent."


def worded(exc: PaycancelError) -> str:
    """``exc``'s message for the operator: a refusal worded with its flags, any other
    error as it is."""
    if not isinstance(exc, Refusal):
        return exc.message
    return WORDS[exc.wrong](**exc.facts)


def _resume_shaped(given: list[str]) -> str:
    return (
        f"--resume takes only --yes, --live, --concurrency and --wait, not "
        f"{', '.join(FLAGS[name] for name in given)}: the run keeps its own input, "
        f"accounts, reason and mode. {NOTHING_SENT}"
    )


def _csv_no_account(label: str, known: list[str]) -> str:
    return (
        f"{label} has no account column and no --account was given, and several accounts "
        f"are configured ({', '.join(known) or 'none'}): pass --account NAME for the whole "
        f"file, or add an account column. {NOTHING_SENT}"
    )


def _csv_no_reason(label: str) -> str:
    return (
        f"--reason is required: {label} has no reason column, and every cancel records why "
        "(it goes to the provider where the API takes one, and to the journal). Pass "
        "--reason TEXT (a reason column overrides it per row); --dry-run and --validate-only "
        f"need none. {NOTHING_SENT}"
    )


def _no_id_column(label: str, header: list[str], plain: str | None, account: str | None) -> str:
    hint = ""
    if plain == "needs_account":
        hint = (
            " A plain list of payment ids without a header is read as one when --account "
            "says whose ids they are."
        )
    elif plain == "not_an_id":
        hint = (
            f" Nor is {header[0]!r} a payment id for account {account!r}, so the file is not "
            "read as a plain list of ids."
        )
    return (
        f"{label}, line 1: no payment_id column (aliases id, reference) or subscription_id "
        f"column; the header has: {', '.join(header) or 'nothing'}.{hint} {NOTHING_SENT}"
    )


def _invalid_rows(invalid: int, label: str) -> str:
    return (
        f"{invalid} invalid row(s) in {label} (listed above with their line numbers). Fix "
        "them, or pass --skip-invalid to cancel the valid rows and report the others as "
        f"invalid. {NOTHING_SENT}"
    )


def _over_max(selected: int, max_payments: int) -> str:
    return (
        f"The input selects {selected} payments, more than --max-payments {max_payments}. "
        f"Check the input or filter, or raise the limit. {NOTHING_SENT}"
    )


def _run_not_found(run_id: str, journal: str, elsewhere: str | None, resuming: bool) -> str:
    message = f"No run {run_id!r} in the journal {journal}; `paycancel runs` lists the runs."
    if elsewhere == "real":
        message += " It is a run on real accounts: leave out --sandbox to use it."
    elif elsewhere == "sandbox":
        command = "bulk-cancel --resume" if resuming else "runs show"
        message += (
            " It is a run in the built-in sandbox: add --sandbox "
            f"(paycancel --sandbox {command} {run_id})."
        )
    return message


def _other_sandbox(run_id: str, sandbox: bool) -> str:
    where = "the built-in sandbox" if sandbox else "real accounts"
    how = "with" if sandbox else "without"
    return f"Run {run_id} ran against {where}; resume it the same way ({how} --sandbox). " + (
        NOTHING_SENT
    )


def _live_unconfirmed(live_names: list[str]) -> str:
    one = len(live_names) == 1
    which = (
        f"Account {live_names[0]} is LIVE" if one else f"Accounts {', '.join(live_names)} are LIVE"
    )
    return (
        f"{which} and there is no terminal to confirm on: pass --yes --live to cancel on "
        f"{'it' if one else 'them'} non-interactively. {NOTHING_SENT}"
    )


WORDS: dict[Wrong, Callable[..., str]] = {
    Wrong.INPUT_NOT_ONE: lambda: (
        "Give either a CSV file (or - for standard input) or --subscription ID, not both "
        "and not neither; or --resume RUN_ID."
    ),
    Wrong.RESUME_SHAPED: _resume_shaped,
    Wrong.RESUME_ALL_SHAPED: lambda: (
        "--resume-unfinished takes only --yes, --live, --concurrency, --wait and "
        "--json-summary: each run keeps its own input, accounts and reason. " + NOTHING_SENT
    ),
    Wrong.NO_REASON: lambda: (
        "--reason is required with --subscription: every cancel records why (it goes to the "
        "provider and to the journal). Pass --reason TEXT; --dry-run and --validate-only need "
        "none. " + NOTHING_SENT
    ),
    Wrong.CSV_NO_ACCOUNT: _csv_no_account,
    Wrong.CSV_NO_REASON: _csv_no_reason,
    Wrong.NO_ID_COLUMN: _no_id_column,
    Wrong.INVALID_ROWS: _invalid_rows,
    Wrong.OVER_MAX: _over_max,
    Wrong.RUN_NOT_FOUND: _run_not_found,
    Wrong.OTHER_SANDBOX: _other_sandbox,
    Wrong.LIVE_UNCONFIRMED: _live_unconfirmed,
    Wrong.UNCONFIRMED: lambda: (
        "Refusing to cancel without confirmation: there is no terminal to ask on. Pass --yes "
        "to confirm non-interactively, or --dry-run to only look. " + NOTHING_SENT
    ),
}
