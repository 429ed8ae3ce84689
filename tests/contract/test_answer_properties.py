"""Every answer the provider's document allows is read into a payment.

Answers are generated from the documents' own schemas (hypothesis-jsonschema): Vipps'
``GetPaymentResponse`` and ``ModificationResponse``, FlexPortal's get answer and the
cancel excerpt's 200 answer.  Three things are held as a real provider holds them: the
answer is about the payment asked for (``reference`` / ``paymentId``), every Vipps
amount is in the payment's currency, and FlexPortal's ``currency`` is an ISO 4217 code
(the schema only says three characters).  Each generated answer is checked to still
conform to its schema, then given to the adapter as the provider's answer
(``httpx.MockTransport``: parsing only; the wire is the contract suite's business).

What paycancel refuses on purpose, although the schema allows it, is listed in the
README ("When providers answer badly") and held here as its own properties: an answer
about another payment, Vipps aggregate amounts in another currency than the payment,
a FlexPortal amount of 10^16 or more in major units, and a FlexPortal currency that is
not three letters.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from paycancel_cli.errors import ProviderError
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers import make_provider

from ..test_providers_unit import account
from .oas import FLEXPORTAL_CANCEL, FLEXPORTAL_READ, VIPPS_EPAYMENT, pointer, raw, resolve
from .oas import schema_errors as errors_at

REFERENCE = "prop-reference-0001"
PAYMENT_ID = "fpay_prop_0001"
# ISO 4217 codes with 0, 2 and 3 decimals, as FlexPortal's regions bill.
ISO_CURRENCIES = ("EUR", "USD", "QAR", "NOK", "GBP", "JPY", "KWD", "BHD", "SEK", "CHF")
IMPLAUSIBLE = Decimal(10) ** 16
AGGREGATES = ("authorizedAmount", "cancelledAmount", "capturedAmount", "refundedAmount")
EXAMPLES = settings(
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_DROP = {"example", "examples", "discriminator", "xml", "externalDocs", "deprecated"}


def json_schema(node: Any) -> Any:
    """An OpenAPI schema as JSON Schema: ``nullable`` becomes a ``null`` alternative;
    annotations and OpenAPI-only keywords go (``format: int64`` is no JSON Schema
    format).  An object carries its documented fields only, as a provider's answer does
    (where the schema sets ``additionalProperties`` itself, that stands); undocumented
    extra keys are test_parsing_properties.py's business, which mutates answers freely."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: json_schema(value)
        for key, value in node.items()
        if key not in _DROP
        and not key.startswith("x-")
        and not (key == "format" and value in ("int32", "int64"))
        and key != "nullable"
    }
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def schema(file: str, where: str) -> dict[str, Any]:
    resolved: dict[str, Any] = json_schema(resolve(file, pointer(raw(file), where)))
    return resolved


def answers(file: str, where: str) -> st.SearchStrategy[Any]:
    return from_schema(schema(file, where))


VIPPS_GET = (VIPPS_EPAYMENT.file, "/components/schemas/GetPaymentResponse")
VIPPS_CANCEL = (VIPPS_EPAYMENT.file, "/components/schemas/ModificationResponse")
FLEXPORTAL_GET = (
    FLEXPORTAL_READ.file,
    "/paths/~1v1~1payments~1{paymentId}/get/responses/200/content/application~1json/schema",
)
FLEXPORTAL_CANCEL_200 = (
    FLEXPORTAL_CANCEL.file,
    "/paths/~1v1~1payments~1{paymentId}~1cancel/post/responses/200/content/"
    "application~1json/schema",
)


def vipps_consistent(body: dict[str, Any], currency: str) -> dict[str, Any]:
    """The answer about ``REFERENCE``, every amount in ``currency``."""
    body = copy.deepcopy(body)
    body["reference"] = REFERENCE
    body["amount"]["currency"] = currency
    for name in AGGREGATES:
        body["aggregate"][name]["currency"] = currency
    return body


