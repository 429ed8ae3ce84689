"""Vipps MobilePay ePayment: ``/epayment/v1/payments/{reference}``.

Auth is an access token from ``POST /accesstoken/get`` (client id and secret and the
subscription key as headers), cached until shortly before it expires and fetched again
once on an unexpected 401: when several requests get a 401 for the same token at once,
one fetches the new token and the others use it.  Every call carries the
``Vipps-System-*`` headers and accepts both ``application/json`` and
``application/problem+json`` (the spec's media type for the cancel answer and errors);
every ePayment call the token, the subscription key and the merchant serial number;
cancels carry ``Idempotency-Key`` and no body (``cancelPayment`` has no requestBody).

Transient refusals are ``Busy``: 423 Locked is retried with the same key (the
knowledge base: "retry, using the Idempotency-Key header"); 6160 "order processing"
after a wait with a fresh key, because "a 4xx answer stays 4xx for that key".  Errors
from the API gateway (401, 403, 422, 429) come as ``{"statusCode", "message"}``
rather than problem JSON; their ``message`` is shown.

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
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import SecretStr, StringConstraints, field_validator

from paycancel_cli import __version__
from paycancel_cli.errors import AuthError, Busy, NotCancellable, PaycancelError, ProviderError
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers.accounts import AccountBase
from paycancel_cli.providers.base import (
    Adapter,
    Capability,
    ErrorAnswer,
    Malformed,
    describe_error,
    parse_json,
    raise_for_common,
    send,
    text_or_none,
    want_currency,
    want_minor,
    want_object,
    want_same_id,
    want_state,
)

_NOT_CANCELLABLE = {
    "6030": "cancel period expired",
    "6040": "captured: refund instead",
    "6050": "not reserved: nothing to cancel",
    "6060": "authorized: cancelTransactionOnly refuses to release it",
    "6190": "the payment cannot be cancelled in its state",
}
ORDER_PROCESSING = "6160"
PROCESSING_WAIT_S = 15.0
STATES = frozenset({"CREATED", "ABORTED", "EXPIRED", "AUTHORIZED", "TERMINATED"})
TOKEN_MARGIN_S = 60.0
SYSTEM_HEADERS = {
    "Vipps-System-Name": "paycancel",
    "Vipps-System-Version": __version__,
    "Vipps-System-Plugin-Name": "paycancel-cli",
    "Vipps-System-Plugin-Version": __version__,
    # The spec declares the cancel answer (AdjustResponse) and every error as
    # application/problem+json: a server that negotiates strictly answers 406 to a
    # request accepting application/json alone.
    "Accept": "application/json, application/problem+json",
}


def _describe(body: Any) -> tuple[str | None, str]:
    """Problem JSON (``detail``/``title``, ``extraDetails`` ErrorCode), the gateway's
    ``{"statusCode", "message"}``, or the token endpoint's ``error_description``."""
    if not isinstance(body, dict):
        return None, "no error details"
    code = None
    details = body.get("extraDetails")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("name") == "ErrorCode":
            code = text_or_none(detail.get("reason"))
    message = (
        text_or_none(body.get("detail"))
        or text_or_none(body.get("title"))
        or text_or_none(body.get("message"))
        or text_or_none(body.get("error_description"))
        or text_or_none(body.get("error"))
    )
    return code, message or "error"


