"""What each adapter makes of a provider's answer: the payment it describes, field by
field, or the error it is, with the code, the HTTP status and the words an operator
reads.  Only through an adapter's public ``get`` and ``cancel`` (``httpx.MockTransport``
answers; what goes on the wire is the contract suite's business), so these hold however
the adapters share their code.

Written against the survivors of ``bench/mutate.py --module adapters``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from paycancel_cli.errors import (
    AuthError,
    Busy,
    InputError,
    NotCancellable,
    PaycancelError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from paycancel_cli.httpclient import BodyTooLarge
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers import make_provider

from .test_providers_unit import account, jresp, run

IDS = {
    "flexportal": "p1",
    "hedgepayments": "pay_abc",
    "flex": "fpi_1",
    "vipps": "ref-00000001",
    "compago": "00000000-0000-4000-8000-0000000000c1",
}
TOKEN = jresp(200, {"access_token": "tok", "expires_in": "3599"})

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def ask(provider: str, answer: Answer, op: str = "get") -> tuple[Any, list[httpx.Request]]:
    """The adapter's ``get`` (or ``cancel``) of the provider's usual id, given this
    answer: the payment, or the error raised; and the requests sent (token requests
    left out)."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return TOKEN
        sent.append(request)
        return answer(request) if callable(answer) else answer

    pid = IDS[provider]
    try:
        if op == "get":
            return run(provider, handler, lambda p: p.get(pid)), sent
        return run(
            provider, handler, lambda p: p.cancel(pid, reason="dup", idempotency_key="k-1")
        ), sent
    except PaycancelError as exc:
        return exc, sent


def error(provider: str, answer: Answer, op: str = "get") -> PaycancelError:
    got, _ = ask(provider, answer, op)
    assert isinstance(got, PaycancelError), got
    return got


def said(exc: PaycancelError) -> tuple[str, str, str | None, int | None]:
    """An error as an operator meets it: its kind, its words, its code and status."""
    assert isinstance(exc, ProviderError | AuthError), exc
    return type(exc).__name__, exc.message, getattr(exc, "code", None), exc.http_status


def payment(provider: str, **fields: Any) -> Payment:
    return Payment(account=provider, provider=provider, payment_id=IDS[provider], **fields)


# answers that are not JSON objects: what was wrong, in a few words

UNUSABLE = [
    ("an empty body", httpx.Response(200, content=b"  \n ")),
    (
        "an HTML page (502 Bad Gateway), not JSON (a proxy or gateway error page?)",
        httpx.Response(
            200,
            content=b"<html><head><title> 502 Bad Gateway </title></head></html>",
            headers={"content-type": "text/html; charset=utf-8"},
        ),
    ),
    (
        "an HTML page, not JSON (a proxy or gateway error page?)",
        httpx.Response(200, content=b"oops", headers={"content-type": " Text/HTML "}),
    ),
    (
        "an HTML page, not JSON (a proxy or gateway error page?)",
        httpx.Response(200, content=b"  <p>maintenance</p>"),
    ),
    (
        "an HTML page (Gateway), not JSON (a proxy or gateway error page?)",
        httpx.Response(200, content=b"<!DOCTYPE html><TITLE>Gateway</TITLE>"),
    ),
    ("3 bytes that are not UTF-8 text", httpx.Response(200, content=b"\xff\xfe\xfa")),
    ("JSON cut off after 11 bytes (a truncated answer)",
     httpx.Response(200, content=b'{"a": [1, 2')),
    # inside a string whose last quote is escaped
    ("JSON cut off after 12 bytes (a truncated answer)",
     httpx.Response(200, content=b'{"a": "x\\" y')),
    ("JSON cut off after 9 bytes (a truncated answer)", httpx.Response(200, content=b'{"a": 1 \n')),
    (
        "malformed JSON (Expecting property name enclosed in double quotes at character 8)",
        httpx.Response(200, content=b'{"a": 1,,}'),
    ),
    ("malformed JSON (Extra data at character 8)", httpx.Response(200, content=b'{"a": 1}}')),
    ("malformed JSON (Expecting value at character 6)", httpx.Response(200, content=b'{"a": }')),
    ("unreadable JSON (ValueError)", httpx.Response(200, content=b'{"a": NaN}')),
    ("unreadable JSON (RecursionError)", httpx.Response(200, content=b"[" * 100_000)),
    ("JSON of an unexpected shape", httpx.Response(200, content=b"null")),
    ("a list, not an object", httpx.Response(200, content=b"[1]")),
    (
        "the string '" + "x" * 40 + "'..., not an object",
        httpx.Response(200, content=b'"' + b"x" * 41 + b'"'),
    ),
    ("the string 'short', not an object", httpx.Response(200, content=b'"short"')),
    ("the number 12.5, not an object", httpx.Response(200, content=b"12.5")),
    ("the number " + "1" * 24 + ", not an object", httpx.Response(200, content=b"1" * 24)),
    ("a long number, not an object", httpx.Response(200, content=b"1" * 25)),
    ("a boolean, not an object", httpx.Response(200, content=b"true")),
]  # fmt: skip


@pytest.mark.parametrize(("problem", "answer"), UNUSABLE)
def test_a_2xx_that_is_no_json_object_says_what_was_wrong_and_after_a_cancel_is_ambiguous(
    problem: str, answer: httpx.Response
) -> None:
    read = error("hedgepayments", answer)
    assert type(read) is ProviderError
    assert said(read) == (
        "ProviderError",
        f"HedgePayments: the answer (HTTP 200) about payment pay_abc is unusable: {problem}",
        "bad_answer",
        200,
    )
    cancel = error("hedgepayments", answer, "cancel")
    assert isinstance(cancel, ProviderUnavailable) and cancel.ambiguous and not cancel.accepted
    assert said(cancel) == (
        "ProviderUnavailable",
        "HedgePayments: the answer (HTTP 200) to the cancel of payment pay_abc is unusable: "
        f"{problem}",
        "bad_answer",
        200,
    )


def test_an_error_answer_that_cannot_be_read_is_still_named_by_its_status() -> None:
    page = httpx.Response(
        502,
        content=b"<html><title>Bad gateway</title></html>",
        headers={"content-type": "text/html"},
    )
    assert said(error("flexportal", page)) == (
        "ProviderUnavailable",
        "FlexPortal is unavailable (HTTP 502): an HTML page (Bad gateway), not JSON "
        "(a proxy or gateway error page?)",
        "http_502",
        502,
    )
    assert said(error("flex", httpx.Response(409, content=b""))) == (
        "ProviderError", "Flex answered HTTP 409: an empty body", None, 409,
    )  # fmt: skip


# error bodies: the code and the words each provider's shape carries


