"""FlexPortal: ``/v1/payments``; Bearer key plus ``Tenant-ID``; amounts in decimal
major units; answers wrapped in ``{success, payment}``; errors ``{error: {code, message}}``.

Cancelable: ``pending`` and ``failed``.  A cancel needs a non-empty ``reason``.
``ALREADY_CANCELLED`` (for example after the platform voided a subscription's future
payments on an early return) is reported as already cancelled.

Which amount: the payment schema requires ``total`` (``subtotal`` plus tax, what the
payment collects; a cancel "removes it from collection") and makes ``amount`` optional.
So ``total`` is the amount shown, summed and guarded (``expected_amount``); where the
answer's ``amount`` differs (tax, fees; the docs' early-return example sums ``amount``)
it is shown beside it as ``amount_note``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import SecretStr, StringConstraints

from paycancel_cli.errors import InputError, NotCancellable, PaycancelError
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers.accounts import AccountBase
from paycancel_cli.providers.base import (
    Adapter,
    Capability,
    ErrorAnswer,
    Malformed,
    bad_answer,
    want_currency,
    want_major,
    want_object,
    want_same_id,
    want_state,
    want_str,
)

_STATUS = {
    "pending": (PaymentStatus.PENDING, True, None),
    "failed": (PaymentStatus.FAILED, True, None),
    "processing": (PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
    "paid": (PaymentStatus.SUCCEEDED, False, "paid: refund instead"),
    "cancelled": (PaymentStatus.CANCELLED, False, "already cancelled"),
}
# The cancel's refusals, each with the native status it names.
_NOT_CANCELLABLE = {
    "ALREADY_PAID": "paid",
    "ALREADY_CANCELLED": "cancelled",
    "PAYMENT_PROCESSING": "processing",
}
PAGE_SIZE = 100


class FlexPortalAccount(AccountBase):
    secret_fields = ("api_key",)
    hosts: ClassVar[dict[str, bool] | None] = {  # one live host per region
        "api-eu.flexportal.io": True,
        "api-us.flexportal.io": True,
        "api-qatar.flexportal.io": True,
        "api-test.flexportal.io": False,
    }
    provider: Literal["flexportal"]
    api_key: SecretStr
    tenant_id: Annotated[str, StringConstraints(min_length=1)]
    region: Literal["eu", "us", "qatar"]

    live_url: ClassVar[str] = "https://api-{region}.flexportal.io"
    test_url: ClassVar[str | None] = "https://api-test.flexportal.io"


class FlexPortal(Adapter):
    key: ClassVar[str] = "flexportal"
    title: ClassVar[str] = "FlexPortal"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.LIST_FOR_SUBSCRIPTION,
            Capability.CANCEL_RETURNS_PAYMENT,
            Capability.CANCEL_FIRST,
        }
    )
    id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]{1,128}")
    id_shape: ClassVar[str] = "letters, digits, '_' and '-'"
    # FlexPortal documents no idempotency header; a repeat answers ALREADY_CANCELLED.
    path: ClassVar[str] = "/v1/payments/{id}"
    not_found_codes: ClassVar[frozenset[str]] = frozenset({"NOT_FOUND"})
    not_found_code: ClassVar[str] = "NOT_FOUND"
    probe_id: ClassVar[str] = "paycancel-config-check"
    account_type: ClassVar[type[AccountBase]] = FlexPortalAccount
    auth: ClassVar[dict[str, str]] = {
        "Authorization": "Bearer {api_key}",
        "Tenant-ID": "{tenant_id}",
    }
    account: FlexPortalAccount

    def cancel_request(self, reason: str, idempotency_key: str) -> dict[str, Any]:
        return {"json": {"reason": reason}}

    def not_found_scope(self) -> str:
        return f" in tenant {self.account.tenant_id}"

    def refusal(
        self, response: httpx.Response, payment_id: str, error: ErrorAnswer, *, write: bool
    ) -> PaycancelError | None:
        if error.code not in _NOT_CANCELLABLE:
            return None
        return NotCancellable(
            f"{self.title}: {error.message}",
            code=error.code,
            http_status=response.status_code,
            already_cancelled=error.code == "ALREADY_CANCELLED",
            status=_STATUS[_NOT_CANCELLABLE[error.code]][0].value,
        )

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
                items = body.get("payments")
                if not isinstance(items, list):
                    raise bad_answer(
                        self.title,
                        f"list of {subscription_id}",
                        "payments is not a list",
                        write=False,
                    )
                for item in items:
                    payment = self.parse({"payment": item}, None)
                    if payment.subscription_id != subscription_id:
                        raise bad_answer(
                            self.title,
                            payment.payment_id,
                            f"listed for subscription {subscription_id} but belongs to "
                            f"{payment.subscription_id!r}",
                            write=False,
                        )
                    yield payment
                cursor = body.get("nextCursor")
                if body.get("hasMore") is not True or not isinstance(cursor, str) or not cursor:
                    break

    def read(self, body: dict[str, Any], asked: str | None) -> Payment:
        """The payment of a ``{success, payment}`` answer; ``asked`` is the id requested
        (``None`` for list items, whose ids are only checked for shape)."""
        data = want_object(body.get("payment"), "payment")
        payment_id = want_same_id(data, "paymentId", asked)
        if asked is None:
            try:
                self.validate_id(payment_id)
            except InputError as exc:
                raise Malformed(exc.message) from None
        native = want_state(data, "status", _STATUS)
        status, cancelable, why = _STATUS[native]
        currency = want_currency(data, "currency", "EUR")
        total = want_major(data, "total", optional=True)
        amount = want_major(data, "amount", optional=True)
        rental = want_str(data, "rentalId", optional=True)
        shown = total if total is not None else amount
        note = None
        if total is not None and amount is not None and amount != total:
            note = (
                f"amount field {Money.from_major(amount, currency)}; the total shown "
                "includes tax and fees"
            )
        return self.payment(
            payment_id,
            native,
            (status, cancelable, why),
            amount=None if shown is None else Money.from_major(shown, currency),
            subscription_id=rental,
            amount_note=note,
        )
