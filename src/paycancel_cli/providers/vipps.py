"""Vipps MobilePay ePayment: ``/epayment/v1/payments/{reference}``.

Auth is an access token from ``POST /accesstoken/get`` (client id and secret and the
subscription key as headers), cached until shortly before it expires and fetched again
once on an unexpected 401.  Every ePayment call carries the token, the subscription
key and the merchant serial number; cancels carry ``Idempotency-Key``.

Status comes from ``aggregate``, never from ``state`` alone: a cancelled AUTHORIZED
payment stays AUTHORIZED.  remaining = authorized - captured - cancelled; a cancel
releases all of it.  Errors are problem JSON; domain errors carry
``extraDetails: [{name: "ErrorCode", reason: "6040"}]``.  Vipps allows five
modifications a minute per reference, so cancel retries wait at least 12 s.
"""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from paycancel_cli.config import VippsAccount
from paycancel_cli.errors import AuthError, NotCancellable, NotFound, ProviderError
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers.base import (
    Capability,
    IdRules,
    parse_json,
    raise_for_common,
    segment,
    send,
    unexpected,
)

_NOT_CANCELLABLE = {
    "6030": "cancel period expired",
    "6040": "captured: refund instead",
    "6050": "not reserved: nothing to cancel",
    "6060": "authorized: cancelTransactionOnly refuses to release it",
    "6160": "order processing: the user is mid-authorization, try again later",
    "6190": "the payment cannot be cancelled in its state",
}
TOKEN_MARGIN_S = 60.0


def _describe(body: Any) -> tuple[str | None, str]:
    if not isinstance(body, dict):
        return None, "no error details"
    code = None
    for detail in body.get("extraDetails") or []:
        if isinstance(detail, dict) and detail.get("name") == "ErrorCode":
            code = str(detail.get("reason"))
    message = body.get("detail") or body.get("title") or body.get("error_description")
    return code, str(message or body.get("error") or "error")


