"""What a provider's document allows for an optional field must parse: an empty string
where the schema sets no ``minLength``, ``null`` where it is nullable, or no field at all.

One answer per adapter with every optional field the adapter reads at those edges (and
the ones it does not read, to show they are left alone); each must become a payment.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paycancel_cli.models import PaymentStatus

from .test_providers_unit import jresp, run

# FlexPortal's excerpt: every optional string is `type: string` with no minLength (a
# consolidated payment may carry no rental); the nullable dates are `[string, 'null']`.
FLEXPORTAL_EDGES: dict[str, Any] = {
    "paymentId": "p1", "tenantId": "acme-eu", "customerId": "c", "subtotal": 10,
    "total": 10, "currency": "EUR", "paymentType": "consolidated",
    "billingPeriod": "2025-01", "status": "pending", "idempotencyKey": "k",
    "dueDate": "2025-01-01", "createdAt": "", "updatedAt": "",
    "rentalId": "", "billingGroupId": "", "transactionId": "", "paymentReference": "",
    "markedBy": "", "notes": "", "providerResponse": {}, "lineItems": [],
    "paidAt": None, "lastCaptureAttempt": None, "nextRetryAt": None,
}  # fmt: skip


@pytest.mark.parametrize("op", ["get", "cancel"])
def test_flexportal_empty_optional_strings_parse(op: str) -> None:
    """rentalId "" was refused ("rentalId is the string '', not a string"): that payment
    could neither be read nor cancelled."""
    body = {"success": True, "message": "ok", "payment": FLEXPORTAL_EDGES}
    payment = run(
        "flexportal",
        lambda request: jresp(200, body),
        lambda p: p.get("p1") if op == "get" else p.cancel("p1", reason="r", idempotency_key="k"),
    )
    assert payment.payment_id == "p1" and payment.status is PaymentStatus.PENDING
    assert payment.subscription_id is None  # no rental: it belongs to no subscription


def test_flexportal_without_any_optional_field_parses() -> None:
    required = ("paymentId", "tenantId", "customerId", "subtotal", "total", "currency",
                "paymentType", "billingPeriod", "status", "idempotencyKey", "dueDate",
                "createdAt", "updatedAt")  # fmt: skip
    bare = {key: FLEXPORTAL_EDGES[key] for key in required}
    payment = run(
        "flexportal",
        lambda request: jresp(200, {"success": True, "payment": bare}),
        lambda p: p.get("p1"),
    )
    assert payment.amount is not None and payment.amount.value == 10


def test_flexportal_empty_rental_is_not_listed_as_the_subscriptions() -> None:
    """A list answer for rental X holding a payment of no rental is refused, as one of
    another rental is: it is not X's payment."""
    from paycancel_cli.errors import ProviderError

    page = {"success": True, "payments": [FLEXPORTAL_EDGES], "count": 1, "hasMore": False}

    async def listed(p: Any) -> list[Any]:
        return [payment async for payment in p.list_for_subscription("rent_1")]

    with pytest.raises(ProviderError, match="belongs to None"):
        run("flexportal", lambda request: jresp(200, page), listed)


# Vipps: metadata is nullable, redirectUrl, metadata and cardBin optional, profile {}.
VIPPS_EDGES: dict[str, Any] = {
    "reference": "ref-optional-1", "state": "AUTHORIZED", "pspReference": "",
    "amount": {"currency": "NOK", "value": 0},
    "aggregate": {
        name: {"currency": "NOK", "value": 0}
        for name in ("authorizedAmount", "cancelledAmount", "capturedAmount", "refundedAmount")
    },
    "paymentMethod": {"type": "CARD"}, "profile": {}, "metadata": None,
}  # fmt: skip


def _vipps(body: dict[str, Any]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"access_token": "tok", "expires_in": "3600"})
        return jresp(200, body)

    return run("vipps", handler, lambda p: p.get("ref-optional-1"))


def test_vipps_optional_and_nullable_fields_parse() -> None:
    payment = _vipps(VIPPS_EDGES)
    assert payment.status is PaymentStatus.CANCELLED  # nothing authorized, nothing left


def test_hedgepayments_optional_fields_absent_or_null_parse() -> None:
    body = {
        "id": "pay_opt1", "object": "payment", "amount": 999, "currency": "USD",
        "status": "pending", "customer_id": None, "description": None,
        "failure_code": None, "failure_message": None, "settled_at": None, "metadata": {},
    }  # fmt: skip
    payment = run("hedgepayments", lambda request: jresp(200, body), lambda p: p.get("pay_opt1"))
    assert payment.refunded is None and payment.amount is not None


def test_flex_optional_fields_absent_or_null_parse() -> None:
    body = {"payment_intent": {
        "payment_intent_id": "fpi_opt_1", "status": "requires_capture", "customer": None,
        "latest_charge": None, "invoice": None, "metadata": {}, "last_payment_error": None,
    }}  # fmt: skip
    payment = run("flex", lambda request: jresp(200, body), lambda p: p.get("fpi_opt_1"))
    assert payment.amount is None and payment.captured is None


def test_compago_slim_answer_without_optional_fields_parses() -> None:
    intent = "7d3f0b4e-0000-4000-8000-0000000000ab"
    payment = run(
        "compago",
        lambda request: jresp(200, {"id": intent, "status": "PENDING"}),
        lambda p: p.get(intent),
    )
    assert payment.status is PaymentStatus.PENDING and payment.cancelable
