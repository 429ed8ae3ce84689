"""The one confirmation of every run, bulk or single: what can never be confirmed is
refused before any request (no terminal, a LIVE account without --yes --live, an
account that takes only approved plans); then the plan is shown and, unless --yes
(and --live for LIVE accounts) says so already, the operator confirms: y/N on test
accounts, the account's name typed on LIVE ones.  A refusal raises ``Declined``;
Ctrl-C or end of input at the prompt ends the command (``prompt``), nothing sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from paycancel_cli import prompt
from paycancel_cli.errors import Declined, PlanRefused
from paycancel_cli.refusals import Refused, Wrong

if TYPE_CHECKING:
    from paycancel_cli.config import Account
    from paycancel_cli.runs.request import BulkUI, Plan


def require_plan(accounts: Iterable[Account]) -> None:
    """Refuse a cancel, without a plan, on an account that needs approved plans."""
    strict = sorted((a for a in accounts if a.approvals), key=lambda a: a.name)
    if not strict:
        return
    a = strict[0]
    raise PlanRefused(
        f"Account {a.name} takes cancels only from a plan approved by {a.approvals} person(s) "
        "besides its author (approvals = "
        f"{a.approvals} in the config). Make a plan, have it approved, then apply it; a "
        f"one-off is a one-row plan: echo ID | paycancel bulk-cancel - --account {a.name} "
        "--reason TEXT --plan-out p.json --key KEY, then paycancel plan approve p.json --key "
        "KEY (another person), then paycancel bulk-cancel --plan p.json. Nothing was sent."
    )


def check_confirmable(
    accounts: Iterable[Account],
    *,
    yes: bool,
    live: bool,
    interactive: bool,
    from_plan: bool = False,
) -> None:
    """Refuse up front, before any request, what could never be confirmed, and a cancel
    on an account that takes cancels only from an approved plan (unless ``from_plan``)."""
    accounts = list(accounts)
    if not from_plan:
        require_plan(accounts)
    if interactive:
        return
    live_names = sorted(a.name for a in accounts if a.is_live)
    if live_names and not (yes and live):
        raise Refused(Wrong.LIVE_UNCONFIRMED, live_names=live_names)
    if not yes:
        raise Refused(Wrong.UNCONFIRMED)


def confirm_plan(plan: Plan, ui: BulkUI, *, yes: bool, live: bool) -> None:
    """Show a run's plan and have it confirmed: each LIVE account's name typed unless
    --yes --live, then y/N unless --yes."""
    live_accounts = sorted(a for a, is_live in plan.live.items() if is_live)
    ui.show_plan(plan, prompting=not yes or bool(live_accounts and not live))
    if live_accounts and not (yes and live):
        for account in live_accounts:
            typed = prompt.ask(f"LIVE account: type the account name ({account}) to go on: ")
            if typed.strip().lower() != account.lower():  # names match in any case
                raise Declined("The typed name did not match the account; nothing was sent.")
        return
    if yes:
        return
    answer = prompt.ask(f"Cancel {plan.total} payment(s)? [y/N]: ")
    if answer.strip().lower() not in ("y", "yes"):
        raise Declined("Not confirmed; nothing was sent.")


def confirm_one(account: Account, show: Callable[[], None], *, yes: bool, live: bool) -> None:
    """Have one payment's cancel confirmed (``cancel ID``): ``show`` shows what will
    happen; the account's name typed on a LIVE account unless --yes --live, y/N on a
    test account unless --yes."""
    if yes and (live or not account.is_live):
        return
    show()
    if account.is_live:
        typed = prompt.ask(f"LIVE account: type the account name ({account.name}) to cancel: ")
        if typed.strip().lower() != account.name.lower():  # names match in any case
            raise Declined(
                "Not cancelled: the typed name did not match the account; nothing was sent."
            )
        return
    if not prompt.confirm("Cancel this payment?"):
        raise Declined("Not cancelled: you did not confirm; nothing was sent.")
