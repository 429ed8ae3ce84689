"""Vipps ePayment simulator: token, headers, problem JSON, cancel rules, idempotency, 5/min.

Responses are validated against Vipps' own ePayment spec, the copy in
``tests/contract/specs/vipps-epayment.v1.yml`` (openapi-schema-validator, as openapi-core
uses it); the contract suite (``tests/contract``) validates whole exchanges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sandbox_helpers import Api
from tests.contract.oas import VIPPS_EPAYMENT, schema_errors

from paycancel_cli.sandbox import Sandbox


def validate(instance: Any, schema: str) -> None:
    """``instance`` conforms to ``components.schemas[schema]`` of the ePayment spec."""
    assert schema_errors(VIPPS_EPAYMENT.file, instance, f"/components/schemas/{schema}") == []


def token_headers(api: Api) -> dict[str, str]:
    account = api.accounts["vipps"]
    return {
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
        "Ocp-Apim-Subscription-Key": account["subscription_key"],
    }


# -- access token ----------------------------------------------------------------------


def test_token_has_string_numbers_and_the_configured_ttl(
    make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api]
) -> None:
    api = make_api(make_sandbox(token_ttl_s=600))
    response = api.client.post(
        api.accounts["vipps"]["base_url"] + "/accesstoken/get", headers=token_headers(api)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    for name in ("expires_in", "ext_expires_in", "expires_on", "not_before"):
        assert isinstance(body[name], str) and body[name].isdigit(), name
    assert body["expires_in"] == "599"
    assert int(body["expires_on"]) - int(body["not_before"]) == 600
    assert body["resource"]
    assert len(body["access_token"]) >= 32


@pytest.mark.parametrize("missing", ["client_id", "client_secret", "Ocp-Apim-Subscription-Key"])
def test_token_with_bad_credentials_is_401(api: Api, missing: str) -> None:
    headers = token_headers(api)
    headers[missing] = "wrong"
    response = api.client.post(
        api.accounts["vipps"]["base_url"] + "/accesstoken/get", headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized_client"
    assert "error_description" in response.json()


# -- ePayment headers ------------------------------------------------------------------


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    validate(body, "Problem")
    assert body["status"] == status
    assert body["type"].startswith("https://developer.vippsmobilepay.com/")
    assert body["instance"].startswith("/epayment/v1/")
    if code is not None:
        assert {"name": "ErrorCode", "reason": code} in body["extraDetails"]
    return body


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": None},
        {"Authorization": "not-bearer-token"},
        {"Authorization": "Bearer unknown-token"},
        {"Ocp-Apim-Subscription-Key": "wrong"},
        {"Ocp-Apim-Subscription-Key": None},
    ],
)
def test_bad_token_or_subscription_key_is_401(api: Api, headers: dict[str, str | None]) -> None:
    response = api.get_payment("vipps", "demo-authorized-0001", headers=headers)
    assert_problem(response, 401)


def test_bare_token_without_bearer_word_is_401(api: Api) -> None:
    response = api.get_payment(
        "vipps", "demo-authorized-0001", headers={"Authorization": api.vipps_token()}
    )
    assert_problem(response, 401)


def test_expired_tokens_are_401_and_a_fresh_one_works(sb: Sandbox, api: Api) -> None:
    assert api.get_payment("vipps", "demo-authorized-0001").status_code == 200
    sb.expire_tokens()
    assert_problem(api.get_payment("vipps", "demo-authorized-0001"), 401)
    api.vipps_token(fresh=True)
    assert api.get_payment("vipps", "demo-authorized-0001").status_code == 200


def test_merchant_serial_number_is_checked(api: Api) -> None:
    for value in (None, "12", "12ab56"):
        response = api.get_payment(
            "vipps", "demo-authorized-0001", headers={"Merchant-Serial-Number": value}
        )
        body = assert_problem(response, 400)
        assert body["extraDetails"][0]["name"] == "Merchant-Serial-Number"
    other = api.get_payment(
        "vipps", "demo-authorized-0001", headers={"Merchant-Serial-Number": "654321"}
    )
    assert_problem(other, 403)


# -- get -------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["demo-created-0001", "demo-partcapture-0001"])
def test_get_matches_get_payment_response(api: Api, reference: str) -> None:
    response = api.get_payment("vipps", reference)
    assert response.status_code == 200
    body = response.json()
    validate(body, "GetPaymentResponse")
    assert body["reference"] == reference
    assert body["paymentMethod"] == {"type": "WALLET"}


def test_get_aggregate_of_partial_capture(api: Api) -> None:
    aggregate = api.get_payment("vipps", "demo-partcapture-0001").json()["aggregate"]
    assert aggregate["authorizedAmount"] == {"currency": "NOK", "value": 1000}
    assert aggregate["capturedAmount"] == {"currency": "NOK", "value": 250}
    assert aggregate["cancelledAmount"] == {"currency": "NOK", "value": 0}


def test_get_unknown_is_404_5090(api: Api) -> None:
    assert_problem(api.get_payment("vipps", "no-such-reference"), 404, "5090")


# -- cancel ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "state", "cancelled"),
    [
        ("demo-created-0001", "TERMINATED", 49900),
        ("demo-authorized-0001", "AUTHORIZED", 1000),
        ("demo-partcapture-0001", "AUTHORIZED", 750),
    ],
)
def test_cancel_success(sb: Sandbox, api: Api, reference: str, state: str, cancelled: int) -> None:
    response = api.cancel("vipps", reference)
    assert response.status_code == 200, response.text
    body = response.json()
    validate(body, "ModificationResponse")
    assert body["state"] == state
    assert body["aggregate"]["cancelledAmount"]["value"] == cancelled
    assert body["reference"] == reference
    stored = sb.payment("vipps", reference)
    assert stored["state"] == state
    assert stored["aggregate"]["cancelledAmount"]["value"] == cancelled
    assert sb.cancel_commits[("vipps", reference)] == 1


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("demo-captured-0001", "6040"),
        ("demo-refunded-0001", "6040"),
        ("demo-cancelled-0001", "6190"),
        ("demo-aborted-0001", "6050"),
        ("demo-expired-0001", "6050"),
        ("demo-terminated-0001", "6050"),
    ],
)
def test_cancel_refused(sb: Sandbox, api: Api, reference: str, code: str) -> None:
    before = sb.payment("vipps", reference)
    assert_problem(api.cancel("vipps", reference), 400, code)
    assert sb.payment("vipps", reference) == before
    assert not sb.cancel_commits


def test_cancel_twice_is_6190(api: Api) -> None:
    assert api.cancel("vipps", "demo-authorized-0001", headers={"Idempotency-Key": "a"}).is_success
    second = api.cancel("vipps", "demo-authorized-0001", headers={"Idempotency-Key": "b"})
    assert_problem(second, 400, "6190")


def test_cancel_transaction_only(sb: Sandbox, api: Api) -> None:
    only = {"cancelTransactionOnly": True}
    assert_problem(api.cancel("vipps", "demo-authorized-0001", json=only), 400, "6060")
    assert sb.payment("vipps", "demo-authorized-0001")["aggregate"]["cancelledAmount"]["value"] == 0
    created = api.cancel("vipps", "demo-created-0001", json=only)
    assert created.status_code == 200
    assert created.json()["state"] == "TERMINATED"


def test_cancel_under_processing_lock_is_6160(sb: Sandbox, api: Api) -> None:
    reference = sb.add_payment("vipps", state="CREATED", amount=5000, processing_lock=True)
    assert_problem(api.cancel("vipps", reference), 400, "6160")
    assert sb.payment("vipps", reference)["state"] == "CREATED"


def test_cancel_unknown_is_404_5090(api: Api) -> None:
    assert_problem(api.cancel("vipps", "no-such-reference"), 404, "5090")


def test_cancel_without_idempotency_key_is_a_validation_problem(api: Api) -> None:
    response = api.post("vipps", "/epayment/v1/payments/demo-authorized-0001/cancel", headers={})
    body = assert_problem(response, 400)
    assert body["extraDetails"][0]["name"] == "Idempotency-Key"
    assert all(detail["name"] != "ErrorCode" for detail in body["extraDetails"])
    too_long = api.cancel("vipps", "demo-authorized-0001", headers={"Idempotency-Key": "k" * 51})
    assert_problem(too_long, 400)


def test_idempotent_replay_returns_the_first_answer(sb: Sandbox, api: Api) -> None:
    headers = {"Idempotency-Key": "run-1-vipps-demo-authorized"}
    first = api.cancel("vipps", "demo-authorized-0001", headers=headers)
    replay = api.cancel("vipps", "demo-authorized-0001", headers=headers)
    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json()
    assert sb.cancel_commits[("vipps", "demo-authorized-0001")] == 1


def test_idempotent_replay_keeps_a_4xx(sb: Sandbox, api: Api) -> None:
    headers = {"Idempotency-Key": "late-reference"}
    assert_problem(api.cancel("vipps", "late-ref-0001", headers=headers), 404, "5090")
    sb.add_payment("vipps", state="CREATED", amount=100, reference="late-ref-0001")
    assert_problem(api.cancel("vipps", "late-ref-0001", headers=headers), 404, "5090")
    assert sb.payment("vipps", "late-ref-0001")["state"] == "CREATED"


def test_same_key_with_another_body_or_reference_is_409_4010(api: Api) -> None:
    headers = {"Idempotency-Key": "key-x"}
    assert api.cancel("vipps", "demo-authorized-0001", headers=headers).status_code == 200
    other_body = api.cancel(
        "vipps", "demo-authorized-0001", headers=headers, json={"cancelTransactionOnly": True}
    )
    assert_problem(other_body, 409, "4010")
    other_reference = api.cancel("vipps", "demo-created-0001", headers=headers)
    assert_problem(other_reference, 409, "4010")


def test_empty_body_and_empty_object_are_the_same_request(api: Api) -> None:
    headers = {"Idempotency-Key": "key-y"}
    first = api.cancel("vipps", "demo-authorized-0001", headers=headers)
    second = api.cancel("vipps", "demo-authorized-0001", headers=headers, json={})
    assert first.status_code == second.status_code == 200


def test_at_most_five_cancels_per_minute_per_reference(sb: Sandbox, api: Api) -> None:
    for attempt in range(5):
        response = api.cancel(
            "vipps", "demo-cancelled-0001", headers={"Idempotency-Key": f"try-{attempt}"}
        )
        assert_problem(response, 400, "6190")
    limited = api.cancel("vipps", "demo-cancelled-0001", headers={"Idempotency-Key": "try-5"})
    assert_problem(limited, 429)
    assert "retry-after" not in limited.headers
    assert api.cancel("vipps", "demo-authorized-0001").status_code == 200  # other reference
    assert sb.counts[("vipps", "cancel")] == 7
