"""HedgePayments simulator, mounted at ``/hedgepayments``: ``/v1/payments/{id}`` get and cancel.

Invariants:
- ``Authorization: Bearer <sk_test_...>`` on every call: missing -> 401
  ``missing_authorization``, anything else wrong -> 401 ``invalid_api_key`` (both with
  ``type: authentication_error``). The presented key is never echoed.
- Answers are bare payment objects (no envelope); amounts are integer cents, currency
  upper-case.
- Only ``pending`` and ``initiated`` cancel (to ``canceled`` with ``cancellation_reason``
  and ``canceled_at``); any other status is 412 ``payment_not_cancelable`` with details.
- ``Idempotency-Key`` on cancel: the first answer (any status) is stored per API key;
  the same key on the same payment replays it byte for byte with no state change, on
  another payment it is 409 ``idempotency_key_in_use``.
- The ``conflict_409`` fault models a re-sent key that the provider does not replay: the
  first cancel gets no answer (the connection closes, nothing applied yet); the re-send
  with the same key applies the first request (unless ``apply=False``) and answers 409
  ``idempotency_key_in_use``.
- When a rate limit is set, every answer carries ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (unix seconds); a 429 has no
  ``Retry-After`` but ``details.retry_after`` in seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

from paycancel_cli.sandbox.base import (
    ProviderSim,
    bearer_token,
    error_answer,
    same_secret,
)
from paycancel_cli.sandbox.state import PaymentFault, RateDecision, Request, Response, iso_now

STATUSES: Final = (
    "pending",
    "initiated",
    "processing",
    "succeeded",
    "failed",
    "canceled",
    "refunded",
    "partially_refunded",
)
CANCELABLE: Final = ("pending", "initiated")
_BASE_TIME: Final = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
_SERVER_ERRORS: Final = {
    500: ("internal_error", "An unexpected error occurred. Please retry."),
    502: ("upstream_error", "The upstream payment processor is unavailable. Please retry."),
    503: ("service_unavailable", "The service is temporarily unavailable. Please retry."),
}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class HedgePaymentsSim(ProviderSim):
    key: ClassVar[str] = "hedgepayments"
    prefix: ClassVar[tuple[str, ...]] = ("v1", "payments")
    credentials: ClassVar[dict[str, str]] = {"api_key": "sk_test_sandbox0000000000000000"}
    special_faults: ClassVar[frozenset[str]] = frozenset({"conflict_409"})
    cancelable: ClassVar[Collection[str]] = CANCELABLE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unanswered: set[str] = set()  # conflict_409: first cancel seen, not answered

    # -- pipeline -----------------------------------------------------------------------

    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        return error_answer(
            429,
            "rate_limit_exceeded",
            f"Too many requests: the limit is {decision.limit} per minute. "
            f"Retry in {decision.retry_after_s} seconds.",
            details={"retry_after": decision.retry_after_s},
        )

    def decorate(self, response: Response, decision: RateDecision) -> None:
        response.headers["X-RateLimit-Limit"] = str(decision.limit)
        response.headers["X-RateLimit-Remaining"] = str(
            0 if not decision.allowed else decision.remaining
        )
        response.headers["X-RateLimit-Reset"] = str(decision.reset_epoch)

    def server_error(self, request: Request, status: int) -> Response:
        code, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return error_answer(status, code, message, error_type="api_error")

    def authenticate(self, request: Request, op: str) -> Response | None:
        if request.header("authorization") is None:
            return error_answer(
                401,
                "missing_authorization",
                "No API key provided. Send 'Authorization: Bearer sk_test_...'.",
                error_type="authentication_error",
            )
        if not same_secret(bearer_token(request), self.ctx.credentials["api_key"]):
            return error_answer(
                401,
                "invalid_api_key",
                "Invalid API key provided.",
                error_type="authentication_error",
            )
        return None

    def no_route(self, request: Request) -> Response:
        return error_answer(
            404, "not_found", f"Unrecognized request URL ({request.method} {request.path})."
        )

    def not_found(self, request: Request, payment_id: str) -> Response:
        return error_answer(404, "not_found", f"No payment found with id {payment_id}.")

    def cancel(self, request: Request, payment_id: str) -> Response:
        return self.idempotent(
            request,
            payment_id,
            answer=lambda: self._cancel(request, payment_id),
            conflict=lambda: error_answer(
                409,
                "idempotency_key_in_use",
                "This Idempotency-Key was already used for a request on another payment.",
            ),
        )

    def _cancel(self, request: Request, payment_id: str) -> Response:
        body = self.json_body(
            request, lambda problem: error_answer(400, "invalid_request", problem)
        )
        if isinstance(body, Response):
            return body
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            return error_answer(400, "invalid_request", "reason must be a string.")
        return self.transition(request, payment_id, reason=reason)

    def refuse(self, payment_id: str, state: str) -> Response:
        return error_answer(
            412,
            "payment_not_cancelable",
            f"Payment {payment_id} cannot be canceled. Current status: {state}.",
            details={
                "payment_id": payment_id,
                "current_status": state,
                "cancelable_statuses": list(CANCELABLE),
            },
        )

    def cancelled(self, record: dict[str, Any], **change: Any) -> Response:
        now = iso_now()
        record["status"] = "canceled"
        record["cancellation_reason"] = change["reason"]
        record["canceled_at"] = now
        record["updated_at"] = now
        return Response.json(200, record)

    def special_fault(
        self, fault: PaymentFault, request: Request, op: str
    ) -> tuple[Response, bool]:
        payment_id = request.segments[2]
        if op != "cancel":
            return self.handle(request, op), False
        if payment_id not in self._unanswered:
            self._unanswered.add(payment_id)
            return Response(0), True
        self._unanswered.discard(payment_id)
        if fault.applies:
            self._cancel(request, payment_id)
        return error_answer(
            409,
            "idempotency_key_in_use",
            "A request with this Idempotency-Key was already received; it is not replayed.",
        ), False

    # -- seeding ------------------------------------------------------------------------

    def _add(
        self,
        *,
        status: str,
        amount: int,
        currency: str = "USD",
        payment_id: str | None = None,
    ) -> str:
        if status not in STATUSES:
            raise ValueError(f"hedgepayments: status must be one of {STATUSES}, not {status!r}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(f"hedgepayments: amount must be int cents >= 0, not {amount!r}")
        payment_id = self.claim_id(payment_id, "pay_sandbox{n:06d}")
        number = len(self.records) + 1
        created = _BASE_TIME + timedelta(minutes=number)
        settled = status in ("succeeded", "refunded", "partially_refunded")
        fee = amount * 29 // 1000 + 30 if settled and amount else 0
        refunded = {"refunded": amount, "partially_refunded": amount // 2}.get(status, 0)
        record: dict[str, Any] = {
            "id": payment_id,
            "object": "payment",
            "amount": amount,
            "currency": currency.upper(),
            "status": status,
            "payment_method": "card",
            "customer_email": f"customer{number:04d}@example.com",
            "customer_id": f"cus_sandbox{number:04d}",
            "description": f"Sandbox order {number:04d}",
            "statement_descriptor": "PAYCANCEL SANDBOX",
            "merchant_id": "mer_sandbox0001",
            "checkout_session_id": f"cs_sandbox{number:06d}",
            "refunded_amount": refunded,
            "fee": fee,
            "net_amount": amount - fee - refunded if settled else 0,
            "metadata": {"source": "paycancel-sandbox"},
            "settled": settled,
            "created_at": _iso(created),
            "updated_at": _iso(created + timedelta(minutes=2)),
        }
        if settled:
            record["settled_at"] = _iso(created + timedelta(days=2))
        if status == "failed":
            record["failure_code"] = "card_declined"
            record["failure_message"] = "The card was declined."
        if status == "canceled":
            record["cancellation_reason"] = "customer_requested"
            record["canceled_at"] = record["updated_at"]
        self.records[payment_id] = record
        return payment_id
