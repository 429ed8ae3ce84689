"""`status` and `cancel` for every provider, over real HTTP against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.sandbox import Sandbox

from .conftest import SENTINEL, CliResult, write_config

CASES: dict[str, dict[str, Any]] = {
    "flexportal": {
        "cancelable": ["fpay_demo_pending_01", "fpay_demo_failed_01"],
        "not_cancellable": ["fpay_demo_processing_01", "fpay_demo_paid_01"],
        "already": "fpay_demo_cancelled_01",
        "missing": "fpay_missing_01",
        "bad_credentials": {"api_key": SENTINEL},
    },
    "hedgepayments": {
        "cancelable": ["pay_demopending01", "pay_demoinitiated01"],
        "not_cancellable": [
            "pay_demoprocessing01",
            "pay_demosucceeded01",
            "pay_demofailed01",
            "pay_demorefunded01",
        ],
        "already": "pay_democanceled01",
        "missing": "pay_missing01",
        "bad_credentials": {"api_key": "sk_test_" + SENTINEL},
    },
    "flex": {
        "cancelable": [
            "fpi_demo_requires_payment_method_01",
            "fpi_demo_requires_capture_01",
            "fpi_demo_requires_action_01",
        ],
        "not_cancellable": ["fpi_demo_processing_01", "fpi_demo_succeeded_01"],
        "already": "fpi_demo_canceled_01",
        "missing": "fpi_missing_01",
        "bad_credentials": {"api_key": "fsk_test_" + SENTINEL},
    },
    "vipps": {
        "cancelable": ["demo-created-0001", "demo-authorized-0001", "demo-partcapture-0001"],
        "not_cancellable": ["demo-captured-0001", "demo-refunded-0001", "demo-expired-0001"],
        "already": "demo-cancelled-0001",
        "missing": "demo-missing-0001",
        "bad_credentials": {"client_secret": SENTINEL},
    },
    "compago": {
        "cancelable": ["7d3f0b4e-0000-4000-8000-000000000001"],
        "not_cancellable": [
            "7d3f0b4e-0000-4000-8000-000000000002",
            "7d3f0b4e-0000-4000-8000-000000000003",
        ],
        "already": "7d3f0b4e-0000-4000-8000-000000000004",
        "missing": "7d3f0b4e-0000-4000-8000-0000000000ff",
        "bad_credentials": {"api_key": SENTINEL},
    },
}
PROVIDERS = list(CASES)


def result_of(res: CliResult) -> dict[str, Any]:
    lines = res.json_lines()
    assert [line["type"] for line in lines] == ["result", "summary"], res.stdout
    return lines[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_sends_the_providers_auth_headers(
    cli: Any, sandbox: Sandbox, config_file: Path, provider: str
) -> None:
    pid = CASES[provider]["cancelable"][0]
    res = cli("--config", str(config_file), "status", "--account", provider, pid, "--json")
    assert res.code == 0, res.stderr
    (line,) = res.json_lines()
    assert line["type"] == "payment" and line["payment_id"] == pid and line["cancelable"] is True
    creds = sandbox.account_config()[provider]
    sent = [r for r in sandbox.request_log if r.op == "get"][-1].headers
    if provider == "flexportal":
        assert sent["authorization"] == f"Bearer {creds['api_key']}"
        assert sent["tenant-id"] == creds["tenant_id"]
    elif provider in ("hedgepayments", "flex"):
        assert sent["authorization"] == f"Bearer {creds['api_key']}"
    elif provider == "vipps":
        assert sent["authorization"].startswith("Bearer ")
        assert sent["ocp-apim-subscription-key"] == creds["subscription_key"]
        assert sent["merchant-serial-number"] == creds["merchant_serial_number"]
    else:
        assert sent["x-api-key"] == creds["api_key"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_succeeds_for_each_cancelable_state(
    cli: Any, sandbox: Sandbox, config_file: Path, provider: str
) -> None:
    for pid in CASES[provider]["cancelable"]:
        res = cli(
            "--config",
            str(config_file),
            "cancel",
            pid,
            "--account",
            provider,
            "--reason",
            "early return",
            "--yes",
            "--json",
        )
        assert res.code == 0, res.stderr
        result = result_of(res)
        assert result["outcome"] == "cancelled"
        assert result["before"]["cancelable"] is True and result["after"]["cancelable"] is False
        assert sandbox.cancel_commits[(provider, pid)] == 1
        again = cli("--config", str(config_file), "status", pid, "--account", provider, "--json")
        assert again.json_lines()[0]["cancelable"] is False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_not_cancellable_states_send_no_cancel(
    cli: Any, sandbox: Sandbox, config_file: Path, provider: str
) -> None:
    for pid in CASES[provider]["not_cancellable"]:
        res = cli(
            "--config",
            str(config_file),
            "cancel",
            pid,
            "--account",
            provider,
            "--reason",
            "r",
            "--yes",
            "--json",
        )
        assert res.code == 1
        result = result_of(res)
        assert result["outcome"] == "not_cancellable", pid
        assert result["error"]["message"]
        # nothing sent, nothing journaled: no run id that `runs show` cannot find
        assert result["run_id"] is None and res.json_lines()[-1]["run_id"] is None
    assert sandbox.counts[(provider, "cancel")] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_already_cancelled_is_success_without_a_cancel(
    cli: Any, sandbox: Sandbox, config_file: Path, provider: str
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        CASES[provider]["already"],
        "--account",
        provider,
        "--reason",
        "r",
        "--yes",
        "--json",
    )
    assert res.code == 0
    assert result_of(res)["outcome"] == "already_cancelled"
    assert sandbox.counts[(provider, "cancel")] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_not_found(cli: Any, sandbox: Sandbox, config_file: Path, provider: str) -> None:
    missing = CASES[provider]["missing"]
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        missing,
        "--account",
        provider,
        "--reason",
        "r",
        "--yes",
        "--json",
    )
    assert res.code == 1
    assert result_of(res)["outcome"] == "not_found"
    status = cli("--config", str(config_file), "status", missing, "--account", provider)
    assert status.code == 1 and "not found" in status.stdout


@pytest.mark.parametrize("provider", PROVIDERS)
def test_auth_failure_exits_3_and_never_shows_the_secret(
    cli: Any, sandbox: Sandbox, tmp_path: Path, provider: str
) -> None:
    fields = {**sandbox.account_config()[provider], **CASES[provider]["bad_credentials"]}
    config = write_config(tmp_path / "bad.toml", {provider: fields})
    pid = CASES[provider]["cancelable"][0]
    for args in (
        ["status", pid],
        ["cancel", pid, "--reason", "r", "--yes"],
        ["cancel", pid, "--reason", "r", "--yes", "--json"],
    ):
        res = cli("--config", str(config), "-v", *args)
        assert res.code == 3, (args, res.stderr)
        assert "credentials" in res.stderr or "rejected" in res.stderr or "token" in res.stderr
        assert SENTINEL not in res.stdout + res.stderr
    assert sandbox.counts[(provider, "cancel")] == 0


def test_vipps_partial_capture_release_shows_cancelled_7_50(cli: Any, config_file: Path) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "demo-partcapture-0001",
        "--account",
        "vipps",
        "--reason",
        "returned",
        "--yes",
    )
    assert res.code == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if "cancelled" in line and "NOK" in line)
    assert "0.00 NOK" in row and "7.50 NOK" in row and "+7.50 NOK" in row
    js = cli(
        "--config",
        str(config_file),
        "status",
        "demo-partcapture-0001",
        "--account",
        "vipps",
        "--json",
    ).json_lines()[0]
    assert js["status"] == "succeeded" and js["cancelled"] == {"value": "7.50", "currency": "NOK"}
    assert js["captured"] == {"value": "2.50", "currency": "NOK"}


def test_amounts_are_normalized_per_provider(cli: Any, config_file: Path) -> None:
    def amount(provider: str, pid: str) -> dict[str, str]:
        res = cli("--config", str(config_file), "status", pid, "--account", provider, "--json")
        return res.json_lines()[0]["amount"]  # type: ignore[no-any-return]

    assert amount("hedgepayments", "pay_demopending01") == {"value": "99.99", "currency": "USD"}
    assert amount("flexportal", "fpay_demo_failed_01") == {"value": "49.90", "currency": "EUR"}
    assert amount("flex", "fpi_demo_requires_capture_01") == {"value": "120.00", "currency": "USD"}
    assert amount("vipps", "demo-created-0001") == {"value": "499.00", "currency": "NOK"}
    assert amount("compago", "7d3f0b4e-0000-4000-8000-000000000001") is None


def test_cancel_summary_counts_released_amount(cli: Any, config_file: Path) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "pay_demopending01",
        "--account",
        "hedgepayments",
        "--reason",
        "r",
        "--yes",
        "--json",
    )
    summary = res.json_lines()[1]
    assert summary["outcomes"] == {"cancelled": 1}
    assert summary["cancelled_amounts"] == [{"currency": "USD", "value": "99.99"}]
    assert summary["requests"] == 2  # one read, one cancel
    shown = cli("--config", str(config_file), "runs", "show", summary["run_id"], "--json")
    assert shown.code == 0 and shown.json_lines()[-1]["outcome"] == "cancelled"


@pytest.mark.parametrize("bad", ["abc/../refunds", "x?y=1", "a#b", "100%", "a b"])
def test_unsafe_ids_exit_2_before_any_request(
    cli: Any, sandbox: Sandbox, config_file: Path, bad: str
) -> None:
    for args in (["status", bad], ["cancel", bad, "--reason", "r", "--yes"]):
        res = cli("--config", str(config_file), *args, "--account", "flexportal")
        assert res.code == 2, res.stderr
        assert "Nothing was sent" in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_dry_run_reads_only(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "fpay_demo_pending_01",
        "--account",
        "flexportal",
        "--reason",
        "r",
        "--dry-run",
        "--json",
    )
    assert res.code == 0
    result = result_of(res)
    assert result["outcome"] == "would_cancel" and result["idempotency_key"] is None
    assert result["run_id"] is None
    assert sandbox.counts[("flexportal", "cancel")] == 0


def test_non_interactive_without_yes_exits_2_and_sends_nothing(
    cli: Any, sandbox: Sandbox, config_file: Path
) -> None:
    res = cli(
        "--config",
        str(config_file),
        "cancel",
        "pay_demopending01",
        "--account",
        "hedgepayments",
        "--reason",
        "r",
    )
    assert res.code == 2 and "--yes" in res.stderr
    assert sum(sandbox.counts.values()) == 0


def test_interactive_confirmation(cli: Any, sandbox: Sandbox, config_file: Path) -> None:
    base = (
        "--config",
        str(config_file),
        "cancel",
        "pay_demopending01",
        "--account",
        "hedgepayments",
        "--reason",
        "r",
    )
    declined = cli(*base, stdin="n\n")
    assert declined.code == 1 and "nothing was sent" in declined.stderr
    assert sandbox.counts[("hedgepayments", "cancel")] == 0
    accepted = cli(*base, stdin="y\n")
    assert accepted.code == 0, accepted.stderr
    assert sandbox.cancel_commits[("hedgepayments", "pay_demopending01")] == 1


def live_config(tmp_path: Path, sandbox: Sandbox) -> Path:
    fields = {**sandbox.account_config()["flexportal"], "environment": "live"}
    return write_config(tmp_path / "live.toml", {"portal_live": fields})


def test_live_account_needs_typed_name_or_yes_live(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    config = str(live_config(tmp_path, sandbox))
    base = ("--config", config, "cancel", "fpay_demo_pending_01", "--reason", "r")
    assert cli(*base, "--yes").code == 2  # a stray --yes is not enough
    assert sum(sandbox.counts.values()) == 0
    wrong = cli(*base, "--yes", stdin="portal\n")
    assert wrong.code == 1 and "did not match" in wrong.stderr
    assert sandbox.counts[("flexportal", "cancel")] == 0
    typed = cli(*base, stdin="portal_live\n")
    assert typed.code == 0, typed.stderr
    assert sandbox.cancel_commits[("flexportal", "fpay_demo_pending_01")] == 1
    ok = cli(
        "--config", config, "cancel", "fpay_demo_failed_01", "--reason", "r", "--yes", "--live"
    )
    assert ok.code == 0


def test_status_table_marks_live_accounts(cli: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    res = cli("--config", str(live_config(tmp_path, sandbox)), "status", "fpay_demo_pending_01")
    assert res.code == 0, res.stderr  # a read-only command that found what it was asked
    assert "LIVE" in res.stdout and "fpay_demo_pending_01" in res.stdout
    test_account = write_config(
        tmp_path / "test.toml", {"portal": sandbox.account_config()["flexportal"]}
    )
    plain = cli("--config", str(test_account), "status", "fpay_demo_pending_01")
    assert plain.code == 0, plain.stderr
    assert "LIVE" not in plain.stdout  # the marker tells live from test


def test_secrets_never_leak_with_verbose(cli: Any, tmp_path: Path) -> None:
    creds = {
        "flexportal": {"api_key": SENTINEL},
        "hedgepayments": {"api_key": "sk_test_" + SENTINEL},
        "flex": {"api_key": "fsk_test_" + SENTINEL},
        "vipps": {"client_secret": SENTINEL, "subscription_key": SENTINEL + "-sub"},
        "compago": {"api_key": SENTINEL},
    }
    with Sandbox(credentials=creds) as sb:
        config = write_config(tmp_path / "c.toml", sb.account_config())
        outputs = []
        for provider, case in CASES.items():
            for args in (
                ["status", case["cancelable"][0], case["missing"]],
                ["cancel", case["cancelable"][0], "--reason", "r", "--yes"],
                ["cancel", case["not_cancellable"][0], "--reason", "r", "--yes", "--json"],
                ["cancel", "bad/id", "--reason", "r", "--yes"],
            ):
                res = cli("--config", str(config), "-v", *args, "--account", provider)
                outputs.append(res.stdout + res.stderr)
        tokens = {
            r.headers["authorization"].split()[-1]
            for r in sb.request_log
            if r.provider == "vipps" and r.op in ("get", "cancel")
        }
    text = "\n".join(outputs)
    assert "-> GET" in text and "[REDACTED]" in text  # the verbose log did run
    assert SENTINEL not in text
    assert tokens and not any(token in text for token in tokens)
    journal = tmp_path / "journal.sqlite3"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite3*") if p.is_file())
    assert journal.exists() and SENTINEL.encode() not in stored
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
