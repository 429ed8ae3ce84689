"""What an independent validator (Prism, in front of the sandbox) found, one test each,
on the wire: the real adapter and client against the sandbox over loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from paycancel_cli.errors import PaycancelError
from paycancel_cli.sandbox import Sandbox

from .oas import Exchange
from .recording import with_adapter


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _get_and_cancel(sb: Sandbox, reference: str) -> list[Exchange]:
    log: list[Exchange] = []

    async def call(adapter):  # type: ignore[no-untyped-def]
        await adapter.get(reference)
        with contextlib.suppress(PaycancelError):  # a refusal is an answer too
            await adapter.cancel(reference, reason="r", idempotency_key="contract-key-1")

    with_adapter(sb, "vipps", log, call)
    return log


def test_vipps_cancel_sends_no_body_and_no_content_type(sb: Sandbox) -> None:
    """cancelPayment declares no requestBody: a strict server refuses any body."""
    log = _get_and_cancel(sb, "demo-authorized-0001")
    (cancel,) = [e for e in log if e.path.endswith("/cancel")]
    assert cancel.status == 200
    assert cancel.request_body == b""
    assert "content-type" not in cancel.request.headers
    assert cancel.request.headers["content-length"] == "0"  # a POST says it has no body


def test_vipps_accepts_problem_json_as_well_as_json(sb: Sandbox) -> None:
    """The spec declares AdjustResponse and every error as application/problem+json."""
    log = _get_and_cancel(sb, "demo-captured-0001")  # the cancel is refused: a problem
    assert [e.status for e in log] == [200, 200, 400]  # token, get, refused cancel
    for exchange in log:
        accept = parse_accept_header(exchange.request.headers.get("accept"), MIMEAccept)
        for media in ("application/json", "application/problem+json"):
            assert accept.best_match([media]) == media, (exchange.path, str(accept))
