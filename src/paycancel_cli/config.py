"""Configuration: accounts and defaults from a TOML file, overridden by the environment.

Precedence (highest first): ``PAYCANCEL_*`` environment variables, the TOML file.  The
file is found at ``--config PATH``, else ``$PAYCANCEL_CONFIG``, else the user config dir.
Secrets are ``SecretStr`` from the moment they are parsed; error messages are built
from field names and pydantic's message text only, never from the input values, so a
secret cannot leak through a validation error.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from paycancel_cli.errors import ConfigError

ACCOUNT_NAME = r"^[a-z][a-z0-9_]*$"
# The providers' own hosts, and whether each is live: a base_url naming one of them
# decides live/test as firmly as a key prefix does.
KNOWN_HOSTS = {
    "api-eu.flexportal.io": True,
    "api-us.flexportal.io": True,
    "api-qatar.flexportal.io": True,
    "api-test.flexportal.io": False,
    "api.hedgepayments.com": True,
    "api-sandbox.hedgepayments.com": False,
    "api.vipps.no": True,
    "apitest.vipps.no": False,
    "api.harmony.compago.com": True,
    "demo.api.harmony.compago.com": False,
}
TEST_ENVIRONMENTS = frozenset({"test", "demo", "sandbox"})
LIVE_ENVIRONMENTS = frozenset({"live", "production"})


def _check_base_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as https://proxy.example:8443")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; put them in the account's secret fields")
    if parts.query or parts.fragment:
        raise ValueError("must be scheme, host, port and an optional path prefix only")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("plain http:// is only allowed on loopback addresses; use https://")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AccountBase(BaseModel):
    """Fields every account accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    secret_fields: ClassVar[tuple[str, ...]] = ()

    name: str = ""
    provider: str
    base_url: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    requests_per_minute: int | None = Field(default=None, gt=0)
    environment: str | None = None

    _check_url = field_validator("base_url")(_check_base_url)

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in TEST_ENVIRONMENTS | LIVE_ENVIRONMENTS:
            raise ValueError("must be one of test, demo, sandbox (test) or live, production")
        return None if value is None else value.lower()

    @model_validator(mode="after")
    def _consistent(self) -> AccountBase:
        for name in self.secret_fields:
            secret = getattr(self, name).get_secret_value()
            if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in secret):
                raise ValueError(
                    f"{name} holds whitespace or a control character (a trailing newline "
                    "from a file or variable?)"
                )
            if len(secret) < 8:
                raise ValueError(f"{name} is too short to be a real credential")
        key_live = self._live_from_key()
        env_live = None if self.environment is None else self.environment in LIVE_ENVIRONMENTS
        if env_live is not None and key_live is not None and key_live != env_live:
            raise ValueError(
                f"environment {self.environment!r} contradicts the key, which is a "
                f"{'live' if key_live else 'test'} key; fix one of them"
            )
        host_live = self._live_from_host()
        for said, what in ((env_live, f"environment {self.environment!r}"), (key_live, "the key")):
            if said is not None and host_live is not None and said != host_live:
                raise ValueError(
                    f"base_url points at the provider's {'live' if host_live else 'test'} host "
                    f"but {what} says {'live' if said else 'test'}; fix one of them"
                )
        return self

    def _live_from_host(self) -> bool | None:
        host = urlsplit(self.base_url).hostname if self.base_url else None
        return KNOWN_HOSTS.get(host or "")

    @property
    def is_live(self) -> bool:
        """Live when the environment says so, or the key does, or nothing says test."""
        key_live = self._live_from_key()
        if self._live_from_host():
            return True
        if self.environment is not None:
            return self.environment in LIVE_ENVIRONMENTS or bool(key_live)
        if self._live_from_host() is False:
            return bool(key_live)
        return True if key_live is None else key_live

    def _live_from_key(self) -> bool | None:
        """What the key's prefix says (None: the key does not tell)."""
        return None

    def default_base_url(self) -> str:
        raise NotImplementedError

    # The path prefixes the provider's docs print as part of their base URL; a base_url
    # copied from them with one would double it (the adapters append the full paths).
    documented_prefixes: ClassVar[tuple[str, ...]] = ("/v1",)

    @property
    def url(self) -> str:
        if self.base_url is None:
            return self.default_base_url()
        for prefix in self.documented_prefixes:
            if self.base_url.lower().endswith(prefix):
                return self.base_url[: -len(prefix)]
        return self.base_url

    def secrets(self) -> list[str]:
        """Every secret value of this account, for redaction."""
        out = []
        for name in self.secret_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


class FlexPortalAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["flexportal"]
    api_key: SecretStr
    tenant_id: Annotated[str, StringConstraints(min_length=1)]
    region: Literal["eu", "us", "qatar"]

    def default_base_url(self) -> str:
        if self.environment in TEST_ENVIRONMENTS:
            return "https://api-test.flexportal.io"
        return f"https://api-{self.region}.flexportal.io"


class HedgePaymentsAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["hedgepayments"]
    api_key: SecretStr

    @field_validator("api_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("sk_test_", "sk_live_")):
            raise ValueError("must be a secret key starting sk_test_ or sk_live_ (not pk_)")
        return value

    def _live_from_key(self) -> bool | None:
        return not self.api_key.get_secret_value().startswith("sk_test_")

    def default_base_url(self) -> str:
        if self.api_key.get_secret_value().startswith("sk_test_"):
            return "https://api-sandbox.hedgepayments.com"
        return "https://api.hedgepayments.com"


class FlexAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["flex"]
    api_key: SecretStr

    @field_validator("api_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("fsk_"):
            raise ValueError("must be a Flex secret key starting fsk_test_ or fsk_")
        return value

    def _live_from_key(self) -> bool | None:
        return not self.api_key.get_secret_value().startswith("fsk_test_")

    def default_base_url(self) -> str:
        return "https://api.withflex.com"


class VippsAccount(AccountBase):
    secret_fields = ("client_secret", "subscription_key")
    provider: Literal["vipps"]
    client_id: Annotated[str, StringConstraints(min_length=1)]
    client_secret: SecretStr
    subscription_key: SecretStr
    merchant_serial_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,6}$")]
    documented_prefixes: ClassVar[tuple[str, ...]] = ("/epayment/v1", "/epayment")

    def default_base_url(self) -> str:
        if self.environment in TEST_ENVIRONMENTS:
            return "https://apitest.vipps.no"
        return "https://api.vipps.no"


class CompagoAccount(AccountBase):
    secret_fields = ("api_key",)
    provider: Literal["compago"]
    api_key: SecretStr
    documented_prefixes: ClassVar[tuple[str, ...]] = ("/api",)

    def default_base_url(self) -> str:
        if self.environment in TEST_ENVIRONMENTS:
            return "https://demo.api.harmony.compago.com"
        return "https://api.harmony.compago.com"


Account = FlexPortalAccount | HedgePaymentsAccount | FlexAccount | VippsAccount | CompagoAccount

ACCOUNT_TYPES: dict[str, type[AccountBase]] = {
    "flexportal": FlexPortalAccount,
    "hedgepayments": HedgePaymentsAccount,
    "flex": FlexAccount,
    "vipps": VippsAccount,
    "compago": CompagoAccount,
}


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    concurrency: int = Field(default=8, ge=1, le=256)
    journal: str | None = None


class _RawSettings(BaseSettings):
    """Merges the TOML file and ``PAYCANCEL_*`` variables; accounts stay raw dicts
    here and are validated one by one below, for messages that name the account."""

    model_config = SettingsConfigDict(
        env_prefix="PAYCANCEL_", env_nested_delimiter="__", extra="ignore"
    )
    defaults: dict[str, Any] = Field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _toml: ClassVar[dict[str, Any]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


@dataclass(frozen=True)
class Config:
    accounts: Mapping[str, Account]
    defaults: Defaults
    path: Path | None = None
    sandbox: bool = False

    def account(self, name: str | None) -> Account:
        if name is None:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            if not self.accounts:
                raise ConfigError(
                    "No account is configured. Create a config file (see config.example.toml) "
                    "at the path given by --config or $PAYCANCEL_CONFIG, or try the built-in "
                    "sandbox with --sandbox."
                )
            raise ConfigError(
                "Several accounts are configured; choose one with --account "
                f"({', '.join(sorted(self.accounts))})."
            )
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise ConfigError(f"Unknown account {name!r}. Configured accounts: {known}.") from None

    def secrets(self) -> list[str]:
        return [s for account in self.accounts.values() for s in account.secrets()]

    @property
    def journal_path(self) -> Path:
        if self.defaults.journal:
            return Path(self.defaults.journal).expanduser()
        import platformdirs

        # Sandbox runs keep their own history, apart from the real one.
        name = "journal-sandbox.sqlite3" if self.sandbox else "journal.sqlite3"
        return Path(platformdirs.user_data_dir("paycancel")) / name


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("paycancel")) / "config.toml"


def find_config_path(explicit: Path | None) -> tuple[Path | None, bool]:
    """The config file to read and whether the user named it (then it must exist)."""
    if explicit is not None:
        return explicit, True
    from_env = os.environ.get("PAYCANCEL_CONFIG")
    if from_env:
        return Path(from_env), True
    path = default_config_path()
    return (path, False) if path.exists() else (None, False)


def load_config(explicit: Path | None = None, *, warn: Any = None) -> Config:
    path, required = find_config_path(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path, required=required)
    where = str(path) if path is not None else "the environment"
    raw = _merge(data)
    unknown = set(data) - {"defaults", "accounts"}
    if unknown:
        raise ConfigError(
            f"Config file {where}: unknown section(s) {', '.join(sorted(unknown))}. "
            "Only [defaults] and [accounts.NAME] are allowed."
        )
    try:
        defaults = Defaults.model_validate(raw.defaults)
    except ValidationError as exc:
        raise ConfigError(_describe(where, None, exc)) from None
    accounts: dict[str, Account] = {}
    for name, fields in raw.accounts.items():
        accounts[name] = _build_account(where, name, fields)
    config = Config(accounts=accounts, defaults=defaults, path=path)
    if path is not None and warn is not None:
        _warn_permissions(path, data, warn)
    return config


def _read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(
                f"Config file {path} does not exist. Check the path given by --config or "
                "$PAYCANCEL_CONFIG, or copy config.example.toml there."
            ) from None
        return {}
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}.") from None
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {path} is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not valid TOML: {exc}. Fix the file and try again."
        ) from None


