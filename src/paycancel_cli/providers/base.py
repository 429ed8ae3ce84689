"""What every provider adapter shares: the Protocol, id checks, and the HTTP seam.

An adapter knows one provider's wire format and nothing else: it turns answers into
``Payment`` objects and error answers into the ``errors`` tree.  It takes an injected
``httpx.AsyncClient`` whose ``base_url`` is the account's URL, so tests can hand it an
``httpx.MockTransport`` or point it at the sandbox.

Transport failures become ``ProviderUnavailable``; ``ambiguous`` is set when a write
may have reached the provider (timeout while waiting for the answer, dropped
connection, 5xx), so the engine reads the payment back before sending again.

Parsing is total: whatever an answer holds (an HTML page, truncated or wrongly typed
JSON, an empty body, a payment other than the one asked for, an unknown state), an
adapter turns it into a ``Payment`` for the id asked or a ``ProviderError`` naming the
provider, the payment and what was wrong (``bad_answer``).  After a write the same
answer is ambiguous (the cancel may have happened), so the engine reads back.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from paycancel_cli.errors import (
    AuthError,
    InputError,
    NotFound,
    PaycancelError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from paycancel_cli.httpclient import MAX_BODY_BYTES, BodyTooLarge
from paycancel_cli.models import Money, Payment, PaymentStatus
from paycancel_cli.providers.accounts import AccountBase

_FORBIDDEN = re.compile(r"[/?#%\\\s\x00-\x1f\x7f]")


class Capability(StrEnum):
    LIST_FOR_SUBSCRIPTION = "list_for_subscription"
    # The cancel carries an Idempotency-Key, so a re-sent cancel is never applied twice.
    # What a repeat answers differs (Vipps: the first result; HedgePayments: possibly a
    # 409 conflict), so the engine never infers anything from a replayed answer.
    IDEMPOTENCY_KEY = "idempotency_key"
    CANCEL_RETURNS_PAYMENT = "cancel_returns_payment"
    # A bulk run may send the cancel without reading first: by the provider's documents
    # a success answer is always this cancel's own (never a no-op on a payment cancelled
    # before) and ``cancel`` returns the after state, and a refusal is classified from
    # its code (``NotCancellable.already_cancelled``) or from one read after it.
    CANCEL_FIRST = "cancel_first"


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

    async def probe(self) -> None:
        """`config check`'s one harmless authenticated request (see ``probe_sent``)."""
        ...


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
        code = text_or_none(err.get("code"))
        return code, text_or_none(err.get("message")) or code or "error"
    return None, "no error details"


def text_or_none(value: Any, limit: int = 500) -> str | None:
    """A provider's error text: strings only, cut to ``limit`` characters."""
    if isinstance(value, str) and value.strip():
        return value.strip()[:limit]
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)[:limit]
    return None


def describe_error(
    response: httpx.Response, describe: Callable[[Any], tuple[str | None, str]]
) -> tuple[str | None, str]:
    """``(code, message)`` of an error answer, whatever its body holds."""
    body = parse_json(response)
    if body is None:
        return None, body_problem(response)
    try:
        return describe(body)
    except Exception:  # a describe function must never hide the answer's status
        return None, "an error body of an unexpected shape"


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
    """JSON with decimals kept as ``Decimal``: money never passes through float.
    ``None`` when the body is empty or not JSON (``body_problem`` says which)."""
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def body_problem(response: httpx.Response) -> str:
    """What is wrong with a body that ``parse_json`` could not read, in a few words."""
    content = response.content
    if not content.strip():
        return "an empty body"
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    head = content.lstrip()[:64].lower()
    if kind == "text/html" or head.startswith((b"<!doctype html", b"<html", b"<")):
        title = re.search(rb"<title>([^<]{1,120})</title>", content[:4096], re.IGNORECASE)
        named = f" ({title.group(1).decode('utf-8', 'replace').strip()})" if title else ""
        return f"an HTML page{named}, not JSON (a proxy or gateway error page?)"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return f"{len(content)} bytes that are not UTF-8 text"
    try:
        json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or _unclosed(text):
            return f"JSON cut off after {len(content)} bytes (a truncated answer)"
        return f"malformed JSON ({exc.msg} at character {exc.pos})"
    except (ValueError, RecursionError) as exc:
        return f"unreadable JSON ({type(exc).__name__})"
    return "JSON of an unexpected shape"


