"""The providers' documented corners over the sandbox (issue points 5 to 13): unusable
journals, Vipps 423/6160/gateway errors/system headers/one token refresh/reference
pattern, Flex's documented refusal shape, HedgePayments' 409 on a re-sent key,
FlexPortal's total and amount, and base URLs copied from the docs."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.engine import Canceller, fresh_key
from paycancel_cli.errors import Busy, InputError
from paycancel_cli.httpclient import make_client
from paycancel_cli.providers import account_type, make_provider
from paycancel_cli.providers.vipps import Vipps
from paycancel_cli.redact import Redactor
from paycancel_cli.sandbox import Faults, Sandbox
from paycancel_cli.sandbox.vipps import REFERENCE_RE

from .conftest import CliResult, write_config
from .contract.oas import VIPPS_EPAYMENT, every, raw


def cancel(cli: Any, config: Path, account: str, payment_id: str, *extra: str) -> CliResult:
    return cli(  # type: ignore[no-any-return]
        "--config", str(config), "cancel", payment_id, "--account", account,
        "--reason", "corner", "--yes", "--json", *extra,
    )  # fmt: skip


def result_of(res: CliResult) -> dict[str, Any]:
    return next(line for line in res.json_lines() if line["type"] == "result")


def cancels(sb: Sandbox, provider: str, payment_id: str) -> list[Any]:
    return [
        r for r in sb.request_log if r.provider == provider and r.op == "cancel"
        and payment_id in r.path
    ]  # fmt: skip


# 5: an unusable journal is exit 2, and nothing is sent


def _below_a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("x")
    return tmp / "plain" / "journal.sqlite3"


def _a_directory(tmp: Path) -> Path:
    (tmp / "journal-dir").mkdir()
    return tmp / "journal-dir"


def _not_sqlite(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 10)
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_below_a_file, "which is a file, not a directory"),
        (_a_directory, "is a directory, not a file"),
        (_not_sqlite, "is not an SQLite database"),
    ],
)
@pytest.mark.parametrize("command", ["cancel", "bulk-cancel"])
def test_unusable_journal_is_exit_2_and_nothing_is_sent(
    cli: Any,
    sandbox: Sandbox,
    config_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Any,
    says: str,
    command: str,
) -> None:
    journal = make(tmp_path)
    before = journal.read_bytes() if journal.is_file() else None
    monkeypatch.setenv("PAYCANCEL_DEFAULTS__JOURNAL", str(journal))
    if command == "cancel":
        res = cancel(cli, config_file, "hedgepayments", "pay_demopending01")
    else:
        csv_path = tmp_path / "in.csv"
        csv_path.write_text("payment_id\npay_demopending01\n")
        res = cli(
            "--config", str(config_file), "bulk-cancel", str(csv_path),
            "--account", "hedgepayments", "--reason", "r", "--yes",
        )  # fmt: skip
    assert res.code == 2, res.stderr
    assert says in res.stderr and "Nothing was sent" in res.stderr
    assert "Traceback" not in res.stderr
    assert sandbox.counts[("hedgepayments", "cancel")] == 0
    assert sandbox.payment("hedgepayments", "pay_demopending01")["status"] == "pending"
    if before is not None:
        assert journal.read_bytes() == before  # not turned into a database
    elif journal.is_dir():
        assert journal.stat().st_mode & 0o777 != 0o600  # not chmod-ed as a journal


# 6: Vipps 423 is retried with the same key


def test_vipps_423_is_retried_with_the_same_key(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    ref = sandbox.add_payment("vipps", state="AUTHORIZED", amount=1000, authorized=1000)
    sandbox.add_fault("vipps", ref, "locked_423", op="cancel", times=2)
    res = cancel(cli, config_file, "vipps", ref)
    assert res.code == 0, res.stderr
    result = result_of(res)
    assert result["outcome"] == "cancelled" and result["attempts"] == 3
    keys = {r.headers["idempotency-key"] for r in cancels(sandbox, "vipps", ref)}
    assert keys == {result["idempotency_key"]}
    assert [r.status for r in cancels(sandbox, "vipps", ref)] == [423, 423, 200]
    assert sandbox.cancel_commits[("vipps", ref)] == 1


def test_vipps_busy_retries_wait_within_the_cancel_limit() -> None:
    async def make() -> Canceller:
        acc = account_type("vipps").model_validate(
            {
                "name": "v", "provider": "vipps", "client_id": "c", "environment": "test",
                "client_secret": "secret-123", "subscription_key": "subkey-123",
                "merchant_serial_number": "123456",
            }
        )  # fmt: skip
        return Canceller(make_provider(acc, make_client(acc, redactor=Redactor())), run_id="r")

    vipps = asyncio.run(make())
    # Five cancels a minute per reference: never closer than 12 s apart.
    assert vipps._cancel_backoff(Busy("locked", http_status=423)) == 12.0
    assert vipps._cancel_backoff(Busy("6160", retry_after=15.0, fresh_key=True)) >= 15.0


# 7: Vipps 6160 is retried after a wait, with a fresh key, journaled


def test_vipps_6160_is_retried_with_a_fresh_key_that_the_journal_records(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    ref = sandbox.add_payment("vipps", state="AUTHORIZED", amount=1000, authorized=1000)
    sandbox.add_fault("vipps", ref, "order_processing_6160", op="cancel", times=1)
    res = cancel(cli, config_file, "vipps", ref)
    assert res.code == 0, res.stderr
    result = result_of(res)
    assert result["outcome"] == "cancelled"
    sent = [r.headers["idempotency-key"] for r in cancels(sandbox, "vipps", ref)]
    assert [r.status for r in cancels(sandbox, "vipps", ref)] == [400, 200]
    assert sent[1] == fresh_key(sent[0]) != sent[0]
    assert result["idempotency_key"] == sent[1]
    shown = cli("--config", str(config_file), "runs", "show", result["run_id"], "--json")
    journaled = [line for line in shown.json_lines() if line["type"] == "result"]
    assert [line["idempotency_key"] for line in journaled] == [sent[1]]


def test_vipps_sandbox_keeps_6160_under_its_key(sandbox: Sandbox) -> None:
    import httpx

    ref = sandbox.add_payment("vipps", state="CREATED", amount=5000)
    sandbox.add_fault("vipps", ref, "order_processing_6160", op="cancel", times=1)
    acc = sandbox.account_config()["vipps"]
    base = sandbox.provider_url("vipps")
    with httpx.Client(base_url=base) as http:
        token = http.post(
            "/accesstoken/get",
            headers={
                "client_id": acc["client_id"], "client_secret": acc["client_secret"],
                "Ocp-Apim-Subscription-Key": acc["subscription_key"],
            },
        ).json()["access_token"]  # fmt: skip
        headers = {
            "Authorization": f"Bearer {token}",
            "Ocp-Apim-Subscription-Key": acc["subscription_key"],
            "Merchant-Serial-Number": acc["merchant_serial_number"],
            "Idempotency-Key": "key-one",
        }
        path = f"/epayment/v1/payments/{ref}/cancel"
        first = http.post(path, headers=headers, json={})
        again = http.post(path, headers=headers, json={})  # the fault is spent; the key not
        fresh = http.post(path, headers={**headers, "Idempotency-Key": "key-two"}, json={})
    assert first.status_code == again.status_code == 400
    assert again.json()["extraDetails"] == [{"name": "ErrorCode", "reason": "6160"}]
    assert fresh.status_code == 200 and fresh.json()["state"] == "TERMINATED"


# 8: Vipps gateway errors show their message


def test_vipps_gateway_error_shows_its_message(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    ref = sandbox.add_payment("vipps", state="AUTHORIZED", amount=1000, authorized=1000)
    sandbox.add_fault("vipps", ref, "gateway_error", op="get", status=403)
    res = cancel(cli, config_file, "vipps", ref)
    assert res.code == 3, res.stderr
    assert "Access denied due to missing or invalid subscription key" in res.stderr
    assert "HTTP 403: error)" not in res.stderr
    assert sandbox.counts[("vipps", "cancel")] == 0


def test_vipps_gateway_429_is_retried_and_its_message_kept(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    ref = sandbox.add_payment("vipps", state="AUTHORIZED", amount=1000, authorized=1000)
    sandbox.add_fault("vipps", ref, "gateway_error", op="get", status=429)
    res = cancel(cli, config_file, "vipps", ref)
    assert res.code in (1, 5), res.stderr
    assert "Rate limit is exceeded. Try again in 5 seconds." in res.stdout + res.stderr


# 9: system headers on every call; one token for many 401s; the spec's reference pattern

SYSTEM = ("vipps-system-name", "vipps-system-version", "vipps-system-plugin-name",
          "vipps-system-plugin-version")  # fmt: skip


def test_vipps_sends_system_headers_on_every_call(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    from paycancel_cli import __version__

    res = cancel(cli, config_file, "vipps", "demo-authorized-0001")
    assert res.code == 0, res.stderr
    calls = [r for r in sandbox.request_log if r.provider == "vipps"]
    assert {r.op for r in calls} == {"token", "get", "cancel"}
    for call in calls:
        assert all(0 < len(call.headers.get(name, "")) <= 30 for name in SYSTEM), call.op
        assert call.headers["vipps-system-name"] == "paycancel"
        assert call.headers["vipps-system-version"] == __version__


@pytest.mark.parametrize("how", ["expired", "aged"])
def test_many_401s_at_once_fetch_one_new_token(how: str) -> None:
    # "aged": tokens die 2 s after issue although expires_in promised an hour.
    with Sandbox(faults=Faults(token_max_age_s=2.0 if how == "aged" else None)) as sb:
        refs = [
            sb.add_payment("vipps", state="AUTHORIZED", amount=100, authorized=100)
            for _ in range(8)
        ]
        fields = sb.account_config()["vipps"]
        acc = account_type("vipps").model_validate({"name": "vipps", **fields})

        async def go() -> None:
            client = make_client(acc, redactor=Redactor())
            provider = make_provider(acc, client)
            await provider.get(refs[0])
            if how == "expired":
                sb.expire_tokens()
            else:
                await asyncio.sleep(2.2)
            payments = await asyncio.gather(*(provider.get(ref) for ref in refs))
            assert [p.payment_id for p in payments] == refs
            await client.aclose()

        asyncio.run(go())
        assert sb.counts[("vipps", "token")] == 2
        statuses = [r.status for r in sb.request_log if r.op == "get"]
        assert statuses.count(401) == 8 and statuses.count(200) == 1 + 8


def test_vipps_reference_pattern_follows_the_bundled_spec() -> None:
    document = raw(VIPPS_EPAYMENT.file)  # Vipps' own spec, the copy in tests/contract/specs
    patterns = {p for p in every(document, "pattern") if "a-zA-Z0-9-" in p}
    assert patterns == {"^[a-zA-Z0-9-]{8,50}$"}
    (spec,) = patterns
    assert REFERENCE_RE.pattern == spec
    assert f"^{Vipps.id_pattern.pattern}$" == spec
    Vipps.validate_id("a" * 50)
    with pytest.raises(InputError):
        Vipps.validate_id("a" * 51)


# 10: Flex refusals in the documented shape are classified by one read


def test_flex_refusal_in_the_documented_shape_after_a_cancel_elsewhere(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    pid = sandbox.add_payment("flex", status="requires_capture", amount=5000)
    sandbox.add_fault("flex", pid, "error_shape", op="cancel")
    res = cancel(cli, config_file, "flex", pid)
    assert res.code == 0, res.stderr
    result = result_of(res)
    assert result["outcome"] == "already_cancelled"
    assert result["after"]["native_status"] == "canceled"
    assert sandbox.cancel_commits[("flex", pid)] == 0
    gets = [r for r in sandbox.request_log if r.op == "get" and pid in r.path]
    assert len(gets) == 2  # the read before, and the one read that classifies the 400


def test_flex_400_on_an_intent_still_open_is_a_failure(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    pid = sandbox.add_payment("flex", status="requires_capture", amount=5000)
    sandbox.add_fault("flex", pid, "error_shape", op="cancel", apply=False)
    res = cancel(cli, config_file, "flex", pid)
    assert res.code == 1, res.stderr
    result = result_of(res)
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "invalid_request"
    assert "still requires_capture" in result["error"]["message"]


# 11: HedgePayments 409 on a re-sent key: read back and classify


@pytest.mark.parametrize(("applies", "outcome"), [(True, "cancelled"), (False, "failed")])
def test_hedge_409_on_a_resent_key_is_read_back(
    cli: Any, sandbox: Sandbox, config_file: Path, applies: bool, outcome: str
) -> None:
    pid = sandbox.add_payment("hedgepayments", status="pending", amount=1500)
    sandbox.add_fault("hedgepayments", pid, "conflict_409", op="cancel", times=2, apply=applies)
    res = cancel(cli, config_file, "hedgepayments", pid)
    result = result_of(res)
    assert result["outcome"] == outcome, result
    sent = cancels(sandbox, "hedgepayments", pid)
    assert [r.status for r in sent] == [0, 409]
    assert len({r.headers["idempotency-key"] for r in sent}) == 1
    assert sandbox.cancel_commits[("hedgepayments", pid)] == (1 if applies else 0)
    if applies:
        assert res.code == 0 and result["after"]["native_status"] == "canceled"
    else:
        assert res.code == 1
        assert "409" in result["error"]["message"] and "still pending" in result["error"]["message"]


# 12: FlexPortal total (guarded and summed) and amount (shown where it differs)


def test_flexportal_total_is_the_amount_and_amount_is_noted(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    taxed = sandbox.add_payment("flexportal", status="pending", total="200.00", tax="38.00")
    plain = sandbox.add_payment("flexportal", status="pending", total="50.00")
    shown = cli("--config", str(config_file), "status", taxed, plain, "--account", "flexportal",
                "--json")  # fmt: skip
    payments = {p["payment_id"]: p for p in shown.json_lines() if p["type"] == "payment"}
    assert payments[taxed]["amount"] == {"value": "238.00", "currency": "EUR"}
    assert "200.00 EUR" in payments[taxed]["amount_note"]
    assert "amount_note" not in payments[plain]
    table = cli("--config", str(config_file), "status", taxed, "--account", "flexportal")
    assert "238.00 EUR" in table.stdout and "amount field 200.00 EUR" in table.stdout
    csv_path = tmp_path / "guarded.csv"
    csv_path.write_text(
        f"payment_id,expected_amount,expected_currency\n{taxed},200.00,EUR\n{plain},50.00,EUR\n"
    )
    res = cli("--config", str(config_file), "bulk-cancel", str(csv_path), "--account",
              "flexportal", "--reason", "r", "--yes", "--json")  # fmt: skip
    results = {r["payment_id"]: r for r in res.json_lines() if r["type"] == "result"}
    assert results[taxed]["outcome"] == "not_cancellable"
    assert results[taxed]["error"]["code"] == "amount_mismatch"
    assert "238.00 EUR (amount field 200.00 EUR" in results[taxed]["error"]["message"]
    assert results[plain]["outcome"] == "cancelled"
    csv_path.write_text(f"payment_id,expected_amount,expected_currency\n{taxed},238.00,EUR\n")
    res = cli("--config", str(config_file), "bulk-cancel", str(csv_path), "--account",
              "flexportal", "--reason", "r", "--yes", "--json")  # fmt: skip
    lines = res.json_lines()
    assert [r["outcome"] for r in lines if r["type"] == "result"] == ["cancelled"]
    assert lines[-1]["cancelled_amounts"] == [{"currency": "EUR", "value": "238.00"}]
    assert Decimal(sandbox.payment("flexportal", taxed)["total"]) == Decimal("238.00")


# 13: base_url copied from the docs, with the documented path prefix


@pytest.mark.parametrize(
    ("provider", "suffix", "payment_id"),
    [
        ("flexportal", "/v1", "fpay_demo_pending_01"),
        ("hedgepayments", "/v1", "pay_demopending01"),
        ("flex", "/v1", "fpi_demo_requires_capture_01"),
        ("compago", "/api", "7d3f0b4e-0000-4000-8000-000000000001"),
        ("vipps", "/epayment/v1", "demo-authorized-0001"),
    ],
)
def test_base_url_with_the_documented_prefix_is_accepted(
    cli: Any, sandbox: Sandbox, tmp_path: Path, provider: str, suffix: str, payment_id: str
) -> None:
    accounts = sandbox.account_config()
    fields = {**accounts[provider], "base_url": accounts[provider]["base_url"] + suffix}
    config = write_config(tmp_path / "config.toml", {provider: fields})
    res = cancel(cli, config, provider, payment_id)
    assert res.code == 0, res.stderr
    assert result_of(res)["outcome"] == "cancelled"
    paths = [r.path for r in sandbox.request_log if r.provider == provider]
    assert paths and not any(suffix + suffix in p for p in paths)


def test_documented_base_urls_name_the_provider_roots() -> None:
    flex = account_type("flex").model_validate(
        {"name": "f", "provider": "flex", "api_key": "fsk_test_x1234567",
         "base_url": "https://api.withflex.com/v1"}
    )  # fmt: skip
    compago = account_type("compago").model_validate(
        {"name": "c", "provider": "compago", "api_key": "cpk_x1234567",
         "base_url": "https://demo.api.harmony.compago.com/api"}
    )  # fmt: skip
    assert flex.url == "https://api.withflex.com"
    assert compago.url == "https://demo.api.harmony.compago.com"


def test_sqlite_journal_still_opens(tmp_path: Path) -> None:
    """An existing SQLite file at the journal's path (another table in it) is used as
    the journal: runs are recorded and read back, and what was there is kept."""
    from paycancel_cli.journal import Journal, PlanRow

    path = tmp_path / "j.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE other (x)")
    db.execute("INSERT INTO other VALUES ('kept')")
    db.commit()
    db.close()
    journal = Journal(path)
    journal.start_run(
        "r1", user="u", host="h", command="c", input="in.csv", input_hash="x", reason="r",
        options={},
    )  # fmt: skip
    assert journal.plan("r1", [PlanRow("a", "flex", "fpi_1", "r", "k")]) == (1, 0)
    journal.close()
    again = Journal(path)
    run = again.run("r1")
    assert run is not None and run.status == "running" and run.input == "in.csv"
    assert [(p.payment_id, p.state) for p in again.payments("r1")] == [("fpi_1", "planned")]
    again.close()
    assert path.stat().st_mode & 0o777 == 0o600
    kept = sqlite3.connect(path)
    assert kept.execute("SELECT x FROM other").fetchall() == [("kept",)]
    kept.close()
