"""`config show|check|example`, secrets from commands, the keyring and the environment,
per-account isolation, and shell completion."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.config import load_config
from paycancel_cli.errors import ConfigError
from paycancel_cli.providers import probes
from paycancel_cli.sandbox import Sandbox

from .conftest import SENTINEL, CliResult, write_config

ROOT = Path(__file__).resolve().parent.parent
HEDGE_KEY = "sk_test_" + SENTINEL
FLEX_KEY = "fsk_test_" + SENTINEL + "-env"


def secret_command(
    tmp_path: Path, name: str, secret: str, *, exit_code: int = 0, sleep: float = 0
) -> list[str]:
    """A script that counts its runs in ``<name>.count``, prints ``secret`` on stdout
    and stderr, and exits with ``exit_code``."""
    script = tmp_path / f"{name}.py"
    count = tmp_path / f"{name}.count"
    script.write_text(
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(count)!r})\n"
        "p.write_text(str(int(p.read_text()) + 1) if p.exists() else '1')\n"
        f"time.sleep({sleep})\n"
        f"print({secret!r})\n"
        f"print({secret!r}, file=sys.stderr)\n"
        f"sys.exit({exit_code})\n"
    )
    return [sys.executable, str(script)]


def runs_of(tmp_path: Path, name: str) -> int:
    count = tmp_path / f"{name}.count"
    return int(count.read_text()) if count.exists() else 0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def checks(res: CliResult) -> dict[str, dict[str, Any]]:
    lines = res.json_lines()
    assert lines[-1]["type"] == "check_summary", res.stdout
    return {line["account"]: line for line in lines if line["type"] == "check"}


# -- config check ----------------------------------------------------------------------


def test_sandbox_check_is_ok_for_every_account(cli: Any) -> None:
    res = cli("--sandbox", "config", "check", "--json")
    assert res.code == 0, res.stderr
    found = checks(res)
    assert set(found) == {"flexportal", "hedgepayments", "flex", "vipps", "compago"}
    for record in found.values():
        assert record["status"] == "ok" and record["live"] is False
        assert isinstance(record["ms"], int) and record["message"] is None
    assert res.json_lines()[-1]["exit_code"] == 0
    shown = cli("--sandbox", "config", "show", "--json").json_lines()
    assert shown[-1]["sandbox"] is True and shown[-1]["problems"] == 0
    assert {s["source"] for line in shown[:-1] for s in line["secrets"]} == {"sandbox"}


def test_a_wrong_key_is_rejected_with_exit_3_and_nothing_is_cancelled(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    accounts = sandbox.account_config()
    accounts["hedgepayments"]["api_key"] = "sk_test_wrong-key-1234"
    path = write_config(tmp_path / "c.toml", accounts)
    res = cli("--config", str(path), "config", "check", "--json")
    assert res.code == 3, res.stderr
    found = checks(res)
    assert found["hedgepayments"]["status"] == "rejected"
    assert "rejected the credentials" in found["hedgepayments"]["message"]
    assert "api_key from the config file" in found["hedgepayments"]["fix"]
    assert {a: r["status"] for a, r in found.items() if a != "hedgepayments"} == dict.fromkeys(
        ["flexportal", "flex", "vipps", "compago"], "ok"
    )
    assert sandbox.cancel_commits == {}
    assert not [op for (_, op) in sandbox.counts if op == "cancel"]
    # Vipps' check is a token; the others one read each
    assert sandbox.counts[("vipps", "token")] == 1
    assert sum(n for (_, op), n in sandbox.counts.items() if op == "get") == 4


def test_a_closed_port_is_unreachable_exit_5(cli: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    accounts = sandbox.account_config()
    accounts["compago"]["base_url"] = f"http://127.0.0.1:{closed_port()}/compago"
    accounts["compago"]["timeout_s"] = 2  # type: ignore[assignment]
    path = write_config(tmp_path / "c.toml", accounts)
    res = cli("--config", str(path), "config", "check", "--json")
    assert res.code == 5, res.stderr
    found = checks(res)
    assert found["compago"]["status"] == "unreachable"
    assert "could not connect" in found["compago"]["message"]
    assert found["flex"]["status"] == "ok"


def test_a_silent_host_times_out_within_the_accounts_timeout(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        accounts = {"h": dict(sandbox.account_config()["hedgepayments"])}
        accounts["h"]["base_url"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        accounts["h"]["timeout_s"] = 1  # type: ignore[assignment]
        path = write_config(tmp_path / "c.toml", accounts)
        res = cli("--config", str(path), "config", "check")
    assert res.code == 5
    # the check's own bound (the account's timeout_s) ended it, not a test timeout
    assert res.stdout.startswith(
        "h (hedgepayments, test): unreachable: no answer within the account's timeout of 1 s."
    ), res.stdout
    assert f"Fix: Is {accounts['h']['base_url']} reachable from here" in res.stdout


def test_precedence_misconfigured_then_rejected(cli: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    accounts: dict[str, dict[str, Any]] = sandbox.account_config()
    accounts["flex"]["api_key"] = "fsk_test_wrong-key-1234"
    accounts["broken"] = {"provider": "flexportal", "api_key": "abcdefghij", "region": "eu"}
    path = write_config(tmp_path / "c.toml", accounts)
    res = cli("--config", str(path), "config", "check")
    assert res.code == 2
    lines = res.stdout.splitlines()
    assert len(lines) == 6
    assert lines[-1] == (
        f"broken (flexportal): misconfigured: Config {path}: account 'broken': field "
        "'tenant_id' is required. Fix it and try again. Fix: Fix what is named above "
        "(`paycancel config example` shows every field)."
    )
    assert "flex (flex, test): credentials rejected: " in res.stdout
    res = cli("--config", str(path), "config", "check", "--account", "flex", "--json")
    assert res.code == 3 and list(checks(res)) == ["flex"]
    res = cli("--config", str(path), "config", "check", "--account", "flexx")
    assert res.code == 2
    assert "Unknown account 'flexx' (did you mean 'flex'?)" in res.stderr


# -- config show -----------------------------------------------------------------------


def test_show_says_where_each_secret_comes_from_never_its_value(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {
            "hedge": {
                "provider": "hedgepayments",
                "api_key_command": secret_command(tmp_path, "hedge", HEDGE_KEY),
                "requests_per_minute": 100,
            },
            "flex": {"provider": "flex", "api_key": "fsk_livekeyfromfile", "timeout_s": 12},
            "vipps": {
                "provider": "vipps",
                "client_id": "client",
                "client_secret": "keyring:paycancel/vipps",
                "subscription_key": "subkey_123",
                "merchant_serial_number": 123456,
                "environment": "test",
            },
        },
    )
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__FLEX__API_KEY", FLEX_KEY)
    monkeypatch.setitem(sys.modules, "keyring", None)  # the extra is not installed
    res = cli("--config", str(path), "config", "show", "--json")
    lines = res.json_lines()
    assert res.code == 2  # vipps cannot be read
    assert lines[-1] == {
        "type": "config",
        "path": str(path),
        "searched": [str(path)],
        "sandbox": False,
        "accounts": 3,
        "problems": 1,
        "journal": str(tmp_path / "journal.sqlite3"),
    }
    hedge, flex, vipps = lines[:3]
    assert hedge == {
        "type": "account",
        "account": "hedge",
        "provider": "hedgepayments",
        "live": False,
        "decided_by": "key prefix sk_test_",
        "url": "https://api-sandbox.hedgepayments.com",
        "requests_per_minute": 100,
        "timeout_s": 30.0,
        "secrets": [
            {
                "field": "api_key",
                "source": "command",
                "variable": None,
                "detail": sys.executable,
                "placeholder": False,
            }
        ],
        "problem": None,
    }
    assert flex["live"] is False and flex["decided_by"] == "key prefix fsk_test_"
    assert flex["secrets"] == [
        {
            "field": "api_key",
            "source": "env",
            "variable": "PAYCANCEL_ACCOUNTS__FLEX__API_KEY",
            "detail": None,
            "placeholder": False,
        }
    ]
    assert flex["timeout_s"] == 12
    assert vipps["live"] is None
    assert vipps["problem"] == (
        "Config: account 'vipps', field 'client_secret' is read from the OS keyring, which "
        "needs the optional keyring support: pip install 'paycancel[keyring]'."
    )
    assert [s["source"] for s in vipps["secrets"]] == ["keyring", "file"]
    assert SENTINEL not in res.stdout + res.stderr
    assert runs_of(tmp_path, "hedge") == 1
    human = cli("--config", str(path), "config", "show")
    assert "hedge test  hedgepayments  (decided by key prefix sk_test_)" in human.stdout
    assert "  api_key:          environment variable PAYCANCEL_ACCOUNTS__FLEX__API_KEY" in (
        human.stdout
    )
    assert f"  api_key:          command {sys.executable}" in human.stdout
    assert "  client_secret:    keyring paycancel/vipps" in human.stdout
    assert SENTINEL not in human.stdout + human.stderr


def test_show_without_a_config_names_the_paths_searched(cli: Any, tmp_path: Path) -> None:
    res = cli("config", "show", "--json")
    assert res.code == 0
    expected = str(tmp_path / "xdg-config" / "paycancel" / "config.toml")
    assert res.json_lines() == [
        {
            "type": "config",
            "path": None,
            "searched": [
                "--config (not given)",
                "$PAYCANCEL_CONFIG (not set)",
                f"{expected} (does not exist)",
            ],
            "sandbox": False,
            "accounts": 0,
            "problems": 0,
            "journal": str(tmp_path / "journal.sqlite3"),
        }
    ]
    res = cli("status", "pay_x1")
    assert res.code == 2
    assert f"{expected} (does not exist)" in res.stderr
    assert "`paycancel config example`" in res.stderr


# -- config example --------------------------------------------------------------------


def test_example_is_shipped_in_the_package_and_equal_to_the_repo_copy(cli: Any) -> None:
    shipped = ROOT / "src" / "paycancel_cli" / "config.example.toml"
    assert shipped.read_bytes() == (ROOT / "config.example.toml").read_bytes()
    res = cli("config", "example")
    assert res.code == 0 and res.stdout == shipped.read_text()


def test_the_printed_example_is_a_valid_config(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(cli("config", "example").stdout)
    config = load_config(path)
    assert set(config.accounts) == {"flexportal_eu", "hedge", "flex", "vipps_no", "compago"}
    for name in config.accounts:
        config.account(name)


# -- secrets from commands, the keyring and the environment ----------------------------


@pytest.fixture
def secret_sandbox() -> Iterator[Sandbox]:
    """A sandbox that takes the sentinel keys."""
    with Sandbox(
        credentials={"hedgepayments": {"api_key": HEDGE_KEY}, "flex": {"api_key": FLEX_KEY}}
    ) as sb:
        yield sb


def test_sentinel_secrets_never_leak_and_the_command_runs_once(
    cli: Any,
    secret_sandbox: Sandbox,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = secret_sandbox.account_config()
    path = write_config(
        tmp_path / "c.toml",
        {
            "hedge": {
                "provider": "hedgepayments",
                "base_url": good["hedgepayments"]["base_url"],
                "api_key_command": secret_command(tmp_path, "hedge", HEDGE_KEY),
            },
            "flex": {"provider": "flex", "base_url": good["flex"]["base_url"]},
            "hedge_old": {  # the same key at a provider that does not take it
                "provider": "hedgepayments",
                "base_url": sandbox.account_config()["hedgepayments"]["base_url"],
                "api_key_command": secret_command(tmp_path, "old", HEDGE_KEY),
            },
        },
    )
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__FLEX__API_KEY", FLEX_KEY)
    report = tmp_path / "report.jsonl"
    csv = tmp_path / "in.csv"
    csv.write_text(
        "account,payment_id\nhedge,pay_demopending01\nflex,fpi_demo_requires_capture_01\n"
    )
    conf = ("--config", str(path))
    outputs: list[str] = []

    def run(*args: str) -> CliResult:
        res: CliResult = cli(*conf, *args)
        outputs.append(res.stdout + res.stderr)
        return res

    assert run("config", "show").code == 0
    assert runs_of(tmp_path, "hedge") == 1 and runs_of(tmp_path, "old") == 1
    res = run("-v", "config", "check")
    assert res.code == 3 and "hedge_old (hedgepayments, test): credentials rejected" in res.stdout
    assert "authorization: [REDACTED]" in res.stderr
    assert runs_of(tmp_path, "hedge") == 2 and runs_of(tmp_path, "old") == 2
    res = run("-v", "status", "pay_demopending01", "--account", "hedge")
    assert res.code == 0 and "pay_demopending01" in res.stdout
    assert runs_of(tmp_path, "hedge") == 3 and runs_of(tmp_path, "old") == 2  # only the one used
    res = run("-v", "status", "pay_missing01", "--account", "hedge")  # a failing command
    assert res.code == 1
    res = run("-v", "status", "pay_demopending01", "--account", "hedge_old")  # auth failure
    assert res.code == 3 and "rejected the credentials" in res.stderr
    res = run(
        "-v", "bulk-cancel", str(csv), "--reason", "r", "--yes", "--report", str(report), "--json"
    )
    assert res.code == 0, res.stderr
    assert runs_of(tmp_path, "hedge") == 5 and runs_of(tmp_path, "old") == 3
    assert secret_sandbox.cancel_commits == {
        ("hedgepayments", "pay_demopending01"): 1,
        ("flex", "fpi_demo_requires_capture_01"): 1,
    }
    for text in outputs:
        assert SENTINEL not in text
    stored = [p for p in tmp_path.rglob("journal.sqlite3*") if p.is_file()]
    assert stored and report.exists()
    for file in [*stored, report]:
        assert SENTINEL.encode() not in file.read_bytes()


def test_precedence_env_then_command_then_plain_value(
    cli: Any, secret_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = secret_sandbox.account_config()["hedgepayments"]["base_url"]
    path = write_config(
        tmp_path / "c.toml",
        {
            "hedge": {
                "provider": "hedgepayments",
                "base_url": url,
                "api_key": "sk_test_plain-value-is-last",
                "api_key_command": secret_command(tmp_path, "hedge", HEDGE_KEY),
            }
        },
    )
    res = cli("--config", str(path), "config", "check", "--json")
    assert res.code == 0 and runs_of(tmp_path, "hedge") == 1  # the command beat the value
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__HEDGE__API_KEY", "sk_test_from-the-environment")
    res = cli("--config", str(path), "config", "check", "--json")
    assert res.code == 3 and runs_of(tmp_path, "hedge") == 1  # the variable won; no run
    assert "PAYCANCEL_ACCOUNTS__HEDGE__API_KEY" in checks(res)["hedge"]["fix"]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"exit_code": 1}, "exited with status 1 (its output is not shown"),
        ({"secret": ""}, "printed nothing; a secret was expected"),
        ({"sleep": 5}, "did not finish within 0.5 s"),
    ],
)
def test_a_failing_secret_command_names_account_and_field_and_echoes_nothing(
    cli: Any,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kw: dict[str, Any],
    expected: str,
) -> None:
    monkeypatch.setattr("paycancel_cli.secretsources.COMMAND_TIMEOUT_S", 0.5)
    secret = kw.pop("secret", HEDGE_KEY)
    path = write_config(
        tmp_path / "c.toml",
        {
            "hedge": {
                "provider": "hedgepayments",
                "api_key_command": secret_command(tmp_path, "hedge", secret, **kw),
            },
            "flex": sandbox.account_config()["flex"],
        },
    )
    res = cli("--config", str(path), "status", "fpi_demo_succeeded_01", "--account", "flex")
    assert res.code == 0 and res.stderr == ""  # the other account never ran its command
    assert runs_of(tmp_path, "hedge") == 0
    res = cli("--config", str(path), "status", "pay_x1", "--account", "hedge")
    assert res.code == 2
    assert res.stderr.startswith("Error: Config: account 'hedge', field 'api_key_command': ")
    assert expected in res.stderr
    assert SENTINEL not in res.stdout + res.stderr
    assert runs_of(tmp_path, "hedge") == 1


def test_secret_command_output_loses_one_trailing_newline_only(
    tmp_path: Path,
) -> None:
    from paycancel_cli.secretsources import run_command

    script = tmp_path / "s.py"
    script.write_text("import sys; sys.stdout.write('sk_test_abc\\n\\n')")
    with pytest.raises(ConfigError, match="a trailing newline"):
        path = write_config(
            tmp_path / "c.toml",
            {"h": {"provider": "hedgepayments", "api_key_command": [sys.executable, str(script)]}},
        )
        load_config(path).account("h")
    script.write_text("import sys; sys.stdout.write('sk_test_abcdef\\r\\n')")
    assert run_command([sys.executable, str(script)], account="h", field="api_key") == (
        "sk_test_abcdef"
    )


def test_a_command_must_be_a_list(cli: Any, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {"h": {"provider": "hedgepayments", "api_key_command": "op read op://x/y"}},
    )
    res = cli("--config", str(path), "status", "pay_x1")
    assert res.code == 2
    assert (
        f"Error: Config {path}: account 'h', field 'api_key_command' must be a list of "
        'program and arguments, e.g. ["op", "read", "op://vault/item/field"]'
    ) in res.stderr


class MemoryKeyring:
    """A real keyring backend holding its passwords in memory."""

    def __new__(cls) -> Any:
        import keyring.backend

        class Backend(keyring.backend.KeyringBackend):
            priority = 1  # type: ignore[assignment]

            def __init__(self) -> None:
                super().__init__()
                self.store: dict[tuple[str, str], str] = {}

            def get_password(self, service: str, username: str) -> str | None:
                return self.store.get((service, username))

            def set_password(self, service: str, username: str, password: str) -> None:
                self.store[(service, username)] = password

            def delete_password(self, service: str, username: str) -> None:
                del self.store[(service, username)]

        return Backend()


def test_keyring_secret(
    cli: Any, secret_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = pytest.importorskip("keyring")
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        url = secret_sandbox.account_config()["hedgepayments"]["base_url"]
        path = write_config(
            tmp_path / "c.toml",
            {
                "hedge": {
                    "provider": "hedgepayments",
                    "base_url": url,
                    "api_key": "keyring:paycancel/hedge",
                }
            },
        )
        res = cli("--config", str(path), "config", "check")
        assert res.code == 2
        assert (
            "the keyring has no password for service 'paycancel', user 'hedge'. Store it "
            "with: keyring set paycancel hedge"
        ) in res.stdout
        backend.set_password("paycancel", "hedge", HEDGE_KEY)
        res = cli("--config", str(path), "-v", "status", "pay_demopending01")
        assert res.code == 0 and SENTINEL not in res.stdout + res.stderr
    finally:
        keyring.set_keyring(previous)


def test_a_keyring_backend_that_breaks_fails_only_its_account(
    cli: Any, secret_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Backends raise what their platform raises (D-Bus, OS errors), not only
    # KeyringError: that is one account's misconfiguration, never the whole command's.
    keyring = pytest.importorskip("keyring")
    previous = keyring.get_keyring()
    backend = MemoryKeyring()

    def broken(service: str, username: str) -> str | None:
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")

    backend.get_password = broken
    keyring.set_keyring(backend)
    try:
        good = secret_sandbox.account_config()
        path = write_config(
            tmp_path / "c.toml",
            {
                "hedge": {
                    "provider": "hedgepayments",
                    "base_url": good["hedgepayments"]["base_url"],
                    "api_key": "keyring:paycancel/hedge",
                },
                "flex": {"provider": "flex", "base_url": good["flex"]["base_url"]},
            },
        )
        monkeypatch.setenv("PAYCANCEL_ACCOUNTS__FLEX__API_KEY", FLEX_KEY)
        res = cli("--config", str(path), "config", "check", "--json")
        assert res.code == 2, res.stdout + res.stderr
        found = checks(res)
        assert found["flex"]["status"] == "ok"
        assert found["hedge"]["status"] == "misconfigured"
        assert (
            "account 'hedge', field 'api_key': the OS keyring could not be read (RuntimeError)"
        ) in found["hedge"]["message"]
    finally:
        keyring.set_keyring(previous)


# -- per-account isolation and config messages -------------------------------------------


def test_a_stray_variable_names_itself_and_spares_other_accounts(
    cli: Any, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__HEDGEPAYMENTZ__API_KEY", "sk_test_" + SENTINEL)
    conf = ("--config", str(config_file))
    res = cli(*conf, "status", "pay_demopending01", "--account", "hedgepayments", "--json")
    assert res.code == 0
    warnings = [line for line in res.stderr.splitlines() if line]
    assert warnings == [
        "Warning: account 'hedgepaymentz' is skipped: The environment variable "
        "PAYCANCEL_ACCOUNTS__HEDGEPAYMENTZ__API_KEY names account 'hedgepaymentz', which the "
        "config file does not have (did you mean 'hedgepayments'?). Unset the variable or fix "
        "the account name in it; commands on other accounts are not affected."
    ]
    res = cli(*conf, "status", "pay_demopending01", "--account", "hedgepaymentz")
    assert res.code == 2
    assert "PAYCANCEL_ACCOUNTS__HEDGEPAYMENTZ__API_KEY" in res.stderr
    assert SENTINEL not in res.stdout + res.stderr


def test_a_broken_account_fails_only_the_commands_that_use_it(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    accounts: dict[str, dict[str, Any]] = sandbox.account_config()
    accounts["compago"]["api_kye"] = accounts["compago"].pop("api_key")
    path = write_config(tmp_path / "c.toml", accounts)
    res = cli("--config", str(path), "status", "fpi_demo_succeeded_01", "--account", "flex")
    assert res.code == 0
    assert res.stderr.count("Warning: account 'compago' is skipped") == 1
    res = cli(
        "--config",
        str(path),
        "status",
        "7d3f0b4e-0000-4000-8000-000000000001",
        "--account",
        "compago",
    )
    assert res.code == 2
    assert res.stderr == (
        f"Error: Config {path}: account 'compago': field 'api_key' is required; field "
        "'api_kye' is not a known field (did you mean 'api_key'?). Fix it and try again.\n"
    )


def test_an_error_from_a_variable_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "c.toml", {"h": {"provider": "hedgepayments"}})
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__H__API_KEY", "pk_test_" + SENTINEL)
    with pytest.raises(ConfigError) as info:
        load_config(path).account("h")
    assert (
        "field 'api_key' (from the environment variable PAYCANCEL_ACCOUNTS__H__API_KEY) must "
        "be a secret key starting sk_test_ or sk_live_"
    ) in info.value.message
    assert SENTINEL not in info.value.message


def test_defaults_errors_name_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[defaults]\nconcurrency = "eight"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == (
        f"Config {path}: [defaults]: field 'concurrency' Input should be a valid integer, "
        "unable to parse string as an integer. Fix it and try again."
    )
    path.write_text("[defaults]\nconcurency = 8\n")
    with pytest.raises(ConfigError, match=r"did you mean 'concurrency'\?"):
        load_config(path)
    path.write_text("[default]\nconcurrency = 8\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) default \(did you mean"):
        load_config(path)
    path.write_text("")
    monkeypatch.setenv("PAYCANCEL_DEFAULTS__CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match="from the environment variable PAYCANCEL_DEFAULTS__"):
        load_config(path)


def test_merchant_serial_number_may_be_a_toml_integer(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[accounts.v]\nprovider = "vipps"\nclient_id = "c"\nclient_secret = "secret_123"\n'
        'subscription_key = "subkey_123"\nmerchant_serial_number = 123456\n'
    )
    account = load_config(path).account("v")
    assert account.merchant_serial_number == "123456"  # type: ignore[union-attr]


def test_unknown_provider_and_account_get_suggestions(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {"hedge": {"provider": "hedgepayment", "api_key": "sk_test_abcdefgh"}},
    )
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"unknown provider 'hedgepayment' \(did you mean "):
        config.account("hedge")
    with pytest.raises(ConfigError, match=r"Unknown account 'hedg' \(did you mean 'hedge'\?\)"):
        config.account("hedg")


# -- shell completion ------------------------------------------------------------------


def paycancel(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paycancel_cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion(shell: str) -> None:
    done = paycancel(["--show-completion", shell], {})
    assert done.returncode == 0, done.stderr
    assert f"_PAYCANCEL_COMPLETE=complete_{shell}" in done.stdout


def test_show_completion_refuses_an_unknown_shell() -> None:
    done = paycancel(["--show-completion", "tcsh"], {})
    assert done.returncode == 2
    assert "choose one of bash, zsh, fish" in done.stderr


def complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    done = paycancel(
        [],
        {
            "_PAYCANCEL_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
            **(env or {}),
        },
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_completes_commands_options_accounts_and_run_ids(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    assert "config" in complete("paycancel con")
    assert complete("paycancel config ch") == ["check"]
    assert "--account" in complete("paycancel status --acc")
    env = {"PAYCANCEL_CONFIG": str(config_file)}
    assert complete("paycancel status --account fl", env) == ["flexportal", "flex"]
    assert complete("paycancel config check --account vi", env) == ["vipps"]
    assert complete("paycancel --sandbox cancel x --account comp") == ["compago"]
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
    assert res.code == 0
    run_id = res.json_lines()[-1]["run_id"]
    assert complete(f"paycancel runs show {run_id[:4]}", env) == [run_id]
    assert complete(f"paycancel bulk-cancel --resume {run_id[:8]}", env) == [run_id]
    assert complete("paycancel runs show 1999", env) == []


def test_readme_documents_configuration_and_the_preflight() -> None:
    readme = (ROOT / "README.md").read_text()
    config = readme[readme.index("## Configuration") : readme.index("## Commands")]
    for shown in (
        "paycancel config example >",
        "$ paycancel config show",
        "$ paycancel config check",
        'api_key_command = ["op", "read", "op://ops/hedge/api_key"]',
        "keyring:SERVICE/USERNAME",
    ):
        assert shown in config, shown
    cron = readme[readme.index("## Running from cron") : readme.index("## Safety")]
    # the pre-flight by hand before the first night, and first in the nightly line,
    # logged but never a gate (a gate skipped the night with no run to resume)
    assert "/opt/paycancel/bin/paycancel --config /etc/paycancel/config.toml config check" in cron
    line = cron[cron.index("```cron") :].split("```")[1]
    first, *rest = line.split("; ")
    assert "config check" in first and "&&" not in line and "bulk-cancel" in rest[-1]
    for provider, sent in probes().items():
        assert sent.split(" (")[0].split(" ", 1)[1] in readme, provider


def test_install_completion_writes_the_script_where_the_shell_loads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = paycancel(["--install-completion", "fish"], {"HOME": str(home)})
    assert done.returncode == 0, done.stderr
    script = home / ".config" / "fish" / "completions" / "paycancel.fish"
    assert done.stdout.strip() == f"fish completion installed in {script}; it works in new shells."
    assert "_PAYCANCEL_COMPLETE=complete_fish" in script.read_text()


def test_completion_reads_a_config_given_after_the_command(config_file: Path) -> None:
    assert complete(f"paycancel status --config {config_file} --account v") == ["vipps"]
    assert complete("paycancel status --config /nonexistent.toml --account v") == []
