"""Flex (HSA/FSA, Stripe-like): ``/v1/payment_intents``; Bearer ``fsk_test_``/``fsk_``
key; answers wrapped in ``{payment_intent}``; integer cents, USD (intents carry no
currency); errors ``{error: {type?, code, message}}``.

Cancelable (Stripe semantics, not stated by Flex): the ``requires_*`` states;
``processing``, ``succeeded`` and ``canceled`` are not.  Flex's list has no
subscription or status filter, so this adapter does not list.

A refused cancel comes as HTTP 400 in Flex's documented shape (``{"error": {"code":
"invalid_request", ...}}``) or Stripe's (``payment_intent_unexpected_state``), and
neither says the intent's state: any 400 on a cancel is a refusal that the engine
classifies by reading the intent once (already cancelled, not cancellable, or, when it
is still open, a failure).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from paycancel_cli.errors import NotCancellable, PaycancelError
from paycancel_cli.models import Payment, PaymentStatus
from paycancel_cli.providers.accounts import AccountBase, KeyRule
from paycancel_cli.providers.base import (
    Adapter,
    Capability,
    ErrorAnswer,
    minor_money,
    text_or_none,
    want_object,
    want_same_id,
    want_state,
)

CURRENCY = "USD"
_STATUS = {
    "requires_payment_method": (PaymentStatus.PENDING, True, None),
    "requires_confirmation": (PaymentStatus.PENDING, True, None),
    "requires_action": (PaymentStatus.PENDING, True, None),
    "requires_capture": (PaymentStatus.AUTHORIZED, True, None),
    "processing": (PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
    "succeeded": (PaymentStatus.SUCCEEDED, False, "succeeded: refund instead"),
    "canceled": (PaymentStatus.CANCELLED, False, "already cancelled"),
}


def _describe(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = text_or_none(err.get("code")) or text_or_none(err.get("type"))
        return code, text_or_none(err.get("message")) or code or "error"
    return None, "no error details"


class FlexAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["flex"]
    api_key: SecretStr

    api_key_rule: ClassVar[KeyRule | None] = KeyRule(
        ("fsk_",),
        "must be a Flex secret key starting fsk_test_ or fsk_",
        test="fsk_test_",
        live="fsk_ (not fsk_test_)",
    )
    live_url: ClassVar[str] = "https://api.withflex.com"
    # Flex's one host serves test and live keys alike: it decides nothing.
    hosts: ClassVar[dict[str, bool] | None] = {}


class Flex(Adapter):
    key: ClassVar[str] = "flex"
    title: ClassVar[str] = "Flex"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CANCEL_RETURNS_PAYMENT, Capability.CANCEL_FIRST}
    )
    no_list_reason: ClassVar[str] = (
        "Flex cannot list payments by subscription (its list has no such filter)"
    )
    list_ids: ClassVar[str] = "payment intent ids"
    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_]{1,255}")
    id_shape: ClassVar[str] = "letters, digits and '_', e.g. fpi_01HACM7FZ1084XB1GB6053VM0D"
    # Flex takes no body on a cancel and documents no idempotency header: the key stays
    # in the journal only, and the engine reads back before any re-send.
    path: ClassVar[str] = "/v1/payment_intents/{id}"
    noun: ClassVar[str] = "payment intent"
    not_found_codes: ClassVar[frozenset[str]] = frozenset({"resource_missing"})
    not_found_code: ClassVar[str] = "resource_missing"
    probe_id: ClassVar[str] = "fpi_paycancelconfigcheck"
    describe = staticmethod(_describe)
    account_type: ClassVar[type[AccountBase]] = FlexAccount
    auth: ClassVar[dict[str, str]] = {"Authorization": "Bearer {api_key}"}
    account: FlexAccount

    def refusal(
        self, response: httpx.Response, payment_id: str, error: ErrorAnswer, *, write: bool
    ) -> PaycancelError | None:
        if response.status_code == 400 and write:
            return NotCancellable(
                f"{self.title}: {error.message}",
                code=error.code or "invalid_request",
                http_status=400,
            )
        return None

    def read(self, body: dict[str, Any], asked: str | None) -> Payment:
        data = want_object(body.get("payment_intent"), "payment_intent")
        payment_id = want_same_id(data, "payment_intent_id", asked)
        native = want_state(data, "status", _STATUS)
        return self.payment(
            payment_id,
            native,
            _STATUS[native],
            amount=minor_money(data, "amount", CURRENCY),
            captured=minor_money(data, "amount_received", CURRENCY),
        )
