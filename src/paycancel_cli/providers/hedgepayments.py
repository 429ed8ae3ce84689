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
from typing import Any, ClassVar

import httpx

from paycancel_cli.config import HedgePaymentsAccount
from paycancel_cli.errors import NotCancellable, NotFound
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers.base import (
    Capability,
    IdRules,
    Malformed,
    bad_answer,
    describe_error,
    error_object,
    parse_json,
    raise_for_common,
    segment,
    send,
    unexpected,
    unusable_body,
    want_currency,
    want_minor,
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


_describe = error_object


class HedgePayments(IdRules):
    key: ClassVar[str] = "hedgepayments"
    title: ClassVar[str] = "HedgePayments"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IDEMPOTENCY_KEY, Capability.CANCEL_RETURNS_PAYMENT, Capability.CANCEL_FIRST}
    )
    no_list_reason: ClassVar[str] = (
        "HedgePayments documents no way to list a subscription's payments"
    )
    list_ids: ClassVar[str] = "payment ids"
    min_cancel_retry_s: ClassVar[float] = 0.0

    def __init__(self, account: HedgePaymentsAccount, client: httpx.AsyncClient) -> None:
        self.account = account
        self.client = client
        self._headers = {"Authorization": f"Bearer {account.api_key.get_secret_value()}"}

    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"pay_[A-Za-z0-9]{1,64}")
    id_shape: ClassVar[str] = "'pay_' followed by letters and digits, e.g. pay_abc123xyz"

    async def get(self, payment_id: str) -> Payment:
        self.validate_id(payment_id)
        response = await send(
            self.client,
            "GET",
            f"/v1/payments/{segment(payment_id)}",
            provider=self.title,
            headers=self._headers,
        )
        return self._payment(self._ok(response, payment_id), payment_id)

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        self.validate_id(payment_id)
        response = await send(
            self.client,
            "POST",
            f"/v1/payments/{segment(payment_id)}/cancel",
            provider=self.title,
            write=True,
            json={"reason": reason},
            headers={**self._headers, "Idempotency-Key": idempotency_key},
        )
        if response.status_code == 409:
            raise self._conflict(response, payment_id)
        return self._payment(self._ok(response, payment_id, write=True), payment_id, write=True)

    def _conflict(self, response: httpx.Response, payment_id: str) -> NotCancellable:
        code, message = describe_error(response, _describe)
        return NotCancellable(
            f"{self.title}: {message} (HTTP 409 to the cancel of payment {payment_id})",
            code=code or "conflict",
            http_status=409,
        )

    def _ok(self, response: httpx.Response, payment_id: str, *, write: bool = False) -> Any:
        raise_for_common(
            response,
            provider=self.title,
            account=self.account.name,
            describe=_describe,
            write=write,
        )
        body = parse_json(response)
        if response.status_code < 300:
            if isinstance(body, dict):
                return body
            raise unusable_body(response, self.title, payment_id, write=write)
        code, message = describe_error(response, _describe)
        if response.status_code == 404:
            raise NotFound(
                f"{self.title}: payment {payment_id} not found ({message})",
                code=code or "not_found",
                http_status=404,
            )
        if response.status_code == 412:
            error = body.get("error") if isinstance(body, dict) else None
            details = error.get("details") if isinstance(error, dict) else None
            current = details.get("current_status") if isinstance(details, dict) else None
            raise NotCancellable(
                f"{self.title}: {message}",
                code=code or "payment_not_cancelable",
                http_status=412,
                already_cancelled=None if current is None else current == "canceled",
                status=_STATUS[current][0].value
                if isinstance(current, str) and current in _STATUS
                else None,
            )
        raise unexpected(response, self.title, code, message)

    def _payment(self, data: dict[str, Any], asked: str, *, write: bool = False) -> Payment:
        try:
            payment_id = want_same_id(data, "id", asked)
            native = want_state(data, "status", _STATUS)
            currency = want_currency(data, "currency", "USD")
            amount = want_minor(data, "amount", optional=True)
            refunded = want_minor(data, "refunded_amount", optional=True)
        except Malformed as exc:
            raise bad_answer(self.title, asked, str(exc), write=write) from None
        status, cancelable, why = _STATUS[native]
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=payment_id,
            status=status,
            native_status=native,
            cancelable=cancelable,
            why_not=why,
            amount=None if amount is None else Money.from_minor(amount, currency),
            refunded=None if refunded is None else Money.from_minor(refunded, currency),
        )
