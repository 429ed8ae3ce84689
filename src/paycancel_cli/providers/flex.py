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
from typing import Any, ClassVar

import httpx

from paycancel_cli.config import FlexAccount
from paycancel_cli.errors import NotCancellable, NotFound
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers.base import (
    Capability,
    IdRules,
    Malformed,
    bad_answer,
    describe_error,
    parse_json,
    raise_for_common,
    segment,
    send,
    text_or_none,
    unexpected,
    unusable_body,
    want_minor,
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


class Flex(IdRules):
    key: ClassVar[str] = "flex"
    title: ClassVar[str] = "Flex"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CANCEL_RETURNS_PAYMENT, Capability.CANCEL_FIRST}
    )
    no_list_reason: ClassVar[str] = (
        "Flex cannot list payments by subscription (its list has no such filter)"
    )
    list_ids: ClassVar[str] = "payment intent ids"
    min_cancel_retry_s: ClassVar[float] = 0.0

    def __init__(self, account: FlexAccount, client: httpx.AsyncClient) -> None:
        self.account = account
        self.client = client
        self._headers = {"Authorization": f"Bearer {account.api_key.get_secret_value()}"}

    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_]{1,255}")
    id_shape: ClassVar[str] = "letters, digits and '_', e.g. fpi_01HACM7FZ1084XB1GB6053VM0D"

    async def get(self, payment_id: str) -> Payment:
        self.validate_id(payment_id)
        response = await send(
            self.client,
            "GET",
            f"/v1/payment_intents/{segment(payment_id)}",
            provider=self.title,
            headers=self._headers,
        )
        return self._payment(self._ok(response, payment_id), payment_id)

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        # Flex takes no body and documents no idempotency header: the key stays in
        # the journal only, and the engine reads back before any re-send.
        self.validate_id(payment_id)
        response = await send(
            self.client,
            "POST",
            f"/v1/payment_intents/{segment(payment_id)}/cancel",
            provider=self.title,
            write=True,
            headers=self._headers,
        )
        return self._payment(self._ok(response, payment_id, write=True), payment_id, write=True)

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
        if response.status_code == 404 or code == "resource_missing":
            raise NotFound(
                f"{self.title}: payment intent {payment_id} not found ({message})",
                code=code or "resource_missing",
                http_status=response.status_code,
            )
        if response.status_code == 400 and write:
            raise NotCancellable(
                f"{self.title}: {message}",
                code=code or "invalid_request",
                http_status=400,
            )
        raise unexpected(response, self.title, code, message)

    def _payment(self, body: dict[str, Any], asked: str, *, write: bool = False) -> Payment:
        try:
            data = want_object(body.get("payment_intent"), "payment_intent")
            payment_id = want_same_id(data, "payment_intent_id", asked)
            native = want_state(data, "status", _STATUS)
            amount = want_minor(data, "amount", optional=True)
            received = want_minor(data, "amount_received", optional=True)
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
            amount=None if amount is None else Money.from_minor(amount, CURRENCY),
            captured=None if received is None else Money.from_minor(received, CURRENCY),
        )
