"""Compago Harmony payment intents: ``/api/payment-intent/{uuid}``; ``x-api-key``.

The GET answer is slim (``id``, ``status``, ``expired``, ``paymentSummary?``): it has
no amount, so cancelled amounts are counted as unknown.  A cancel answers ``{}``; the
adapter reads the intent again to show the after state.  Cancelable: ``PENDING`` and
not expired.  A 400 on cancel ("Cannot cancel payment intent") does not say why.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from paycancel_cli.errors import NotCancellable, PaycancelError, ProviderUnavailable
from paycancel_cli.models import Payment, PaymentStatus
from paycancel_cli.providers.accounts import AccountBase
from paycancel_cli.providers.base import (
    Adapter,
    Capability,
    ErrorAnswer,
    Malformed,
    describe_json,
    text_or_none,
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


class CompagoAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["compago"]
    api_key: SecretStr
    documented_prefixes: ClassVar[tuple[str, ...]] = ("/api",)

    live_url: ClassVar[str] = "https://api.harmony.compago.com"
    test_url: ClassVar[str | None] = "https://demo.api.harmony.compago.com"


class Compago(Adapter):
    key: ClassVar[str] = "compago"
    title: ClassVar[str] = "Compago"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CANCEL_FIRST})
    no_list_reason: ClassVar[str] = "Compago documents no list or search of payment intents"
    list_ids: ClassVar[str] = "payment intent UUIDs"
    id_pattern: ClassVar[re.Pattern[str]] = re.compile(UUID)
    id_shape: ClassVar[str] = "a UUID"
    path: ClassVar[str] = "/api/payment-intent/{id}"
    noun: ClassVar[str] = "payment intent"
    not_found_code_always: ClassVar[bool] = True
    probe_id: ClassVar[str] = "00000000-0000-4000-8000-00000000c4ec"
    describe = staticmethod(_describe)
    account_type: ClassVar[type[AccountBase]] = CompagoAccount
    auth: ClassVar[dict[str, str]] = {"x-api-key": "{api_key}"}
    account: CompagoAccount

    async def after_cancel(self, response: httpx.Response, payment_id: str) -> Payment:
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

    def refusal(
        self, response: httpx.Response, payment_id: str, error: ErrorAnswer, *, write: bool
    ) -> PaycancelError | None:
        if response.status_code == 400 and write:
            return NotCancellable(
                f"{self.title}: {error.message}", code="cannot_cancel", http_status=400
            )
        return None

    def read(self, body: dict[str, Any], asked: str | None) -> Payment:
        payment_id = want_same_id(body, "id", asked, fold_case=True)
        native = want_state(body, "status", _STATES)
        expired = body.get("expired", False)
        if not isinstance(expired, bool):
            raise Malformed(f"expired is {describe_json(expired)}, not a boolean")
        if native == "PENDING" and expired:
            return self.payment(
                payment_id, "PENDING (expired)", (PaymentStatus.EXPIRED, False, "expired")
            )
        return self.payment(payment_id, native, _STATES[native])
