"""HTTP clients per account: timeouts, a client-side rate limit, request counting and
the ``--verbose`` exchange log.

The log goes through ``Redactor``: secret header values, every configured secret and
every access token obtained at run time are replaced before a line is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from paycancel_cli.redact import Redactor

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

    from paycancel_cli.config import Account

log = logging.getLogger("paycancel.http")

TOKEN_PATHS = ("/accesstoken/get",)
BODY_LOG_LIMIT = 2000


@dataclass
class Counter:
    requests: int = 0


def make_client(
    account: Account,
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
    return httpx.AsyncClient(
        base_url=account.url,
        timeout=httpx.Timeout(account.timeout_s, connect=min(10.0, account.timeout_s)),
        transport=transport,
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