def _merge(data: dict[str, Any]) -> _RawSettings:
    defaults = data.get("defaults", {})
    accounts = data.get("accounts", {})
    if not isinstance(defaults, dict) or not isinstance(accounts, dict):
        raise ConfigError("Config: [defaults] and [accounts.NAME] must be tables.")
    for name, fields in accounts.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"Config: account {name!r} must be a table [accounts.{name}].")
    try:
        return _RawSettings(defaults=defaults, accounts=accounts)
    except ValidationError as exc:
        raise ConfigError(_describe("the environment", None, exc)) from None
    except SettingsError:
        raise ConfigError(
            "A PAYCANCEL_* environment variable cannot be read (PAYCANCEL_ACCOUNTS or "
            "PAYCANCEL_DEFAULTS set as a whole must be JSON); set single fields as "
            "PAYCANCEL_ACCOUNTS__<NAME>__<FIELD> instead."
        ) from None


def _build_account(where: str, name: str, fields: dict[str, Any]) -> Account:
    import re

    if not re.match(ACCOUNT_NAME, name):
        raise ConfigError(
            f"Config {where}: account name {name!r} is invalid; names are lower case letters, "
            "digits and underscores, starting with a letter (e.g. flexportal_eu)."
        )
    provider = fields.get("provider")
    if provider is None:
        raise ConfigError(
            f"Config {where}: account {name!r} has no 'provider' field; set it to one of "
            f"{', '.join(ACCOUNT_TYPES)}."
        )
    model = ACCOUNT_TYPES.get(str(provider))
    if model is None:
        raise ConfigError(
            f"Config {where}: account {name!r}, field 'provider': unknown provider "
            f"{provider!r}; use one of {', '.join(ACCOUNT_TYPES)}."
        )
    try:
        account = model.model_validate({**fields, "name": name})
    except ValidationError as exc:
        raise ConfigError(_describe(where, name, exc)) from None
    assert isinstance(
        account,
        FlexPortalAccount | HedgePaymentsAccount | FlexAccount | VippsAccount | CompagoAccount,
    )
    return account


def _describe(where: str, account: str | None, exc: ValidationError) -> str:
    """A one-paragraph message from field locations and messages, never input values."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        if not field:  # a check across fields
            problems.append(err["msg"].removeprefix("Value error, "))
        elif err["type"] == "missing":
            problems.append(f"field '{field}' is required")
        elif err["type"] == "extra_forbidden":
            problems.append(f"field '{field}' is not a known field")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"field '{field}' {msg}")
    who = f"account {account!r}: " if account else ""
    var = f"PAYCANCEL_ACCOUNTS__{account.upper()}__<FIELD>" if account else "PAYCANCEL_*"
    return (
        f"Config {where}: {who}{'; '.join(problems)}. Fix the file or the {var} "
        "environment variable and try again."
    )


def _warn_permissions(path: Path, data: dict[str, Any], warn: Any) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return
    holds_secrets = any(
        isinstance(fields, dict)
        and any(f in fields for f in ("api_key", "client_secret", "subscription_key"))
        for fields in data.get("accounts", {}).values()
    )
    if holds_secrets:
        warn(
            f"Warning: config file {path} holds secrets and is readable by group or others; "
            f"run: chmod 600 {path}"
        )


def sandbox_config(accounts: Mapping[str, Mapping[str, str]], base: Config | None) -> Config:
    """The built-in sandbox accounts, one per provider, named after it."""
    built = {name: _build_account("(sandbox)", name, dict(f)) for name, f in accounts.items()}
    defaults = base.defaults if base is not None else Defaults()
    return Config(accounts=built, defaults=defaults, path=None, sandbox=True)


def stderr_warn(message: str) -> None:
    print(message, file=sys.stderr)
