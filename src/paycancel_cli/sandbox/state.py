"""Shared plumbing of the sandbox: fault config, request/response values, rate limiter, JSON.

Invariants:
- Nothing here locks. Every mutable object in this module (``SlidingWindowLimiter``,
  ``SimContext`` and the stores the provider simulators keep) is only touched while the
  owning ``Sandbox`` holds its one ``threading.Lock``.
- Money never passes through ``float``. ``dumps`` refuses floats and writes a
  ``Decimal`` by its exact text as a JSON number (``Decimal("258.00")`` -> ``258.00``);
  ``parse_json`` reads JSON numbers with a fraction as ``Decimal``.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

RATE_WINDOW_S: Final = 60.0
CENT: Final = Decimal("0.01")


GENERIC_FAULTS: Final = frozenset(
    {"html_502", "truncated", "empty", "wrong_types", "oversized", "stall"}
)
FAULT_OPS: Final = frozenset({"get", "cancel", "any"})
OVERSIZED_BYTES: Final = 5 * 1024 * 1024


@dataclass
class PaymentFault:
    """One hostile answer, for one payment, on demand.

    ``kind`` is one of ``GENERIC_FAULTS`` (every simulator) or one of the simulator's
    own ``special_faults`` (Vipps ``locked_423``, ``order_processing_6160``,
    ``gateway_error``; Flex ``error_shape``; HedgePayments ``conflict_409``).
    ``op`` picks the requests it hits ("get", "cancel" or "any"); ``times`` how many
    (None: all).  On a cancel, ``apply`` says whether the cancel is applied before the
    hostile answer goes out (default: yes, except ``html_502``, a proxy that never
    reached the provider).  ``status`` overrides the HTTP status of ``html_502`` and
    ``gateway_error``; ``stall_s`` is how long a ``stall`` trickles its body.

    - ``html_502``: a proxy's HTML error page; ``truncated``: the real answer cut in
      half; ``empty``: 200 with no body; ``wrong_types``: the real answer with its
      amount or state replaced by a value of the wrong type (and, for Vipps and
      Compago, the id left out); ``oversized``: a 5 MiB answer; ``stall``: headers
      and half the body, then one byte every 0.2 s until ``stall_s``, then the
      connection is closed.
    """

    kind: str
    op: str = "get"
    times: int | None = None
    apply: bool | None = None
    status: int | None = None
    stall_s: float = 30.0

    def __post_init__(self) -> None:
        if self.op not in FAULT_OPS:
            raise ValueError(f"op must be one of {sorted(FAULT_OPS)}, not {self.op!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None: every request)")

    @property
    def applies(self) -> bool:
        return self.kind != "html_502" if self.apply is None else self.apply

    def hits(self, op: str) -> bool:
        return self.op == "any" or self.op == op


@dataclass
class Faults:
    """Faults the sandbox injects; one ``random.Random(seed)`` drives every draw.

    ``fail_rate`` answers 500/502/503 before any state change. ``timeout_rate`` sleeps
    ``hang_s`` first and then handles the request normally (so a client that timed out
    may still see its cancel applied later, as with a slow real provider).
    ``drop_rate`` applies to cancels only: the cancel is handled and committed, then the
    connection is closed without a single response byte.  ``commit_delay_ms`` holds the
    answer of every successful cancel that long after its commit (a window in which a
    client can die between the provider's commit and its answer).  ``payments`` holds
    per-payment hostile answers (``PaymentFault``), drawn without randomness.
    """

    latency_ms: int = 0
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    hang_s: float = 5.0
    seed: int = 0
    commit_delay_ms: int = 0
    # Per payment: (provider, payment id) -> its hostile answers (``Sandbox.add_fault``).
    payments: dict[tuple[str, str], list[PaymentFault]] = field(default_factory=dict)
    # Vipps: tokens stop working this many seconds after issue, whatever ``expires_in``
    # said (a token the client still believes valid gets 401).
    token_max_age_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("fail_rate", "timeout_rate", "drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate!r}")
        if self.latency_ms < 0 or self.hang_s < 0 or self.commit_delay_ms < 0:
            raise ValueError("latency_ms and hang_s must not be negative")


@dataclass
class RecordedRequest:
    """One request as the sandbox received it; ``status`` is 0 when no answer was written."""

    provider: str
    op: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0


@dataclass(frozen=True)
class Request:
    """A parsed request, already stripped of its provider prefix.

    ``segments`` are the percent-decoded path segments after the prefix, e.g.
    ``["v1", "payments", "fpay_x", "cancel"]``; ``headers`` have lower-case names.
    """

    method: str
    path: str
    segments: tuple[str, ...]
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def json(
        cls,
        status: int,
        payload: object,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        return cls(status, dumps(payload), dict(headers or {}), content_type)


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one rate-limit check.

    ``retry_after_s`` is the whole number of seconds (at least 1) until the oldest
    request leaves the window; ``reset_epoch`` is that moment as unix seconds.
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    reset_epoch: int


class SlidingWindowLimiter:
    """A sliding-window request counter per key. Rejected requests do not count."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self._window_s = window_s
        self._hits: dict[object, deque[float]] = {}

    def hit(self, key: object, limit: int, now: float | None = None) -> RateDecision:
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._window_s:
            hits.popleft()
        allowed = len(hits) < limit
        if allowed:
            hits.append(now)
        wait = hits[0] + self._window_s - now if hits else self._window_s
        retry_after = max(1, math.ceil(wait))
        return RateDecision(
            allowed=allowed,
            limit=limit,
            remaining=max(0, limit - len(hits)),
            retry_after_s=retry_after,
            reset_epoch=math.ceil(time.time() + wait),
        )


@dataclass
class SimContext:
    """What a provider simulator gets from the sandbox: its credentials and two hooks."""

    credentials: dict[str, str]
    commit_cancel: Callable[[str], None]
    token_ttl_s: int = 3600
    token_max_age_s: float | None = None


class BodyError(ValueError):
    """The request body is not the JSON the endpoint expects."""


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; an empty body is ``None``. Fractions become ``Decimal``."""
    if not body.strip():
        return None

    def reject_constant(name: str) -> Any:
        raise BodyError(f"invalid JSON constant {name}")

    try:
        return json.loads(body, parse_float=Decimal, parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError("request body is not valid JSON") from exc


def dumps(value: object, *, sort_keys: bool = False) -> bytes:
    """Serialize to compact JSON; ``Decimal`` is written as its exact text, floats refused."""
    out: list[str] = []
    _encode(value, out, sort_keys)
    return "".join(out).encode("utf-8")


def _encode(value: object, out: list[str], sort_keys: bool) -> None:
    if isinstance(value, Mapping):
        _encode_object(value, out, sort_keys)
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out, sort_keys)
        out.append("]")
    else:
        out.append(_scalar(value))


def _encode_object(value: Mapping[Any, Any], out: list[str], sort_keys: bool) -> None:
    items = sorted(value.items()) if sort_keys else list(value.items())
    out.append("{")
    for index, (key, item) in enumerate(items):
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
        if index:
            out.append(",")
        out.append(json.dumps(key))
        out.append(":")
        _encode(item, out, sort_keys)
    out.append("}")


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode non-finite Decimal {value!r}")
        return format(value, "f")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed on the sandbox's wire; use Decimal or int")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def money(value: Decimal | str | int) -> Decimal:
    """A major-unit amount with exactly two decimals (no float accepted)."""
    if isinstance(value, float):
        raise TypeError("money must be Decimal, str or int, never float")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"invalid amount {value!r}")
    return amount.quantize(CENT)


def iso_at(moment: datetime) -> str:
    """A timestamp as the providers write one: ``2025-01-01T08:00:00.000Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch_now() -> int:
    return int(time.time())
