"""Compago Harmony simulator, mounted at ``/compago``: ``/api/payment-intent/{uuid}`` get, cancel.

Invariants:
- ``x-api-key`` on every call, else 401 ``{"statusCode": 401, "message": "Unauthorized",
  "error": "Unauthorized"}`` (NestJS-style bodies throughout).
- Ids are UUIDs: anything else is 400 "Validation failed (uuid is expected)"; an unknown
  UUID is 404 "Payment intent not found".
- GET is slim: ``{id, status, expired}`` plus ``paymentSummary: {status: "SUCCESS"}``
  once CONFIRMED. The stored record also keeps the amount (``Decimal`` MXN, two
  decimals), which the API never shows.
- Only a PENDING intent that has not expired cancels (200 ``{}``, status CANCELLED);
  an expired PENDING, CONFIRMED or CANCELLED intent is 400 "Cannot cancel payment
  intent". There is no idempotency header: a repeat gets that 400.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final

from paycancel_cli.sandbox.base import ProviderSim, same_secret
from paycancel_cli.sandbox.state import RateDecision, Request, Response, iso_at, iso_now, money

STATUSES: Final = ("PENDING", "CONFIRMED", "CANCELLED")
ORGANIZATION_ID: Final = "0b5e6c1a-0000-4000-8000-00000000c0de"
_BASE_TIME: Final = datetime(2025, 3, 1, 17, 0, tzinfo=UTC)
_REASONS: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(
        status,
        {"statusCode": status, "message": message, "error": _REASONS.get(status, "Error")},
        headers=headers,
    )


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


class CompagoSim(ProviderSim):
    key: ClassVar[str] = "compago"
    prefix: ClassVar[tuple[str, ...]] = ("api", "payment-intent")
    credentials: ClassVar[dict[str, str]] = {"api_key": "cpk_sandbox_0000000000000000"}
    environment: ClassVar[str] = "demo"
    mistyped: ClassVar[tuple[str, str] | None] = ("id", "status")  # wrong_types

    def payment_id_of(self, request: Request, op: str) -> str | None:
        found = super().payment_id_of(request, op)
        return None if found is None else found.lower()

    # -- pipeline -----------------------------------------------------------------------

    def rate_key(self, request: Request, op: str) -> str | None:
        return request.header("x-api-key") or ""

    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        return error(429, "Too Many Requests", {"Retry-After": str(decision.retry_after_s)})

    def server_error(self, request: Request, status: int) -> Response:
        if status == 500:
            return Response.json(500, {"statusCode": 500, "message": "Internal server error"})
        return error(status, _REASONS.get(status, "Error"))

    def authenticate(self, request: Request, op: str) -> Response | None:
        if same_secret(request.header("x-api-key"), self.ctx.credentials["api_key"]):
            return None
        return error(401, "Unauthorized")

    def no_route(self, request: Request) -> Response:
        return error(404, f"Cannot {request.method} {request.path}")

    def _intent(self, request: Request, payment_id: str) -> dict[str, Any] | Response:
        intent_id = payment_id.lower()
        if not _is_uuid(intent_id):
            return error(400, "Validation failed (uuid is expected)")
        record = self.records.get(intent_id)
        if record is None:
            return self.not_found(request, intent_id)
        return record

    def not_found(self, request: Request, payment_id: str) -> Response:
        return error(404, "Payment intent not found")

    def get(self, request: Request, payment_id: str) -> Response:
        record = self._intent(request, payment_id)
        if isinstance(record, Response):
            return record
        view: dict[str, Any] = {
            "id": record["id"],
            "status": record["status"],
            "expired": record["expired"],
        }
        if "paymentSummary" in record:
            view["paymentSummary"] = record["paymentSummary"]
        return Response.json(200, view)

    def cancel(self, request: Request, payment_id: str) -> Response:
        record = self._intent(request, payment_id)
        if isinstance(record, Response):
            return record
        if record["status"] != "PENDING" or record["expired"]:
            return error(400, "Cannot cancel payment intent")
        record["status"] = "CANCELLED"
        record["updatedAt"] = iso_now()
        self.ctx.commit_cancel(record["id"])
        return Response.json(200, {})

    # -- seeding ------------------------------------------------------------------------

    def _add(
        self,
        *,
        status: str,
        amount: Decimal | str,
        expired: bool = False,
        payment_id: str | None = None,
    ) -> str:
        if status not in STATUSES:
            raise ValueError(f"compago: status must be one of {STATUSES}, not {status!r}")
        if payment_id is not None and not _is_uuid(payment_id):
            raise ValueError(f"compago: payment_id {payment_id!r} must be a lower-case UUID")
        value = money(amount)
        intent_id = self.claim_id(payment_id, "5a9dc0de-0000-4000-8000-{n:012d}")
        number = len(self.records) + 1
        created = _BASE_TIME + timedelta(minutes=number)
        record: dict[str, Any] = {
            "id": intent_id,
            "status": status,
            "expired": bool(expired),
            "amount": value,
            "currency": "MXN",
            "externalId": f"sandbox-order-{number:06d}",
            "organizationId": ORGANIZATION_ID,
            "terminalId": None,
            "createdAt": iso_at(created),
            "updatedAt": iso_at(created + timedelta(minutes=1)),
        }
        if status == "CONFIRMED":
            record["paymentSummary"] = {"status": "SUCCESS"}
        self.records[intent_id] = record
        return intent_id
