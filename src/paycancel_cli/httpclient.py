"""HTTP clients per account: timeouts, a client-side rate limit, request counting and
the ``--verbose`` exchange log.

Every exchange is bounded twice by ``Bounded``, below the rate limiter: the whole of it
(connect, send, headers and body) must finish within the account's ``timeout_s``, so a
body trickling a byte at a time cannot hold a worker (httpx's timeouts bound each read,
not their sum); and a body is read at most ``MAX_BODY_BYTES`` far, then dropped.

The log goes through ``Redactor``: secret header values, every configured secret and
every access token obtained at run time are replaced before a line is written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from paycancel_cli.redact import Redactor

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter


log = logging.getLogger("paycancel.http")

TOKEN_PATHS = ("/accesstoken/get",)
BODY_LOG_LIMIT = 2000
# The largest answer a provider sends is a FlexPortal list page of 100 payments (~200 kB).
MAX_BODY_BYTES = 1 << 20


class BodyTooLarge(httpx.TransportError):
    """An answer's body went past ``MAX_BODY_BYTES``; the rest was not read."""


class Bounded(httpx.AsyncBaseTransport):
    """A transport that reads each answer whole, within a deadline and a size cap."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, *, deadline_s: float, max_bytes: int
    ) -> None:
        self.inner = inner
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with asyncio.timeout(self.deadline_s):
                response = await self.inner.handle_async_request(request)
                stream = response.stream
                assert isinstance(stream, httpx.AsyncByteStream)
                try:
                    body = await self._read(response, stream, request)
                finally:
                    await stream.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"no complete answer within {self.deadline_s:g} s", request=request
            ) from None
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(body),
            extensions=response.extensions,
        )

    async def _read(
        self, response: httpx.Response, stream: httpx.AsyncByteStream, request: httpx.Request
    ) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise BodyTooLarge(f"declared {int(declared)} bytes", request=request)
        chunks: list[bytes] = []
        size = 0
        async for chunk in stream:
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge(f"more than {self.max_bytes} bytes", request=request)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ClientAccount(Protocol):
    """What a client needs of an account."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def timeout_s(self) -> float: ...

    def secrets(self) -> list[str]: ...


@dataclass
class Counter:
    requests: int = 0


def make_client(
    account: ClientAccount,
    *,
    redactor: Redactor,
    counter: Counter | None = None,
    limiter: AsyncLimiter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """One ``AsyncClient`` for one account, its base URL being the account's URL."""

    async def on_request(request: httpx.Request) -> None:
        if limiter is not None:
            await limiter.acquire()
        if counter is not None:
            counter.requests += 1
        if log.isEnabledFor(logging.DEBUG):
            body = _body_text(request.url.path, request.content)
            log.debug(
                "%s -> %s %s | %s%s",
                account.name,
                request.method,
                redactor(str(request.url)),
                redactor.headers(request.headers.items()),
                f" | body {redactor(body)}" if body else "",
            )

    async def on_response(response: httpx.Response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            await response.aread()
            request = response.request
            body = _body_text(request.url.path, response.content)
            log.debug(
                "%s <- %s %s %s | %s%s",
                account.name,
                response.status_code,
                request.method,
                redactor(str(request.url)),
                redactor.headers(response.headers.items()),
                f" | body {redactor(body)}" if body else "",
            )

    for secret in account.secrets():
        redactor.add(secret)
    inner = transport or httpx.AsyncHTTPTransport(trust_env=False)
    return httpx.AsyncClient(
        base_url=account.url,
        timeout=httpx.Timeout(account.timeout_s, connect=min(10.0, account.timeout_s)),
        transport=Bounded(inner, deadline_s=account.timeout_s, max_bytes=MAX_BODY_BYTES),
        event_hooks={"request": [on_request], "response": [on_response]},
        headers={"User-Agent": "paycancel", "Accept": "application/json"},
        follow_redirects=False,
        trust_env=False,
    )


def _body_text(path: str, content: bytes) -> str:
    if not content:
        return ""
    if path.endswith(TOKEN_PATHS):
        return "[token body redacted]"
    text = content[:BODY_LOG_LIMIT].decode("utf-8", "replace")
    return text + ("..." if len(content) > BODY_LOG_LIMIT else "")