@pytest.mark.parametrize(
    ("provider", "status", "body", "expected"),
    [
        ("flexportal", 409, {"error": {"code": "LOCKED", "message": "busy"}},
         ("FlexPortal answered HTTP 409: busy", "LOCKED")),
        ("flexportal", 409, {"error": {"code": 42}}, ("FlexPortal answered HTTP 409: 42", "42")),
        ("flexportal", 409, {"error": {"code": True, "message": "  spaced  "}},
         ("FlexPortal answered HTTP 409: spaced", None)),
        ("flexportal", 409, {"error": {"message": "   "}},
         ("FlexPortal answered HTTP 409: error", None)),
        ("flexportal", 409, {"error": "x"},
         ("FlexPortal answered HTTP 409: no error details", None)),
        ("flexportal", 409, ["x"], ("FlexPortal answered HTTP 409: no error details", None)),
        ("hedgepayments", 409, {"error": {"code": "c", "message": "m"}},
         ("HedgePayments answered HTTP 409: m", "c")),
        ("flex", 400, {"error": {"type": "t"}}, ("Flex answered HTTP 400: t", "t")),
        ("flex", 400, {"error": {"type": "t", "code": "c", "message": "m"}},
         ("Flex answered HTTP 400: m", "c")),
        ("flex", 400, {"error": {}}, ("Flex answered HTTP 400: error", None)),
        ("flex", 400, {"error": "s"}, ("Flex answered HTTP 400: no error details", None)),
        ("compago", 400, {"message": "Cannot cancel", "error": "Bad Request"},
         ("Compago answered HTTP 400: Cannot cancel", "Bad Request")),
        ("compago", 409, {"message": ["a", "b", 3]}, ("Compago answered HTTP 409: a; b; 3", None)),
        ("compago", 409, {"error": "Conflict"},
         ("Compago answered HTTP 409: Conflict", "Conflict")),
        ("compago", 409, {}, ("Compago answered HTTP 409: error", None)),
        ("compago", 409, [], ("Compago answered HTTP 409: no error details", None)),
        ("vipps", 400, {"title": "Bad", "detail": "why", "message": "m"},
         ("Vipps answered HTTP 400: why", None)),
        ("vipps", 400, {"title": "Bad", "message": "m"}, ("Vipps answered HTTP 400: Bad", None)),
        ("vipps", 400, {"message": "m", "error_description": "ed"},
         ("Vipps answered HTTP 400: m", None)),
        ("vipps", 400, {"error_description": "ed", "error": "e"},
         ("Vipps answered HTTP 400: ed", None)),
        ("vipps", 400, {"error": "e"}, ("Vipps answered HTTP 400: e", None)),
        ("vipps", 400, {"extraDetails": [{"name": "Other", "reason": "1"},
                                          {"name": "ErrorCode", "reason": 7001}, "x"]},
         ("Vipps answered HTTP 400: error", "7001")),
        ("vipps", 400, {"extraDetails": "x", "detail": "d"}, ("Vipps answered HTTP 400: d", None)),
        ("vipps", 400, [], ("Vipps answered HTTP 400: no error details", None)),
    ],
)  # fmt: skip
def test_an_unexpected_error_answer_keeps_the_providers_code_and_words(
    provider: str, status: int, body: Any, expected: tuple[str, str | None]
) -> None:
    got = error(provider, jresp(status, body))
    assert type(got) is ProviderError
    assert said(got) == ("ProviderError", expected[0], expected[1], status)


def test_a_long_error_text_is_cut_to_500_characters() -> None:
    words = {"message": ["x" * 300, "y" * 300]}
    got = error("compago", jresp(409, words))
    assert got.message == "Compago answered HTTP 409: " + ("x" * 300 + "; " + "y" * 300)[:500]
    got = error("flexportal", jresp(409, {"error": {"code": "C" * 600, "message": "m" * 600}}))
    assert said(got) == (
        "ProviderError",
        "FlexPortal answered HTTP 409: " + "m" * 500,
        "C" * 500,
        409,
    )


# not found


@pytest.mark.parametrize(
    ("provider", "status", "body", "expected"),
    [
        ("flexportal", 404, {"error": {"code": "NOT_FOUND", "message": "nope"}},
         ("FlexPortal: payment p1 not found in tenant acme-eu (nope)", "NOT_FOUND")),
        ("flexportal", 400, {"error": {"code": "NOT_FOUND", "message": "nope"}},
         ("FlexPortal: payment p1 not found in tenant acme-eu (nope)", "NOT_FOUND")),
        ("flexportal", 404, {}, ("FlexPortal: payment p1 not found in tenant acme-eu "
                                 "(no error details)", "NOT_FOUND")),
        ("flex", 400, {"error": {"code": "resource_missing", "message": "No such"}},
         ("Flex: payment intent fpi_1 not found (No such)", "resource_missing")),
        ("flex", 404, {"error": {"code": "gone", "message": "x"}},
         ("Flex: payment intent fpi_1 not found (x)", "gone")),
        ("flex", 404, {}, ("Flex: payment intent fpi_1 not found (no error details)",
                           "resource_missing")),
        ("hedgepayments", 404, {}, ("HedgePayments: payment pay_abc not found "
                                    "(no error details)", "not_found")),
        ("compago", 404, {"message": "Not found", "error": "NF"},
         ("Compago: payment intent 00000000-0000-4000-8000-0000000000c1 not found (Not found)",
          "not_found")),
        ("vipps", 404, {"detail": "nf"},
         ("Vipps: payment ref-00000001 not found for MSN 123456 (nf)", "not_found")),
        ("vipps", 400, {"extraDetails": [{"name": "ErrorCode", "reason": "5090"}]},
         ("Vipps: payment ref-00000001 not found for MSN 123456 (error)", "5090")),
    ],
)  # fmt: skip
def test_not_found_names_the_payment_where_it_was_looked_for_and_the_code(
    provider: str, status: int, body: Any, expected: tuple[str, str]
) -> None:
    got = error(provider, jresp(status, body))
    assert said(got) == ("NotFound", expected[0], expected[1], status)


# refusals of a cancel


def refusal(provider: str, status: int, body: Any, op: str = "cancel") -> tuple[Any, ...]:
    got = error(provider, jresp(status, body), op)
    assert isinstance(got, NotCancellable), got
    return (got.message, got.code, got.http_status, got.already_cancelled, got.status)


def test_flexportal_refusals_name_the_state_and_whether_it_was_cancelled_before() -> None:
    assert refusal("flexportal", 400, {"error": {"code": "ALREADY_PAID", "message": "paid"}}) == (
        "FlexPortal: paid", "ALREADY_PAID", 400, False, "succeeded",
    )  # fmt: skip
    processing = {"error": {"code": "PAYMENT_PROCESSING", "message": "p"}}
    assert refusal("flexportal", 400, processing) == (
        "FlexPortal: p", "PAYMENT_PROCESSING", 400, False, "processing",
    )  # fmt: skip
    assert refusal("flexportal", 409, {"error": {"code": "ALREADY_CANCELLED", "message": "g"}}) == (
        "FlexPortal: g", "ALREADY_CANCELLED", 409, True, "cancelled",
    )  # fmt: skip


def test_hedgepayments_refusals_409_on_a_cancel_and_412_with_or_without_the_state() -> None:
    in_progress = {"error": {"code": "conflict_x", "message": "in progress"}}
    assert refusal("hedgepayments", 409, in_progress) == (
        "HedgePayments: in progress (HTTP 409 to the cancel of payment pay_abc)",
        "conflict_x", 409, None, None,
    )  # fmt: skip
    assert refusal("hedgepayments", 409, {"error": {"message": "busy"}})[1:3] == ("conflict", 409)
    # a 409 to a read is no refusal
    assert type(error("hedgepayments", jresp(409, in_progress))) is ProviderError

    def not_cancelable(details: Any, code: str | None = None) -> dict[str, Any]:
        return {"error": {"code": code, "message": "no", "details": details}}

    assert refusal("hedgepayments", 412, not_cancelable({"current_status": "canceled"}, "pnc")) == (
        "HedgePayments: no", "pnc", 412, True, "cancelled",
    )  # fmt: skip
    expected = {
        "succeeded": (False, "succeeded"),
        "partially_refunded": (False, "refunded"),
        "failed": (False, "failed"),
        "weird": (False, None),
        5: (False, None),
    }
    for current, (already, status) in expected.items():
        assert refusal("hedgepayments", 412, not_cancelable({"current_status": current})) == (
            "HedgePayments: no", "payment_not_cancelable", 412, already, status,
        ), current  # fmt: skip
    # no state named: the engine reads the payment to learn it
    for body in (not_cancelable({}), not_cancelable("x"), {"error": "x"}, "x"):
        assert refusal("hedgepayments", 412, body)[1:] == (
            "payment_not_cancelable", 412, None, None,
        )  # fmt: skip


