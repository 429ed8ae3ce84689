"""FlexPortal simulator, mounted at ``/flexportal``: ``/v1/payments`` get, list and cancel.

Invariants:
- Every request needs ``Authorization: Bearer <api_key>`` (else 401 UNAUTHORIZED) and a
  ``Tenant-ID`` header (else 400 INVALID_REQUEST). Payments are tenant-scoped: another
  tenant's payment is 404 NOT_FOUND, and lists only show the caller's tenant.
- Amounts are ``Decimal`` major units with two decimals, written as JSON numbers
  (``258.00``). ``amount`` and ``subtotal`` are the net amount; ``total`` adds
  ``taxAmount`` (``tax``, zero unless seeded), as the schema's fields say.
- Only ``pending`` and ``failed`` cancel (to ``cancelled``; the reason is kept in
  ``notes``). ``processing``, ``paid`` and ``cancelled`` answer 400 with
  PAYMENT_PROCESSING, ALREADY_PAID, ALREADY_CANCELLED. A missing or empty ``reason`` is
  400 INVALID_REQUEST (the cancel excerpt documents 400 and 404 only, though the
  overview's generic table has a 422) and is checked before the payment is looked up.
- Lists are in insertion order (stable, deterministic). The cursor is the last
  ``paymentId`` of a page; the next page holds the matching payments inserted after
  it, so cancelling listed payments between pages never skips any.
- There is no idempotency header: a repeated cancel answers ALREADY_CANCELLED.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final

from paycancel_cli.sandbox.base import (
    ProviderSim,
    bearer_token,
    error_answer,
    same_secret,
)
from paycancel_cli.sandbox.state import (
    RateDecision,
    Request,
    Response,
    iso_at,
    iso_now,
    money,
)

STATUSES: Final = ("pending", "processing", "paid", "failed", "cancelled")
CANCELABLE: Final = frozenset({"pending", "failed"})
NOT_CANCELLABLE: Final[dict[str, tuple[str, str]]] = {
    "processing": ("PAYMENT_PROCESSING", "Payment {id} is processing; wait for the result."),
    "paid": ("ALREADY_PAID", "Payment {id} is already paid; refund it instead."),
    "cancelled": ("ALREADY_CANCELLED", "Payment {id} is already cancelled."),
}
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 100
_BASE_TIME: Final = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
_SERVER_ERRORS: Final = {
    500: ("INTERNAL_ERROR", "An internal error occurred. Please try again."),
    502: ("BAD_GATEWAY", "Upstream service error. Please try again."),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable. Please try again."),
}


def _month(offset: int) -> tuple[int, int]:
    months = _BASE_TIME.year * 12 + (_BASE_TIME.month - 1) + offset
    return months // 12, months % 12 + 1


class FlexPortalSim(ProviderSim):
    key: ClassVar[str] = "flexportal"
    prefix: ClassVar[tuple[str, ...]] = ("v1", "payments")
    lists: ClassVar[bool] = True
    cancelable: ClassVar[Collection[str]] = CANCELABLE
    credentials: ClassVar[dict[str, str]] = {
        "api_key": "fpk_sandbox_0000000000000000",
        "tenant_id": "sandbox-tenant",
    }
    account_extra: ClassVar[dict[str, str]] = {"region": "eu"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seq: dict[str, int] = {}
        self._by_rental: dict[str, list[str]] = {}
        self._rental_counters: dict[str, int] = {}

    # -- pipeline -----------------------------------------------------------------------

    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        return error_answer(
            429,
            "RATE_LIMITED",
            f"Rate limit of {decision.limit} requests per minute exceeded. "
            f"Retry after {decision.retry_after_s} seconds.",
            headers={"Retry-After": str(decision.retry_after_s)},
        )

    def server_error(self, request: Request, status: int) -> Response:
        code, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return error_answer(status, code, message)

    def authenticate(self, request: Request, op: str) -> Response | None:
        if not same_secret(bearer_token(request), self.ctx.credentials["api_key"]):
            return error_answer(401, "UNAUTHORIZED", "Missing or invalid API key.")
        if not (request.header("tenant-id") or "").strip():
            return error_answer(400, "INVALID_REQUEST", "The Tenant-ID header is required.")
        return None

    @staticmethod
    def _tenant(request: Request) -> str:
        return (request.header("tenant-id") or "").strip()

    def no_route(self, request: Request) -> Response:
        return error_answer(404, "NOT_FOUND", f"No route for {request.method} {request.path}.")

    def view(self, record: dict[str, Any]) -> Any:
        return {"success": True, "payment": record}

    def not_found(self, request: Request, payment_id: str) -> Response:
        return error_answer(404, "NOT_FOUND", f"Payment {payment_id} not found.")

    def find(self, request: Request, payment_id: str) -> dict[str, Any] | None:
        record = self.records.get(payment_id)
        if record is None or record["tenantId"] != self._tenant(request):
            return None
        return record

    def cancel(self, request: Request, payment_id: str) -> Response:
        body = self.json_body(
            request, lambda problem: error_answer(400, "INVALID_REQUEST", problem)
        )
        if isinstance(body, Response):
            return body
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return error_answer(400, "INVALID_REQUEST", "reason is required and must not be empty.")
        return self.transition(request, payment_id, reason=reason)

    def refuse(self, payment_id: str, state: str) -> Response:
        code, message = NOT_CANCELLABLE[state]
        return error_answer(400, code, message.format(id=payment_id))

    def cancelled(self, record: dict[str, Any], **change: Any) -> Response:
        record["status"] = "cancelled"
        record["notes"] = change["reason"]
        record["nextRetryAt"] = None
        record["updatedAt"] = iso_now()
        return Response.json(
            200, {"success": True, "message": "Payment cancelled", "payment": record}
        )

    def list_payments(self, request: Request) -> Response:
        tenant = self._tenant(request)
        raw_limit = request.query_value("limit")
        try:
            limit = DEFAULT_LIMIT if raw_limit is None else int(raw_limit)
        except ValueError:
            return error_answer(400, "INVALID_REQUEST", "limit must be an integer.")
        if not 1 <= limit <= MAX_LIMIT:
            return error_answer(400, "INVALID_REQUEST", f"limit must be between 1 and {MAX_LIMIT}.")
        status = request.query_value("status")
        if status is not None and status not in STATUSES:
            return error_answer(
                400, "INVALID_REQUEST", f"status must be one of {', '.join(STATUSES)}."
            )
        rental = request.query_value("rentalId")
        customer = request.query_value("customerId")
        after = request.query_value("startAfter")
        after_seq = -1
        if after:
            if after not in self._seq:
                return error_answer(400, "INVALID_REQUEST", "startAfter is not a valid cursor.")
            after_seq = self._seq[after]
        candidates = self._by_rental.get(rental, []) if rental is not None else self.records
        page: list[dict[str, Any]] = []
        has_more = False
        for payment_id in candidates:
            record = self.records[payment_id]
            if (
                self._seq[payment_id] <= after_seq
                or record["tenantId"] != tenant
                or (status is not None and record["status"] != status)
                or (customer is not None and record["customerId"] != customer)
            ):
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(record)
        return Response.json(
            200,
            {
                "success": True,
                "payments": page,
                "count": len(page),
                "hasMore": has_more,
                "nextCursor": page[-1]["paymentId"] if has_more else None,
            },
        )

    # -- seeding ------------------------------------------------------------------------

    def _add(
        self,
        *,
        status: str,
        total: Decimal | str,
        currency: str = "EUR",
        rental_id: str | None = None,
        payment_id: str | None = None,
        tenant_id: str | None = None,
        customer_id: str | None = None,
        period: int = 1,
        tax: Decimal | str = "0",
    ) -> str:
        if status not in STATUSES:
            raise ValueError(f"flexportal: status must be one of {STATUSES}, not {status!r}")
        if len(currency) != 3:
            raise ValueError(f"flexportal: currency must have 3 letters, not {currency!r}")
        amount = money(total)
        tax_amount = money(tax)
        payment_id = self.claim_id(payment_id, "fpay_sb_{n:06d}")
        seq = len(self._seq)
        created = _BASE_TIME + timedelta(minutes=seq)
        year, month = _month(period)
        due = f"{year:04d}-{month:02d}-01"
        stamp = iso_at(created)
        record: dict[str, Any] = {
            "paymentId": payment_id,
            "tenantId": tenant_id or self.ctx.credentials["tenant_id"],
            "customerId": customer_id
            or (f"cus_{_safe(rental_id)}" if rental_id else "cus_sandbox_01"),
            "subtotal": amount,
            "taxAmount": tax_amount,
            "taxRate": 0 if not amount else (tax_amount * 100 / amount).quantize(Decimal("0.01")),
            "total": amount + tax_amount,
            "amount": amount,
            "currency": currency.upper(),
            "paymentType": "individual",
            "billingPeriod": f"{year:04d}-{month:02d}",
            "status": status,
            "idempotencyKey": f"{rental_id or payment_id}:{year:04d}-{month:02d}",
            "captureAttempts": 0,
            "dueDate": due,
            "paidAt": None,
            "lastCaptureAttempt": None,
            "nextRetryAt": None,
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        if rental_id is not None:
            record["rentalId"] = rental_id
            record["lineItems"] = [
                {
                    "rentalId": rental_id,
                    "description": f"Rental {rental_id} {year:04d}-{month:02d}",
                    "amount": amount,
                    "taxAmount": money(0),
                }
            ]
        _settle(record, status, created, seq)
        self.records[payment_id] = record
        self._seq[payment_id] = seq
        if rental_id is not None:
            self._by_rental.setdefault(rental_id, []).append(payment_id)
        return payment_id

    def seed_subscription(
        self,
        rental_id: str,
        counts: dict[str, int],
        currency: str = "EUR",
        tenant_id: str | None = None,
    ) -> list[str]:
        """Payments of one rental, statuses interleaved round-robin; deterministic ids."""
        for status, count in counts.items():
            if status not in STATUSES or count < 0:
                raise ValueError(f"flexportal: bad count {status!r}: {count!r}")
        remaining = dict(counts)
        ids: list[str] = []
        safe = _safe(rental_id)
        while any(remaining.values()):
            for status in counts:
                if not remaining[status]:
                    continue
                remaining[status] -= 1
                number = self._rental_counters.get(rental_id, 0) + 1
                self._rental_counters[rental_id] = number
                candidate = f"fpay_{safe}_{number:04d}"
                ids.append(
                    self._add(
                        status=status,
                        total=Decimal(1990 + 100 * (number % 10)) / 100,
                        currency=currency,
                        rental_id=rental_id,
                        payment_id=None if candidate in self.records else candidate,
                        tenant_id=tenant_id,
                        period=number,
                    )
                )
        return ids


def _settle(record: dict[str, Any], status: str, created: datetime, seq: int) -> None:
    """The fields a seeded payment has from its capture attempts, by its status."""
    attempt = iso_at(created + timedelta(days=1))
    if status in ("processing", "paid", "failed"):
        record["provider"] = "stripe"
        record["captureAttempts"] = 1
        record["lastCaptureAttempt"] = attempt
    if status == "paid":
        record["transactionId"] = f"pi_sandbox_{seq:06d}"
        record["paidAt"] = attempt
    elif status == "failed":
        record["lastCaptureError"] = {
            "code": "card_declined",
            "message": "Your card was declined.",
            "declineCode": "insufficient_funds",
        }
        record["nextRetryAt"] = iso_at(created + timedelta(days=4))
    elif status == "cancelled":
        record["notes"] = "Cancelled before the sandbox started"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)
