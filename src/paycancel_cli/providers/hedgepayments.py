"""HedgePayments: ``/v1/payments``; Bearer ``sk_test_``/``sk_live_`` key; bare payment
objects; amounts in integer minor units; errors ``{error: {code, message, details?}}``.

Cancelable: ``pending`` and ``initiated``; every other state answers
``412 payment_not_cancelable``.  The list endpoint is undocumented, so this adapter does
not list.  ``Idempotency-Key`` is sent on cancel, as the provider's best practice asks.

A 409 to a cancel is a refusal that does not say why (``already_cancelled`` None): the
engine reads the payment once and classifies it.  Only the engine knows whether the key
was sent before: after an earlier send of ours that may have landed, a payment shown
cancelled is ours; on a first send it was cancelled by someone else (already cancelled);
still open, it failed.
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
    want_currency,
    want_same_id,
    want_state,
)

_STATUS = {
    "pending": (PaymentStatus.PENDING, True, None),
    "initiated": (PaymentStatus.PENDING, True, None),
    "processing": (PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
    "succeeded": (PaymentStatus.SUCCEEDED, False, "succeeded: refund instead"),
    "failed": (PaymentStatus.FAILED, False, "failed: nothing to cancel"),
    "canceled": (PaymentStatus.CANCELLED, False, "already cancelled"),
    "refunded": (PaymentStatus.REFUNDED, False, "refunded"),
    "partially_refunded": (PaymentStatus.REFUNDED, False, "partially refunded"),
}


class HedgePaymentsAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["hedgepayments"]
    api_key: SecretStr

    api_key_rule: ClassVar[KeyRule | None] = KeyRule(
        ("sk_test_", "sk_live_"),
        "must be a secret key starting sk_test_ or sk_live_ (not pk_)",
        test="sk_test_",
        live="sk_live_",
    )
    live_url: ClassVar[str] = "https://api.hedgepayments.com"
    test_url: ClassVar[str | None] = "https://api-sandbox.hedgepayments.com"


class HedgePayments(Adapter):
    key: ClassVar[str] = "hedgepayments"
    title: ClassVar[str] = "HedgePayments"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IDEMPOTENCY_KEY, Capability.CANCEL_RETURNS_PAYMENT, Capability.CANCEL_FIRST}
    )
    no_list_reason: ClassVar[str] = (
        "HedgePayments documents no way to list a subscription's payments"
    )
    list_ids: ClassVar[str] = "payment ids"
    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"pay_[A-Za-z0-9]{1,64}")
    id_shape: ClassVar[str] = "'pay_' followed by letters and digits, e.g. pay_abc123xyz"
    path: ClassVar[str] = "/v1/payments/{id}"
    probe_id: ClassVar[str] = "pay_paycancelconfigcheck"
    account_type: ClassVar[type[AccountBase]] = HedgePaymentsAccount
    auth: ClassVar[dict[str, str]] = {"Authorization": "Bearer {api_key}"}
    account: HedgePaymentsAccount

    def cancel_request(self, reason: str, idempotency_key: str) -> dict[str, Any]:
        return {"json": {"reason": reason}, "headers": {"Idempotency-Key": idempotency_key}}

    def refusal(
        self, response: httpx.Response, payment_id: str, error: ErrorAnswer, *, write: bool
    ) -> PaycancelError | None:
        if response.status_code == 409 and write:
            return NotCancellable(
                f"{self.title}: {error.message} (HTTP 409 to the cancel of payment {payment_id})",
                code=error.code or "conflict",
                http_status=409,
            )
        if response.status_code != 412:
            return None
        body = error.body
        err = body.get("error") if isinstance(body, dict) else None
        details = err.get("details") if isinstance(err, dict) else None
        current = details.get("current_status") if isinstance(details, dict) else None
        return NotCancellable(
            f"{self.title}: {error.message}",
            code=error.code or "payment_not_cancelable",
            http_status=412,
            already_cancelled=None if current is None else current == "canceled",
            status=_STATUS[current][0].value
            if isinstance(current, str) and current in _STATUS
            else None,
        )

    def read(self, data: dict[str, Any], asked: str | None) -> Payment:
        payment_id = want_same_id(data, "id", asked)
        native = want_state(data, "status", _STATUS)
        currency = want_currency(data, "currency", "USD")
        return self.payment(
            payment_id,
            native,
            _STATUS[native],
            amount=minor_money(data, "amount", currency),
            refunded=minor_money(data, "refunded_amount", currency),
        )
