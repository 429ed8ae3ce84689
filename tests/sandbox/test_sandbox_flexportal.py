"""FlexPortal simulator: auth, tenant scoping, payment shape, cancel states, list pagination."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sandbox_helpers import Api

from paycancel_cli.sandbox import Sandbox

REQUIRED = {
    "paymentId",
    "tenantId",
    "customerId",
    "subtotal",
    "total",
    "currency",
    "paymentType",
    "billingPeriod",
    "status",
    "idempotencyKey",
    "dueDate",
    "createdAt",
    "updatedAt",
}


def test_missing_or_wrong_bearer_is_401(api: Api) -> None:
    for headers in ({"Authorization": None}, {"Authorization": "Bearer fpk_wrong"}):
        response = api.get_payment("flexportal", "fpay_demo_pending_01", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_missing_tenant_is_400(api: Api) -> None:
    response = api.get_payment("flexportal", "fpay_demo_pending_01", headers={"Tenant-ID": None})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


def test_get_has_every_required_field(api: Api) -> None:
    response = api.get_payment("flexportal", "fpay_demo_pending_01")
    assert response.status_code == 200
    body = response.json(parse_float=Decimal)
    assert body["success"] is True
    payment = body["payment"]
    assert set(payment) >= REQUIRED
    assert payment["status"] == "pending"
    assert payment["total"] == payment["amount"] == Decimal("258.00")
    assert payment["taxAmount"] == Decimal("0.00")
    assert payment["currency"] == "EUR"
    assert payment["rentalId"] == "rent_demo_01"
    assert len(payment["billingPeriod"]) == 7


def test_other_tenants_payment_is_404(sb: Sandbox, api: Api) -> None:
    payment_id = sb.add_payment("flexportal", status="pending", total="1.00", tenant_id="other")
    response = api.get_payment("flexportal", payment_id)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    other = api.get_payment("flexportal", payment_id, headers={"Tenant-ID": "other"})
    assert other.status_code == 200


@pytest.mark.parametrize("payment_id", ["fpay_demo_pending_01", "fpay_demo_failed_01"])
def test_cancel_pending_or_failed(sb: Sandbox, api: Api, payment_id: str) -> None:
    response = api.cancel("flexportal", payment_id, json={"reason": "Early return"})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Payment cancelled"
    assert body["payment"]["status"] == "cancelled"
    assert body["payment"]["notes"] == "Early return"
    assert sb.payment("flexportal", payment_id)["status"] == "cancelled"
    assert sb.cancel_commits[("flexportal", payment_id)] == 1


@pytest.mark.parametrize(
    ("payment_id", "code"),
    [
        ("fpay_demo_processing_01", "PAYMENT_PROCESSING"),
        ("fpay_demo_paid_01", "ALREADY_PAID"),
        ("fpay_demo_cancelled_01", "ALREADY_CANCELLED"),
    ],
)
def test_cancel_refused_states(sb: Sandbox, api: Api, payment_id: str, code: str) -> None:
    before = sb.payment("flexportal", payment_id)
    response = api.cancel("flexportal", payment_id)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert sb.payment("flexportal", payment_id) == before
    assert not sb.cancel_commits


def test_cancel_unknown_is_404(api: Api) -> None:
    response = api.cancel("flexportal", "fpay_nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 3}, None])
def test_cancel_needs_a_reason(sb: Sandbox, api: Api, body: object) -> None:
    kwargs = {"content": b""} if body is None else {"json": body}
    response = api.cancel("flexportal", "fpay_demo_pending_01", **kwargs)
    # The cancel excerpt documents 400 (bad request) and 404 only, not the overview's 422.
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert sb.payment("flexportal", "fpay_demo_pending_01")["status"] == "pending"


def test_second_cancel_is_already_cancelled(api: Api) -> None:
    assert api.cancel("flexportal", "fpay_demo_pending_01").status_code == 200
    again = api.cancel("flexportal", "fpay_demo_pending_01")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "ALREADY_CANCELLED"


def _list_all(api: Api, query: str, limit: int = 100) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = f"/v1/payments?{query}&limit={limit}"
        if cursor:
            url += f"&startAfter={cursor}"
        response = api.get("flexportal", url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["success"] is True
        assert page["count"] == len(page["payments"])
        pages.append(page)
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            return pages
        cursor = page["nextCursor"]
        assert cursor == page["payments"][-1]["paymentId"]


def test_list_paginates_230_payments_in_three_pages(sb: Sandbox, api: Api) -> None:
    counts = {"pending": 80, "failed": 40, "paid": 70, "processing": 40}
    ids = sb.seed_subscription("rent_big", counts)
    assert len(ids) == 230 and len(set(ids)) == 230
    assert ids == Sandbox(seed_demo=False).seed_subscription("rent_big", counts)  # deterministic
    pages = _list_all(api, "rentalId=rent_big")
    assert [page["count"] for page in pages] == [100, 100, 30]
    listed = [p["paymentId"] for page in pages for p in page["payments"]]
    assert listed == ids


def test_list_filters_by_status_and_rental(sb: Sandbox, api: Api) -> None:
    sb.seed_subscription("rent_big", {"pending": 80, "failed": 40, "paid": 70, "processing": 40})
    pages = _list_all(api, "rentalId=rent_big&status=pending", limit=30)
    assert [page["count"] for page in pages] == [30, 30, 20]
    statuses = {p["status"] for page in pages for p in page["payments"]}
    assert statuses == {"pending"}
    demo = _list_all(api, "rentalId=rent_demo_01")
    assert [p["paymentId"] for p in demo[0]["payments"]] == [
        "fpay_demo_pending_01",
        "fpay_demo_failed_01",
    ]


def test_cancelling_between_pages_skips_nothing(sb: Sandbox, api: Api) -> None:
    ids = sb.seed_subscription("rent_x", {"pending": 25})
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/payments?rentalId=rent_x&status=pending&limit=10"
        page = api.get("flexportal", url + (f"&startAfter={cursor}" if cursor else "")).json()
        for payment in page["payments"]:
            seen.append(payment["paymentId"])
            assert api.cancel("flexportal", payment["paymentId"]).status_code == 200
        if not page["hasMore"]:
            break
        cursor = page["nextCursor"]
    assert seen == ids


def test_list_defaults_to_50_and_rejects_more_than_100(sb: Sandbox, api: Api) -> None:
    sb.seed_subscription("rent_big", {"pending": 60})
    page = api.get("flexportal", "/v1/payments?rentalId=rent_big").json()
    assert page["count"] == 50 and page["hasMore"] is True
    too_many = api.get("flexportal", "/v1/payments?limit=101")
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "INVALID_REQUEST"
    bad_cursor = api.get("flexportal", "/v1/payments?startAfter=fpay_unknown")
    assert bad_cursor.status_code == 400
    bad_status = api.get("flexportal", "/v1/payments?status=canceled")
    assert bad_status.status_code == 400


def test_list_is_tenant_scoped(sb: Sandbox, api: Api) -> None:
    sb.seed_subscription("rent_t", {"pending": 3}, tenant_id="other")
    mine = api.get("flexportal", "/v1/payments?rentalId=rent_t").json()
    assert mine["payments"] == [] and mine["hasMore"] is False
    theirs = api.get("flexportal", "/v1/payments?rentalId=rent_t", headers={"Tenant-ID": "other"})
    assert theirs.json()["count"] == 3
