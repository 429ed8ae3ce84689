"""Vipps MobilePay ePayment simulator, mounted at ``/vipps``.

Endpoints: ``POST /accesstoken/get``, ``GET /epayment/v1/payments/{reference}`` and
``POST /epayment/v1/payments/{reference}/cancel``.

Invariants:
- The token endpoint needs ``client_id``, ``client_secret`` and
  ``Ocp-Apim-Subscription-Key``; it returns an opaque random token valid for
  ``token_ttl_s`` seconds, with the numeric fields as JSON strings. ``expire_tokens``
  forgets every token. Its errors (401, and 429 and 5xx from the faults) are the Access
  Token API's ``{"error", "error_description"}``, not ePayment's problem JSON.
- ePayment calls need ``Ocp-Apim-Subscription-Key`` and ``Authorization: Bearer
  <live token>`` (else 401) and a ``Merchant-Serial-Number`` matching ``^[0-9]{4,6}$``
  (else 400) that is the configured one (else 403). Errors are RFC 7807 problem JSON
  (``application/problem+json``, the media type the spec also gives the cancel's 200
  answer, ``AdjustResponse``); domain errors carry
  ``extraDetails: [{"name": "ErrorCode", "reason": "<code>"}]``, validation errors
  name the offending field instead.
- Amounts are integer minor units in ``{"currency", "value"}``. ``state`` never changes
  on an authorized payment; only ``aggregate`` shows a cancel:
  remaining = authorized - captured - cancelled.
- Cancel: CREATED -> TERMINATED (cancelled = amount); AUTHORIZED with remaining > 0
  -> cancelled += remaining (400 6060 with ``cancelTransactionOnly: true``);
  AUTHORIZED fully captured -> 400 6040; AUTHORIZED with nothing left -> 400 6190;
  ABORTED/EXPIRED/TERMINATED -> 400 6050; a payment under a processing lock (or the
  ``order_processing_6160`` fault) -> 400 6160, remembered under the idempotency key
  like every 4xx ("a 4xx answer stays 4xx for that key"), so a retry needs a new key.
- Per-payment faults of its own: ``locked_423`` (423 problem, nothing changes, not
  remembered), ``order_processing_6160`` and ``gateway_error`` (the API gateway's
  ``{"statusCode", "message"}`` body, 403 unless ``status`` says otherwise).
  ``wrong_types`` answers a numeric ``state`` and no ``reference``.
- A token stops working ``token_max_age_s`` after issue when that is set, whatever
  its ``expires_in`` said.
- ``Idempotency-Key`` (required, at most 50 characters) is remembered per MSN with the
  reference and the request body: the same key, reference and body replay the first
  answer (status and body) with no state change, so a 4xx stays the same 4xx;
  anything else with that key is 409 4010.
- At most 5 cancel attempts per minute per reference and MSN reach the state machine
  (429, no ``Retry-After``), whatever ``requests_per_minute`` says; that general limit
  applies to token and GET calls, per MSN.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, ClassVar, Final

from paycancel_cli.sandbox.base import (
    ProviderSim,
    bearer_token,
    same_secret,
)
from paycancel_cli.sandbox.state import (
    BodyError,
    PaymentFault,
    RateDecision,
    Request,
    Response,
    SlidingWindowLimiter,
    dumps,
    parse_json,
)

STATES: Final = ("CREATED", "ABORTED", "EXPIRED", "AUTHORIZED", "TERMINATED")
CURRENCIES: Final = ("NOK", "DKK", "EUR")
ERRORS_TYPE: Final = "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors"
PROBLEM_JSON: Final = "application/problem+json"
MODIFICATIONS_PER_MINUTE: Final = 5
REFERENCE_RE: Final = re.compile(r"^[a-zA-Z0-9-]{8,50}$")
MSN_RE: Final = re.compile(r"^[0-9]{4,6}$")
MAX_IDEMPOTENCY_KEY: Final = 50
AZURE_RESOURCE_ID: Final = "00000002-0000-0000-c000-000000000000"
_SERVER_ERRORS: Final = {
    500: ("Internal Server Error", "3010"),
    502: ("Bad Gateway", None),
    503: ("Service Unavailable", None),
}


_GATEWAY_MESSAGES: Final = {
    401: "Access denied due to invalid subscription key. Make sure to provide a valid key "
    "for an active subscription.",
    403: "Access denied due to missing or invalid subscription key for this product.",
    422: "The request could not be processed by the API gateway.",
    429: "Rate limit is exceeded. Try again in 5 seconds.",
}


def _token_error(status: int, error: str, description: str) -> Response:
    """The Access Token API's error: an OAuth-style JSON body, never problem JSON."""
    return Response.json(status, {"error": error, "error_description": description})


