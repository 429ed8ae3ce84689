"""Fixtures for the sandbox tests: real servers on loopback, real HTTP through httpx.

``sb`` is a default sandbox (from ``make_sandbox``, in the suite's root conftest).
``api`` wraps an ``httpx.Client`` with each provider's valid credentials (override or
drop a header by passing it in ``headers``, ``None`` to drop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sandbox_helpers import Api, http_client

from paycancel_cli.sandbox import Sandbox


@pytest.fixture
def sb(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with http_client() as http:
        yield http


@pytest.fixture
def make_api(client: httpx.Client) -> Callable[[Sandbox], Api]:
    return lambda sandbox: Api(sandbox, client)


@pytest.fixture
def api(sb: Sandbox, client: httpx.Client) -> Api:
    return Api(sb, client)
