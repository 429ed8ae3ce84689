"""Adapters against httpx.MockTransport: exact requests out, exact mapping in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from paycancel_cli.config import Account
from paycancel_cli.errors import (
    AuthError,
    InputError,
    NotCancellable,
    NotFound,
    ProviderUnavailable,
    RateLimited,
)
from paycancel_cli.models import Money, PaymentStatus
from paycancel_cli.providers import account_type, make_provider
from paycancel_cli.providers.base import Provider

ACCOUNTS: dict[str, dict[str, Any]] = {
    "flexportal": {"api_key": "fpk_unit", "tenant_id": "acme-eu", "region": "eu"},
    "hedgepayments": {"api_key": "sk_test_unit"},
    "flex": {"api_key": "fsk_test_unit"},
    "vipps": {
        "client_id": "cid",
        "client_secret": "csecret-123",
        "subscription_key": "subkey-123",
        "merchant_serial_number": "123456",
        "environment": "test",
    },
    "compago": {"api_key": "cpk_unit", "environment": "demo"},
}


def account(provider: str) -> Account:
    fields = {
        "name": provider,
        "provider": provider,
        "base_url": "https://unit.test/prefix",
        **ACCOUNTS[provider],
    }
    return account_type(provider).model_validate(fields)  # type: ignore[return-value]


Handler = Callable[[httpx.Request], httpx.Response]


def run(provider: str, handler: Handler, call: Callable[[Provider], Any]) -> Any:
    async def go() -> Any:
        acc = account(provider)
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            return await call(make_provider(acc, client))

    return asyncio.run(go())


def jresp(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


# FlexPortal

FP_PAYMENT = {
    "paymentId": "p1",
    "tenantId": "acme-eu",
    "customerId": "c",
    "subtotal": 200,
    "total": 258.10,
    "currency": "EUR",
    "status": "pending",
    "rentalId": "rent_1",
}


def test_flexportal_get_sends_bearer_and_tenant_and_parses_decimal() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            content=b'{"success": true, "payment": {"paymentId": "p1",'
            b' "total": 258.10, "currency": "EUR", "status": "failed"}}',
        )

    payment = run("flexportal", handler, lambda p: p.get("p1"))
    assert seen[0].url.raw_path == b"/prefix/v1/payments/p1"
    assert seen[0].headers["authorization"] == "Bearer fpk_unit"
    assert seen[0].headers["tenant-id"] == "acme-eu"
    assert payment.amount == Money(Decimal("258.10"), "EUR")
    assert payment.status is PaymentStatus.FAILED and payment.cancelable


def test_flexportal_cancel_sends_reason_and_reads_payment_from_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.raw_path == b"/prefix/v1/payments/p1/cancel"
        assert json.loads(request.content) == {"reason": "early return"}
        return jresp(
            200,
            {"success": True, "message": "ok", "payment": {**FP_PAYMENT, "status": "cancelled"}},
        )

    after = run(
        "flexportal", handler, lambda p: p.cancel("p1", reason="early return", idempotency_key="k")
    )
    assert after.status is PaymentStatus.CANCELLED and not after.cancelable


@pytest.mark.parametrize(
    ("code", "already"),
    [("ALREADY_PAID", False), ("ALREADY_CANCELLED", True), ("PAYMENT_PROCESSING", False)],
)
def test_flexportal_400_codes_are_not_cancellable(code: str, already: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return jresp(400, {"error": {"code": code, "message": "payment not cancellable"}})

    with pytest.raises(NotCancellable) as info:
        run("flexportal", handler, lambda p: p.cancel("p1", reason="r", idempotency_key="k"))
    assert info.value.code == code and info.value.already_cancelled is already


def test_flexportal_404_and_401() -> None:
    with pytest.raises(NotFound):
        run(
            "flexportal",
            lambda r: jresp(404, {"error": {"code": "NOT_FOUND", "message": "no"}}),
            lambda p: p.get("p1"),
        )
    with pytest.raises(AuthError) as info:
        run(
            "flexportal",
            lambda r: jresp(401, {"error": {"code": "UNAUTHORIZED", "message": "bad"}}),
            lambda p: p.get("p1"),
        )
    assert "fpk_unit" not in info.value.message


def test_flexportal_lists_open_payments_with_cursor() -> None:
    calls: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        calls.append(params)
        if params["status"] == "pending" and "startAfter" not in params:
            return jresp(
                200,
                {
                    "success": True,
                    "payments": [FP_PAYMENT],
                    "count": 1,
                    "hasMore": True,
                    "nextCursor": "p1",
                },
            )
        if params["status"] == "pending":
            return jresp(
                200,
                {
                    "success": True,
                    "payments": [{**FP_PAYMENT, "paymentId": "p2"}],
                    "count": 1,
                    "hasMore": False,
                    "nextCursor": None,
                },
            )
        return jresp(
            200, {"success": True, "payments": [], "count": 0, "hasMore": False, "nextCursor": None}
        )

    async def collect(p: Provider) -> list[str]:
        return [x.payment_id async for x in p.list_for_subscription("rent_1")]

    assert run("flexportal", handler, collect) == ["p1", "p2"]
    assert calls[0] == {"rentalId": "rent_1", "status": "pending", "limit": "100"}
    assert calls[1]["startAfter"] == "p1"
    assert calls[2]["status"] == "failed"


def test_rate_limit_reads_retry_after() -> None:
    with pytest.raises(RateLimited) as info:
        run(
            "flexportal",
            lambda r: jresp(
                429, {"error": {"code": "RATE_LIMITED", "message": "slow"}}, **{"Retry-After": "7"}
            ),
            lambda p: p.get("p1"),
        )
    assert info.value.retry_after == 7.0


# HedgePayments


def test_hedge_minor_units_and_412() -> None:
    def get(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer sk_test_unit"
        return jresp(
            200,
            {
                "id": "pay_abc",
                "object": "payment",
                "amount": 9999,
                "currency": "USD",
                "status": "initiated",
                "refunded_amount": 0,
            },
        )

    payment = run("hedgepayments", get, lambda p: p.get("pay_abc"))
    assert payment.amount == Money(Decimal("99.99"), "USD")
    assert payment.status is PaymentStatus.PENDING and payment.cancelable

    def cancel(request: httpx.Request) -> httpx.Response:
        assert request.headers["idempotency-key"] == "pc-key"
        return jresp(
            412,
            {
                "error": {
                    "code": "payment_not_cancelable",
                    "message": "no",
                    "details": {
                        "payment_id": "pay_abc",
                        "current_status": "canceled",
                        "cancelable_statuses": ["pending", "initiated"],
                    },
                }
            },
        )

    with pytest.raises(NotCancellable) as info:
        run(
            "hedgepayments",
            cancel,
            lambda p: p.cancel("pay_abc", reason="r", idempotency_key="pc-key"),
        )
    assert info.value.already_cancelled and info.value.http_status == 412


def test_hedge_rate_limit_reset_header() -> None:
    import time

    reset = str(int(time.time()) + 30)
    with pytest.raises(RateLimited) as info:
        run(
            "hedgepayments",
            lambda r: jresp(
                429,
                {"error": {"code": "rate_limit_exceeded", "message": "x"}},
                **{"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"},
            ),
            lambda p: p.get("pay_abc"),
        )
    assert info.value.retry_after is not None and 25 <= info.value.retry_after <= 31


# Flex


def test_flex_envelope_and_stripe_error() -> None:
    def get(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path == b"/prefix/v1/payment_intents/fpi_1"
        return jresp(
            200,
            {
                "payment_intent": {
                    "payment_intent_id": "fpi_1",
                    "amount": 4999,
                    "amount_received": 0,
                    "status": "requires_capture",
                }
            },
        )

    payment = run("flex", get, lambda p: p.get("fpi_1"))
    assert payment.status is PaymentStatus.AUTHORIZED and payment.amount == Money(
        Decimal("49.99"), "USD"
    )

    def cancel(request: httpx.Request) -> httpx.Response:
        return jresp(
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": "status of succeeded",
                }
            },
        )

    with pytest.raises(NotCancellable):
        run("flex", cancel, lambda p: p.cancel("fpi_1", reason="r", idempotency_key="k"))


# Vipps


def vipps_payment(
    state: str = "AUTHORIZED", auth: int = 1000, cap: int = 0, canc: int = 0, ref: int = 0
) -> dict[str, Any]:
    def amt(v: int) -> dict[str, Any]:
        return {"currency": "NOK", "value": v}

    return {
        "reference": "ref-00000001",
        "state": state,
        "amount": amt(1000),
        "aggregate": {
            "authorizedAmount": amt(auth),
            "capturedAmount": amt(cap),
            "cancelledAmount": amt(canc),
            "refundedAmount": amt(ref),
        },
        "pspReference": "psp",
        "paymentMethod": {"type": "WALLET"},
        "profile": {},
    }


@pytest.mark.parametrize("expires_in", ["3599", 3599])
def test_vipps_token_is_fetched_once_and_sent(expires_in: Any) -> None:
    tokens = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal tokens
        if request.url.path.endswith("/accesstoken/get"):
            tokens += 1
            assert request.headers["client_id"] == "cid"
            assert request.headers["client_secret"] == "csecret-123"
            assert request.headers["ocp-apim-subscription-key"] == "subkey-123"
            return jresp(
                200, {"token_type": "Bearer", "expires_in": expires_in, "access_token": "tok-1"}
            )
        assert request.headers["authorization"] == "Bearer tok-1"
        assert request.headers["ocp-apim-subscription-key"] == "subkey-123"
        assert request.headers["merchant-serial-number"] == "123456"
        return jresp(200, vipps_payment())

    async def twice(p: Provider) -> None:
        await p.get("ref-00000001")
        await p.get("ref-00000001")

    run("vipps", handler, twice)
    assert tokens == 1


def test_vipps_refreshes_token_once_on_401() -> None:
    tokens = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal tokens
        if request.url.path.endswith("/accesstoken/get"):
            tokens += 1
            return jresp(200, {"expires_in": "3599", "access_token": f"tok-{tokens}"})
        if request.headers["authorization"] == "Bearer tok-1":
            return jresp(401, {"title": "Unauthorized", "status": 401})
        return jresp(200, vipps_payment())

    run("vipps", handler, lambda p: p.get("ref-00000001"))
    assert tokens == 2

    def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"expires_in": "3599", "access_token": "t"})
        return jresp(401, {"title": "Unauthorized", "status": 401})

    with pytest.raises(AuthError):
        run("vipps", always_401, lambda p: p.get("ref-00000001"))


@pytest.mark.parametrize(
    ("agg", "status", "cancelable"),
    [
        ({"state": "CREATED", "auth": 0}, PaymentStatus.PENDING, True),
        ({}, PaymentStatus.AUTHORIZED, True),
        ({"cap": 250}, PaymentStatus.PARTIALLY_CAPTURED, True),
        ({"cap": 250, "canc": 750}, PaymentStatus.SUCCEEDED, False),
        ({"cap": 1000}, PaymentStatus.SUCCEEDED, False),
        ({"canc": 1000}, PaymentStatus.CANCELLED, False),
        ({"cap": 1000, "ref": 1000}, PaymentStatus.REFUNDED, False),
        ({"state": "ABORTED", "auth": 0}, PaymentStatus.CANCELLED, False),
        ({"state": "EXPIRED", "auth": 0}, PaymentStatus.EXPIRED, False),
        ({"state": "TERMINATED", "auth": 0, "canc": 1000}, PaymentStatus.CANCELLED, False),
    ],
)
def test_vipps_status_comes_from_aggregate(
    agg: dict[str, Any], status: PaymentStatus, cancelable: bool
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"expires_in": "3599", "access_token": "t"})
        return jresp(200, vipps_payment(**agg))

    payment = run("vipps", handler, lambda p: p.get("ref-00000001"))
    assert (payment.status, payment.cancelable) == (status, cancelable)


def test_vipps_cancel_sends_idempotency_key_and_maps_problem_codes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"expires_in": 3599, "access_token": "t"})
        assert request.headers["idempotency-key"] == "pc-abc"
        return httpx.Response(
            400,
            content=json.dumps(
                {
                    "type": "x",
                    "title": "Cannot cancel a captured payment",
                    "status": 400,
                    "traceId": "t",
                    "extraDetails": [{"name": "ErrorCode", "reason": "6040"}],
                }
            ).encode(),
            headers={"Content-Type": "application/problem+json"},
        )

    with pytest.raises(NotCancellable) as info:
        run(
            "vipps",
            handler,
            lambda p: p.cancel("ref-00000001", reason="r", idempotency_key="pc-abc"),
        )
    assert info.value.code == "6040"


def test_vipps_not_found_code_5090() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"expires_in": "3599", "access_token": "t"})
        return jresp(
            404,
            {
                "title": "Not found",
                "status": 404,
                "extraDetails": [{"name": "ErrorCode", "reason": "5090"}],
            },
        )

    with pytest.raises(NotFound):
        run("vipps", handler, lambda p: p.get("ref-00000001"))


# Compago


def test_compago_cancel_answers_empty_then_reads_again() -> None:
    uuid = "7d3f0b4e-0000-4000-8000-000000000001"
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        assert request.headers["x-api-key"] == "cpk_unit"
        if request.method == "POST":
            return jresp(200, {})
        return jresp(200, {"id": uuid, "status": "CANCELLED", "expired": False})

    after = run("compago", handler, lambda p: p.cancel(uuid, reason="r", idempotency_key="k"))
    assert after.status is PaymentStatus.CANCELLED and after.amount is None
    assert seen == [
        f"POST /prefix/api/payment-intent/{uuid}/cancel",
        f"GET /prefix/api/payment-intent/{uuid}",
    ]


def test_compago_400_and_404() -> None:
    uuid = "7d3f0b4e-0000-4000-8000-000000000001"
    with pytest.raises(NotCancellable):
        run(
            "compago",
            lambda r: jresp(
                400,
                {
                    "statusCode": 400,
                    "message": "Cannot cancel payment intent",
                    "error": "Bad Request",
                },
            ),
            lambda p: p.cancel(uuid, reason="r", idempotency_key="k"),
        )
    with pytest.raises(NotFound):
        run(
            "compago",
            lambda r: jresp(404, {"statusCode": 404, "message": "nope"}),
            lambda p: p.get(uuid),
        )


# Shared behaviour


@pytest.mark.parametrize("provider", list(ACCOUNTS))
@pytest.mark.parametrize(
    "bad", ["abc/../refunds", "x?y=1", "a#b", "a%2Fb", "a b", "a\tb", "a\x00b", "..", "", "ab\ncd"]
)
def test_unsafe_ids_are_refused_before_any_request(provider: str, bad: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    with pytest.raises(InputError):
        run(provider, handler, lambda p: p.get(bad))


@pytest.mark.parametrize("provider", list(ACCOUNTS))
def test_5xx_on_cancel_is_ambiguous_and_retryable(provider: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"expires_in": "3599", "access_token": "t"})
        return jresp(502, {"error": {"code": "upstream", "message": "down"}})

    ids = {
        "flexportal": "p1",
        "hedgepayments": "pay_abc",
        "flex": "fpi_1",
        "vipps": "ref-00000001",
        "compago": "7d3f0b4e-0000-4000-8000-000000000001",
    }
    with pytest.raises(ProviderUnavailable) as info:
        run(provider, handler, lambda p: p.cancel(ids[provider], reason="r", idempotency_key="k"))
    assert info.value.ambiguous and info.value.retryable


def test_dropped_connection_on_write_is_ambiguous() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(ProviderUnavailable) as info:
        run(
            "hedgepayments", handler, lambda p: p.cancel("pay_abc", reason="r", idempotency_key="k")
        )
    assert info.value.ambiguous
    with pytest.raises(ProviderUnavailable) as info2:
        run(
            "hedgepayments",
            lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")),
            lambda p: p.cancel("pay_abc", reason="r", idempotency_key="k"),
        )
    assert not info2.value.ambiguous


@pytest.mark.parametrize("provider", ["hedgepayments", "flex", "vipps", "compago"])
def test_providers_without_a_list_api_say_so(provider: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    async def collect(p: Provider) -> list[Any]:
        return [x async for x in p.list_for_subscription("sub_1")]

    with pytest.raises(InputError, match=r"give a CSV of .* instead"):
        run(provider, handler, collect)
