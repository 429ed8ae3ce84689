"""Compago simulator: x-api-key, slim GET, cancel rules, NestJS-style errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sandbox_helpers import Api

from paycancel_cli.sandbox import Sandbox

PENDING = "7d3f0b4e-0000-4000-8000-000000000001"
EXPIRED = "7d3f0b4e-0000-4000-8000-000000000002"
CONFIRMED = "7d3f0b4e-0000-4000-8000-000000000003"
CANCELLED = "7d3f0b4e-0000-4000-8000-000000000004"


@pytest.mark.parametrize("value", [None, "cpk_wrong"])
def test_missing_or_bad_key_is_401(api: Api, value: str | None) -> None:
    response = api.get_payment("compago", PENDING, headers={"x-api-key": value})
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "Unauthorized",
        "error": "Unauthorized",
    }


def test_get_is_slim(api: Api) -> None:
    assert api.get_payment("compago", PENDING).json() == {
        "id": PENDING,
        "status": "PENDING",
        "expired": False,
    }
    assert api.get_payment("compago", EXPIRED).json()["expired"] is True
    assert api.get_payment("compago", CONFIRMED).json() == {
        "id": CONFIRMED,
        "status": "CONFIRMED",
        "expired": False,
        "paymentSummary": {"status": "SUCCESS"},
    }


def test_amount_is_stored_but_not_shown(sb: Sandbox, api: Api) -> None:
    assert sb.payment("compago", PENDING)["amount"] == Decimal("350.50")
    assert "amount" not in api.get_payment("compago", PENDING).json()


def test_unknown_is_404_and_malformed_is_400(api: Api) -> None:
    unknown = api.get_payment("compago", "7d3f0b4e-0000-4000-8000-0000000000ff")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "statusCode": 404,
        "message": "Payment intent not found",
        "error": "Not Found",
    }
    assert api.cancel("compago", "7d3f0b4e-0000-4000-8000-0000000000ff").status_code == 404
    malformed = api.get_payment("compago", "not-a-uuid")
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "Bad Request"


def test_cancel_pending_returns_empty_object(sb: Sandbox, api: Api) -> None:
    response = api.cancel("compago", PENDING)
    assert response.status_code == 200
    assert response.json() == {}
    assert api.get_payment("compago", PENDING).json()["status"] == "CANCELLED"
    assert sb.cancel_commits[("compago", PENDING)] == 1


@pytest.mark.parametrize("intent_id", [EXPIRED, CONFIRMED, CANCELLED])
def test_cancel_refused(sb: Sandbox, api: Api, intent_id: str) -> None:
    before = sb.payment("compago", intent_id)
    response = api.cancel("compago", intent_id)
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "message": "Cannot cancel payment intent",
        "error": "Bad Request",
    }
    assert sb.payment("compago", intent_id) == before


def test_add_payment_defaults(sb: Sandbox, api: Api) -> None:
    intent_id = sb.add_payment("compago", status="PENDING", amount="12.3", expired=True)
    assert sb.payment("compago", intent_id)["amount"] == Decimal("12.30")
    assert api.get_payment("compago", intent_id).json()["expired"] is True
    assert api.cancel("compago", intent_id).status_code == 400