def test_flex_and_compago_take_any_400_to_a_cancel_as_a_refusal_but_not_to_a_read() -> None:
    stripe = {"error": {"code": "payment_intent_unexpected_state", "type": "t", "message": "m"}}
    assert refusal("flex", 400, stripe) == (
        "Flex: m", "payment_intent_unexpected_state", 400, None, None,
    )  # fmt: skip
    assert refusal("flex", 400, {"error": {"type": "invalid_request_error", "message": "s"}}) == (
        "Flex: s", "invalid_request_error", 400, None, None,
    )  # fmt: skip
    assert refusal("flex", 400, {"error": {}})[:3] == ("Flex: error", "invalid_request", 400)
    assert type(error("flex", jresp(400, stripe))) is ProviderError
    assert type(error("flex", jresp(409, stripe), "cancel")) is ProviderError
    nest = {"message": ["a", "b"], "error": "Bad Request", "statusCode": 400}
    assert refusal("compago", 400, nest) == ("Compago: a; b", "cannot_cancel", 400, None, None)
    assert refusal("compago", 400, {})[:3] == ("Compago: error", "cannot_cancel", 400)
    assert type(error("compago", jresp(400, nest))) is ProviderError
    assert type(error("compago", jresp(409, nest), "cancel")) is ProviderError


def vipps_refused(code: str | int, **words: str) -> dict[str, Any]:
    return {"extraDetails": [{"name": "ErrorCode", "reason": code}], **words}


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("6030", "cancel period expired"),
        ("6040", "captured: refund instead"),
        ("6050", "not reserved: nothing to cancel"),
        ("6060", "authorized: cancelTransactionOnly refuses to release it"),
        ("6190", "the payment cannot be cancelled in its state"),
    ],
)
def test_vipps_refusals_say_what_their_code_means(code: str, why: str) -> None:
    assert refusal("vipps", 400, vipps_refused(code, detail="cannot")) == (
        f"Vipps: cannot ({why})", code, 400, None, None,
    )  # fmt: skip


def test_vipps_busy_answers_are_retried_the_order_processing_one_with_a_fresh_key() -> None:
    locked = error("vipps", jresp(423, {"title": "Locked"}), "cancel")
    assert isinstance(locked, Busy) and not locked.fresh_key and locked.retry_after is None
    assert said(locked) == (
        "Busy",
        "Vipps: payment ref-00000001 is locked by another operation (HTTP 423: Locked)",
        "locked",
        423,
    )
    processing = error("vipps", jresp(409, vipps_refused("6160", detail="proc")), "cancel")
    assert isinstance(processing, Busy) and processing.fresh_key
    assert processing.retry_after == 15.0
    assert said(processing) == (
        "Busy",
        "Vipps: proc (6160 order processing: the user is authorizing the payment)",
        "6160",
        409,
    )


# the shared answers: credentials, rate limits, outages


def test_rejected_credentials_name_the_account_the_status_and_the_providers_words() -> None:
    got = error("flex", jresp(401, {"error": {"code": "invalid_key", "message": "bad key"}}))
    assert isinstance(got, AuthError) and got.http_status == 401
    assert got.message == (
        "Flex rejected the credentials of account 'flex' (HTTP 401, invalid_key: bad key). "
        "Check the account's keys and that they belong to this environment."
    )
    got = error("compago", jresp(403, {}))
    assert isinstance(got, AuthError) and got.http_status == 403
    assert got.message.startswith(
        "Compago rejected the credentials of account 'compago' (HTTP 403: error)."
    )


def test_an_outage_keeps_the_providers_code_or_names_the_status() -> None:
    got = error("flexportal", jresp(503, {"error": {"code": "MAINT", "message": "down"}}))
    assert isinstance(got, ProviderUnavailable) and not got.ambiguous
    assert said(got) == (
        "ProviderUnavailable",
        "FlexPortal is unavailable (HTTP 503): down",
        "MAINT",
        503,
    )
    got = error("flexportal", jresp(500, {}), "cancel")
    assert isinstance(got, ProviderUnavailable) and got.ambiguous
    assert said(got)[2:] == ("http_500", 500)


def in_seconds(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "7"}, 7.0, 7.0),
        ({"Retry-After": "2.5"}, 2.5, 2.5),
        ({"Retry-After": "-3"}, 0.0, 0.0),
        ({"Retry-After": "0"}, 0.0, 0.0),
        ({"Retry-After": "Thu, 01 Jan 2015 00:00:00 GMT"}, 0.0, 0.0),  # in the past
        ({"X-RateLimit-Reset": "1"}, 0.0, 0.0),  # long past
        ({"Retry-After": "7", "X-RateLimit-Reset": "1"}, 7.0, 7.0),  # Retry-After first
        # neither readable: no wait named (the policy's backoff decides)
        ({"Retry-After": "soon", "X-RateLimit-Reset": "nope"}, None, None),
        ({"Retry-After": ""}, None, None),
        ({}, None, None),
    ],
)
def test_a_rate_limit_carries_the_wait_the_provider_asked_for(
    headers: dict[str, str], low: float | None, high: float | None
) -> None:
    got = error(
        "hedgepayments", jresp(429, {"error": {"code": "slow", "message": "later"}}, **headers)
    )
    assert isinstance(got, RateLimited)
    assert said(got) == ("RateLimited", "HedgePayments rate limit reached: later", "slow", 429)
    if low is None:
        assert got.retry_after is None
    else:
        assert got.retry_after is not None and low <= got.retry_after <= (high or 0.0)


def test_a_rate_limit_reads_an_http_date_or_a_reset_time_as_seconds_from_now() -> None:
    def wait(**headers: str) -> float | None:
        got = error("flex", jresp(429, {}, **headers))
        assert isinstance(got, RateLimited) and got.code == "rate_limited"
        return got.retry_after

    by_date = wait(**{"Retry-After": in_seconds(120)})
    assert by_date is not None and 115 <= by_date <= 121
    by_reset = wait(**{"X-RateLimit-Reset": str(int(time.time()) + 60)})
    assert by_reset is not None and 55 <= by_reset <= 61
    # an unreadable Retry-After falls back to the reset time
    fallback = wait(**{"Retry-After": "soon", "X-RateLimit-Reset": str(int(time.time()) + 30)})
    assert fallback is not None and 25 <= fallback <= 31


# the payments each state reads as


HEDGE = {"id": "pay_abc", "object": "payment", "amount": 1234, "currency": "eur",
         "refunded_amount": 200}  # fmt: skip