class VippsAccount(AccountBase):
    secret_fields = ("client_secret", "subscription_key")
    provider: Literal["vipps"]
    client_id: Annotated[str, StringConstraints(min_length=1)]
    client_secret: SecretStr
    subscription_key: SecretStr
    merchant_serial_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,6}$")]
    documented_prefixes: ClassVar[tuple[str, ...]] = ("/epayment/v1", "/epayment")

    @field_validator("merchant_serial_number", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        # TOML readers write it as a number as often as a string; both mean the same.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    live_url: ClassVar[str] = "https://api.vipps.no"
    test_url: ClassVar[str | None] = "https://apitest.vipps.no"


class Vipps(Adapter):
    key: ClassVar[str] = "vipps"
    title: ClassVar[str] = "Vipps"
    # Not CANCEL_FIRST: whether a second cancel of a released payment is refused or a
    # 200 no-op is undocumented, so a 200 cannot tell cancelled from already cancelled.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IDEMPOTENCY_KEY, Capability.CANCEL_RETURNS_PAYMENT}
    )
    no_list_reason: ClassVar[str] = "Vipps ePayment has no list or search endpoint"
    list_ids: ClassVar[str] = "payment references"
    min_cancel_retry_s: ClassVar[float] = 12.0
    # The bundled ePayment spec (v1.4.1): reference ^[a-zA-Z0-9-]{8,50}$.
    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[a-zA-Z0-9-]{8,50}")
    id_shape: ClassVar[str] = "8 to 50 letters, digits and '-'"
    # ePayment's cancel takes no reason (it stays in the journal) and, by the spec, no
    # body: cancelPayment has no requestBody, so none is sent, nor a Content-Type.
    path: ClassVar[str] = "/epayment/v1/payments/{id}"
    not_found_codes: ClassVar[frozenset[str]] = frozenset({"5090"})
    describe = staticmethod(_describe)
    account_type: ClassVar[type[AccountBase]] = VippsAccount
    # No declared ``auth``: the access token's headers are per request (see ``_send``).
    account: VippsAccount

    def __init__(self, account: VippsAccount, client: httpx.AsyncClient) -> None:
        super().__init__(account, client)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.on_token: list[Any] = []  # callbacks told each new token, for redaction

    def cancel_request(self, reason: str, idempotency_key: str) -> dict[str, Any]:
        return {"headers": {"Idempotency-Key": idempotency_key}}

    def not_found_scope(self) -> str:
        return f" for MSN {self.account.merchant_serial_number}"

    @classmethod
    def probe_sent(cls) -> str:
        return "POST /accesstoken/get (a fresh access token)"

    async def probe(self) -> None:
        await self.verify_credentials()

    async def verify_credentials(self) -> None:
        """`config check`: fetch a fresh access token, which proves every credential."""
        await self._access_token(rejected=self._token or "")

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """With the cached access token, and once more with a new one on a 401."""
        extra = kwargs.pop("headers", None) or {}
        rejected: str | None = None
        for _ in range(2):
            token = await self._access_token(rejected=rejected)
            headers = {
                "Authorization": f"Bearer {token}",
                "Ocp-Apim-Subscription-Key": self.account.subscription_key.get_secret_value(),
                "Merchant-Serial-Number": self.account.merchant_serial_number,
                **SYSTEM_HEADERS,
                **extra,
            }
            response = await super()._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401 or rejected is not None:
                return response
            rejected = token
        return response

    async def _access_token(self, *, rejected: str | None = None) -> str:
        """The cached token; a new one when it expired or when ``rejected`` (a token the
        provider refused) is still the cached one, so concurrent 401s fetch once."""
        async with self._token_lock:
            stale = self._token is None or time.monotonic() >= self._token_expires
            if stale or (rejected is not None and rejected == (self._token or "")):
                self._token, lifetime = await self._fetch_token()
                self._token_expires = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_S)
                for callback in self.on_token:
                    callback(self._token)
            assert self._token is not None
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
                **SYSTEM_HEADERS,
            },
        )
        raise_for_common(
            response, provider=self.title, account=self.account.name, describe=_describe
        )
        if response.status_code != 200:
            _code, message = describe_error(response, _describe)
            raise AuthError(
                f"{self.title}: could not get an access token for account "
                f"{self.account.name!r} (HTTP {response.status_code}: {message}).",
                http_status=response.status_code,
            )
        body = parse_json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise ProviderError(
                f"{self.title}: the access token answer (HTTP 200) held no token for account "
                f"{self.account.name!r}.",
                code="bad_answer",
            )
        try:
            lifetime = float(str(body.get("expires_in", "0")))
        except ValueError:
            lifetime = 0.0
        if lifetime != lifetime or lifetime < 0:  # NaN or negative: do not cache it
            lifetime = 0.0
        return token.strip(), min(lifetime, 86400.0)

    def refusal(
        self, response: httpx.Response, payment_id: str, error: ErrorAnswer, *, write: bool
    ) -> PaycancelError | None:
        code, message = error.code, error.message
        if response.status_code == 423:
            return Busy(
                f"{self.title}: payment {payment_id} is locked by another operation "
                f"(HTTP 423: {message})",
                code="locked",
                http_status=423,
            )
        if code == ORDER_PROCESSING:
            return Busy(
                f"{self.title}: {message} (6160 order processing: the user is authorizing "
                "the payment)",
                code=code,
                http_status=response.status_code,
                retry_after=PROCESSING_WAIT_S,
                fresh_key=True,
            )
        if code in _NOT_CANCELLABLE:
            return NotCancellable(
                f"{self.title}: {message} ({_NOT_CANCELLABLE[code]})",
                code=code,
                http_status=response.status_code,
            )
        return None

    def read(self, data: dict[str, Any], asked: str | None) -> Payment:
        reference = want_same_id(data, "reference", asked)
        state = want_state(data, "state", STATES)
        amount = _money(data.get("amount"), "amount")
        agg = want_object(data.get("aggregate"), "aggregate")
        currency = amount.currency
        sums = {
            name: _money(agg.get(f"{name}Amount"), f"aggregate.{name}Amount", currency)
            for name in ("authorized", "captured", "cancelled", "refunded")
        }
        authorized, captured = sums["authorized"], sums["captured"]
        cancelled, refunded = sums["cancelled"], sums["refunded"]
        return self.payment(
            reference,
            state,
            _normalize(state, authorized, captured, cancelled, refunded),
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


def _money(data: Any, what: str, currency: str | None = None) -> Money:
    """An ``{currency, value}`` amount in minor units; aggregate amounts must be in the
    payment's currency (``currency``)."""
    amount = want_object(data, what)
    try:
        value = want_minor(amount, "value")
        code = want_currency(amount, "currency", currency or "NOK")
    except Malformed as exc:
        raise Malformed(f"{what}.{exc}") from None
    assert value is not None
    if currency is not None and code != currency:
        raise Malformed(f"{what} is in {code}, the payment in {currency}")
    return Money.from_minor(value, code)