def _unclosed(text: str) -> bool:
    """True when ``text`` ends inside a string or with a bracket still open: JSON that
    stopped half-way rather than JSON that is wrong."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return in_string or depth > 0


def describe_json(value: Any) -> str:
    """A short, safe description of a JSON value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return f"the number {value}" if len(str(value)) <= 24 else "a long number"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Malformed(Exception):
    """Raised by the field readers below; adapters turn it into a ``ProviderError``."""


def shown(data: dict[str, Any], key: str) -> str:
    """What an answer holds at ``key``, for a message: its description, or "missing"."""
    return describe_json(data[key]) if key in data else "missing"


def not_a(data: dict[str, Any], key: str, what: str) -> Malformed:
    """The field ``key`` is not ``what`` (``a string``, ``a state``, ...)."""
    return Malformed(f"{key} is {shown(data, key)}, not {what}")


def want_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is {describe_json(value)}, not an object")
    return value


def want_str(data: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    """A string; an optional one may be missing, null or empty (a schema without
    ``minLength`` allows ``""``: FlexPortal's consolidated payments carry ``rentalId:
    ""``), all three meaning "not given"."""
    value = data.get(key)
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str):
        raise not_a(data, key, "a string")
    if not value:
        raise Malformed(f"{key} is empty")
    return value


