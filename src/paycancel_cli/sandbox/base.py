"""The contract every provider simulator fulfils, and helpers they share.

Invariants:
- A simulator is plain in-memory state plus pure-ish request handlers. It never locks,
  sleeps or touches a socket: the ``Sandbox`` calls every method below while holding its
  one lock, and applies latency and faults outside it.
- A simulator answers in its provider's own wire format only (error bodies, status
  codes, amounts); nothing outside its module knows a provider's field names.
- ``handle`` calls ``SimContext.commit_cancel`` exactly once for each cancel it applies,
  and never for a replayed or rejected one.
- ``payment`` returns a deep copy, so callers cannot mutate the store.
"""

from __future__ import annotations

import copy
import hmac
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from importlib import resources
from typing import Any, ClassVar, NamedTuple

from paycancel_cli.sandbox.state import (
    BodyError,
    PaymentFault,
    RateDecision,
    Request,
    Response,
    SimContext,
    parse_json,
)


class DemoPayment(NamedTuple):
    """One seeded demo payment: its id, a short description and ``add_payment`` fields."""

    payment_id: str
    description: str
    fields: dict[str, Any]


def demo_table(key: str) -> tuple[DemoPayment, ...]:
    """The demo payments of the simulator ``key``: its table ``demo/<key>.toml``, one
    ``[[payment]]`` (``id``, ``about``, ``fields``) each, in seeding order; none when
    the simulator has no table."""
    table = resources.files("paycancel_cli.sandbox").joinpath("demo", f"{key}.toml")
    if not table.is_file():
        return ()
    rows = tomllib.loads(table.read_text("utf-8"))["payment"]
    return tuple(DemoPayment(row["id"], row["about"], row["fields"]) for row in rows)


