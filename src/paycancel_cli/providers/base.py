"""What every provider adapter shares: the Protocol, id checks, and the HTTP seam.

An adapter knows one provider's wire format and nothing else: it turns answers into
``Payment`` objects and error answers into the ``errors`` tree.  It takes an injected
``httpx.AsyncClient`` whose ``base_url`` is the account's URL, so tests can hand it an
``httpx.MockTransport`` or point it at the sandbox.

Transport failures become ``ProviderUnavailable``; ``ambiguous`` is set when a write
may have reached the provider (timeout while waiting for the answer, dropped
connection, 5xx), so the engine reads the payment back before sending again.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import httpx

from paycancel_cli.errors import (
    AuthError,
    InputError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from paycancel_cli.models import Payment

_FORBIDDEN = re.compile(r"[/?#%\\\s\x00-\x1f\x7f]")


class Capability(StrEnum):
    LIST_FOR_SUBSCRIPTION = "list_for_subscription"
    IDEMPOTENCY_KEY = "idempotency_key"
    CANCEL_RETURNS_PAYMENT = "cancel_returns_payment"


class Provider(Protocol):
    key: ClassVar[str]
    title: ClassVar[str]
    id_pattern: ClassVar[re.Pattern[str]]
    id_shape: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    # Seconds to wait at least between two cancel attempts on one payment.
    min_cancel_retry_s: ClassVar[float]

    def validate_id(self, payment_id: str) -> None: ...

    async def get(self, payment_id: str) -> Payment: ...

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        """Cancel and return the payment as it is after the cancel."""
        ...

    def list_for_subscription(self, subscription_id: str) -> AsyncIterator[Payment]: ...


class IdRules:
    """What every adapter shares: the id check from its ``id_pattern`` and ``id_shape``,
    and, for providers without a usable list API, a ``list_for_subscription`` that says
    so (adapters that can list override it and declare the capability)."""

    title: ClassVar[str]
    id_pattern: ClassVar[re.Pattern[str]]
    id_shape: ClassVar[str]
    no_list_reason: ClassVar[str] = "the provider has no list API"
    list_ids: ClassVar[str] = "payment ids"

    @classmethod
    def validate_id(cls, payment_id: str) -> None:
        check_id(payment_id, provider=cls.title, pattern=cls.id_pattern, shape=cls.id_shape)

    async def list_for_subscription(self, subscription_id: str) -> AsyncIterator[Payment]:
        raise InputError(f"{self.no_list_reason}; give a CSV of {self.list_ids} instead.")
        yield  # pragma: no cover


def error_object(body: Any) -> tuple[str | None, str]:
    """``(code, message)`` from the common ``{"error": {"code", "message"}}`` body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return err.get("code"), str(err.get("message") or err.get("code") or "error")
    return None, "no error details"


def check_id(payment_id: str, *, provider: str, pattern: re.Pattern[str], shape: str) -> None:
    """Refuse ids that could escape their path segment, then check the provider's format.

    Every provider's ``pattern`` excludes the forbidden characters by itself (a test
    holds each to it), so a full match alone accepts an id: the CSV reader's fast path.
    """
    safe = not _FORBIDDEN.search(payment_id) and ".." not in payment_id
    if safe and pattern.fullmatch(payment_id):
        return
    bad = _FORBIDDEN.search(payment_id)
    if not payment_id:
        problem = "is empty"
    elif bad is not None:
        problem = f"contains the character {bad.group()!r}, which a payment id never holds"
    elif ".." in payment_id:
        problem = "contains '..'"
    elif not pattern.fullmatch(payment_id):
        problem = f"is not a {provider} id ({shape})"
    else:
        return
    raise InputError(f"Payment id {payment_id!r} {problem}. Nothing was sent; check the id.")


def segment(payment_id: str) -> str:
    """One path segment, always percent-encoded (defence in depth after check_id)."""
    return quote(payment_id, safe="")


def parse_json(response: httpx.Response) -> Any:
    """JSON with decimals kept as ``Decimal``: money never passes through float."""
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The wait a 429 asks for: ``Retry-After`` (seconds or HTTP date), else
    ``X-RateLimit-Reset`` (unix seconds)."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                parsed = None  # unreadable: fall back to the reset header or backoff
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    provider: str,
    write: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; transport failures become ``ProviderUnavailable``."""
    try:
        return await client.request(method, path, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderUnavailable(
            f"{provider}: could not connect ({type(exc).__name__}); check the network "
            "or the account's base_url.",
            code="connect_error",
        ) from None
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(
            f"{provider}: no answer in time ({type(exc).__name__}).",
            code="timeout",
            ambiguous=write,
        ) from None
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"{provider}: the connection failed ({type(exc).__name__}).",
            code="connection_error",
            ambiguous=write,
        ) from None


def raise_for_common(
    response: httpx.Response,
    *,
    provider: str,
    account: str,
    describe: Callable[[Any], tuple[str | None, str]],
    write: bool = False,
) -> None:
    """Map the answers every provider shares: 401/403, 429 and 5xx.

    ``describe`` turns the provider's error body into ``(code, message)``.
    """
    status = response.status_code
    if status < 400:
        return
    code, message = describe(parse_json(response))
    if status in (401, 403):
        raise AuthError(
            f"{provider} rejected the credentials of account {account!r} "
            f"(HTTP {status}{', ' + code if code else ''}: {message}). Check the account's "
            "keys and that they belong to this environment."
        )
    if status == 429:
        raise RateLimited(
            f"{provider} rate limit reached: {message}",
            code=code or "rate_limited",
            retry_after=retry_after_seconds(response),
        )
    if status >= 500:
        raise ProviderUnavailable(
            f"{provider} is unavailable (HTTP {status}): {message}",
            code=code or f"http_{status}",
            http_status=status,
            ambiguous=write,
        )


def unexpected(
    response: httpx.Response, provider: str, code: str | None, message: str
) -> ProviderError:
    return ProviderError(
        f"{provider} answered HTTP {response.status_code}: {message}",
        code=code,
        http_status=response.status_code,
    )


def unreadable(provider: str, *, write: bool) -> ProviderError:
    """A 2xx answer whose body makes no sense.  After a write it is ambiguous: the
    cancel may have happened, so the engine reads the payment back."""
    if write:
        return ProviderUnavailable(
            f"{provider}: unreadable answer to the cancel", code="bad_response", ambiguous=True
        )
    return ProviderError(f"{provider}: unreadable answer", code="bad_response")
