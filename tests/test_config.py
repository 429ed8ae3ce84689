"""Config: lookup order, env overrides, validation messages, live detection, permissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from paycancel_cli.config import load_config
from paycancel_cli.errors import ConfigError

from .conftest import SENTINEL, write_config


def test_env_overrides_and_fills_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {"flexportal_eu": {"provider": "flexportal", "tenant_id": "acme", "region": "eu"}},
    )
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__FLEXPORTAL_EU__API_KEY", SENTINEL)
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS__FLEXPORTAL_EU__REGION", "us")
    account = load_config(path).account("flexportal_eu")
    assert account.api_key.get_secret_value() == SENTINEL  # type: ignore[union-attr]
    assert account.url == "https://api-us.flexportal.io"
    assert SENTINEL not in repr(account)


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_config(tmp_path / "a.toml", {"a": {"provider": "flex", "api_key": "fsk_test_a"}})
    b = write_config(tmp_path / "b.toml", {"b": {"provider": "flex", "api_key": "fsk_test_b"}})
    user = tmp_path / "xdg-config" / "paycancel"
    user.mkdir(parents=True)
    write_config(user / "config.toml", {"u": {"provider": "flex", "api_key": "fsk_test_u"}})
    assert list(load_config().accounts) == ["u"]
    monkeypatch.setenv("PAYCANCEL_CONFIG", str(b))
    assert list(load_config().accounts) == ["b"]
    assert list(load_config(a).accounts) == ["a"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"provider": "stripe"}, "field 'provider': unknown provider 'stripe'"),
        (
            {"provider": "flexportal", "api_key": SENTINEL, "region": "eu"},
            "field 'tenant_id' is required",
        ),
        (
            {"provider": "flexportal", "api_key": SENTINEL, "tenant_id": "t", "region": "mars"},
            "field 'region'",
        ),
        (
            {"provider": "hedgepayments", "api_key": "pk_test_" + SENTINEL},
            "starting sk_test_ or sk_live_",
        ),
        (
            {
                "provider": "vipps",
                "client_id": "c",
                "client_secret": SENTINEL,
                "subscription_key": "s",
                "merchant_serial_number": "12",
            },
            "field 'merchant_serial_number'",
        ),
        (
            {"provider": "compago", "api_key": SENTINEL, "base_url": "http://proxy.example.com"},
            "plain http:// is only allowed on loopback",
        ),
        (
            {"provider": "compago", "api_key": SENTINEL, "environment": "staging"},
            "field 'environment'",
        ),
        (
            {"provider": "compago", "api_key": SENTINEL, "colour": "red"},
            "field 'colour' is not a known field",
        ),
    ],
)
def test_bad_account_names_file_account_and_field(
    tmp_path: Path, fields: dict[str, str], expected: str
) -> None:
    path = write_config(tmp_path / "c.toml", {"acct": fields})
    with pytest.raises(ConfigError) as info:
        load_config(path).account("acct")
    message = info.value.message
    assert str(path) in message and "'acct'" in message and expected in message
    assert SENTINEL not in message


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[accounts.x\nprovider = 'flex'\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_bad_account_name(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml", {"Bad-Name": {"provider": "flex", "api_key": "fsk_test_x"}}
    )
    with pytest.raises(ConfigError, match="account name 'Bad-Name' is invalid"):
        load_config(path).account("Bad-Name")


@pytest.mark.parametrize(
    ("fields", "live"),
    [
        ({"provider": "hedgepayments", "api_key": "sk_live_x"}, True),
        ({"provider": "hedgepayments", "api_key": "sk_test_x"}, False),
        ({"provider": "flex", "api_key": "fsk_livekey123"}, True),
        ({"provider": "flex", "api_key": "fsk_test_x"}, False),
        ({"provider": "flex", "api_key": "fsk_test_x", "environment": "test"}, False),
        ({"provider": "compago", "api_key": "cpk_key_123"}, True),
        ({"provider": "compago", "api_key": "cpk_key_123", "environment": "sandbox"}, False),
    ],
)
def test_live_detection(tmp_path: Path, fields: dict[str, str], live: bool) -> None:
    path = write_config(tmp_path / "c.toml", {"a": fields})
    assert load_config(path).account("a").is_live is live


def test_default_hosts(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {
            "h": {"provider": "hedgepayments", "api_key": "sk_test_x"},
            "v": {
                "provider": "vipps",
                "client_id": "c",
                "client_secret": "secret_123",
                "subscription_key": "subkey_123",
                "merchant_serial_number": "123456",
                "environment": "test",
            },
            "c": {"provider": "compago", "api_key": "cpk_key_123", "environment": "production"},
            "p": {
                "provider": "flexportal",
                "api_key": "cpk_key_123",
                "tenant_id": "t",
                "region": "qatar",
            },
            "l": {
                "provider": "compago",
                "api_key": "cpk_key_123",
                "base_url": "http://127.0.0.1:9/x/",
            },
        },
    )
    config = load_config(path)
    assert config.account("h").url == "https://api-sandbox.hedgepayments.com"
    assert config.account("v").url == "https://apitest.vipps.no"
    assert config.account("c").url == "https://api.harmony.compago.com"
    assert config.account("p").url == "https://api-qatar.flexportal.io"
    assert config.account("l").url == "http://127.0.0.1:9/x"


def test_world_readable_config_with_secrets_warns(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {"a": {"provider": "flex", "api_key": SENTINEL.replace("SENTINEL", "fsk_test_")}},
        mode=0o644,
    )
    warnings: list[str] = []
    load_config(path, warn=warnings.append)
    assert len(warnings) == 1 and "chmod 600" in warnings[0]
    path.chmod(0o600)
    warnings.clear()
    load_config(path, warn=warnings.append)
    assert warnings == []


def test_account_choice(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {
            "a": {"provider": "flex", "api_key": "fsk_test_a"},
            "b": {"provider": "flex", "api_key": "fsk_test_b"},
        },
    )
    config = load_config(path)
    with pytest.raises(ConfigError, match="choose one with --account"):
        config.account(None)
    with pytest.raises(ConfigError, match="Unknown account 'zz'"):
        config.account("zz")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"provider": "hedgepayments", "api_key": "sk_live_abcdefgh", "environment": "test"},
            "contradicts the key, which is a live key",
        ),
        (
            {"provider": "flex", "api_key": "fsk_test_abcdefgh", "environment": "live"},
            "contradicts the key, which is a test key",
        ),
        ({"provider": "compago", "api_key": "cpk_abcdefgh\n"}, "a trailing newline"),
        ({"provider": "compago", "api_key": "short"}, "too short"),
        (
            {
                "provider": "vipps",
                "client_id": "c",
                "client_secret": "secret_123",
                "subscription_key": "subkey_123",
                "merchant_serial_number": "123456",
                "environment": "test",
                "base_url": "https://api.vipps.no",
            },
            "base_url points at the provider's live host",
        ),
        (
            {
                "provider": "hedgepayments",
                "api_key": "sk_test_abcdefgh",
                "base_url": "https://api.hedgepayments.com",
            },
            "base_url points at the provider's live host but the key says test",
        ),
    ],
)
def test_credentials_that_cannot_be_right_are_refused(
    tmp_path: Path, fields: dict[str, str], expected: str
) -> None:
    path = write_config(tmp_path / "c.toml", {"acct": fields})
    with pytest.raises(ConfigError, match=expected):
        load_config(path).account("acct")


def test_whole_json_env_variable_gives_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYCANCEL_ACCOUNTS", "{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config()


def test_a_known_test_host_makes_a_keyless_account_test(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {
            "c": {
                "provider": "compago",
                "api_key": "cpk_key_123",
                "base_url": "https://demo.api.harmony.compago.com",
            }
        },
    )
    assert load_config(path).account("c").is_live is False