class VippsSim(ProviderSim):
    key: ClassVar[str] = "vipps"
    id_field: ClassVar[str] = "reference"
    prefix: ClassVar[tuple[str, ...]] = ("epayment", "v1", "payments")
    mistyped: ClassVar[tuple[str, str] | None] = ("reference", "state")  # wrong_types
    credentials: ClassVar[dict[str, str]] = {
        "client_id": "sandbox-client",
        "client_secret": "sandbox-client-secret-0000",
        "subscription_key": "sandbox-subscription-key-0000",
        "merchant_serial_number": "123456",
    }
    special_faults: ClassVar[frozenset[str]] = frozenset(
        {"locked_423", "order_processing_6160", "gateway_error"}
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tokens: dict[str, float] = {}
        self._issued: dict[str, float] = {}
        self._locked: set[str] = set()
        self._processing_once: set[str] = set()
        # (MSN, idempotency key) -> (reference, canonical body, first answer)
        self._idempotency: dict[tuple[str, str], tuple[str, bytes, Response]] = {}
        self._modifications = SlidingWindowLimiter()
        self._traces = 0

    # -- problems -----------------------------------------------------------------------

    def problem(
        self,
        status: int,
        title: str,
        detail: str,
        instance: str,
        *,
        code: str | None = None,
        extra: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        self._traces += 1
        body: dict[str, Any] = {
            "type": ERRORS_TYPE,
            "title": title,
            "detail": detail,
            "status": status,
            "traceId": f"sandbox-{self._traces:012d}",
            "instance": instance,
        }
        if code is not None:
            body["extraDetails"] = [{"name": "ErrorCode", "reason": code}]
        elif extra is not None:
            body["extraDetails"] = extra
        return Response.json(status, body, headers=headers, content_type=PROBLEM_JSON)

    def invalid(self, request: Request, field: str, reason: str) -> Response:
        return self.problem(
            400,
            "Bad Request",
            "One or more validation errors occurred.",
            request.path,
            extra=[{"name": field, "reason": reason}],
        )

    # -- pipeline -----------------------------------------------------------------------

    @classmethod
    def check_credentials(cls, credentials: dict[str, str]) -> None:
        if not MSN_RE.match(credentials["merchant_serial_number"]):
            raise ValueError("the Vipps merchant_serial_number must match ^[0-9]{4,6}$")

    def classify(self, method: str, segments: tuple[str, ...]) -> str:
        if segments == ("accesstoken", "get"):
            return "token" if method == "POST" else "other"
        return super().classify(method, segments)

    def rate_key(self, request: Request, op: str) -> str | None:
        if op == "cancel":
            return None
        msn = request.header("merchant-serial-number")
        if op == "token" and not msn:
            return request.header("client_id") or ""
        return msn or ""

    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        if self._is_token(request):
            return _token_error(
                429, "rate_limited", f"At most {decision.limit} requests per minute."
            )
        return self.problem(
            429,
            "Too Many Requests",
            f"Rate limit of {decision.limit} requests per minute exceeded.",
            request.path,
        )

    def server_error(self, request: Request, status: int) -> Response:
        title, code = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        if self._is_token(request):
            return _token_error(status, "server_error", f"{title}: no token was issued.")
        return self.problem(
            status, title, "The request could not be processed.", request.path, code=code
        )

    def authenticate(self, request: Request, op: str) -> Response | None:
        creds = self.ctx.credentials
        if op == "token":
            if (
                same_secret(request.header("client_id"), creds["client_id"])
                and same_secret(request.header("client_secret"), creds["client_secret"])
                and same_secret(
                    request.header("ocp-apim-subscription-key"), creds["subscription_key"]
                )
            ):
                return None
            return _token_error(
                401,
                "unauthorized_client",
                "The client_id, client_secret or subscription key is missing or invalid.",
            )
        if not same_secret(request.header("ocp-apim-subscription-key"), creds["subscription_key"]):
            return self.problem(
                401,
                "Unauthorized",
                "Access denied due to a missing or invalid subscription key.",
                request.path,
            )
        token = bearer_token(request)
        expires = self._tokens.get(token) if token is not None else None
        max_age = self.ctx.token_max_age_s
        if (
            expires is not None
            and max_age is not None
            and token is not None
            and time.time() - self._issued.get(token, 0.0) >= max_age
        ):
            expires = None
        if expires is None or expires <= time.time():
            return self.problem(
                401,
                "Unauthorized",
                "The access token is missing, invalid or expired; send 'Authorization: Bearer "
                "<token>' with a fresh token.",
                request.path,
            )
        msn = request.header("merchant-serial-number")
        if not msn or not MSN_RE.match(msn):
            return self.invalid(request, "Merchant-Serial-Number", "Must match ^[0-9]{4,6}$.")
        if not same_secret(msn, creds["merchant_serial_number"]):
            return self.problem(
                403,
                "Forbidden",
                "The merchant serial number is not available with these credentials.",
                request.path,
            )
        return None

    @staticmethod
    def _is_token(request: Request) -> bool:
        return request.segments == ("accesstoken", "get")

    def handle(self, request: Request, op: str) -> Response:
        if op == "token":
            return self._issue_token()
        return super().handle(request, op)

    def no_route(self, request: Request) -> Response:
        return self.problem(
            404, "Not Found", f"No route for {request.method} {request.path}.", request.path
        )

    def _issue_token(self) -> Response:
        now = time.time()
        ttl = self.ctx.token_ttl_s
        self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        self._issued = {t: at for t, at in self._issued.items() if t in self._tokens}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + ttl
        self._issued[token] = now
        expires_in = str(ttl - 1 if ttl > 1 else ttl)
        return Response.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "expires_on": str(int(now + ttl)),
                "not_before": str(int(now)),
                "resource": AZURE_RESOURCE_ID,
                "access_token": token,
            },
        )

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def get(self, request: Request, reference: str) -> Response:
        if not REFERENCE_RE.match(reference):
            return self.invalid(request, "reference", "Must match ^[a-zA-Z0-9-]{8,50}$.")
        record = self.records.get(reference)
        if record is None:
            return self.not_found(request, reference)
        return Response.json(200, record)

    def not_found(self, request: Request, reference: str) -> Response:
        return self.problem(
            404,
            "Payment not found",
            f"No payment with reference {reference} for this merchant serial number.",
            request.path,
            code="5090",
        )

    def cancel(self, request: Request, reference: str) -> Response:
        msn = request.header("merchant-serial-number") or ""
        if not self._modifications.hit((msn, reference), MODIFICATIONS_PER_MINUTE).allowed:
            return self.problem(
                429,
                "Too Many Requests",
                f"At most {MODIFICATIONS_PER_MINUTE} modifications per minute are allowed "
                f"for reference {reference}.",
                request.path,
            )
        key = request.header("idempotency-key")
        if not key:
            return self.invalid(
                request, "Idempotency-Key", "The Idempotency-Key header is required."
            )
        if len(key) > MAX_IDEMPOTENCY_KEY:
            return self.invalid(
                request, "Idempotency-Key", f"Must be at most {MAX_IDEMPOTENCY_KEY} characters."
            )
        if not REFERENCE_RE.match(reference):
            return self.invalid(request, "reference", "Must match ^[a-zA-Z0-9-]{8,50}$.")
        try:
            body = parse_json(request.body)
        except BodyError:
            return self.invalid(request, "body", "The request body must be valid JSON.")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return self.invalid(request, "body", "The request body must be a JSON object.")
        transaction_only = body.get("cancelTransactionOnly", False)
        if not isinstance(transaction_only, bool):
            return self.invalid(request, "cancelTransactionOnly", "Must be a boolean.")
        canonical = dumps(body, sort_keys=True)

        stored = self._idempotency.get((msn, key))
        if stored is not None:
            stored_reference, stored_body, answer = stored
            if stored_reference != reference or stored_body != canonical:
                return self.problem(
                    409,
                    "Conflict",
                    "The Idempotency-Key was already used with a different request.",
                    request.path,
                    code="4010",
                )
            return Response(answer.status, answer.body, dict(answer.headers), answer.content_type)

        answer, remember = self._apply_cancel(request, reference, transaction_only)
        if remember:
            self._idempotency[(msn, key)] = (reference, canonical, answer)
        return Response(answer.status, answer.body, dict(answer.headers), answer.content_type)

    def _apply_cancel(
        self, request: Request, reference: str, transaction_only: bool
    ) -> tuple[Response, bool]:
        """The answer to a cancel, and whether its idempotency key should remember it."""
        record = self.records.get(reference)
        if record is None:
            return self.not_found(request, reference), True
        if reference in self._locked or reference in self._processing_once:
            self._processing_once.discard(reference)
            locked = self.problem(
                400,
                "Order processing",
                "The payment is being processed by the user or the payment scheme; retry shortly.",
                request.path,
                code="6160",
            )
            return locked, True
        return self._transition(request, record, reference, transaction_only), True

    def _transition(
        self, request: Request, record: dict[str, Any], reference: str, transaction_only: bool
    ) -> Response:
        aggregate = record["aggregate"]
        authorized = aggregate["authorizedAmount"]["value"]
        captured = aggregate["capturedAmount"]["value"]
        cancelled = aggregate["cancelledAmount"]["value"]
        state = record["state"]
        if state == "CREATED":
            record["state"] = "TERMINATED"
            aggregate["cancelledAmount"]["value"] = record["amount"]["value"]
        elif state != "AUTHORIZED":
            return self.problem(
                400,
                "Cannot cancel a non-reserved payment",
                f"Payment {reference} is {state} and holds no reserved amount to cancel.",
                request.path,
                code="6050",
            )
        elif authorized > 0 and captured >= authorized:
            return self.problem(
                400,
                "Cannot cancel a captured payment",
                f"Payment {reference} is fully captured; refund it instead.",
                request.path,
                code="6040",
            )
        elif authorized - captured - cancelled <= 0:
            return self.problem(
                400,
                "Payment cannot be cancelled",
                f"Payment {reference} has no remaining authorized amount to cancel.",
                request.path,
                code="6190",
            )
        elif transaction_only:
            return self.problem(
                400,
                "Cannot cancel an authorized payment",
                f"Payment {reference} is already authorized and cancelTransactionOnly is true.",
                request.path,
                code="6060",
            )
        else:
            aggregate["cancelledAmount"]["value"] = authorized - captured
        self.ctx.commit_cancel(reference)
        return Response.json(
            200,
            {
                "amount": record["amount"],
                "state": record["state"],
                "aggregate": aggregate,
                "pspReference": record["pspReference"],
                "reference": reference,
            },
            content_type=PROBLEM_JSON,  # the spec's AdjustResponse media type
        )

    # -- per-payment faults -------------------------------------------------------------

    def special_fault(
        self, fault: PaymentFault, request: Request, op: str
    ) -> tuple[Response, bool]:
        reference = request.segments[3]
        if fault.kind == "locked_423":
            return self.problem(
                423,
                "Locked",
                f"Payment {reference} is locked by a concurrent operation; retry shortly.",
                request.path,
            ), False
        if fault.kind == "gateway_error":
            status = fault.status or 403
            message = _GATEWAY_MESSAGES.get(status, _GATEWAY_MESSAGES[422])
            return Response.json(status, {"statusCode": status, "message": message}), False
        if op == "cancel":  # order_processing_6160: through the idempotency store
            self._processing_once.add(reference)
            answer = self.cancel(request, reference)
            self._processing_once.discard(reference)
            return answer, False
        return self.handle(request, op), False

    # -- seeding ------------------------------------------------------------------------

    def _add(
        self,
        *,
        state: str,
        amount: int,
        authorized: int = 0,
        captured: int = 0,
        cancelled: int = 0,
        refunded: int = 0,
        currency: str = "NOK",
        reference: str | None = None,
        processing_lock: bool = False,
    ) -> str:
        if state not in STATES:
            raise ValueError(f"vipps: state must be one of {STATES}, not {state!r}")
        if currency not in CURRENCIES:
            raise ValueError(f"vipps: currency must be one of {CURRENCIES}, not {currency!r}")
        for name, value in (
            ("amount", amount),
            ("authorized", authorized),
            ("captured", captured),
            ("cancelled", cancelled),
            ("refunded", refunded),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"vipps: {name} must be int minor units >= 0, not {value!r}")
        if reference is not None and not REFERENCE_RE.match(reference):
            raise ValueError(f"vipps: reference {reference!r} must match {REFERENCE_RE.pattern}")
        reference = self.claim_id(reference, "sandbox-{n:06d}")
        number = len(self.records) + 1

        def amount_of(value: int) -> dict[str, Any]:
            return {"currency": currency, "value": value}

        self.records[reference] = {
            "aggregate": {
                "authorizedAmount": amount_of(authorized),
                "cancelledAmount": amount_of(cancelled),
                "capturedAmount": amount_of(captured),
                "refundedAmount": amount_of(refunded),
            },
            "amount": amount_of(amount),
            "state": state,
            "paymentMethod": {"type": "WALLET"},
            "profile": {},
            "pspReference": f"{number:08d}-5a9d-4000-8000-00000000b1ee",
            "reference": reference,
        }
        if processing_lock:
            self._locked.add(reference)
        return reference
