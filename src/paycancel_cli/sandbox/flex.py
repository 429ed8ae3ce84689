"""Flex simulator, mounted at ``/flex``: ``/v1/payment_intents/{id}`` get and cancel.

Invariants:
- ``Authorization: Bearer <fsk_test_...>`` on every call, else 401
  ``authentication_error``/``invalid_api_key``.
- Answers are enveloped: ``{"payment_intent": {...}}``. Amounts are integer US cents;
  there is no currency field; ``test_mode`` is always true.
- Cancelable from ``requires_payment_method``, ``requires_confirmation``,
  ``requires_action`` and ``requires_capture`` (to ``canceled``, ``amount_capturable``
  0). ``processing``, ``succeeded`` and ``canceled`` are 400
  ``payment_intent_unexpected_state``; unknown ids 404 ``resource_missing``.
- The cancel endpoint takes no body; any body is ignored.
- ``Idempotency-Key`` on cancel is honoured like Stripe's: the first answer is stored
  per API key and replayed for the same intent; another intent gets 409.
- The ``error_shape`` fault answers a cancel with a refusal in Flex's documented shape
  (400 ``{"error": {"code": "invalid_request", "message"}}``), after the intent was
  cancelled by someone else (unless ``apply=False``: then nothing changes).
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
from paycancel_cli.sandbox.state import (
    PaymentFault,
    RateDecision,
    Request,
    Response,
    iso_at,
    iso_now,
)

STATUSES: Final = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
    "succeeded",
    "canceled",
)
CANCELABLE: Final = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
)
_BASE_TIME: Final = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
_SERVER_ERRORS: Final = {
    500: "An unexpected error occurred on Flex's servers.",
    502: "Flex received an invalid response from an upstream server.",
    503: "Flex is temporarily unavailable.",
}


def _missing(message: str) -> Response:
    """Flex's 404, for an unknown path and an unknown intent alike."""
    return error_answer(404, "resource_missing", message, error_type="invalid_request_error")


class FlexSim(ProviderSim):
    key: ClassVar[str] = "flex"
    prefix: ClassVar[tuple[str, ...]] = ("v1", "payment_intents")
    credentials: ClassVar[dict[str, str]] = {"api_key": "fsk_test_sandbox0000000000000000"}
    special_faults: ClassVar[frozenset[str]] = frozenset({"error_shape"})
    cancelable: ClassVar[Collection[str]] = CANCELABLE

    # -- pipeline -----------------------------------------------------------------------

    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        return error_answer(
            429,
            "rate_limit",
            f"Too many requests hit the API too quickly. Retry in {decision.retry_after_s} "
            "seconds.",
            error_type="rate_limit_error",
            headers={"Retry-After": str(decision.retry_after_s)},
        )

    def server_error(self, request: Request, status: int) -> Response:
        return error_answer(
            status,
            "api_error",
            _SERVER_ERRORS.get(status, _SERVER_ERRORS[500]),
            error_type="api_error",
        )

    def authenticate(self, request: Request, op: str) -> Response | None:
        if same_secret(bearer_token(request), self.ctx.credentials["api_key"]):
            return None
        message = (
            "You did not provide an API key. Send 'Authorization: Bearer fsk_test_...'."
            if request.header("authorization") is None
            else "Invalid API key provided."
        )
        return error_answer(401, "invalid_api_key", message, error_type="authentication_error")

    def no_route(self, request: Request) -> Response:
        return _missing(f"Unrecognized request URL ({request.method}: {request.path}).")

    def view(self, record: dict[str, Any]) -> Any:
        return {"payment_intent": record}

    def not_found(self, request: Request, payment_id: str) -> Response:
        return _missing(f"No such payment_intent: '{payment_id}'")

    def cancel(self, request: Request, payment_id: str) -> Response:
        return self.idempotent(
            request,
            payment_id,
            answer=lambda: self.transition(request, payment_id),
            conflict=lambda: error_answer(
                409,
                "idempotency_key_in_use",
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
                error_type="idempotency_error",
            ),
        )

    def refuse(self, payment_id: str, state: str) -> Response:
        return error_answer(
            400,
            "payment_intent_unexpected_state",
            f"This PaymentIntent ({payment_id}) cannot be canceled because it has a status "
            f"of {state}. Only a PaymentIntent with one of the following statuses may be "
            f"canceled: {', '.join(CANCELABLE)}.",
            error_type="invalid_request_error",
        )

    def cancelled(self, record: dict[str, Any], **change: Any) -> Response:
        record["status"] = "canceled"
        record["amount_capturable"] = 0
        record["canceled_at"] = iso_now()
        return Response.json(200, self.view(record))

    def special_fault(
        self, fault: PaymentFault, request: Request, op: str
    ) -> tuple[Response, bool]:
        intent_id = request.segments[2]
        record = self.records.get(intent_id)
        if op != "cancel" or record is None:
            return self.handle(request, op), False
        if fault.applies and record["status"] in CANCELABLE:
            record["status"] = "canceled"  # by someone else: not this request's commit
            record["amount_capturable"] = 0
            record["canceled_at"] = iso_now()
        return error_answer(400, "invalid_request", "Payment intent cannot be canceled."), False

    # -- seeding ------------------------------------------------------------------------

    def _add(self, *, status: str, amount: int, payment_id: str | None = None) -> str:
        if status not in STATUSES:
            raise ValueError(f"flex: status must be one of {STATUSES}, not {status!r}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(f"flex: amount must be int cents >= 0, not {amount!r}")
        intent_id = self.claim_id(payment_id, "fpi_sandbox_{n:06d}")
        number = len(self.records) + 1
        charged = status in ("requires_capture", "processing", "succeeded")
        self.records[intent_id] = {
            "payment_intent_id": intent_id,
            "amount": amount,
            "amount_capturable": amount if status == "requires_capture" else 0,
            "amount_received": amount if status == "succeeded" else 0,
            "application_fee_amount": 0,
            "customer": f"fcus_sandbox{number:06d}",
            "transfer_data": None,
            "status": status,
            "latest_charge": f"fch_sandbox{number:06d}" if charged else None,
            "created_at": iso_at(_BASE_TIME + timedelta(minutes=number)),
            "invoice": None,
            "capture_method": "manual" if status == "requires_capture" else "automatic",
            "metadata": {"source": "paycancel-sandbox"},
            "payment_method": f"fpm_sandbox{number:06d}",
            "test_mode": True,
            "transfer_group": None,
        }
        if status == "canceled":
            self.records[intent_id]["canceled_at"] = iso_at(_BASE_TIME + timedelta(hours=number))
        return intent_id