def want_minor(data: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    """An amount in integer minor units (a JSON integer, ``12.0`` accepted)."""
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise not_a(data, key, "an amount in minor units")
    if value < 0:
        raise Malformed(f"{key} is negative ({value})")
    return value


def want_major(data: dict[str, Any], key: str, *, optional: bool = False) -> Decimal | None:
    """A decimal amount in major units (a JSON number; money never through float)."""
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise not_a(data, key, "an amount")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0 or amount.adjusted() > 15:
        raise Malformed(f"{key} is {describe_json(value)}, not a plausible amount")
    return amount


def minor_money(data: dict[str, Any], key: str, currency: str) -> Money | None:
    """An optional amount in integer minor units, as ``Money`` in ``currency``."""
    minor = want_minor(data, key, optional=True)
    return None if minor is None else Money.from_minor(minor, currency)


def want_currency(data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise Malformed(f"{key} is {describe_json(value)}, not a currency code")
    return value.upper()


def want_state(data: dict[str, Any], key: str, known: Iterable[str]) -> str:
    """A state from the provider's documented set; anything else is not a verdict."""
    value = data.get(key)
    if not isinstance(value, str):
        raise not_a(data, key, "a state")
    if value not in known:
        raise Malformed(f"{key} {value[:40]!r} is not a state the provider documents")
    return value


def want_same_id(
    data: dict[str, Any], key: str, asked: str | None, *, fold_case: bool = False
) -> str:
    """The answer's id, which must be the one asked for (``None``: any valid id)."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"the payment id ({key}) is {shown(data, key)}")
    if asked is not None:
        same = value.lower() == asked.lower() if fold_case else value == asked
        if not same:
            raise Malformed(f"it describes payment {value[:80]!r}, not the one asked for")
    return value


def bad_answer(
    provider: str, payment_id: str, problem: str, *, write: bool, status: int | None = None
) -> ProviderError:
    """An answer that does not describe the payment asked for.  After a write it is
    ambiguous: the cancel may have happened, so the engine reads the payment back."""
    where = "to the cancel of" if write else "about"
    http = f" (HTTP {status})" if status is not None else ""
    message = f"{provider}: the answer{http} {where} payment {payment_id} is unusable: {problem}"
    if write:
        return ProviderUnavailable(message, code="bad_answer", http_status=status, ambiguous=True)
    return ProviderError(message, code="bad_answer", http_status=status)


def unusable_body(
    response: httpx.Response, provider: str, payment_id: str, *, write: bool
) -> ProviderError:
    """A 2xx answer whose body is not a JSON object."""
    body = parse_json(response)
    problem = body_problem(response) if body is None else f"{describe_json(body)}, not an object"
    return bad_answer(provider, payment_id, problem, write=write, status=response.status_code)


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
    except BodyTooLarge:
        message = (
            f"{provider}: the answer was larger than {MAX_BODY_BYTES // 1024} KiB; "
            "stopped reading it"
        )
        if write:
            raise ProviderUnavailable(message, code="body_too_large", ambiguous=True) from None
        raise ProviderError(message, code="body_too_large") from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderUnavailable(
            f"{provider}: could not connect ({type(exc).__name__}); check the network "
            "or the account's base_url.",
            code="connect_error",
        ) from None
    except httpx.TimeoutException as exc:
        detail = str(exc) if "within" in str(exc) else type(exc).__name__
        raise ProviderUnavailable(
            f"{provider}: no answer in time ({detail}).",
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
    code, message = describe_error(response, describe)
    if status in (401, 403):
        raise AuthError(
            f"{provider} rejected the credentials of account {account!r} "
            f"(HTTP {status}{', ' + code if code else ''}: {message}). Check the account's "
            "keys and that they belong to this environment.",
            http_status=status,
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


class Adapter(IdRules):
    """One provider's adapter: this base owns send -> check -> parse -> classify; a
    provider declares its paths, its auth headers, its error body (``describe``), its
    not-found and refusal mapping, how it parses a payment and its pre-flight probe.

    ``_ok`` is the one check of an answer: the shared 401/403, 429 and 5xx, a 2xx body
    that must be a JSON object, then not found, then the provider's refusals, and
    anything else is unexpected.
    """

    key: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    min_cancel_retry_s: ClassVar[float] = 0.0
    # The provider's account: its config fields, secrets, hosts and default URL.
    account_type: ClassVar[type[AccountBase]]
    # A payment's path, ``{id}`` standing for the (percent-encoded) id: a GET reads it,
    # a POST to its ``/cancel`` cancels it.
    path: ClassVar[str]
    # What a payment is called in "not found" messages, the codes besides HTTP 404 that
    # mean not found, and the code a not-found answer gets when its body names none.
    noun: ClassVar[str] = "payment"
    not_found_codes: ClassVar[frozenset[str]] = frozenset()
    not_found_code: ClassVar[str] = "not_found"
    not_found_code_always: ClassVar[bool] = False  # ignore the body's code for a 404
    # `config check`: a payment id of the provider's shape that no real payment has.
    probe_id: ClassVar[str]
    # The headers that authenticate every request, each a template over the account's
    # fields ("Bearer {api_key}"; a secret field stands for its value).
    auth: ClassVar[dict[str, str]] = {}

    def __init__(self, account: Any, client: httpx.AsyncClient) -> None:
        self.account = account
        self.client = client

    # -- what a provider declares -------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """The declared ``auth`` headers, filled in from the account."""
        fields = _AccountFields(self.account)
        return {name: template.format_map(fields) for name, template in self.auth.items()}

    @staticmethod
    def describe(body: Any) -> tuple[str | None, str]:
        """``(code, message)`` of the provider's error body."""
        return error_object(body)

    def cancel_request(self, reason: str, idempotency_key: str) -> dict[str, Any]:
        """The cancel's extra request arguments (``json``, ``headers``); none by default."""
        return {}

    def not_found_scope(self) -> str:
        """Where the payment was looked for, for the not-found message (" in ...")."""
        return ""

    def refusal(
        self, response: httpx.Response, payment_id: str, error: ErrorAnswer, *, write: bool
    ) -> PaycancelError | None:
        """The provider's refusal for this error answer, if it is one."""
        return None

    def read(self, body: dict[str, Any], asked: str | None) -> Payment:
        """The payment an answer's body describes, which must be ``asked`` (``None``: a
        listed item); raises ``Malformed`` saying what is wrong."""
        raise NotImplementedError

    @classmethod
    def probe_sent(cls) -> str:
        """What `config check` sends, for the README and `config check --help`."""
        path = cls.path.format(id=cls.probe_id)
        return f"GET {path} (404 expected)"

    # -- what the base owns -------------------------------------------------------------

    def payment(
        self,
        payment_id: str,
        native: str,
        verdict: tuple[PaymentStatus, bool, str | None],
        **amounts: Any,
    ) -> Payment:
        """A ``Payment`` of this account: ``verdict`` is (status, cancelable, why not)."""
        status, cancelable, why = verdict
        return Payment(
            account=self.account.name,
            provider=self.key,
            payment_id=payment_id,
            status=status,
            native_status=native,
            cancelable=cancelable,
            why_not=why,
            **amounts,
        )

    def parse(self, body: dict[str, Any], asked: str | None, *, write: bool = False) -> Payment:
        """The payment ``read`` finds in an answer's body; anything wrong with it is
        ``bad_answer`` (ambiguous after a write)."""
        try:
            return self.read(body, asked)
        except Malformed as exc:
            raise bad_answer(self.title, asked or "(listed)", str(exc), write=write) from None

    async def get(self, payment_id: str) -> Payment:
        self.validate_id(payment_id)
        response = await self._send("GET", self.path.format(id=segment(payment_id)))
        return self.parse(self._ok(response, payment_id), payment_id)

    async def cancel(self, payment_id: str, *, reason: str, idempotency_key: str) -> Payment:
        self.validate_id(payment_id)
        response = await self._send(
            "POST",
            self.path.format(id=segment(payment_id)) + "/cancel",
            write=True,
            **self.cancel_request(reason, idempotency_key),
        )
        return await self.after_cancel(response, payment_id)

    async def after_cancel(self, response: httpx.Response, payment_id: str) -> Payment:
        """The payment after a cancel: by default the one the answer holds."""
        return self.parse(self._ok(response, payment_id, write=True), payment_id, write=True)

    async def probe(self) -> None:
        # A 404 means the credentials were accepted; the payment was never there.
        with contextlib.suppress(NotFound):
            await self.get(self.probe_id)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        write: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return await send(
            self.client,
            method,
            path,
            provider=self.title,
            write=write,
            headers={**self.auth_headers(), **(headers or {})},
            **kwargs,
        )

    def _ok(self, response: httpx.Response, payment_id: str, *, write: bool = False) -> Any:
        raise_for_common(
            response,
            provider=self.title,
            account=self.account.name,
            describe=self.describe,
            write=write,
        )
        body = parse_json(response)
        if response.status_code < 300:
            if isinstance(body, dict):
                return body
            raise unusable_body(response, self.title, payment_id, write=write)
        code, message = describe_error(response, self.describe)
        if response.status_code == 404 or code in self.not_found_codes:
            raise NotFound(
                f"{self.title}: {self.noun} {payment_id} not found{self.not_found_scope()} "
                f"({message})",
                code=self.not_found_code
                if self.not_found_code_always
                else code or self.not_found_code,
                http_status=response.status_code,
            )
        refused = self.refusal(response, payment_id, ErrorAnswer(code, message, body), write=write)
        if refused is not None:
            raise refused
        raise unexpected(response, self.title, code, message)


class _AccountFields(dict[str, str]):
    """An account's fields by name for ``str.format_map``, secrets as their values."""

    def __init__(self, account: Any) -> None:
        super().__init__()
        self.account = account

    def __missing__(self, name: str) -> str:
        value = getattr(self.account, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@dataclass(frozen=True)
class ErrorAnswer:
    """An error answer as an adapter's ``refusal`` sees it."""

    code: str | None
    message: str
    body: Any