class Vipps(IdRules):
    key: ClassVar[str] = "vipps"
    title: ClassVar[str] = "Vipps"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IDEMPOTENCY_KEY, Capability.CANCEL_RETURNS_PAYMENT}
    )
    no_list_reason: ClassVar[str] = "Vipps ePayment has no list or search endpoint"
    list_ids: ClassVar[str] = "payment references"
    min_cancel_retry_s: ClassVar[float] = 12.0

    def __init__(self, account: VippsAccount, client: httpx.AsyncClient) -> None:
        self.account = account
        self.client = client
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.on_token: list[Any] = []  # callbacks told each new token, for redaction

    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[a-zA-Z0-9-]{8,64}")
    id_shape: ClassVar[str] = "8 to 64 letters, digits and '-'"

    async def get(self, payment_id: str) -> Payment:
        self.validate_id(payment_id)
        response = await self._call("GET", f"/epayment/v1/payments/{segment(payment_id)}")
        return self._payment(self._ok(response, payment_id))

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        # ePayment's cancel takes no reason; it stays in the journal.
        self.validate_id(payment_id)
        response = await self._call(
            "POST",
            f"/epayment/v1/payments/{segment(payment_id)}/cancel",
            write=True,
            json={},
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._payment(self._ok(response, payment_id, write=True))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        write: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        for fresh in (False, True):
            token = await self._access_token(force=fresh)
            all_headers = {
                "Authorization": f"Bearer {token}",
                "Ocp-Apim-Subscription-Key": self.account.subscription_key.get_secret_value(),
                "Merchant-Serial-Number": self.account.merchant_serial_number,
                "Vipps-System-Name": "paycancel",
                **(headers or {}),
            }
            response = await send(
                self.client,
                method,
                path,
                provider=self.title,
                write=write,
                headers=all_headers,
                **kwargs,
            )
            if response.status_code != 401 or fresh:
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _access_token(self, *, force: bool) -> str:
        async with self._token_lock:
            if force or self._token is None or time.monotonic() >= self._token_expires:
                self._token, lifetime = await self._fetch_token()
                self._token_expires = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_S)
                for callback in self.on_token:
                    callback(self._token)
            return self._token

    async def _fetch_token(self) -> tuple[str, float]:
        response = await send(
            self.client,
            "POST",
            "/accesstoken/get",
            provider=self.title,
            headers={
                "client_id": self.account.client_id,
                "client_secret": self.account.client_secret.get_secret_value(),
                "Ocp-Apim-Subscription-Key": self.account.subscription_key.get_secret_value(),
                "Merchant-Serial-Number": self.account.merchant_serial_number,
            },
        )
        raise_for_common(
            response, provider=self.title, account=self.account.name, describe=_describe
        )
        body = parse_json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            _code, message = _describe(body)
            raise AuthError(
                f"{self.title}: could not get an access token for account "
                f"{self.account.name!r} (HTTP {response.status_code}: {message})."
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.title}: the access token answer had no token.")
        try:
            lifetime = float(str(body.get("expires_in", "0")))
        except ValueError:
            lifetime = 0.0
        return token, lifetime

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
        if response.status_code == 404 or code == "5090":
            raise NotFound(
                f"{self.title}: payment {payment_id} not found for MSN "
                f"{self.account.merchant_serial_number} ({message})",
                code=code or "not_found",
                http_status=response.status_code,
            )
        if code in _NOT_CANCELLABLE:
            raise NotCancellable(
                f"{self.title}: {message} ({_NOT_CANCELLABLE[code]})",
                code=code,
                http_status=response.status_code,
            )
        raise unexpected(response, self.title, code, message)

    def _payment(self, data: dict[str, Any]) -> Payment:
        state = str(data.get("state"))
        agg = data.get("aggregate") or {}
        amount = _money(data.get("amount"))
        currency = amount.currency if amount else "NOK"
        authorized = _money(agg.get("authorizedAmount")) or Money(Decimal(0), currency)
        captured = _money(agg.get("capturedAmount")) or Money(Decimal(0), currency)
        cancelled = _money(agg.get("cancelledAmount")) or Money(Decimal(0), currency)
        refunded = _money(agg.get("refundedAmount")) or Money(Decimal(0), currency)
        status, cancelable, why = _normalize(state, authorized, captured, cancelled, refunded)
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=str(data.get("reference")),
            status=status,
            native_status=state,
            cancelable=cancelable,
            why_not=why,
            amount=amount,
            authorized=authorized,
            captured=captured,
            cancelled=cancelled,
            refunded=refunded,
        )


def _normalize(
    state: str, authorized: Money, captured: Money, cancelled: Money, refunded: Money
) -> tuple[PaymentStatus, bool, str | None]:
    if state == "CREATED":
        return PaymentStatus.PENDING, True, None
    if state == "ABORTED":
        return PaymentStatus.CANCELLED, False, "aborted by the user"
    if state == "EXPIRED":
        return PaymentStatus.EXPIRED, False, "expired"
    if state == "TERMINATED":
        return PaymentStatus.CANCELLED, False, "already cancelled (terminated)"
    if state != "AUTHORIZED":
        return PaymentStatus.PROCESSING, False, f"unknown state {state!r}"
    remaining = authorized.value - captured.value - cancelled.value
    if remaining > 0:
        if captured.value > 0:
            return PaymentStatus.PARTIALLY_CAPTURED, True, None
        return PaymentStatus.AUTHORIZED, True, None
    if refunded.value > 0:
        return PaymentStatus.REFUNDED, False, "refunded"
    if captured.value > 0:
        if cancelled.value > 0:
            return (
                PaymentStatus.SUCCEEDED,
                False,
                "remainder already released; captured part stands",
            )
        return PaymentStatus.SUCCEEDED, False, "captured: refund instead"
    return PaymentStatus.CANCELLED, False, "already cancelled"


def _money(data: Any) -> Money | None:
    if not isinstance(data, dict) or "value" not in data:
        return None
    value = data["value"]
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if not isinstance(value, int):
        raise ProviderError(f"Vipps: amount {value!r} is not in minor units", code="bad_response")
    return Money.from_minor(value, str(data.get("currency") or "NOK"))
