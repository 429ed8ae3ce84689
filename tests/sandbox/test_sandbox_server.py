"""The sandbox as a whole: lifecycle, routing, accounts, counters, log, data API, locking."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sandbox_helpers import CANCELABLE_DEMO, PROVIDERS, Api, http_client

from paycancel_cli.sandbox import DEMO_PAYMENTS, SANDBOX_CREDENTIALS, Faults, Sandbox


def test_start_serves_on_a_free_loopback_port_and_stop_closes_it() -> None:
    sandbox = Sandbox().start()
    try:
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        port = int(sandbox.base_url.rsplit(":", 1)[1])
        assert port > 0
        assert sandbox.provider_url("vipps") == f"{sandbox.base_url}/vipps"
        url = sandbox.base_url
        with http_client(2) as http:
            assert http.get(url + "/nowhere").status_code == 404  # keeps a pooled connection
            sandbox.stop()
            with pytest.raises(httpx.TransportError):
                http.get(url + "/nowhere")
    finally:
        sandbox.stop()


def test_context_manager_starts_and_stops() -> None:
    with Sandbox(seed_demo=False) as sandbox:
        url = sandbox.base_url
        with http_client(2) as http:
            assert http.get(url + "/compago/api/payment-intent/x").status_code == 401
    with pytest.raises(RuntimeError):
        _ = sandbox.base_url
    with http_client(2) as http, pytest.raises(httpx.TransportError):
        http.get(url + "/compago/api/payment-intent/x")


def test_refuses_non_loopback_hosts_and_unknown_providers() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(host="192.0.2.1")
    sandbox = Sandbox(seed_demo=False)
    with pytest.raises(ValueError, match="unknown provider"):
        sandbox.add_payment("stripe", status="pending")


def test_account_config_points_each_provider_account_at_the_sandbox(sb: Sandbox) -> None:
    accounts = sb.account_config()
    assert list(accounts) == list(PROVIDERS)
    for key, account in accounts.items():
        assert account["provider"] == key
        assert account["base_url"] == sb.provider_url(key)
    assert accounts["flexportal"] == {
        "provider": "flexportal",
        "base_url": sb.provider_url("flexportal"),
        "api_key": "fpk_sandbox_0000000000000000",
        "tenant_id": "sandbox-tenant",
        "region": "eu",
        "environment": "test",
    }
    assert accounts["hedgepayments"]["api_key"].startswith("sk_test_")
    assert accounts["flex"]["api_key"].startswith("fsk_test_")
    assert accounts["vipps"]["merchant_serial_number"] == "123456"
    assert set(accounts["vipps"]) >= {"client_id", "client_secret", "subscription_key"}
    assert accounts["vipps"]["environment"] == "test"
    assert accounts["compago"]["environment"] == "demo"


def test_credentials_override_replaces_fields_and_is_never_printed(
    make_sandbox: Callable[..., Sandbox],
    make_api: Callable[[Sandbox], Api],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sentinel = "sk_test_SENTINEL_must_not_leak_1234"
    sandbox = make_sandbox(credentials={"hedgepayments": {"api_key": sentinel}})
    assert sandbox.account_config()["hedgepayments"]["api_key"] == sentinel
    assert SANDBOX_CREDENTIALS["hedgepayments"]["api_key"] != sentinel
    api = make_api(sandbox)
    assert api.get_payment("hedgepayments", "pay_demopending01").status_code == 200
    wrong = api.get_payment(
        "hedgepayments", "pay_demopending01", headers={"Authorization": f"Bearer {sentinel}x"}
    )
    assert wrong.status_code == 401
    assert sentinel not in wrong.text
    assert sentinel not in repr(sandbox)
    captured = capsys.readouterr()
    assert sentinel not in captured.out + captured.err
    assert captured.out == ""


def test_credentials_override_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown credential field"):
        Sandbox(credentials={"flex": {"secret": "x"}})
    with pytest.raises(ValueError, match="merchant_serial_number"):
        Sandbox(credentials={"vipps": {"merchant_serial_number": "12"}})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_paths_are_404_in_the_provider_shape(api: Api, provider: str) -> None:
    response = api.get(provider, "/v9/nothing/here")
    assert response.status_code == 404
    body = response.json()
    if provider == "vipps":
        assert body["status"] == 404 and "traceId" in body
    elif provider == "compago":
        assert body["statusCode"] == 404
    else:
        assert body["error"]["message"]


def test_unknown_prefix_is_404_and_counted(sb: Sandbox, client: httpx.Client) -> None:
    response = client.get(sb.base_url + "/stripe/v1/charges")
    assert response.status_code == 404
    assert sb.counts[("unknown", "other")] == 1


def test_demo_payments_are_all_seeded(sb: Sandbox) -> None:
    assert set(DEMO_PAYMENTS) == set(PROVIDERS)
    for provider, demos in DEMO_PAYMENTS.items():
        assert demos
        for payment_id, description in demos:
            assert description
            assert sb.payment(provider, payment_id)
    assert sb.payment("flexportal", "fpay_demo_pending_01")["total"] == Decimal("258.00")
    assert sb.payment("compago", "7d3f0b4e-0000-4000-8000-000000000001")["amount"] == Decimal(
        "350.50"
    )


def test_seed_demo_false_starts_empty(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(seed_demo=False)
    with pytest.raises(KeyError):
        sandbox.payment("flexportal", "fpay_demo_pending_01")


def test_add_payment_makes_deterministic_valid_ids(make_sandbox: Callable[..., Sandbox]) -> None:
    ids = []
    for _ in range(2):
        sandbox = make_sandbox(seed_demo=False)
        ids.append(
            [
                sandbox.add_payment("flexportal", status="pending", total="10.00"),
                sandbox.add_payment("hedgepayments", status="pending", amount=100),
                sandbox.add_payment("flex", status="requires_action", amount=100),
                sandbox.add_payment("vipps", state="CREATED", amount=1000),
                sandbox.add_payment("compago", status="PENDING", amount="1.50"),
            ]
        )
    assert ids[0] == ids[1]
    flexportal, hedge, flex, vipps, compago = ids[0]
    assert hedge.startswith("pay_") and hedge[4:].isalnum()
    assert flex.startswith("fpi_")
    assert 8 <= len(vipps) <= 50
    assert len(compago) == 36 and compago.count("-") == 4
    assert flexportal.startswith("fpay_")


def test_add_payment_rejects_bad_fields(sb: Sandbox) -> None:
    with pytest.raises(ValueError):
        sb.add_payment("flexportal", status="open", total="1.00")
    with pytest.raises(TypeError):
        sb.add_payment("flexportal", status="pending", total=1.5)
    with pytest.raises(TypeError):
        sb.add_payment("hedgepayments", status="pending", amount=1, colour="red")
    with pytest.raises(ValueError):
        sb.add_payment("vipps", state="AUTHORIZED", amount=100, reference="bad ref!")
    with pytest.raises(ValueError, match="already exists"):
        sb.add_payment("flex", status="succeeded", amount=1, payment_id="fpi_demo_succeeded_01")


def test_payment_returns_a_copy(sb: Sandbox) -> None:
    record = sb.payment("vipps", "demo-authorized-0001")
    record["state"] = "TERMINATED"
    assert sb.payment("vipps", "demo-authorized-0001")["state"] == "AUTHORIZED"


def test_percent_encoded_ids_are_decoded_once(sb: Sandbox, api: Api) -> None:
    sb.add_payment("flexportal", status="pending", total="5.00", payment_id="fpay odd:id")
    response = api.get("flexportal", "/v1/payments/fpay%20odd%3Aid")
    assert response.status_code == 200
    assert response.json()["payment"]["paymentId"] == "fpay odd:id"
    assert api.get("flexportal", "/v1/payments/fpay%2520odd%253Aid").status_code == 404


def test_counts_log_and_reset(sb: Sandbox, api: Api) -> None:
    api.get_payment("hedgepayments", "pay_demopending01")
    api.get_payment("hedgepayments", "pay_demopending01", headers={"Authorization": None})
    api.cancel("hedgepayments", "pay_demopending01", json={"reason": "dup"})
    api.post("flexportal", "/v1/payments/fpay_demo_failed_01/cancel?trace=1", json={"reason": "r"})
    assert sb.counts[("hedgepayments", "get")] == 2  # includes the 401
    assert sb.counts[("hedgepayments", "cancel")] == 1
    assert sb.cancel_commits == {
        ("hedgepayments", "pay_demopending01"): 1,
        ("flexportal", "fpay_demo_failed_01"): 1,
    }
    log = sb.request_log
    assert [entry.status for entry in log] == [200, 401, 200, 200]
    last = log[-1]
    assert last.provider == "flexportal" and last.op == "cancel" and last.method == "POST"
    assert last.path == "/flexportal/v1/payments/fpay_demo_failed_01/cancel?trace=1"
    assert last.headers["tenant-id"] == "sandbox-tenant"
    assert b'"reason"' in last.body
    sb.reset_counters()
    assert not sb.counts and not sb.cancel_commits and not sb.request_log


def test_record_requests_false_keeps_counters_but_no_log(
    make_sandbox: Callable[..., Sandbox], make_api: Callable[[Sandbox], Api]
) -> None:
    sandbox = make_sandbox(record_requests=False)
    make_api(sandbox).get_payment("flex", "fpi_demo_canceled_01")
    assert sandbox.counts[("flex", "get")] == 1
    assert sandbox.request_log == []


def test_money_is_written_as_exact_decimal_json_numbers(api: Api) -> None:
    response = api.get_payment("flexportal", "fpay_demo_pending_01")
    assert '"total":258.00' in response.text
    assert '"amount":258.00' in response.text
    assert response.json(parse_float=Decimal)["payment"]["subtotal"] == Decimal("258.00")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_concurrent_cancels_of_one_payment_commit_once(
    sb: Sandbox, provider: str, make_api: Callable[[Sandbox], Api]
) -> None:
    payment_id = CANCELABLE_DEMO[provider]
    statuses: list[int] = []

    def worker(index: int) -> None:
        with http_client() as http:
            api = Api(sb, http)
            headers = {"Idempotency-Key": f"concurrent-{index}"}
            statuses.append(api.cancel(provider, payment_id, headers=headers).status_code)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sb.cancel_commits[(provider, payment_id)] == 1
    assert statuses.count(200) == 1


def test_many_parallel_clients_are_served(sb: Sandbox) -> None:
    ids = [
        sb.add_payment("hedgepayments", status="pending", amount=100 + index) for index in range(40)
    ]
    errors: list[BaseException] = []

    def worker(chunk: list[str]) -> None:
        try:
            with http_client() as http:
                api = Api(sb, http)
                for payment_id in chunk:
                    assert api.cancel("hedgepayments", payment_id).status_code == 200
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ids[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(sb.cancel_commits.values()) == 40


def test_faults_are_assignable_at_runtime(sb: Sandbox, api: Api) -> None:
    sb.faults = Faults(fail_rate=1.0)
    assert api.get_payment("flex", "fpi_demo_succeeded_01").status_code >= 500
    sb.faults = Faults()
    assert api.get_payment("flex", "fpi_demo_succeeded_01").status_code == 200
