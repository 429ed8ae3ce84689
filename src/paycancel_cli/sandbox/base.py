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
from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

from paycancel_cli.sandbox.state import (
    PaymentFault,
    RateDecision,
    Request,
    Response,
    SimContext,
)


class DemoPayment(NamedTuple):
    """One seeded demo payment: its id, a short description and ``add_payment`` fields."""

    payment_id: str
    description: str
    fields: dict[str, Any]


class ProviderSim(ABC):
    """One provider's simulator, mounted by the ``Sandbox`` under ``/<key>``."""

    key: ClassVar[str]
    id_field: ClassVar[str] = "payment_id"
    demo: ClassVar[tuple[DemoPayment, ...]] = ()
    # Where a get or cancel path holds the payment id, e.g. v1/payments/{id}: 2.
    id_segment: ClassVar[int] = 2
    special_faults: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.records: dict[str, dict[str, Any]] = {}
        self._next_id = 0

    # -- request pipeline -------------------------------------------------------------

    @abstractmethod
    def classify(self, method: str, segments: tuple[str, ...]) -> str:
        """The op of a request: "token", "get", "list", "cancel" or "other"."""

    @abstractmethod
    def rate_key(self, request: Request, op: str) -> str | None:
        """The credential that ``requests_per_minute`` counts against; None: not limited."""

    @abstractmethod
    def too_many_requests(self, request: Request, decision: RateDecision) -> Response:
        """The provider's 429."""

    @abstractmethod
    def server_error(self, request: Request, status: int) -> Response:
        """The provider's 500/502/503, used by the ``fail_rate`` fault."""

    @abstractmethod
    def authenticate(self, request: Request, op: str) -> Response | None:
        """An error response when the request's credentials are missing or wrong."""

    @abstractmethod
    def handle(self, request: Request, op: str) -> Response:
        """Answer an authenticated request."""

    def decorate(self, response: Response, decision: RateDecision) -> None:  # noqa: B027
        """Add rate-limit headers to every answer when a limit is set (default: none)."""

    def payment_id_of(self, request: Request, op: str) -> str | None:
        """The payment a get or cancel request is about."""
        if op not in ("get", "cancel") or len(request.segments) <= self.id_segment:
            return None
        return request.segments[self.id_segment]

    def mistype(self, body: Any) -> Any:
        """The ``wrong_types`` fault: ``body`` with a value of the wrong type where the
        client needs a number or a state (default: every number becomes a string)."""
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

    @abstractmethod
    def add_payment(self, fields: dict[str, Any]) -> str:
        """Store a payment built from ``Sandbox.add_payment`` keyword fields; its id."""

    @abstractmethod
    def account(self, base_url: str) -> dict[str, str]:
        """The built-in account that points a client at this simulator."""

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
