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
    Malformed,
    bad_answer,
    describe_error,
    describe_json,
    parse_json,
    raise_for_common,
    segment,
    send,
    text_or_none,
    unexpected,
    unusable_body,
    want_same_id,
    want_state,
)

_STATES: dict[str, tuple[PaymentStatus, bool, str | None]] = {
    "PENDING": (PaymentStatus.PENDING, True, None),
    "CONFIRMED": (PaymentStatus.SUCCEEDED, False, "confirmed (paid): refund instead"),
    "CANCELLED": (PaymentStatus.CANCELLED, False, "already cancelled"),
}
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def _describe(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)[:500]
        code = text_or_none(body.get("error"))
        return code, text_or_none(message) or code or "error"
    return None, "no error details"


class Compago(IdRules):
    key: ClassVar[str] = "compago"
    title: ClassVar[str] = "Compago"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CANCEL_FIRST})
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
        return self._payment(self._ok(response, payment_id), payment_id)

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
        if not 200 <= response.status_code < 300:
            self._ok(response, payment_id, write=True)
        # The documented answer is {}: whatever the body holds, the after state comes
        # from a read, so an unreadable or empty 2xx needs nothing more.
        try:
            return await self.get(payment_id)
        except PaycancelError as exc:
            # The cancel was accepted; only the read of the after state failed.  Say so as
            # an ambiguous failure: the engine reads the intent back before any re-send.
            raise ProviderUnavailable(
                f"{self.title}: cancel accepted but the intent could not be read back "
                f"({exc.message})",
                code="after_read_failed",
                accepted=True,
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
        if response.status_code < 300:
            if isinstance(body, dict):
                return body
            raise unusable_body(response, self.title, payment_id, write=write)
        code, message = describe_error(response, _describe)
        if response.status_code == 404:
            raise NotFound(
                f"{self.title}: payment intent {payment_id} not found ({message})",
                code="not_found",
                http_status=404,
            )
        if response.status_code == 400 and write:
            raise NotCancellable(f"{self.title}: {message}", code="cannot_cancel", http_status=400)
        raise unexpected(response, self.title, code, message)

    def _payment(self, data: dict[str, Any], asked: str) -> Payment:
        try:
            payment_id = want_same_id(data, "id", asked, fold_case=True)
            native = want_state(data, "status", _STATES)
            expired = data.get("expired", False)
            if not isinstance(expired, bool):
                raise Malformed(f"expired is {describe_json(expired)}, not a boolean")
        except Malformed as exc:
            raise bad_answer(self.title, asked, str(exc), write=False) from None
        if native == "PENDING" and expired:
            why: str | None = "expired"
            status, cancelable = PaymentStatus.EXPIRED, False
            native = "PENDING (expired)"
        else:
            status, cancelable, reason = _STATES[native]
            why = reason
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=payment_id,
            status=status,
            native_status=native,
            cancelable=cancelable,
            why_not=why,
        )
