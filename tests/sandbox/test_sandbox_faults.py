"""Fault injection: 5xx before any change, dropped cancels that commit, hangs, latency."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sandbox_helpers import CANCELABLE_DEMO, PROVIDERS, Api

from paycancel_cli.sandbox import Faults, Sandbox


def status_of(sb: Sandbox, provider: str, payment_id: str) -> object:
    record = sb.payment(provider, payment_id)
    return record.get("status", record.get("aggregate"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fail_rate_answers_5xx_in_provider_shape_without_state_change(
    make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api], provider: str
) -> None:
    sb = make_sandbox()
    api = make_api(sb)
    if provider == "vipps":
        api.vipps_token()
    payment_id = CANCELABLE_DEMO[provider]
    before = sb.payment(provider, payment_id)
    sb.faults = Faults(fail_rate=1.0)
    response = api.cancel(provider, payment_id)
    assert response.status_code in (500, 502, 503)
    body = response.json()
    if provider == "vipps":
        assert body["status"] == response.status_code
        assert response.headers["content-type"] == "application/problem+json"
    elif provider == "compago":
        assert body["statusCode"] == response.status_code
    else:
        assert body["error"]["message"]
    assert sb.payment(provider, payment_id) == before
    assert not sb.cancel_commits
    assert sb.counts[(provider, "cancel")] == 1
    assert sb.request_log[-1].status == response.status_code


def test_fail_rate_comes_before_auth(sb: Sandbox, client: httpx.Client) -> None:
    sb.faults = Faults(fail_rate=1.0)
    response = client.get(sb.provider_url("compago") + "/api/payment-intent/x")
    assert response.status_code >= 500


@pytest.mark.parametrize("provider", PROVIDERS)
def test_drop_rate_commits_the_cancel_then_closes_without_answer(
    make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api], provider: str
) -> None:
    sb = make_sandbox()
    api = make_api(sb)
    if provider == "vipps":
        api.vipps_token()
    payment_id = CANCELABLE_DEMO[provider]
    before = status_of(sb, provider, payment_id)
    sb.faults = Faults(drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        api.cancel(provider, payment_id)
    assert status_of(sb, provider, payment_id) != before
    assert sb.cancel_commits[(provider, payment_id)] == 1
    assert sb.request_log[-1].status == 0
    # Reads are never dropped.
    assert api.get_payment(provider, payment_id).status_code == 200


def test_dropped_vipps_cancel_replays_on_retry_with_the_same_key(sb: Sandbox, api: Api) -> None:
    api.vipps_token()
    headers = {"Idempotency-Key": "retry-after-drop"}
    sb.faults = Faults(drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        api.cancel("vipps", "demo-authorized-0001", headers=headers)
    sb.faults = Faults()
    retry = api.cancel("vipps", "demo-authorized-0001", headers=headers)
    assert retry.status_code == 200
    assert retry.json()["aggregate"]["cancelledAmount"]["value"] == 1000
    assert sb.cancel_commits[("vipps", "demo-authorized-0001")] == 1


def test_timeout_hangs_before_any_state_change(sb: Sandbox, api: Api) -> None:
    sb.faults = Faults(timeout_rate=1.0, hang_s=0.4)
    with pytest.raises(httpx.TimeoutException):
        api.cancel("hedgepayments", "pay_demopending01", timeout=0.1)
    assert sb.payment("hedgepayments", "pay_demopending01")["status"] == "pending"
    # The hung request is then handled as a slow provider would: it lands later.
    deadline = time.monotonic() + 3
    while sb.payment("hedgepayments", "pay_demopending01")["status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sb.cancel_commits[("hedgepayments", "pay_demopending01")] == 1


def test_timeout_with_a_patient_client_gets_the_normal_answer(sb: Sandbox, api: Api) -> None:
    sb.faults = Faults(timeout_rate=1.0, hang_s=0.2)
    started = time.monotonic()
    response = api.get_payment("flex", "fpi_demo_succeeded_01")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_latency_is_added_to_every_request(sb: Sandbox, api: Api) -> None:
    sb.faults = Faults(latency_ms=150)
    started = time.monotonic()
    assert api.get_payment("flex", "fpi_demo_succeeded_01").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_fault_draws_are_deterministic(
    make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api]
) -> None:
    runs = []
    for _ in range(2):
        sb = make_sandbox(faults=Faults(fail_rate=0.5, seed=7))
        api = make_api(sb)
        runs.append(
            [api.get_payment("flex", "fpi_demo_succeeded_01").status_code for _ in range(20)]
        )
    assert runs[0] == runs[1]
    assert {200} < set(runs[0])  # some failed, some did not
    assert set(runs[0]) <= {200, 500, 502, 503}


def test_reassigning_faults_reseeds(sb: Sandbox, api: Api) -> None:
    sequences = []
    for _ in range(2):
        sb.faults = Faults(fail_rate=0.5, seed=3)
        sequences.append(
            [api.get_payment("hedgepayments", "pay_demopending01").status_code for _ in range(12)]
        )
    assert sequences[0] == sequences[1]


@pytest.mark.parametrize(
    "kwargs", [{"fail_rate": 1.5}, {"drop_rate": -0.1}, {"timeout_rate": 2}, {"latency_ms": -1}]
)
def test_faults_reject_out_of_range_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Faults(**kwargs)


def test_faults_can_be_changed_in_place(sb: Sandbox, api: Api) -> None:
    sb.faults.fail_rate = 1.0
    assert api.get_payment("flex", "fpi_demo_succeeded_01").status_code >= 500
    sb.faults.fail_rate = 0.0
    assert api.get_payment("flex", "fpi_demo_succeeded_01").status_code == 200


@pytest.mark.parametrize("provider", PROVIDERS)
def test_payment_faults_hit_one_payment_and_count_down(
    sb: Sandbox, api: Api, provider: str
) -> None:
    target = CANCELABLE_DEMO[provider]
    sb.add_fault(provider, target, "html_502", op="get", times=2)
    first, second, third = (api.get_payment(provider, target) for _ in range(3))
    assert first.status_code == second.status_code == 502
    assert first.headers["content-type"].startswith("text/html")
    assert b"<title>502 Bad Gateway</title>" in first.content
    assert third.status_code == 200
    sb.add_fault(provider, target, "empty", op="cancel", times=1)
    assert api.get_payment(provider, target).status_code == 200  # a get is not hit
    cancelled = api.cancel(provider, target)
    assert cancelled.status_code == 200 and cancelled.content == b""
    assert sb.cancel_commits[(provider, target)] == 1  # applied before the empty answer


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("truncated", lambda r: r.status_code == 200 and not r.content.rstrip().endswith(b"}")),
        (
            "wrong_types",
            lambda r: r.status_code == 200 and b'"amount":"abc"' in r.content,
        ),
        ("oversized", lambda r: len(r.content) > 5 * 1024 * 1024),
    ],
)
def test_body_faults(
    sb: Sandbox, api: Api, kind: str, check: Callable[[httpx.Response], bool]
) -> None:
    sb.add_fault("hedgepayments", "pay_demopending01", kind)
    assert check(api.get_payment("hedgepayments", "pay_demopending01"))


def test_unknown_fault_kinds_and_options_are_refused(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sb.add_fault("flex", "fpi_demo_canceled_01", "locked_423")
    with pytest.raises(ValueError, match="op must be"):
        sb.add_fault("flex", "fpi_demo_canceled_01", "empty", op="list")
