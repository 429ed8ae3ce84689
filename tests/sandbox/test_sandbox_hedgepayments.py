"""HedgePayments simulator: auth codes, bare payment objects, 412 details, idempotency replay."""

from __future__ import annotations

import pytest
from sandbox_helpers import Api

from paycancel_cli.sandbox import Sandbox

FIELDS = {
    "id",
    "object",
    "amount",
    "currency",
    "status",
    "payment_method",
    "customer_email",
    "statement_descriptor",
    "merchant_id",
    "checkout_session_id",
    "refunded_amount",
    "fee",
    "net_amount",
    "metadata",
    "settled",
    "created_at",
    "updated_at",
}


def test_missing_key_is_401_missing_authorization(api: Api) -> None:
    response = api.get_payment(
        "hedgepayments", "pay_demopending01", headers={"Authorization": None}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "missing_authorization"


@pytest.mark.parametrize("value", ["Bearer sk_test_wrong", "sk_test_sandbox0000000000000000"])
def test_bad_key_is_401_invalid_api_key(api: Api, value: str) -> None:
    response = api.get_payment(
        "hedgepayments", "pay_demopending01", headers={"Authorization": value}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_get_returns_a_bare_payment(api: Api) -> None:
    response = api.get_payment("hedgepayments", "pay_demopending01")
    assert response.status_code == 200
    payment = response.json()
    assert set(payment) >= FIELDS
    assert payment["id"] == "pay_demopending01"
    assert payment["object"] == "payment"
    assert payment["amount"] == 9999 and isinstance(payment["amount"], int)
    assert payment["currency"] == "USD"
    assert payment["status"] == "pending"


def test_get_unknown_is_404(api: Api) -> None:
    response = api.get_payment("hedgepayments", "pay_nothere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("payment_id", ["pay_demopending01", "pay_demoinitiated01"])
def test_cancel_pending_or_initiated(sb: Sandbox, api: Api, payment_id: str) -> None:
    response = api.cancel("hedgepayments", payment_id, json={"reason": "customer_requested"})
    assert response.status_code == 200
    payment = response.json()
    assert payment["status"] == "canceled"
    assert payment["cancellation_reason"] == "customer_requested"
    assert payment["canceled_at"]
    assert set(payment) >= FIELDS
    assert sb.payment("hedgepayments", payment_id)["status"] == "canceled"


def test_cancel_without_body(api: Api) -> None:
    response = api.cancel("hedgepayments", "pay_demopending01")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"


@pytest.mark.parametrize(
    ("payment_id", "status"),
    [
        ("pay_demoprocessing01", "processing"),
        ("pay_demosucceeded01", "succeeded"),
        ("pay_demofailed01", "failed"),
        ("pay_democanceled01", "canceled"),
        ("pay_demorefunded01", "refunded"),
    ],
)
def test_cancel_other_states_is_412(sb: Sandbox, api: Api, payment_id: str, status: str) -> None:
    response = api.cancel("hedgepayments", payment_id)
    assert response.status_code == 412
    error = response.json()["error"]
    assert error["code"] == "payment_not_cancelable"
    assert error["message"] == (
        f"Payment {payment_id} cannot be canceled. Current status: {status}."
    )
    assert error["details"] == {
        "payment_id": payment_id,
        "current_status": status,
        "cancelable_statuses": ["pending", "initiated"],
    }
    assert not sb.cancel_commits


def test_cancel_unknown_is_404(api: Api) -> None:
    response = api.cancel("hedgepayments", "pay_nothere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_idempotency_key_replays_the_first_answer(sb: Sandbox, api: Api) -> None:
    headers = {"Idempotency-Key": "run1:hedge:pay_demopending01"}
    first = api.cancel("hedgepayments", "pay_demopending01", headers=headers)
    second = api.cancel("hedgepayments", "pay_demopending01", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert sb.cancel_commits[("hedgepayments", "pay_demopending01")] == 1
    # Without the key, a second cancel sees the new state.
    assert api.cancel("hedgepayments", "pay_demopending01").status_code == 412


def test_idempotency_key_replays_errors_too(sb: Sandbox, api: Api) -> None:
    headers = {"Idempotency-Key": "k-412"}
    first = api.cancel("hedgepayments", "pay_demosucceeded01", headers=headers)
    second = api.cancel("hedgepayments", "pay_demosucceeded01", headers=headers)
    assert first.status_code == second.status_code == 412
    assert first.content == second.content


def test_idempotency_key_on_another_payment_is_409(api: Api) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    assert api.cancel("hedgepayments", "pay_demopending01", headers=headers).status_code == 200
    conflict = api.cancel("hedgepayments", "pay_demoinitiated01", headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
