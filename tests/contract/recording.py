"""A transport that records every exchange as it was on the wire, wrapping the real one.

It sits where ``make_client`` puts the network transport, so everything paycancel's
client does (headers, body encoding, the per-account base URL) is in the request it
records, and the answer is the sandbox's own bytes over loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from paycancel_cli.config import Account
from paycancel_cli.httpclient import make_client
from paycancel_cli.providers import account_type, make_provider
from paycancel_cli.providers.base import Provider
from paycancel_cli.redact import Redactor
from paycancel_cli.sandbox import Sandbox

from .oas import Exchange


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, account: Account, log: list[Exchange]) -> None:
        self.account = account
        self.log = log
        self.inner = httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = await request.aread()
        response = await self.inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        self.log.append(
            Exchange(
                provider=self.account.provider,
                base_url=self.account.url,
                request=request,
                request_body=sent,
                status=response.status_code,
                headers=response.headers,
                body=body,
            )
        )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def sandbox_account(
    sandbox: Sandbox, provider: str, override: dict[str, str] | None = None
) -> Account:
    fields = {"name": provider, **sandbox.account_config()[provider], **(override or {})}
    return account_type(provider).model_validate(fields)


def with_adapter(
    sandbox: Sandbox,
    provider: str,
    log: list[Exchange],
    call: Callable[[Provider], Any],
    *,
    override: dict[str, str] | None = None,
) -> Any:
    """Run ``call`` with the real adapter and client against the sandbox, recording
    (``override``: account fields to change, e.g. a wrong secret)."""

    async def go() -> Any:
        account = sandbox_account(sandbox, provider, override)
        client = make_client(account, redactor=Redactor(), transport=Recording(account, log))
        async with client:
            return await call(make_provider(account, client))

    return asyncio.run(go())


@contextmanager
def recording_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Exchange]]:
    """Every client the CLI makes in this block records into the list yielded."""
    import paycancel_cli.session as session

    log: list[Exchange] = []

    def recording_make_client(account: Account, **kwargs: Any) -> httpx.AsyncClient:
        kwargs["transport"] = Recording(account, log)
        return make_client(account, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(session, "make_client", recording_make_client)
        yield log
