"""One invocation's connections: an HTTP client and adapter per account, the redactor
that knows every secret, and the request counter.

Clients are made on first use, so a command touching one account opens one client.

A command that asks the operator something between two network phases keeps one
session open across several ``asyncio.Runner.run`` calls (``running``) and asks
between them, outside the event loop: inside it, asyncio's SIGINT handler only
cancels the task, and a prompt blocked in a read would not notice Ctrl-C.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from paycancel_cli.httpclient import Counter, make_client
from paycancel_cli.redact import Redactor

if TYPE_CHECKING:
    import asyncio

    import httpx
    from aiolimiter import AsyncLimiter

    from paycancel_cli.config import Account, Config
    from paycancel_cli.providers.base import Provider

TransportFactory = Callable[["Account"], "httpx.AsyncBaseTransport | None"]


class Session:
    def __init__(
        self,
        config: Config,
        *,
        redactor: Redactor | None = None,
        transport: TransportFactory | None = None,
        rate_limit: bool = True,
    ) -> None:
        self.config = config
        self.redactor = redactor or Redactor()
        for secret in config.secrets():
            self.redactor.add(secret)
        self.counter = Counter()
        self._transport = transport
        self._rate_limit = rate_limit
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._providers: dict[str, Provider] = {}

    def provider(self, account_name: str) -> Provider:
        if account_name not in self._providers:
            from paycancel_cli.providers import make_provider

            account = self.config.account(account_name)
            client = make_client(
                account,
                redactor=self.redactor,
                counter=self.counter,
                limiter=self._limiter(account),
                transport=self._transport(account) if self._transport else None,
            )
            self._clients[account_name] = client
            provider = make_provider(account, client)
            on_token = getattr(provider, "on_token", None)
            if isinstance(on_token, list):
                on_token.append(self.redactor.add)
            self._providers[account_name] = provider
        return self._providers[account_name]

    def _limiter(self, account: Account) -> AsyncLimiter | None:
        if not self._rate_limit or not account.requests_per_minute:
            return None
        from aiolimiter import AsyncLimiter

        # A leaky bucket of capacity C and rate r lets C + r*W requests into any window W,
        # so a burst allowance would overshoot a provider's window once the run is at full
        # speed.  Capacity 1 (evenly spaced requests) with 2% headroom stays under it.
        rate = account.requests_per_minute * 0.98
        return AsyncLimiter(1, 60.0 / rate)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._providers.clear()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@contextlib.contextmanager
def running(runner: asyncio.Runner, session: Session) -> Iterator[Session]:
    """``session`` open on ``runner``'s loop until the block ends; its clients are
    closed on that loop whatever ends the block (an answer, Ctrl-C at a prompt)."""
    try:
        yield session
    finally:
        runner.run(session.aclose())
