"""The planned payments: from a CSV's rows, or from subscriptions' list pages (each
page through the engine's retry policy), with the limits checked before any cancel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from paycancel_cli.csvinput import Validation
from paycancel_cli.engine import RetryPolicy, idempotency_key
from paycancel_cli.journal import PlanRow
from paycancel_cli.models import ErrorInfo, Payment
from paycancel_cli.refusals import Refused, Wrong
from paycancel_cli.runs.request import BulkUI

if TYPE_CHECKING:
    from paycancel_cli.csvinput import Reader
    from paycancel_cli.session import Session


def csv_plan_rows(run_id: str, reader: Reader) -> Iterator[PlanRow]:
    """Planned rows from the CSV in file order; invalid rows (``--skip-invalid``) are
    recorded as done with outcome ``invalid``."""
    from paycancel_cli.csvinput import Problem

    for row in reader.rows():
        if isinstance(row, Problem):
            yield PlanRow(
                account=row.account or "",
                provider="",
                payment_id=row.payment_id or f"(line {row.line})",
                reason="",
                key="",
                line=row.line,
                error=ErrorInfo("invalid", row.message),
            )
            continue
        assert row.payment_id is not None
        yield PlanRow(
            account=row.account,
            provider=row.provider,
            payment_id=row.payment_id,
            reason=row.reason,
            key=idempotency_key(run_id, row.account, row.payment_id),
            line=row.line,
            expected=row.expected,
        )


async def select_open_payments(
    session: Session,
    subscriptions: Iterable[tuple[str, str, str]],
    policy: RetryPolicy | None = None,
) -> tuple[list[tuple[str, str, Payment]], dict[tuple[str, str], int]]:
    """The open payments of (account, subscription id, reason) triples as (account,
    reason, payment), each payment once; and how many each subscription has, so that a
    subscription with none (a mistyped id) shows."""
    selected: list[tuple[str, str, Payment]] = []
    found: dict[tuple[str, str], int] = {}
    seen: set[tuple[str, str]] = set()
    for account, sub, reason in subscriptions:
        payments = await list_open_payments(session, account, sub, policy)
        found[(account, sub)] = len(payments)
        for payment in payments:
            if (account, payment.payment_id) not in seen:
                seen.add((account, payment.payment_id))
                selected.append((account, reason, payment))
    return selected, found


def subscription_counts(found: dict[tuple[str, str], int]) -> dict[str, int]:
    """``{subscription id: open payments}``; an id listed at two accounts is keyed
    ``account:id`` so neither count hides the other."""
    ids = Counter(sub for _, sub in found)
    return {
        (sub if ids[sub] == 1 else f"{account}:{sub}"): n for (account, sub), n in found.items()
    }


async def list_open_payments(
    session: Session, account: str, subscription_id: str, policy: RetryPolicy | None = None
) -> list[Payment]:
    """A subscription's open payments, all pages; a 429, 5xx, busy answer or network
    failure on any page retries the listing under the engine's retry policy (honouring
    Retry-After) rather than ending the command."""
    provider = session.provider(account)

    async def listing() -> list[Payment]:
        return [p async for p in provider.list_for_subscription(subscription_id)]

    return await (policy or RetryPolicy()).call(listing)


def subscription_plan_rows(
    run_id: str, selected: Iterable[tuple[str, str, Payment]]
) -> Iterator[PlanRow]:
    """Planned rows from list pages: (account, reason, payment); the page is the before."""
    for account, reason, payment in selected:
        yield PlanRow(
            account=account,
            provider=payment.provider,
            payment_id=payment.payment_id,
            reason=reason,
            key=idempotency_key(run_id, account, payment.payment_id),
            known=payment,
        )


def check_selected(
    selected: list[tuple[str, str, Payment]],
    found: dict[tuple[str, str], int],
    max_payments: int | None,
    ui: BulkUI,
) -> None:
    """After listing: a subscription with no open payments gets a warning (a mistyped
    id must not look like a clean night); more than ``max_payments`` is refused."""
    for (account_name, sub), count in found.items():
        if not count:
            ui.warn(
                f"subscription {sub} ({account_name}) has no open payments; check the id if "
                "you expected some."
            )
    check_max(len(selected), max_payments)


def max_unchecked(validation: Validation, max_payments: int | None) -> None:
    """Subscriptions' payments are known only from the provider's list, which
    ``--validate-only`` (no request at all) does not call: say so rather than pass."""
    if max_payments is None:
        return
    validation.max_payments_checked = False
    validation.notes.append(
        f"--max-payments {max_payments} is not checked: how many open payments the "
        "subscriptions have is known only from the provider's list, and --validate-only "
        "sends no request. A --dry-run lists them, applies the limit and cancels nothing."
    )


def check_max(selected: int, max_payments: int | None) -> None:
    if max_payments is not None and selected > max_payments:
        raise Refused(Wrong.OVER_MAX, selected=selected, max_payments=max_payments)