class ProviderSim(ABC):
    """One provider's simulator, mounted by the ``Sandbox`` under ``/<key>``.

    The base owns routing (``prefix`` and ``lists`` make a request's op), the op
    dispatch, the idempotency store, request bodies, the built-in account, reads
    (``get``: ``find``, ``not_found``, ``view``), the cancel's step through the state
    machine (``transition``) and ``add_payment``; a simulator declares its routes,
    credentials, error answers and its state machine (``cancelable`` states, ``refuse``,
    ``cancelled``; or its own ``cancel``), ``list_payments`` and ``_add``.
    """

    key: ClassVar[str]
    id_field: ClassVar[str] = "payment_id"
    # The demo payments ``seed_demo`` adds: the simulator's table ``demo/<key>.toml``,
    # read when the class is defined (none without one).
    demo: ClassVar[tuple[DemoPayment, ...]] = ()
    # The path segments before a payment id, e.g. ("v1", "payments"); a GET of the
    # prefix itself is a list when ``lists``.
    prefix: ClassVar[tuple[str, ...]]
    lists: ClassVar[bool] = False
    special_faults: ClassVar[frozenset[str]] = frozenset()
    mistyped: ClassVar[tuple[str, str] | None] = None
    # The state machine for ``transition``: the record field that holds a payment's
    # state, and the states a cancel applies to.
    state_field: ClassVar[str] = "status"
    cancelable: ClassVar[Collection[str]] = ()
    # The sandbox's test-only credentials (a template the ``Sandbox`` copies), and what
    # the built-in account adds to them.
    credentials: ClassVar[dict[str, str]]
    account_extra: ClassVar[dict[str, str]] = {}
    environment: ClassVar[str] = "test"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "key" in vars(cls):
            cls.demo = demo_table(cls.key)

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.records: dict[str, dict[str, Any]] = {}
        self._next_id = 0
        # (API key, idempotency key) -> (payment id, first answer), for ``idempotent``
        self._replays: dict[tuple[str, str], tuple[str, Response]] = {}

    @classmethod  # noqa: B027
    def check_credentials(cls, credentials: dict[str, str]) -> None:
        """Refuse credential overrides the provider could never issue (ValueError)."""

    # -- request pipeline -------------------------------------------------------------

    @property
    def id_segment(self) -> int:
        """Where a get or cancel path holds the payment id."""
        return len(self.prefix)

    def classify(self, method: str, segments: tuple[str, ...]) -> str:
        """The op of a request: "token", "get", "list", "cancel" or "other"."""
        rest = route(segments, self.prefix)
        if rest is None:
            return "other"
        if method == "GET" and not rest and self.lists:
            return "list"
        if method == "GET" and len(rest) == 1:
            return "get"
        if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
            return "cancel"
        return "other"

    def handle(self, request: Request, op: str) -> Response:
        """Answer an authenticated request."""
        if op in ("get", "cancel"):
            payment_id = request.segments[self.id_segment]
            if op == "get":
                return self.get(request, payment_id)
            return self.cancel(request, payment_id)
        if op == "list":
            return self.list_payments(request)
        return self.no_route(request)

    def rate_key(self, request: Request, op: str) -> str | None:
        """The credential that ``requests_per_minute`` counts against; None: not limited
        (default: the bearer token)."""
        return bearer_token(request) or ""

    @abstractmethod
    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        """The provider's 429."""

    @abstractmethod
    def server_error(self, request: Request, status: int) -> Response:
        """The provider's 500/502/503, used by the ``fail_rate`` fault."""

    @abstractmethod
    def authenticate(self, request: Request, op: str) -> Response | None:
        """An error response when the request's credentials are missing or wrong."""

    def get(self, request: Request, payment_id: str) -> Response:
        """The provider's answer to a read of one payment."""
        record = self.find(request, payment_id)
        if record is None:
            return self.not_found(request, payment_id)
        return Response.json(200, self.view(record))

    def find(self, request: Request, payment_id: str) -> dict[str, Any] | None:
        """The stored payment ``request`` may see (default: any stored one)."""
        return self.records.get(payment_id)

    def view(self, record: dict[str, Any]) -> Any:
        """The body of a read's 200 (default: the record itself)."""
        return record

    @abstractmethod
    def not_found(self, request: Request, payment_id: str) -> Response:
        """The provider's 404 for a payment it does not have (or ``request`` may not see)."""

    def transition(self, request: Request, payment_id: str, **change: Any) -> Response:
        """A cancel's step through the state machine: not found; refused (``refuse``)
        from a state outside ``cancelable``; or applied (``cancelled``, given
        ``change``) and committed exactly once."""
        record = self.find(request, payment_id)
        if record is None:
            return self.not_found(request, payment_id)
        state = record[self.state_field]
        if state not in self.cancelable:
            return self.refuse(payment_id, state)
        answer = self.cancelled(record, **change)
        self.ctx.commit_cancel(payment_id)
        return answer

    def refuse(self, payment_id: str, state: str) -> Response:
        """The provider's refusal of a cancel from ``state`` (for ``transition``)."""
        raise NotImplementedError

    def cancelled(self, record: dict[str, Any], **change: Any) -> Response:
        """Cancel ``record`` in place; the provider's 200 (for ``transition``)."""
        raise NotImplementedError

    @abstractmethod
    def cancel(self, request: Request, payment_id: str) -> Response:
        """The provider's answer to a cancel (its state machine)."""

    def list_payments(self, request: Request) -> Response:
        return self.no_route(request)

    @abstractmethod
    def no_route(self, request: Request) -> Response:
        """The provider's 404 for a path it does not serve."""

    def json_body(
        self, request: Request, refuse: Callable[[str], Response]
    ) -> dict[str, Any] | Response:
        """The request's JSON object (empty: ``{}``), or ``refuse``'s answer."""
        try:
            body = parse_json(request.body)
        except BodyError:
            return refuse("The request body must be valid JSON.")
        if body is None:
            return {}
        if not isinstance(body, dict):
            return refuse("The request body must be a JSON object.")
        return body

    def idempotent(
        self,
        request: Request,
        payment_id: str,
        *,
        answer: Callable[[], Response],
        conflict: Callable[[], Response],
    ) -> Response:
        """Stripe-like ``Idempotency-Key``: the first answer is stored per API key and
        replayed for the same payment (``Idempotent-Replayed``); another payment gets
        ``conflict``.  Without a key every request is ``answer``ed afresh."""
        key = request.header("idempotency-key")
        if not key:
            return answer()
        slot = (bearer_token(request) or "", key)
        stored = self._replays.get(slot)
        if stored is not None:
            stored_payment, first = stored
            if stored_payment != payment_id:
                return conflict()
            return Response(
                first.status,
                first.body,
                {**first.headers, "Idempotent-Replayed": "true"},
                first.content_type,
            )
        first = answer()
        self._replays[slot] = (payment_id, first)
        return Response(first.status, first.body, dict(first.headers), first.content_type)

    def decorate(self, response: Response, decision: RateDecision) -> None:  # noqa: B027
        """Add rate-limit headers to every answer when a limit is set (default: none)."""

    def payment_id_of(self, request: Request, op: str) -> str | None:
        """The payment a get or cancel request is about."""
        if op not in ("get", "cancel") or len(request.segments) <= self.id_segment:
            return None
        return request.segments[self.id_segment]

    def mistype(self, body: Any) -> Any:
        """The ``wrong_types`` fault: ``body`` with a value of the wrong type where the
        client needs a number or a state (default: every number becomes a string; with
        ``mistyped`` = (id field, state field): a numeric state and no id)."""
        if self.mistyped is not None and isinstance(body, dict):
            id_field, state_field = self.mistyped
            return {**{k: v for k, v in body.items() if k != id_field}, state_field: 42}
        if isinstance(body, dict):
            return {k: self.mistype(v) for k, v in body.items()}
        if isinstance(body, list):
            return [self.mistype(v) for v in body]
        if isinstance(body, int | float) and not isinstance(body, bool):
            return "abc"
        if type(body).__name__ == "Decimal":
            return "abc"
        return body

    def special_fault(
        self, fault: PaymentFault, request: Request, op: str
    ) -> tuple[Response, bool]:
        """A simulator's own hostile answer; the bool asks to drop the connection."""
        raise ValueError(f"{self.key}: no fault {fault.kind!r}")

    # -- test and seeding API ---------------------------------------------------------

    def add_payment(self, fields: dict[str, Any]) -> str:
        """Store a payment built from ``Sandbox.add_payment`` keyword fields; its id."""
        return self._add(**fields)

    # Store one payment from the simulator's own keyword fields; its id.
    _add: Callable[..., str]

    def account(self, base_url: str) -> dict[str, str]:
        """The built-in account that points a client at this simulator."""
        return {
            "provider": self.key,
            "base_url": base_url,
            **self.ctx.credentials,
            **self.account_extra,
            "environment": self.environment,
        }

    def payment(self, payment_id: str) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.records[payment_id])
        except KeyError:
            raise KeyError(f"{self.key}: no payment {payment_id!r} in the sandbox") from None

    def seed_demo(self) -> None:
        for demo in self.demo:
            self.add_payment({**demo.fields, self.id_field: demo.payment_id})

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def claim_id(self, payment_id: str | None, generate: str) -> str:
        """``payment_id`` if free, else a fresh one from the ``generate`` pattern."""
        if payment_id is not None:
            if payment_id in self.records:
                raise ValueError(f"{self.key}: payment {payment_id!r} already exists")
            return payment_id
        while True:
            candidate = generate.format(n=self.next_id())
            if candidate not in self.records:
                return candidate


def error_answer(
    status: int,
    code: str,
    message: str,
    *,
    error_type: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The ``{"error": {"type"?, "code", "message", "details"?}}`` answer of the
    providers whose error bodies are Stripe-like (the keys in this order)."""
    body: dict[str, Any] = {} if error_type is None else {"type": error_type}
    body["code"] = code
    body["message"] = message
    if details is not None:
        body["details"] = details
    return Response.json(status, {"error": body}, headers=headers)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    value = request.header("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def route(segments: tuple[str, ...], prefix: tuple[str, ...]) -> tuple[str, ...] | None:
    """The segments after ``prefix``, or None when the path does not start with it."""
    if segments[: len(prefix)] != prefix:
        return None
    return segments[len(prefix) :]


def same_secret(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented credential with the expected one."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
