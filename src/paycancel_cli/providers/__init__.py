"""The provider registry: provider key -> adapter class, imported only when used.

A provider is its adapter module (the adapter and, beside it, its account class), its
simulator (``paycancel_cli.sandbox.<key>``) and one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import httpx

    from paycancel_cli.providers.accounts import AccountBase
    from paycancel_cli.providers.base import Adapter, Provider

ADAPTERS: dict[str, str] = {
    "flexportal": "paycancel_cli.providers.flexportal:FlexPortal",
    "hedgepayments": "paycancel_cli.providers.hedgepayments:HedgePayments",
    "flex": "paycancel_cli.providers.flex:Flex",
    "vipps": "paycancel_cli.providers.vipps:Vipps",
    "compago": "paycancel_cli.providers.compago:Compago",
}


def adapter_class(provider: str) -> type[Adapter]:
    module, _, name = ADAPTERS[provider].partition(":")
    return cast("type[Adapter]", getattr(importlib.import_module(module), name))


def account_type(provider: str) -> type[AccountBase]:
    """The account class of ``provider`` (its config fields), declared by its adapter."""
    return adapter_class(provider).account_type


def make_provider(account: AccountBase, client: httpx.AsyncClient) -> Provider:
    """The adapter for ``account``, talking through ``client``."""
    return adapter_class(account.provider)(account, client)


def validate_id(provider: str, payment_id: str) -> None:
    """Check an id for ``provider`` without a client (raises ``InputError``)."""
    adapter_class(provider).validate_id(payment_id)


def probes() -> dict[str, str]:
    """What `config check` sends to each provider, for the README and its help."""
    return {key: adapter_class(key).probe_sent() for key in ADAPTERS}
