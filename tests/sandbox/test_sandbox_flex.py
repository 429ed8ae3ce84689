"""Flex simulator: enveloped payment intents, Stripe-like cancel states and errors."""

from __future__ import annotations

import pytest
from sandbox_helpers import Api

from paycancel_cli.sandbox import Sandbox

FIELDS = {
    "payment_intent_id",
    "amount",
    "amount_capturable",
    "amount_received",
    "application_fee_amount",
    "customer",
    "status",
    "latest_charge",
    "created_at",
    "capture_method",
    "metadata",
    "payment_method",
    "test_mode",
}


@pytest.mark.parametrize("value", [None, "Bearer fsk_test_wrong", "Basic abc"])
def test_bad_or_missing_key_is_401(api: Api, value: str | None) -> None:
    response = api.get_payment("flex", "fpi_demo_succeeded_01", headers={"Authorization": value})
    assert response.status_code == 401
    assert response.json()["error"] == {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": response.json()["error"]["message"],
    }


def test_get_is_enveloped_without_currency(api: Api) -> None:
    response = api.get_payment("flex", "fpi_demo_requires_capture_01")
    assert response.status_code == 200
    intent = response.json()["payment_intent"]
    assert set(intent) >= FIELDS
    assert "currency" not in intent
    assert intent["test_mode"] is True
    assert intent["amount"] == intent["amount_capturable"] == 12000
    assert intent["status"] == "requires_capture"


def test_get_unknown_is_404_resource_missing(api: Api) -> None:
    response = api.get_payment("flex", "fpi_nothere")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "resource_missing"


@pytest.mark.parametrize(
    "intent_id",
    [
        "fpi_demo_requires_payment_method_01",
        "fpi_demo_requires_capture_01",
        "fpi_demo_requires_action_01",
    ],
)
def test_cancel_cancelable_states(sb: Sandbox, api: Api, intent_id: str) -> None:
    response = api.cancel("flex", intent_id)
    assert response.status_code == 200
    intent = response.json()["payment_intent"]
    assert intent["status"] == "canceled"
    assert intent["amount_capturable"] == 0
    assert sb.payment("flex", intent_id)["status"] == "canceled"


def test_cancel_requires_confirmation(sb: Sandbox, api: Api) -> None:
    intent_id = sb.add_payment("flex", status="requires_confirmation", amount=100)
    assert api.cancel("flex", intent_id).status_code == 200


@pytest.mark.parametrize(
    ("intent_id", "status"),
    [
        ("fpi_demo_processing_01", "processing"),
        ("fpi_demo_succeeded_01", "succeeded"),
        ("fpi_demo_canceled_01", "canceled"),
    ],
)
def test_cancel_unexpected_state(sb: Sandbox, api: Api, intent_id: str, status: str) -> None:
    response = api.cancel("flex", intent_id)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "payment_intent_unexpected_state"
    assert f"cannot be canceled because it has a status of {status}" in error["message"]
    assert not sb.cancel_commits


def test_cancel_unknown_is_404(api: Api) -> None:
    response = api.cancel("flex", "fpi_nothere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_idempotency_replay_and_conflict(sb: Sandbox, api: Api) -> None:
    headers = {"Idempotency-Key": "flex-key-1"}
    first = api.cancel("flex", "fpi_demo_requires_action_01", headers=headers)
    replay = api.cancel("flex", "fpi_demo_requires_action_01", headers=headers)
    assert first.status_code == replay.status_code == 200
    assert first.content == replay.content
    assert sb.cancel_commits[("flex", "fpi_demo_requires_action_01")] == 1
    conflict = api.cancel("flex", "fpi_demo_requires_capture_01", headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
    assert sb.payment("flex", "fpi_demo_requires_capture_01")["status"] == "requires_capture"
