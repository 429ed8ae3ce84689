"""FlexPortal: ``/v1/payments``; Bearer key plus ``Tenant-ID``; amounts in decimal
major units; answers wrapped in ``{success, payment}``; errors ``{error: {code, message}}``.

Cancelable: ``pending`` and ``failed``.  A cancel needs a non-empty ``reason``.
``ALREADY_CANCELLED`` (for example after the platform voided a subscription's future
payments on an early return) is reported as already cancelled.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from paycancel_cli.config import FlexPortalAccount
from paycancel_cli.errors import NotCancellable, NotFound, ProviderError
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
    "failed": (PaymentStatus.FAILED, True, None),
    "processing": (PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
    "paid": (PaymentStatus.SUCCEEDED, False, "paid: refund instead"),
    "cancelled": (PaymentStatus.CANCELLED, False, "already cancelled"),
}
_NOT_CANCELLABLE = {"ALREADY_PAID", "ALREADY_CANCELLED", "PAYMENT_PROCESSING"}
PAGE_SIZE = 100


_describe = error_object


class FlexPortal(IdRules):
    key: ClassVar[str] = "flexportal"
    title: ClassVar[str] = "FlexPortal"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LIST_FOR_SUBSCRIPTION, Capability.CANCEL_RETURNS_PAYMENT}
    )
    min_cancel_retry_s: ClassVar[float] = 0.0

    def __init__(self, account: FlexPortalAccount, client: httpx.AsyncClient) -> None:
        self.account = account
        self.client = client
        self._headers = {
            "Authorization": f"Bearer {account.api_key.get_secret_value()}",
            "Tenant-ID": account.tenant_id,
        }

    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]{1,128}")
    id_shape: ClassVar[str] = "letters, digits, '_' and '-'"

    async def get(self, payment_id: str) -> Payment:
        self.validate_id(payment_id)
        response = await self._send("GET", f"/v1/payments/{segment(payment_id)}")
        return self._payment(self._ok(response, payment_id)["payment"])

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        # FlexPortal documents no idempotency header; a repeat answers ALREADY_CANCELLED.
        self.validate_id(payment_id)
        response = await self._send(
            "POST",
            f"/v1/payments/{segment(payment_id)}/cancel",
            json={"reason": reason},
            write=True,
        )
        return self._payment(self._ok(response, payment_id, write=True)["payment"])

    async def list_for_subscription(self, subscription_id: str) -> AsyncIterator[Payment]:
        """Open payments (pending, failed) of one subscription, page by page."""
        self.validate_id(subscription_id)
        for status in ("pending", "failed"):
            cursor: str | None = None
            while True:
                params = {"rentalId": subscription_id, "status": status, "limit": str(PAGE_SIZE)}
                if cursor:
                    params["startAfter"] = cursor
                response = await self._send("GET", "/v1/payments", params=params)
                body = self._ok(response, subscription_id)
                for item in body.get("payments") or []:
                    yield self._payment(item)
                cursor = body.get("nextCursor")
                if not body.get("hasMore") or not cursor:
                    break

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await send(
            self.client, method, path, provider=self.title, headers=self._headers, **kwargs
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
        if response.status_code < 300 and isinstance(body, dict):
            return body
        code, message = _describe(body)
        if response.status_code == 404 or code == "NOT_FOUND":
            raise NotFound(
                f"{self.title}: payment {payment_id} not found in tenant {self.account.tenant_id} "
                f"({message})",
                code=code or "NOT_FOUND",
                http_status=response.status_code,
            )
        if code in _NOT_CANCELLABLE:
            raise NotCancellable(
                f"{self.title}: {message}",
                code=code,
                http_status=response.status_code,
                already_cancelled=code == "ALREADY_CANCELLED",
            )
        if response.status_code < 300:
            raise unreadable(self.title, write=write)
        raise unexpected(response, self.title, code, message)

    def _payment(self, data: dict[str, Any]) -> Payment:
        native = str(data.get("status"))
        status, cancelable, why = _STATUS.get(
            native, (PaymentStatus.PROCESSING, False, f"unknown status {native!r}")
        )
        currency = str(data.get("currency") or "EUR")
        total = data.get("total", data.get("amount"))
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=str(data.get("paymentId")),
            status=status,
            native_status=native,
            cancelable=cancelable,
            why_not=why,
            amount=None if total is None else Money.from_major(_decimal(total), currency),
            subscription_id=data.get("rentalId"),
        )


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal | int | str):
        return Decimal(value)
    raise ProviderError(f"FlexPortal: amount {value!r} is not a decimal", code="bad_response")
