"""The provider registry: provider key -> adapter class, imported only when used."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import httpx

    from paycancel_cli.config import Account
    from paycancel_cli.providers.base import Provider

ADAPTERS: dict[str, str] = {
    "flexportal": "paycancel_cli.providers.flexportal:FlexPortal",
    "hedgepayments": "paycancel_cli.providers.hedgepayments:HedgePayments",
    "flex": "paycancel_cli.providers.flex:Flex",
    "vipps": "paycancel_cli.providers.vipps:Vipps",
    "compago": "paycancel_cli.providers.compago:Compago",
}


def adapter_class(provider: str) -> type[Provider]:
    module, _, name = ADAPTERS[provider].partition(":")
    return cast("type[Provider]", getattr(importlib.import_module(module), name))


def make_provider(account: Account, client: httpx.AsyncClient) -> Provider:
    """The adapter for ``account``, talking through ``client``."""
    return adapter_class(account.provider)(account, client)  # type: ignore[call-arg]


def validate_id(provider: str, payment_id: str) -> None:
    """Check an id for ``provider`` without a client (raises ``InputError``)."""
    checker: Any = adapter_class(provider)
    checker.validate_id(payment_id)
