"""Rate limiting: a sliding 60 s window per credential, with each provider's own 429."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sandbox_helpers import Api

from paycancel_cli.sandbox import Sandbox
from paycancel_cli.sandbox.state import SlidingWindowLimiter


@pytest.fixture
def limited(make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api]) -> Api:
    return make_api(make_sandbox(requests_per_minute=2))


def exhaust(api: Api, provider: str, payment_id: str) -> httpx.Response:
    for _ in range(2):
        assert api.get_payment(provider, payment_id).status_code == 200
    return api.get_payment(provider, payment_id)


def assert_retry_after(response: httpx.Response) -> None:
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_flexportal_429(limited: Api) -> None:
    response = exhaust(limited, "flexportal", "fpay_demo_paid_01")
    assert response.status_code == 429
    assert_retry_after(response)
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert response.json()["error"]["message"]


def test_hedgepayments_429_and_headers(limited: Api) -> None:
    first = limited.get_payment("hedgepayments", "pay_demopending01")
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    second = limited.get_payment("hedgepayments", "pay_demopending01")
    assert second.headers["X-RateLimit-Remaining"] == "0"
    response = limited.get_payment("hedgepayments", "pay_demopending01")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.headers["X-RateLimit-Limit"] == "2"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    reset = int(response.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert isinstance(error["details"]["retry_after"], int)
    assert 1 <= error["details"]["retry_after"] <= 60


def test_hedgepayments_headers_absent_without_a_limit(api: Api) -> None:
    response = api.get_payment("hedgepayments", "pay_demopending01")
    assert "X-RateLimit-Limit" not in response.headers


def test_flex_429(limited: Api) -> None:
    response = exhaust(limited, "flex", "fpi_demo_succeeded_01")
    assert response.status_code == 429
    assert_retry_after(response)
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.json()["error"]["code"] == "rate_limit"


def test_vipps_429_is_a_problem_without_retry_after(limited: Api) -> None:
    limited.vipps_token()  # counted per client_id, not against the MSN's GETs
    response = exhaust(limited, "vipps", "demo-authorized-0001")
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429
    assert "Retry-After" not in response.headers


def test_vipps_cancels_only_obey_the_per_reference_limit(limited: Api) -> None:
    limited.vipps_token()
    for reference in ("demo-authorized-0001", "demo-created-0001", "demo-partcapture-0001"):
        assert limited.cancel("vipps", reference).status_code == 200


def test_compago_429(limited: Api) -> None:
    response = exhaust(limited, "compago", "7d3f0b4e-0000-4000-8000-000000000003")
    assert response.status_code == 429
    assert_retry_after(response)
    assert response.json() == {
        "statusCode": 429,
        "message": "Too Many Requests",
        "error": "Too Many Requests",
    }


def test_limit_is_per_credential_and_per_provider(limited: Api) -> None:
    assert exhaust(limited, "flex", "fpi_demo_succeeded_01").status_code == 429
    other_key = limited.get_payment(
        "flex", "fpi_demo_succeeded_01", headers={"Authorization": "Bearer fsk_test_other"}
    )
    assert other_key.status_code == 401
    assert limited.get_payment("hedgepayments", "pay_demopending01").status_code == 200


def test_429_comes_before_auth_and_counts(limited: Api) -> None:
    assert exhaust(limited, "compago", "7d3f0b4e-0000-4000-8000-000000000003").status_code == 429
    assert limited.sandbox.counts[("compago", "get")] == 3


def test_limit_is_assignable_at_runtime(limited: Api) -> None:
    assert exhaust(limited, "flex", "fpi_demo_succeeded_01").status_code == 429
    limited.sandbox.requests_per_minute = None
    assert limited.get_payment("flex", "fpi_demo_succeeded_01").status_code == 200


def test_sliding_window_math() -> None:
    limiter = SlidingWindowLimiter(window_s=60)
    assert limiter.hit("k", 2, now=100.0).remaining == 1
    assert limiter.hit("k", 2, now=110.0).remaining == 0
    denied = limiter.hit("k", 2, now=120.5)
    assert not denied.allowed
    assert denied.retry_after_s == 40  # ceil(100 + 60 - 120.5)
    assert limiter.hit("k", 2, now=159.9).allowed is False  # denied hits do not count
    assert limiter.hit("k", 2, now=160.0).allowed is True  # the first hit left the window
    assert limiter.hit("k", 2, now=169.999).retry_after_s == 1  # at least 1
