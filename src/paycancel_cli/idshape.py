"""Which configured account a payment id belongs to, from its shape alone, so that
``status`` and ``cancel`` need no ``--account`` when only one account can hold it.

A shape is a provider's own id prefix or format: FlexPortal ``fpay_``, Flex ``fpi_``,
HedgePayments ``pay_``, Compago a UUID.  Vipps references are free text (8 to 50
letters, digits and ``-``), so a Vipps id is never inferred: it needs ``--account``.
An id that fits several configured accounts is refused with their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from paycancel_cli.errors import UsageError

SHAPES: dict[str, re.Pattern[str]] = {
    "flexportal": re.compile(r"fpay_\S+"),
    "flex": re.compile(r"fpi_\S+"),
    "hedgepayments": re.compile(r"pay_\S+"),
    "compago": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I),
}


def candidates(providers: Mapping[str, str], payment_id: str) -> list[str]:
    """The accounts (name -> provider) whose provider's id shape ``payment_id`` fits."""
    return sorted(
        name
        for name, provider in providers.items()
        if provider in SHAPES and SHAPES[provider].fullmatch(payment_id)
    )


def infer_account(providers: Mapping[str, str], payment_ids: Iterable[str]) -> str | None:
    """The one account every id fits; None when no shape tells (the caller asks for
    ``--account`` as before); refused when the ids fit several accounts."""
    found: set[str] = set()
    for pid in payment_ids:
        names = candidates(providers, pid)
        if not names:
            return None
        if len(names) > 1:
            raise UsageError(
                f"Payment id {pid!r} fits several accounts ({', '.join(names)}); choose one "
                "with --account. Nothing was sent."
            )
        found.update(names)
    if len(found) > 1:
        raise UsageError(
            f"These payment ids belong to different accounts ({', '.join(sorted(found))}); "
            "give one account's ids at a time, with --account. Nothing was sent."
        )
    return next(iter(found), None)