def flexportal_consistent(body: dict[str, Any], currency: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["payment"]["paymentId"] = PAYMENT_ID
    body["payment"]["currency"] = currency
    return body


def conforming(spec: tuple[str, str], body: Any) -> Any:
    """``body``, after checking it still conforms (the fix-ups keep it schema-valid)."""
    assert errors_at(spec[0], body, spec[1]) == []
    return body


def parse(provider: str, op: str, body: Any) -> Payment | ProviderError:
    asked = REFERENCE if provider == "vipps" else PAYMENT_ID

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": "3600"})
        return httpx.Response(200, content=json.dumps(body).encode())  # floats as JSON has them

    async def go() -> Payment | ProviderError:
        acc = account(provider)
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            adapter = make_provider(acc, client)
            try:
                if op == "get":
                    return await adapter.get(asked)
                return await adapter.cancel(asked, reason="r", idempotency_key="prop-key-1")
            except ProviderError as exc:
                return exc

    return asyncio.run(go())


def assert_payment(result: Payment | ProviderError, asked: str) -> Payment:
    assert isinstance(result, Payment), result
    assert result.payment_id == asked
    assert isinstance(result.status, PaymentStatus)
    assert result.cancelable == (result.why_not is None)
    for money in (result.amount, result.authorized, result.captured, result.cancelled):
        assert money is None or (isinstance(money, Money) and isinstance(money.value, Decimal))
    result.to_json()  # what every command shows or journals: amounts quantize
    return result


# -- Vipps -------------------------------------------------------------------------------


@EXAMPLES
@given(body=answers(*VIPPS_GET), currency=st.sampled_from(("NOK", "DKK", "EUR")))
def test_every_vipps_get_answer_is_a_payment(body: dict[str, Any], currency: str) -> None:
    answer = conforming(VIPPS_GET, vipps_consistent(body, currency))
    payment = assert_payment(parse("vipps", "get", answer), REFERENCE)
    event(f"parsed: {payment.status.value}")
    assert payment.native_status == answer["state"]
    assert payment.authorized is not None and payment.authorized.currency == currency


@EXAMPLES
@given(body=answers(*VIPPS_CANCEL), currency=st.sampled_from(("NOK", "DKK", "EUR")))
def test_every_vipps_cancel_answer_is_a_payment(body: dict[str, Any], currency: str) -> None:
    answer = conforming(VIPPS_CANCEL, vipps_consistent(body, currency))
    payment = assert_payment(parse("vipps", "cancel", answer), REFERENCE)
    event(f"parsed: {payment.status.value}")
    cancelled = answer["aggregate"]["cancelledAmount"]["value"]
    assert payment.cancelled == Money.from_minor(cancelled, currency)


@settings(max_examples=50)
@given(body=answers(*VIPPS_GET), other=st.sampled_from(("DKK", "EUR")), data=st.data())
def test_vipps_aggregate_in_another_currency_is_refused(
    body: dict[str, Any], other: str, data: st.DataObject
) -> None:
    """Refused on purpose: a release in another currency than the payment cannot be
    subtracted from it; the amounts the run reports would be wrong."""
    answer = vipps_consistent(body, "NOK")
    name = data.draw(st.sampled_from(AGGREGATES))
    answer["aggregate"][name]["currency"] = other
    result = parse("vipps", "get", conforming(VIPPS_GET, answer))
    assert isinstance(result, ProviderError) and result.code == "bad_answer"
    assert f"is in {other}, the payment in NOK" in result.message


# -- FlexPortal --------------------------------------------------------------------------


def _amounts(body: dict[str, Any]) -> list[Any]:
    return [body["payment"].get(key) for key in ("total", "amount")]


def _flexportal(spec: tuple[str, str], op: str, body: dict[str, Any], currency: str) -> None:
    answer = conforming(spec, flexportal_consistent(body, currency))
    result = parse("flexportal", op, answer)
    if any(a is not None and Decimal(str(a)) >= IMPLAUSIBLE for a in _amounts(answer)):
        # Refused on purpose (README): no payment holds 10^16 in major units.
        event("refused: an amount of 10^16 or more")
        assert isinstance(result, ProviderError) and "not a plausible amount" in result.message
        return
    payment = assert_payment(result, PAYMENT_ID)
    event(f"parsed: {payment.status.value}")
    assert payment.native_status == answer["payment"]["status"]
    rental = answer["payment"].get("rentalId")
    assert payment.subscription_id == (rental or None)


@EXAMPLES
@given(body=answers(*FLEXPORTAL_GET), currency=st.sampled_from(ISO_CURRENCIES))
def test_every_flexportal_get_answer_is_a_payment(body: dict[str, Any], currency: str) -> None:
    _flexportal(FLEXPORTAL_GET, "get", body, currency)


@EXAMPLES
@given(body=answers(*FLEXPORTAL_CANCEL_200), currency=st.sampled_from(ISO_CURRENCIES))
def test_every_flexportal_cancel_answer_is_a_payment(body: dict[str, Any], currency: str) -> None:
    _flexportal(FLEXPORTAL_CANCEL_200, "cancel", body, currency)


# -- both: an answer about another payment -----------------------------------------------


@settings(max_examples=50)
@given(
    vipps=answers(*VIPPS_GET),
    flexportal=answers(*FLEXPORTAL_GET),
    other=st.from_regex(r"[a-zA-Z0-9-]{8,50}", fullmatch=True),
)
def test_an_answer_about_another_payment_is_refused(
    vipps: dict[str, Any], flexportal: dict[str, Any], other: str
) -> None:
    """Refused on purpose: reporting another payment's state as the one asked for would
    cancel, or report, the wrong payment."""
    vipps_answer = vipps_consistent(vipps, "NOK")
    vipps_answer["reference"] = other if other != REFERENCE else other + "x"
    flexportal_answer = flexportal_consistent(flexportal, "EUR")
    flexportal_answer["payment"]["paymentId"] = vipps_answer["reference"]
    for provider, answer in (("vipps", vipps_answer), ("flexportal", flexportal_answer)):
        result = parse(provider, "get", answer)
        assert isinstance(result, ProviderError), provider
        assert "not the one asked for" in result.message


@settings(max_examples=50)
@given(
    body=answers(*FLEXPORTAL_GET),
    currency=st.text(min_size=3, max_size=3).filter(lambda c: not (c.isascii() and c.isalpha())),
)
def test_flexportal_currency_that_is_not_three_letters_is_refused(
    body: dict[str, Any], currency: str
) -> None:
    """Refused on purpose: the schema allows any three characters, but an amount is
    shown, summed and guarded per ISO 4217 currency."""
    answer = conforming(FLEXPORTAL_GET, flexportal_consistent(body, currency))
    result = parse("flexportal", "get", answer)
    assert isinstance(result, ProviderError) and "not a currency code" in result.message
