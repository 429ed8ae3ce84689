"""HedgePayments: ``/v1/payments``; Bearer ``sk_test_``/``sk_live_`` key; bare payment
objects; amounts in integer minor units; errors ``{error: {code, message, details?}}``.

Cancelable: ``pending`` and ``initiated``; every other state answers
``412 payment_not_cancelable``.  The list endpoint is undocumented, so this adapter does
not list.  ``Idempotency-Key`` is sent on cancel, as the provider's best practice asks.
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
    error_object,
    parse_json,
    raise_for_common,
    segment,
    send,
    unexpected,
    unreadable,
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
        {Capability.IDEMPOTENCY_KEY, Capability.CANCEL_RETURNS_PAYMENT}
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
        return self._payment(self._ok(response, payment_id))

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
        return self._payment(self._ok(response, payment_id, write=True))

    def _ok(self, response: httpx.Response, payment_id: str, *, write: bool = False) -> Any:
        raise_for_common(
            response,
            provider=self.title,
            account=self.account.name,
            describe=_describe,
            write=write,
        )
        body = parse_json(response)
        if response.status_code < 300 and isinstance(body, dict):
            return body
        code, message = _describe(body)
        if response.status_code == 404:
            raise NotFound(
                f"{self.title}: payment {payment_id} not found ({message})",
                code=code or "not_found",
                http_status=404,
            )
        if response.status_code == 412:
            details = body.get("error", {}).get("details") if isinstance(body, dict) else None
            current = details.get("current_status") if isinstance(details, dict) else None
            raise NotCancellable(
                f"{self.title}: {message}",
                code=code or "payment_not_cancelable",
                http_status=412,
                already_cancelled=current == "canceled",
            )
        if response.status_code < 300:
            raise unreadable(self.title, write=write)
        raise unexpected(response, self.title, code, message)

    def _payment(self, data: dict[str, Any]) -> Payment:
        native = str(data.get("status"))
        status, cancelable, why = _STATUS.get(
            native, (PaymentStatus.PROCESSING, False, f"unknown status {native!r}")
        )
        currency = str(data.get("currency") or "USD")
        amount, refunded = data.get("amount"), data.get("refunded_amount")
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=str(data.get("id")),
            status=status,
            native_status=native,
            cancelable=cancelable,
            why_not=why,
            amount=None if amount is None else Money.from_minor(amount, currency),
            refunded=None if refunded is None else Money.from_minor(refunded, currency),
        )
