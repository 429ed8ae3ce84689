"""Compago Harmony payment intents: ``/api/payment-intent/{uuid}``; ``x-api-key``.

The GET answer is slim (``id``, ``status``, ``expired``, ``paymentSummary?``): it has
no amount, so cancelled amounts are counted as unknown.  A cancel answers ``{}``; the
adapter reads the intent again to show the after state.  Cancelable: ``PENDING`` and
not expired.  A 400 on cancel ("Cannot cancel payment intent") does not say why.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx

from paycancel_cli.config import CompagoAccount
from paycancel_cli.errors import (
    NotCancellable,
    NotFound,
    PaycancelError,
    ProviderUnavailable,
)
from paycancel_cli.models import Payment, PaymentStatus
from paycancel_cli.providers.base import (
    Capability,
    IdRules,
    parse_json,
    raise_for_common,
    segment,
    send,
    unexpected,
    unreadable,
)

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def _describe(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        return body.get("error"), str(message or body.get("error") or "error")
    return None, "no error details"


class Compago(IdRules):
    key: ClassVar[str] = "compago"
    title: ClassVar[str] = "Compago"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    no_list_reason: ClassVar[str] = "Compago documents no list or search of payment intents"
    list_ids: ClassVar[str] = "payment intent UUIDs"
    min_cancel_retry_s: ClassVar[float] = 0.0

    def __init__(self, account: CompagoAccount, client: httpx.AsyncClient) -> None:
        self.account = account
        self.client = client
        self._headers = {"x-api-key": account.api_key.get_secret_value()}

    id_pattern: ClassVar[re.Pattern[str]] = re.compile(UUID)
    id_shape: ClassVar[str] = "a UUID"

    async def get(self, payment_id: str) -> Payment:
        self.validate_id(payment_id)
        response = await send(
            self.client,
            "GET",
            f"/api/payment-intent/{segment(payment_id)}",
            provider=self.title,
            headers=self._headers,
        )
        return self._payment(self._ok(response, payment_id))

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        self.validate_id(payment_id)
        response = await send(
            self.client,
            "POST",
            f"/api/payment-intent/{segment(payment_id)}/cancel",
            provider=self.title,
            write=True,
            headers=self._headers,
        )
        self._ok(response, payment_id, write=True)
        try:
            return await self.get(payment_id)
        except PaycancelError as exc:
            # The cancel was accepted; only the read of the after state failed.  Say so as
            # an ambiguous failure: the engine reads the intent back before any re-send.
            raise ProviderUnavailable(
                f"{self.title}: cancel accepted but the intent could not be read back "
                f"({exc.message})",
                code="after_read_failed",
                ambiguous=True,
            ) from None

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
                f"{self.title}: payment intent {payment_id} not found ({message})",
                code="not_found",
                http_status=404,
            )
        if response.status_code == 400 and write:
            raise NotCancellable(f"{self.title}: {message}", code="cannot_cancel", http_status=400)
        if response.status_code < 300:
            raise unreadable(self.title, write=write)
        raise unexpected(response, self.title, code, message)

    def _payment(self, data: dict[str, Any]) -> Payment:
        native = str(data.get("status"))
        expired = bool(data.get("expired"))
        if native == "PENDING" and expired:
            status, cancelable, why = PaymentStatus.EXPIRED, False, "expired"
            native = "PENDING (expired)"
        elif native == "PENDING":
            status, cancelable, why = PaymentStatus.PENDING, True, None
        elif native == "CONFIRMED":
            status, cancelable, why = (
                PaymentStatus.SUCCEEDED,
                False,
                "confirmed (paid): refund instead",
            )
        elif native == "CANCELLED":
            status, cancelable, why = PaymentStatus.CANCELLED, False, "already cancelled"
        else:
            status, cancelable, why = PaymentStatus.PROCESSING, False, f"unknown status {native!r}"
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=str(data.get("id")),
            status=status,
            native_status=native,
            cancelable=cancelable,
            why_not=why,
        )
