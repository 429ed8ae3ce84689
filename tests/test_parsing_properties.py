"""Every adapter's parsing is total: whatever JSON a provider answers (arbitrary values,
or a valid answer with one field replaced by anything), ``get`` and ``cancel`` end in a
``Payment`` for the id asked or a ``ProviderError``, never anything else."""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paycancel_cli.errors import ProviderError
from paycancel_cli.models import Money, Payment
from paycancel_cli.providers import make_provider
from paycancel_cli.sandbox.state import dumps

from .test_providers_unit import account

IDS = {
    "flexportal": "fpay_prop_1",
    "hedgepayments": "pay_prop1",
    "flex": "fpi_prop_1",
    "vipps": "prop-reference-1",
    "compago": "7d3f0b4e-0000-4000-8000-0000000000aa",
}
VALID: dict[str, Any] = {
    "flexportal": {
        "success": True,
        "payment": {
            "paymentId": IDS["flexportal"], "tenantId": "acme-eu", "customerId": "c",
            "subtotal": 10, "total": 12, "amount": 10, "currency": "EUR", "status": "pending",
            "rentalId": "rent_1",
        },
    },
    "hedgepayments": {
        "id": IDS["hedgepayments"], "object": "payment", "amount": 999, "currency": "USD",
        "status": "pending", "refunded_amount": 0,
    },
    "flex": {
        "payment_intent": {
            "payment_intent_id": IDS["flex"], "amount": 500, "amount_received": 0,
            "status": "requires_capture",
        }
    },
    "vipps": {
        "reference": IDS["vipps"], "state": "AUTHORIZED",
        "amount": {"currency": "NOK", "value": 1000},
        "aggregate": {
            "authorizedAmount": {"currency": "NOK", "value": 1000},
            "cancelledAmount": {"currency": "NOK", "value": 0},
            "capturedAmount": {"currency": "NOK", "value": 0},
            "refundedAmount": {"currency": "NOK", "value": 0},
        },
        "pspReference": "p",
    },
    "compago": {"id": IDS["compago"], "status": "PENDING", "expired": False},
}  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 400
    )
    | st.text(max_size=20)
    | st.sampled_from(["pending", "canceled", "CANCELLED", "AUTHORIZED", "abc", "", "42"])
    | st.sampled_from(list(IDS.values()))
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list) and value:
        out += paths(value[0], (*prefix, 0))
    return out


@st.composite
def mutated(draw: st.DrawFn, provider: str) -> Any:
    """A valid answer with one field replaced by (or removed for) an arbitrary value."""
    body = copy.deepcopy(VALID[provider])
    where = draw(st.sampled_from(paths(body)))
    parent = body
    for key in where[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[where[-1]] = draw(json_values)
    else:
        del parent[where[-1]]
    return body


def encode(value: Any) -> bytes:
    """Exact JSON text (decimals by their digits, never through float)."""
    return dumps(value)


def answer(provider: str, body: bytes, status: int) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return httpx.Response(200, json={"access_token": "tok-123", "expires_in": "3600"})
        return httpx.Response(status, content=body)

    return httpx.MockTransport(handler)


def outcome(provider: str, body: bytes, status: int, op: str) -> Payment | ProviderError:
    async def go() -> Payment | ProviderError:
        acc = account(provider)
        async with httpx.AsyncClient(
            base_url=acc.url, transport=answer(provider, body, status)
        ) as client:
            adapter = make_provider(acc, client)
            try:
                if op == "get":
                    return await adapter.get(IDS[provider])
                return await adapter.cancel(IDS[provider], reason="r", idempotency_key="k-1234")
            except ProviderError as exc:
                return exc

    return asyncio.run(go())


def check(provider: str, result: Payment | ProviderError) -> None:
    if isinstance(result, ProviderError):
        assert result.message
        return
    assert isinstance(result, Payment)
    if provider == "compago":
        assert result.payment_id.lower() == IDS[provider]
    else:
        assert result.payment_id == IDS[provider]
    for money in (result.amount, result.authorized, result.captured, result.cancelled):
        assert money is None or (isinstance(money, Money) and isinstance(money.value, Decimal))


STATUSES = st.sampled_from([200, 200, 200, 201, 400, 404, 409, 412, 422, 423, 500, 502])


@pytest.mark.parametrize("provider", sorted(IDS))
@pytest.mark.parametrize("op", ["get", "cancel"])
@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_json_answer_is_a_payment_or_a_provider_error(
    provider: str, op: str, data: st.DataObject
) -> None:
    value = data.draw(json_values | mutated(provider), label="body")
    status = data.draw(STATUSES, label="status")
    check(provider, outcome(provider, encode(value), status, op))


@pytest.mark.parametrize("provider", sorted(IDS))
@settings(max_examples=60)
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_answer_is_a_payment_or_a_provider_error(provider: str, raw: bytes) -> None:
    check(provider, outcome(provider, raw, 200, "get"))


LIST_PAGE = {
    "success": True,
    "payments": [VALID["flexportal"]["payment"]],
    "count": 1,
    "hasMore": False,
    "nextCursor": None,
}


@st.composite
def mutated_page(draw: st.DrawFn) -> Any:
    page = copy.deepcopy(LIST_PAGE)
    page["payments"][0]["rentalId"] = "rent_prop"
    where = draw(st.sampled_from(paths(page)))
    parent = page
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = draw(json_values)
    return page


@settings(max_examples=150)
@given(value=json_values | mutated_page())
def test_any_list_page_gives_payments_of_the_subscription_or_a_provider_error(value: Any) -> None:
    body = encode(value)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        # A page that keeps saying hasMore would list forever: the second page is empty.
        return httpx.Response(200, content=body if calls == 1 else b'{"payments": []}')

    async def go() -> list[Payment] | ProviderError:
        acc = account("flexportal")
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(base_url=acc.url, transport=transport) as client:
            adapter = make_provider(acc, client)
            try:
                return [p async for p in adapter.list_for_subscription("rent_prop")]
            except ProviderError as exc:
                return exc

    found = asyncio.run(go())
    if not isinstance(found, ProviderError):
        assert all(p.subscription_id == "rent_prop" for p in found)