@pytest.mark.parametrize(
    ("native", "status", "cancelable", "why"),
    [
        ("pending", PaymentStatus.PENDING, True, None),
        ("initiated", PaymentStatus.PENDING, True, None),
        ("processing", PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
        ("succeeded", PaymentStatus.SUCCEEDED, False, "succeeded: refund instead"),
        ("failed", PaymentStatus.FAILED, False, "failed: nothing to cancel"),
        ("canceled", PaymentStatus.CANCELLED, False, "already cancelled"),
        ("refunded", PaymentStatus.REFUNDED, False, "refunded"),
        ("partially_refunded", PaymentStatus.REFUNDED, False, "partially refunded"),
    ],
)
def test_hedgepayments_states(
    native: str, status: PaymentStatus, cancelable: bool, why: str | None
) -> None:
    got, _ = ask("hedgepayments", jresp(200, HEDGE | {"status": native}))
    assert got == payment(
        "hedgepayments", status=status, native_status=native, cancelable=cancelable,
        why_not=why, amount=Money(Decimal("12.34"), "EUR"),
        refunded=Money(Decimal("2.00"), "EUR"),
    )  # fmt: skip


def test_hedgepayments_without_amounts_or_currency() -> None:
    got, _ = ask("hedgepayments", jresp(200, {"id": "pay_abc", "status": "pending", "amount": 5}))
    assert isinstance(got, Payment)
    assert (got.amount, got.refunded) == (Money(Decimal("0.05"), "USD"), None)
    got, _ = ask("hedgepayments", jresp(200, {"id": "pay_abc", "status": "pending"}))
    assert isinstance(got, Payment) and got.amount is None


@pytest.mark.parametrize(
    ("native", "status", "cancelable", "why"),
    [
        ("requires_payment_method", PaymentStatus.PENDING, True, None),
        ("requires_confirmation", PaymentStatus.PENDING, True, None),
        ("requires_action", PaymentStatus.PENDING, True, None),
        ("requires_capture", PaymentStatus.AUTHORIZED, True, None),
        ("processing", PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
        ("succeeded", PaymentStatus.SUCCEEDED, False, "succeeded: refund instead"),
        ("canceled", PaymentStatus.CANCELLED, False, "already cancelled"),
    ],
)
def test_flex_states(native: str, status: PaymentStatus, cancelable: bool, why: str | None) -> None:
    intent = {"payment_intent_id": "fpi_1", "status": native, "amount": 2500, "amount_received": 0}
    got, _ = ask("flex", jresp(200, {"payment_intent": intent}))
    assert got == payment(
        "flex", status=status, native_status=native, cancelable=cancelable, why_not=why,
        amount=Money(Decimal("25.00"), "USD"), captured=Money(Decimal("0.00"), "USD"),
    )  # fmt: skip
    intent = {"payment_intent_id": "fpi_1", "status": native}
    got, _ = ask("flex", jresp(200, {"payment_intent": intent}))
    assert isinstance(got, Payment) and (got.amount, got.captured) == (None, None)


@pytest.mark.parametrize(
    ("native", "status", "cancelable", "why"),
    [
        ("pending", PaymentStatus.PENDING, True, None),
        ("failed", PaymentStatus.FAILED, True, None),
        ("processing", PaymentStatus.PROCESSING, False, "processing: wait until it settles"),
        ("paid", PaymentStatus.SUCCEEDED, False, "paid: refund instead"),
        ("cancelled", PaymentStatus.CANCELLED, False, "already cancelled"),
    ],
)
def test_flexportal_states(
    native: str, status: PaymentStatus, cancelable: bool, why: str | None
) -> None:
    body = {"paymentId": "p1", "status": native, "total": 258.10, "currency": "sek",
            "rentalId": "rent_1"}  # fmt: skip
    got, _ = ask("flexportal", jresp(200, {"success": True, "payment": body}))
    assert got == payment(
        "flexportal", status=status, native_status=native, cancelable=cancelable, why_not=why,
        amount=Money(Decimal("258.10"), "SEK"), subscription_id="rent_1",
    )  # fmt: skip


def test_flexportal_shows_the_total_and_notes_a_different_amount() -> None:
    def read(**fields: Any) -> Payment:
        body = {"paymentId": "p1", "status": "pending", **fields}
        got, _ = ask("flexportal", jresp(200, {"success": True, "payment": body}))
        assert isinstance(got, Payment), got
        return got

    both = read(total=258.10, amount=200)
    assert both.amount == Money(Decimal("258.10"), "EUR")
    assert both.amount_note == "amount field 200.00 EUR; the total shown includes tax and fees"
    same = read(total=200, amount=200.00)
    assert same.amount == Money(Decimal("200"), "EUR") and same.amount_note is None
    only_amount = read(amount=12.5)
    assert only_amount.amount == Money(Decimal("12.5"), "EUR") and only_amount.amount_note is None
    neither = read(rentalId="")
    assert (neither.amount, neither.amount_note, neither.subscription_id) == (None, None, None)


@pytest.mark.parametrize(
    ("native", "expired", "status", "shown", "cancelable", "why"),
    [
        ("PENDING", False, PaymentStatus.PENDING, "PENDING", True, None),
        ("PENDING", True, PaymentStatus.EXPIRED, "PENDING (expired)", False, "expired"),
        ("CONFIRMED", False, PaymentStatus.SUCCEEDED, "CONFIRMED", False,
         "confirmed (paid): refund instead"),
        ("CONFIRMED", True, PaymentStatus.SUCCEEDED, "CONFIRMED", False,
         "confirmed (paid): refund instead"),
        ("CANCELLED", True, PaymentStatus.CANCELLED, "CANCELLED", False, "already cancelled"),
    ],
)  # fmt: skip
def test_compago_states(
    native: str, expired: bool, status: PaymentStatus, shown: str, cancelable: bool, why: str | None
) -> None:
    body = {"id": IDS["compago"].upper(), "status": native, "expired": expired}
    got, _ = ask("compago", jresp(200, body))
    assert got == Payment(
        account="compago", provider="compago", payment_id=IDS["compago"].upper(), status=status,
        native_status=shown, cancelable=cancelable, why_not=why,
    )  # fmt: skip
    if not expired:  # no expired field: not expired
        got, _ = ask("compago", jresp(200, {"id": IDS["compago"], "status": native}))
        assert isinstance(got, Payment) and got.status is status


# answers that do not describe the payment asked for


@pytest.mark.parametrize(
    ("provider", "body", "problem"),
    [
        ("hedgepayments", {"id": "pay_other", "status": "pending"},
         "it describes payment 'pay_other', not the one asked for"),
        ("hedgepayments", {"id": "PAY_ABC", "status": "pending"},
         "it describes payment 'PAY_ABC', not the one asked for"),
        ("hedgepayments", {"status": "pending"}, "the payment id (id) is missing"),
        ("hedgepayments", {"id": 5, "status": "pending"}, "the payment id (id) is the number 5"),
        ("hedgepayments", {"id": "pay_abc", "status": None}, "status is null, not a state"),
        ("hedgepayments", {"id": "pay_abc", "status": "PENDING"},
         "status 'PENDING' is not a state the provider documents"),
        ("hedgepayments", {"id": "pay_abc", "status": "pending", "currency": "euro"},
         "currency is the string 'euro', not a currency code"),
        ("hedgepayments", {"id": "pay_abc", "status": "pending", "amount": -1},
         "amount is negative (-1)"),
        ("hedgepayments", {"id": "pay_abc", "status": "pending", "amount": 1.5},
         "amount is the number 1.5, not an amount in minor units"),
        ("hedgepayments", {"id": "pay_abc", "status": "pending", "refunded_amount": True},
         "refunded_amount is a boolean, not an amount in minor units"),
        ("flex", {"payment_intent": [1]}, "payment_intent is a list, not an object"),
        ("flex", {"payment_intent": {"payment_intent_id": "fpi_1", "status": "open"}},
         "status 'open' is not a state the provider documents"),
        ("flex", {"payment_intent": {"payment_intent_id": "fpi_1", "status": "succeeded",
                                     "amount_received": "10"}},
         "amount_received is the string '10', not an amount in minor units"),
        ("flexportal", {"payment": {"paymentId": "p1", "status": "pending", "total": "10"}},
         "total is the string '10', not an amount"),
        ("flexportal", {"payment": {"paymentId": "p1", "status": "pending", "total": 1e16}},
         "total is the number 1E+16, not a plausible amount"),
        ("flexportal", {"payment": {"paymentId": "p1", "status": "pending", "rentalId": 7}},
         "rentalId is the number 7, not a string"),
        ("flexportal", {"payment": None}, "payment is null, not an object"),
        ("compago", {"id": IDS["compago"], "status": "PENDING", "expired": "no"},
         "expired is the string 'no', not a boolean"),
        ("compago", {"id": IDS["compago"], "status": "pending"},
         "status 'pending' is not a state the provider documents"),
    ],
)  # fmt: skip
def test_an_answer_about_something_else_is_unusable_and_says_why(
    provider: str, body: dict[str, Any], problem: str
) -> None:
    got = error(provider, jresp(200, body))
    title = make_provider(account(provider), httpx.AsyncClient()).title
    assert said(got) == (
        "ProviderError",
        f"{title}: the answer about payment {IDS[provider]} is unusable: {problem}",
        "bad_answer",
        None,
    )


@pytest.mark.parametrize(
    ("provider", "body", "problem"),
    [
        ("flex", {"payment_intent": {"status": "canceled"}},
         "the payment id (payment_intent_id) is missing"),
        ("hedgepayments", {"id": "pay_abc", "status": "cancelled"},
         "status 'cancelled' is not a state the provider documents"),
        ("flexportal", {"success": True, "payment": {"paymentId": "p2", "status": "cancelled"}},
         "it describes payment 'p2', not the one asked for"),
        ("vipps", {"reference": "ref-00000001", "state": "AUTHORIZED"},
         "amount is null, not an object"),
    ],
)  # fmt: skip
def test_an_unusable_answer_to_a_cancel_is_ambiguous(
    provider: str, body: dict[str, Any], problem: str
) -> None:
    got = error(provider, jresp(200, body), "cancel")
    assert isinstance(got, ProviderUnavailable) and got.ambiguous and not got.accepted
    title = make_provider(account(provider), httpx.AsyncClient()).title
    assert said(got) == (
        "ProviderUnavailable",
        f"{title}: the answer to the cancel of payment {IDS[provider]} is unusable: {problem}",
        "bad_answer",
        None,
    )


# Compago: the cancel answers {} and the intent is read again


@pytest.mark.parametrize("accepted", [200, 201, 299])
def test_compago_reads_the_intent_after_an_accepted_cancel(accepted: int) -> None:
    def answers(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # whatever the body: the documented one is {}
            return httpx.Response(accepted, content=b"")
        return jresp(200, {"id": IDS["compago"], "status": "CANCELLED", "expired": False})

    got, sent = ask("compago", answers, "cancel")
    assert got == payment(
        "compago", status=PaymentStatus.CANCELLED, native_status="CANCELLED", cancelable=False,
        why_not="already cancelled",
    )  # fmt: skip
    assert [(r.method, r.url.path) for r in sent] == [
        ("POST", f"/prefix/api/payment-intent/{IDS['compago']}/cancel"),
        ("GET", f"/prefix/api/payment-intent/{IDS['compago']}"),
    ]
    assert {r.headers["x-api-key"] for r in sent} == {"cpk_unit"}


@pytest.mark.parametrize("after", [jresp(503, {"message": "down"}), jresp(200, {"id": "x"})])
def test_compago_a_cancel_accepted_whose_after_state_cannot_be_read_is_accepted_and_ambiguous(
    after: httpx.Response,
) -> None:
    def answers(request: httpx.Request) -> httpx.Response:
        return jresp(200, {}) if request.method == "POST" else after

    got = error("compago", answers, "cancel")
    assert isinstance(got, ProviderUnavailable) and got.accepted
    assert got.code == "after_read_failed"
    assert got.message.startswith(
        "Compago: cancel accepted but the intent could not be read back (Compago"
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(300, ProviderError), (400, NotCancellable), (500, ProviderUnavailable)],
)
def test_compago_a_cancel_answered_with_no_2xx_is_not_read_again(
    status: int, kind: type[ProviderError]
) -> None:
    got, sent = ask("compago", jresp(status, {"message": "no"}), "cancel")
    assert type(got) is kind and got.http_status == status
    assert [r.method for r in sent] == ["POST"]


# what each adapter sends


def test_each_adapter_authenticates_as_its_provider_documents() -> None:
    ok = {
        "hedgepayments": jresp(200, {"id": "pay_abc", "status": "pending"}),
        "flex": jresp(
            200, {"payment_intent": {"payment_intent_id": "fpi_1", "status": "canceled"}}
        ),
        "compago": jresp(200, {"id": IDS["compago"], "status": "PENDING"}),
    }
    headers = {provider: ask(provider, answer)[1][0].headers for provider, answer in ok.items()}
    assert headers["hedgepayments"]["authorization"] == "Bearer sk_test_unit"
    assert headers["flex"]["authorization"] == "Bearer fsk_test_unit"
    assert headers["compago"]["x-api-key"] == "cpk_unit"
    assert "authorization" not in headers["compago"]


def test_a_cancel_carries_what_the_provider_asks_for() -> None:
    answer = jresp(200, {"id": "pay_abc", "status": "canceled"})
    _, (hedge,) = ask("hedgepayments", answer, "cancel")
    assert hedge.headers["idempotency-key"] == "k-1"
    assert hedge.content == b'{"reason":"dup"}'
    vipps_answer = jresp(409, vipps_refused("6040", detail="no"))
    _, (vipps,) = ask("vipps", vipps_answer, "cancel")
    assert vipps.headers["idempotency-key"] == "k-1" and vipps.content == b""


# config check's probe


def probe(provider: str, answer: httpx.Response) -> tuple[Any, list[str]]:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return TOKEN if request.url.path.endswith("/accesstoken/get") else answer

    try:
        return run(provider, handler, lambda p: p.probe()), sent
    except PaycancelError as exc:
        return exc, sent


def test_the_probe_takes_a_404_for_accepted_credentials() -> None:
    got, sent = probe("hedgepayments", jresp(404, {}))
    assert got is None and sent == ["GET /prefix/v1/payments/pay_paycancelconfigcheck"]
    got, _ = probe("hedgepayments", jresp(401, {}))
    assert isinstance(got, AuthError)
    got, _ = probe("flex", jresp(503, {}))
    assert isinstance(got, ProviderUnavailable)


def test_the_vipps_probe_fetches_a_fresh_token_and_says_so() -> None:
    got, sent = probe("vipps", jresp(500, {}))
    assert got is None and sent == ["POST /prefix/accesstoken/get"]
    vipps = make_provider(account("vipps"), httpx.AsyncClient())
    assert vipps.probe_sent() == "POST /accesstoken/get (a fresh access token)"
    flex = make_provider(account("flex"), httpx.AsyncClient())
    assert flex.probe_sent() == "GET /v1/payment_intents/fpi_paycancelconfigcheck (404 expected)"


# FlexPortal's list of a subscription's open payments


def listing(pages: Callable[[dict[str, str]], httpx.Response]) -> tuple[Any, list[str]]:
    """The payment ids listed for rent_1 (or the error), and each request sent."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        return pages(dict(request.url.params))

    async def collect(provider: Any) -> list[str]:
        return [p.payment_id async for p in provider.list_for_subscription("rent_1")]

    try:
        return run("flexportal", handler, collect), sent
    except PaycancelError as exc:
        return exc, sent


def page(
    *ids: str, more: Any = False, cursor: Any = None, rental: str = "rent_1"
) -> httpx.Response:
    items = [{"paymentId": i, "status": "pending", "total": 1, "rentalId": rental} for i in ids]
    return jresp(200, {"success": True, "payments": items, "hasMore": more, "nextCursor": cursor})


def test_a_subscription_is_listed_page_by_page_until_no_more_is_said() -> None:
    def pages(params: dict[str, str]) -> httpx.Response:
        if params["status"] == "failed":
            # a cursor without hasMore true, or hasMore without a usable cursor: the end
            return page("f1", more=False, cursor="f2") if "startAfter" not in params else page()
        return {
            None: page("p1", more=True, cursor="c1"),
            "c1": page("p2", more=True, cursor=5),
        }[params.get("startAfter")]

    got, sent = listing(pages)
    assert got == ["p1", "p2", "f1"]
    assert sent == [
        "GET /prefix/v1/payments?rentalId=rent_1&status=pending&limit=100",
        "GET /prefix/v1/payments?rentalId=rent_1&status=pending&limit=100&startAfter=c1",
        "GET /prefix/v1/payments?rentalId=rent_1&status=failed&limit=100",
    ]


def test_a_list_answer_without_a_list_or_with_another_subscriptions_payment_is_unusable() -> None:
    got, _ = listing(lambda params: jresp(200, {"success": True, "payments": {"p1": {}}}))
    assert said(got) == (
        "ProviderError",
        "FlexPortal: the answer about payment list of rent_1 is unusable: payments is not a list",
        "bad_answer",
        None,
    )
    got, _ = listing(lambda params: page("p1", rental="rent_2"))
    assert said(got) == (
        "ProviderError",
        "FlexPortal: the answer about payment p1 is unusable: "
        "listed for subscription rent_1 but belongs to 'rent_2'",
        "bad_answer",
        None,
    )
    got, _ = listing(lambda params: jresp(404, {"error": {"code": "NOT_FOUND", "message": "no"}}))
    assert said(got) == (
        "NotFound", "FlexPortal: payment rent_1 not found in tenant acme-eu (no)", "NOT_FOUND", 404,
    )  # fmt: skip


# Vipps: the status comes from the aggregate, never from the state alone


def vipps(state: str = "AUTHORIZED", **aggregate: int) -> dict[str, Any]:
    sums = {"authorized": 1000, "captured": 0, "cancelled": 0, "refunded": 0} | aggregate
    return {
        "reference": "ref-00000001",
        "state": state,
        "amount": {"currency": "NOK", "value": 1000},
        "aggregate": {
            f"{name}Amount": {"currency": "NOK", "value": value} for name, value in sums.items()
        },
    }


@pytest.mark.parametrize(
    ("answer", "status", "cancelable", "why"),
    [
        (vipps("CREATED", authorized=0), PaymentStatus.PENDING, True, None),
        (vipps("ABORTED", authorized=0), PaymentStatus.CANCELLED, False, "aborted by the user"),
        (vipps("EXPIRED", authorized=0), PaymentStatus.EXPIRED, False, "expired"),
        (vipps("TERMINATED"), PaymentStatus.CANCELLED, False, "already cancelled (terminated)"),
        (vipps(), PaymentStatus.AUTHORIZED, True, None),
        # one øre left is still something to release
        (vipps(cancelled=999), PaymentStatus.AUTHORIZED, True, None),
        (vipps(captured=1), PaymentStatus.PARTIALLY_CAPTURED, True, None),
        (vipps(captured=999), PaymentStatus.PARTIALLY_CAPTURED, True, None),
        (vipps(cancelled=1000), PaymentStatus.CANCELLED, False, "already cancelled"),
        (vipps(captured=1000), PaymentStatus.SUCCEEDED, False, "captured: refund instead"),
        (vipps(captured=1, cancelled=999), PaymentStatus.SUCCEEDED, False,
         "remainder already released; captured part stands"),
        (vipps(captured=999, cancelled=1), PaymentStatus.SUCCEEDED, False,
         "remainder already released; captured part stands"),
        (vipps(captured=1000, refunded=1), PaymentStatus.REFUNDED, False, "refunded"),
    ],
)  # fmt: skip
def test_vipps_states_and_aggregates(
    answer: dict[str, Any], status: PaymentStatus, cancelable: bool, why: str | None
) -> None:
    got, _ = ask("vipps", jresp(200, answer))
    sums = {
        name: Money.from_minor(answer["aggregate"][f"{name}Amount"]["value"], "NOK")
        for name in ("authorized", "captured", "cancelled", "refunded")
    }
    assert got == payment(
        "vipps", status=status, native_status=answer["state"], cancelable=cancelable,
        why_not=why, amount=Money(Decimal("10.00"), "NOK"), **sums,
    )  # fmt: skip


def test_vipps_amounts_in_the_payments_currency_nok_when_unsaid() -> None:
    answer = vipps()
    answer["amount"] = {"currency": "sek", "value": 500}
    for name in ("authorized", "captured", "cancelled", "refunded"):
        answer["aggregate"][f"{name}Amount"] = {"value": 500 if name == "authorized" else 0}
    got, _ = ask("vipps", jresp(200, answer))
    assert isinstance(got, Payment)
    assert (got.amount, got.authorized, got.refunded) == (
        Money(Decimal("5.00"), "SEK"), Money(Decimal("5.00"), "SEK"), Money(Decimal("0"), "SEK"),
    )  # fmt: skip
    answer["amount"] = {"value": 500}
    got, _ = ask("vipps", jresp(200, answer))
    assert isinstance(got, Payment) and got.amount == Money(Decimal("5.00"), "NOK")
    assert got.captured == Money(Decimal("0"), "NOK")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"reference": "ref-00000002"},
         "it describes payment 'ref-00000002', not the one asked for"),
        ({"state": "CAPTURED"}, "state 'CAPTURED' is not a state the provider documents"),
        ({"amount": 10}, "amount is the number 10, not an object"),
        ({"amount": {"currency": "NOK", "value": "10"}},
         "amount.value is the string '10', not an amount in minor units"),
        ({"amount": {"currency": "kr", "value": 10}},
         "amount.currency is the string 'kr', not a currency code"),
        ({"aggregate": []}, "aggregate is a list, not an object"),
        ({"aggregate": {}}, "aggregate.authorizedAmount is null, not an object"),
    ],
)  # fmt: skip
def test_vipps_answers_that_are_unusable_say_which_field(
    change: dict[str, Any], problem: str
) -> None:
    got = error("vipps", jresp(200, vipps() | change))
    assert said(got) == (
        "ProviderError",
        f"Vipps: the answer about payment ref-00000001 is unusable: {problem}",
        "bad_answer",
        None,
    )


@pytest.mark.parametrize("name", ["authorized", "captured", "cancelled", "refunded"])
def test_vipps_an_aggregate_in_another_currency_is_unusable(name: str) -> None:
    answer = vipps()
    answer["aggregate"][f"{name}Amount"]["currency"] = "SEK"
    got = error("vipps", jresp(200, answer))
    assert got.message == (
        "Vipps: the answer about payment ref-00000001 is unusable: "
        f"aggregate.{name}Amount is in SEK, the payment in NOK"
    )
    answer["aggregate"][f"{name}Amount"] = {"currency": "NOK", "value": -1}
    got = error("vipps", jresp(200, answer))
    assert got.message.endswith(f"unusable: aggregate.{name}Amount.value is negative (-1)")


# Vipps' access token


class VippsWire:
    """A Vipps whose token endpoint answers ``token`` and whose ePayment API answers
    ``answer``; counts what was asked."""

    def __init__(self, token: httpx.Response, answer: httpx.Response | None = None) -> None:
        self.token = token
        self.answer = answer or jresp(200, vipps())
        self.tokens = 0
        self.calls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            self.tokens += 1
            return self.token
        self.calls += 1
        return self.answer

    def reads(self, n: int) -> Any:
        async def go(provider: Any) -> Any:
            return [await provider.get("ref-00000001") for _ in range(n)]

        try:
            return run("vipps", self.handler, go)
        except PaycancelError as exc:
            return exc


def test_vipps_a_token_is_used_until_a_minute_before_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    for lifetime, fetched in (("3599", 1), ("61", 1), ("60", 3), ("30", 3), ("-5", 3)):
        wire = VippsWire(jresp(200, {"access_token": "tok", "expires_in": lifetime}))
        assert len(wire.reads(3)) == 3
        assert (lifetime, wire.tokens) == (lifetime, fetched)


def test_vipps_a_token_refused_twice_is_rejected_credentials_after_one_new_token() -> None:
    wire = VippsWire(
        jresp(200, {"access_token": "tok", "expires_in": "3599"}),
        jresp(401, {"title": "Unauthorized", "status": 401}),
    )
    got = wire.reads(1)
    assert isinstance(got, AuthError) and got.http_status == 401
    assert (wire.tokens, wire.calls) == (2, 2)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (jresp(401, {"error": "unauthorized_client", "error_description": "bad secret"}),
         "Vipps rejected the credentials of account 'vipps' (HTTP 401: bad secret). Check the "
         "account's keys and that they belong to this environment."),
        (jresp(400, {"error": "invalid_request"}),
         "Vipps: could not get an access token for account 'vipps' (HTTP 400: invalid_request)."),
        (jresp(202, {}),
         "Vipps: could not get an access token for account 'vipps' (HTTP 202: error)."),
    ],
)  # fmt: skip
def test_vipps_a_token_refused_names_the_account_and_the_answer(
    token: httpx.Response, message: str
) -> None:
    got = VippsWire(token).reads(1)
    assert isinstance(got, AuthError) and got.message == message
    assert got.http_status == token.status_code


def test_vipps_a_token_endpoint_out_of_service_or_unreachable_says_so() -> None:
    got = VippsWire(jresp(503, {"title": "down"})).reads(1)
    assert said(got) == (
        "ProviderUnavailable",
        "Vipps is unavailable (HTTP 503): down",
        "http_503",
        503,
    )

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ProviderUnavailable) as failed:
        run("vipps", unreachable, lambda p: p.get("ref-00000001"))
    assert failed.value.message.startswith("Vipps: could not connect (ConnectError)")


def test_vipps_a_cancel_whose_connection_dropped_is_ambiguous_a_read_is_not() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return TOKEN
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(ProviderUnavailable) as cancel:
        run("vipps", dropped, lambda p: p.cancel("ref-00000001", reason="r", idempotency_key="k"))
    assert cancel.value.ambiguous and cancel.value.code == "connection_error"
    with pytest.raises(ProviderUnavailable) as read:
        run("vipps", dropped, lambda p: p.get("ref-00000001"))
    assert not read.value.ambiguous


# the field readers' edges, through the answers that use them

LONG_STATE = "s" * 45


@pytest.mark.parametrize(
    ("provider", "body", "problem"),
    [
        ("hedgepayments", {"id": "", "status": "pending"}, "the payment id (id) is the string ''"),
        ("hedgepayments", {"id": "pay_abc"}, "status is missing, not a state"),
        ("hedgepayments", {"id": "pay_abc", "status": LONG_STATE},
         f"status {'s' * 40!r} is not a state the provider documents"),
        ("hedgepayments", {"id": "pay_abc", "status": "pending", "currency": None},
         "currency is null, not a currency code"),
        ("flexportal", {"payment": {"paymentId": "p1", "status": "pending", "total": -1}},
         "total is the number -1, not a plausible amount"),
        ("flexportal", {"payment": {"paymentId": "p1", "status": "pending", "total": True}},
         "total is a boolean, not an amount"),
        ("flexportal", {"payment": {"paymentId": "p1", "status": "pending", "amount": [1]}},
         "amount is a list, not an amount"),
        ("vipps", vipps() | {"amount": {"currency": "NOK"}},
         "amount.value is missing, not an amount in minor units"),
        ("vipps", vipps() | {"amount": {"currency": "NOK", "value": False}},
         "amount.value is a boolean, not an amount in minor units"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_kind_is_named_with_what_it_held(
    provider: str, body: dict[str, Any], problem: str
) -> None:
    got = error(provider, jresp(200, body))
    title = make_provider(account(provider), httpx.AsyncClient()).title
    assert (
        got.message == f"{title}: the answer about payment {IDS[provider]} is unusable: {problem}"
    )


@pytest.mark.parametrize(
    ("total", "shown"),
    [
        (0, "0"),
        (0.5, "0.50"),
        (1e15, "1000000000000000"),
    ],
)
def test_flexportal_amounts_from_nothing_to_the_largest_plausible(total: Any, shown: str) -> None:
    body = {"paymentId": "p1", "status": "pending", "total": total}
    got, _ = ask("flexportal", jresp(200, {"payment": body}))
    assert isinstance(got, Payment) and got.amount is not None
    assert got.amount.value == Decimal(shown)


def test_whole_minor_units_written_as_decimals_are_read() -> None:
    got, _ = ask("hedgepayments", jresp(200, HEDGE | {"status": "pending", "amount": 1200.0}))
    assert isinstance(got, Payment) and got.amount == Money(Decimal("12.00"), "EUR")


def test_a_cancel_answered_not_found_names_the_payment() -> None:
    got = error(
        "flex", jresp(404, {"error": {"code": "resource_missing", "message": "gone"}}), "cancel"
    )
    assert said(got) == (
        "NotFound", "Flex: payment intent fpi_1 not found (gone)", "resource_missing", 404,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"paymentId": "p1", "rentalId": "rent_1"}, "status is missing, not a state"),
        ({"paymentId": "a/b", "status": "pending", "rentalId": "rent_1"},
         "Payment id 'a/b' contains the character '/', which a payment id never holds. "
         "Nothing was sent; check the id."),
    ],
)  # fmt: skip
def test_a_listed_payment_that_is_unusable_is_named_as_listed(
    item: dict[str, Any], problem: str
) -> None:
    got, _ = listing(lambda params: jresp(200, {"success": True, "payments": [item]}))
    assert said(got) == (
        "ProviderError",
        f"FlexPortal: the answer about payment (listed) is unusable: {problem}",
        "bad_answer",
        None,
    )


def test_compago_a_cancel_answered_not_found_names_the_intent() -> None:
    got = error("compago", jresp(404, {"message": "Not Found"}), "cancel")
    assert said(got) == (
        "NotFound",
        f"Compago: payment intent {IDS['compago']} not found (Not Found)",
        "not_found",
        404,
    )


@pytest.mark.parametrize("body", [{"expires_in": "3599"}, {"access_token": "  "}, ["tok"]])
def test_vipps_a_token_answer_without_a_token_is_unusable(body: Any) -> None:
    got = VippsWire(jresp(200, body)).reads(1)
    assert said(got) == (
        "ProviderError",
        "Vipps: the access token answer (HTTP 200) held no token for account 'vipps'.",
        "bad_answer",
        None,
    )


def test_vipps_a_token_is_kept_a_day_at_most_and_an_unreadable_lifetime_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])

    async def reads(provider: Any) -> None:
        await provider.get("ref-00000001")
        now[0] += 86400 - 60  # a day, less the minute's margin
        await provider.get("ref-00000001")

    for lifetime, fetched in (("999999", 2), ("86401", 2), ("86461", 2), ("soon", 2)):
        wire = VippsWire(jresp(200, {"access_token": "tok", "expires_in": lifetime}))
        run("vipps", wire.handler, reads)
        assert (lifetime, wire.tokens) == (lifetime, fetched)
    wire = VippsWire(jresp(200, {"access_token": "tok", "expires_in": "86400"}))
    now[0] = 1000.0

    async def almost(provider: Any) -> None:
        await provider.get("ref-00000001")
        now[0] += 86400 - 60 - 1
        await provider.get("ref-00000001")

    run("vipps", wire.handler, almost)
    assert wire.tokens == 1


def test_vipps_the_probe_fetches_a_new_token_even_with_one_cached() -> None:
    wire = VippsWire(jresp(200, {"access_token": "tok", "expires_in": "3599"}))

    async def read_then_probe(provider: Any) -> None:
        await provider.get("ref-00000001")
        await provider.probe()

    run("vipps", wire.handler, read_then_probe)
    assert (wire.tokens, wire.calls) == (2, 1)


# ids refused before anything is sent


@pytest.mark.parametrize(
    ("provider", "bad", "problem"),
    [
        ("flexportal", "", "is empty"),
        ("flexportal", "x?y", "contains the character '?', which a payment id never holds"),
        ("hedgepayments", "pay_a/b", "contains the character '/', which a payment id never holds"),
        ("flexportal", "a..b", "contains '..'"),
        ("hedgepayments", "pay_",
         "is not a HedgePayments id ('pay_' followed by letters and digits, e.g. pay_abc123xyz)"),
        ("vipps", "short", "is not a Vipps id (8 to 50 letters, digits and '-')"),
    ],
)  # fmt: skip
def test_an_id_refused_says_why_and_that_nothing_was_sent(
    provider: str, bad: str, problem: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    with pytest.raises(InputError) as refused:
        run(provider, handler, lambda p: p.get(bad))
    assert refused.value.message == f"Payment id {bad!r} {problem}. Nothing was sent; check the id."


# the connection itself failing


def failing(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "message", "code", "ambiguous_write"),
    [
        (BodyTooLarge("too big"),
         "HedgePayments: the answer was larger than 1024 KiB; stopped reading it",
         "body_too_large", True),
        (httpx.ConnectError("refused"),
         "HedgePayments: could not connect (ConnectError); check the network or the account's "
         "base_url.", "connect_error", False),
        (httpx.ReadTimeout("no answer within 30 s"),
         "HedgePayments: no answer in time (no answer within 30 s).", "timeout", True),
        (httpx.ReadTimeout("timed out"), "HedgePayments: no answer in time (ReadTimeout).",
         "timeout", True),
        (httpx.RemoteProtocolError("gone"),
         "HedgePayments: the connection failed (RemoteProtocolError).", "connection_error", True),
    ],
)  # fmt: skip
def test_a_failed_connection_says_what_failed_and_a_write_that_may_have_landed_is_ambiguous(
    exc: Exception, message: str, code: str, ambiguous_write: bool
) -> None:
    read = error("hedgepayments", failing(exc))
    cancel = error("hedgepayments", failing(exc), "cancel")
    assert isinstance(read, ProviderError) and isinstance(cancel, ProviderError)
    assert (read.message, read.code) == (message, code)
    assert (cancel.message, cancel.code) == (message, code)
    assert not getattr(read, "ambiguous", False)
    assert getattr(cancel, "ambiguous", False) is ambiguous_write
    if code == "body_too_large":  # a read cut short is a bad answer, not an outage
        assert type(read) is ProviderError and isinstance(cancel, ProviderUnavailable)


def test_vipps_a_token_request_that_fails_is_never_ambiguous() -> None:
    got = VippsWire(jresp(503, {})).reads(1)
    assert isinstance(got, ProviderUnavailable) and not got.ambiguous

    def token_times_out(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            raise httpx.ReadTimeout("timed out")
        return jresp(200, vipps())

    with pytest.raises(ProviderUnavailable) as failed:
        run(
            "vipps",
            token_times_out,
            lambda p: p.cancel("ref-00000001", reason="r", idempotency_key="k"),
        )
    assert not failed.value.ambiguous and failed.value.code == "timeout"


# more unusable bodies, at their edges

EDGES = [
    # a declared HTML page that does not look like one
    ("an HTML page, not JSON (a proxy or gateway error page?)",
     httpx.Response(200, content=b"oops", headers={"content-type": "text/html; charset=utf-8"})),
    # a title past the first 4096 bytes is not looked for
    ("an HTML page, not JSON (a proxy or gateway error page?)",
     httpx.Response(200, content=b"<html>" + b" " * 4075 + b"<title>X</title>")),
    ("an HTML page (X), not JSON (a proxy or gateway error page?)",
     httpx.Response(200, content=b"<html>" + b" " * 4074 + b"<title>X</title>")),
    ("an HTML page (a\ufffdb), not JSON (a proxy or gateway error page?)",
     httpx.Response(200, content=b"<html><title>a\xffb</title>")),
    # a string whose last quote is escaped never ends
    ("JSON cut off after 5 bytes (a truncated answer)", httpx.Response(200, content=b'"ab\\"')),
    # an escaped backslash does not escape the quote after it
    ("malformed JSON (Extra data at character 7)", httpx.Response(200, content=b'"ab\\\\" x')),
    ("JSON cut off after 14 bytes (a truncated answer)",
     httpx.Response(200, content=b'{"a": 1 "b": 2')),
    ("malformed JSON (Expecting ',' delimiter at character 8)",
     httpx.Response(200, content=b'{"a": 1 "b": 2}')),
    ("malformed JSON (Expecting ',' delimiter at character 10)",
     httpx.Response(200, content=b'[[1], [2] 3]')),
    ("JSON cut off after 12 bytes (a truncated answer)",
     httpx.Response(200, content=b'[[1], [2] 3 ')),
    ("malformed JSON (Expecting value at character 1)", httpx.Response(200, content=b"[}]")),
    # only brackets and quotes count, whatever else stands outside a string
    ("malformed JSON (Expecting value at character 6)", httpx.Response(200, content=b'{"a": X}')),
    ("JSON cut off after 5 bytes (a truncated answer)", httpx.Response(200, content=b"[1, X")),
    ("JSON cut off after 11 bytes (a truncated answer)",
     httpx.Response(200, content=b'{"a": "x y}')),
    ("the string '" + "x" * 40 + "', not an object",
     httpx.Response(200, content=b'"' + b"x" * 40 + b'"')),
]  # fmt: skip


@pytest.mark.parametrize(("problem", "answer"), EDGES)
def test_unusable_bodies_at_their_edges(problem: str, answer: httpx.Response) -> None:
    got = error("hedgepayments", answer)
    assert (
        got.message
        == f"HedgePayments: the answer (HTTP 200) about payment pay_abc is unusable: {problem}"
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"paymentId": "p1", "status": 5}, "status is the number 5, not a state"),
        ({"paymentId": "p1", "status": "pending", "rentalId": {}},
         "rentalId is an object, not a string"),
        ({"paymentId": "q" * 90, "status": "pending"},
         f"it describes payment {'q' * 80!r}, not the one asked for"),
    ],
)  # fmt: skip
def test_flexportal_fields_of_the_wrong_kind(body: dict[str, Any], problem: str) -> None:
    got = error("flexportal", jresp(200, {"payment": body}))
    assert got.message == f"FlexPortal: the answer about payment p1 is unusable: {problem}"


def test_vipps_the_token_request_names_the_merchant() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return TOKEN if request.url.path.endswith("/accesstoken/get") else jresp(200, vipps())

    run("vipps", handler, lambda p: p.get("ref-00000001"))
    assert seen[0].url.path.endswith("/accesstoken/get")
    assert seen[0].headers["merchant-serial-number"] == "123456"


@pytest.mark.parametrize(
    ("provider", "body", "problem"),
    [
        ("compago", {"id": "00000000-0000-4000-8000-0000000000c2", "status": "PENDING"},
         "it describes payment '00000000-0000-4000-8000-0000000000c2', not the one asked for"),
        ("flex", {"payment_intent": {"payment_intent_id": "fpi_2", "status": "canceled"}},
         "it describes payment 'fpi_2', not the one asked for"),
    ],
)  # fmt: skip
def test_an_answer_about_another_payment_is_unusable(
    provider: str, body: dict[str, Any], problem: str
) -> None:
    got = error(provider, jresp(200, body))
    title = make_provider(account(provider), httpx.AsyncClient()).title
    assert (
        got.message == f"{title}: the answer about payment {IDS[provider]} is unusable: {problem}"
    )
