"""What every configured account is, whatever its provider: the fields all accept, the
base_url rules, and how an account is found live or test (host, environment, key).

A provider's account class lives beside its adapter and derives from ``AccountBase``;
``config`` finds it through the registry (``paycancel_cli.providers.account_type``).
"""

from __future__ import annotations

import importlib
import ipaddress
from functools import cache
from typing import ClassVar, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

TEST_ENVIRONMENTS = frozenset({"test", "demo", "sandbox"})
LIVE_ENVIRONMENTS = frozenset({"live", "production"})


def check_base_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as https://proxy.example:8443")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; put them in the account's secret fields")
    if parts.query or parts.fragment:
        raise ValueError("must be scheme, host, port and an optional path prefix only")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("plain http:// is only allowed on loopback addresses; use https://")
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class KeyRule(NamedTuple):
    """An ``api_key`` whose prefix tells a live key from a test one."""

    valid: tuple[str, ...]  # the prefixes a key must start with
    problem: str  # what is wrong with a key that starts otherwise
    test: str  # the prefix of a test key
    live: str  # how a live key's prefix is shown


class AccountBase(BaseModel):
    """Fields every account accepts.  A provider's account class (declared beside its
    adapter) adds its own fields, its ``secret_fields``, its ``hosts`` and its default
    URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # The provider's own hosts, and whether each is live: a base_url naming one of
    # them decides live/test as firmly as a key prefix does.
    # (None: the hosts of ``live_url``, live, and ``test_url``, test.)
    hosts: ClassVar[dict[str, bool] | None] = None
    # For a provider whose ``api_key`` prefix tells live from test.
    api_key_rule: ClassVar[KeyRule | None] = None

    name: str = ""
    provider: str
    base_url: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    requests_per_minute: int | None = Field(default=None, gt=0)
    environment: str | None = None
    # Distinct approvers, besides a plan's author, that a cancel here needs (plans.py).
    approvals: int = Field(default=0, ge=0, le=20)

    _check_url = field_validator("base_url")(check_base_url)

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
        return known_hosts().get(host or "")

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

    @field_validator("api_key", check_fields=False)
    @classmethod
    def _api_key_prefix(cls, value: SecretStr) -> SecretStr:
        rule = cls.api_key_rule
        if rule is not None and not value.get_secret_value().startswith(rule.valid):
            raise ValueError(rule.problem)
        return value

    def _live_from_key(self) -> bool | None:
        """What the key's prefix says (None: the key does not tell)."""
        if self.api_key_rule is None:
            return None
        key: SecretStr = getattr(self, "api_key")  # noqa: B009 (a provider's own field)
        return not key.get_secret_value().startswith(self.api_key_rule.test)

    def _key_prefix(self) -> str:
        """The documented prefix that made ``_live_from_key`` decide (never more)."""
        if self.api_key_rule is None:
            return ""
        return self.api_key_rule.live if self._live_from_key() else self.api_key_rule.test

    @property
    def decided_by(self) -> str:
        """What made the account live or test, in the order ``is_live`` asks."""
        host = urlsplit(self.base_url).hostname if self.base_url else None
        host_live = self._live_from_host()
        key_live = self._live_from_key()
        if host_live:
            return f"host {host}"
        if self.environment is not None:
            if self.environment in LIVE_ENVIRONMENTS or not key_live:
                return f"environment = {self.environment!r}"
            return f"key prefix {self._key_prefix()}"
        if host_live is False:
            return f"key prefix {self._key_prefix()}" if key_live else f"host {host}"
        if key_live is None:
            return "default: no environment, test key or test host"
        return f"key prefix {self._key_prefix()}"

    # The provider's own URLs: ``live_url`` (it may name a field: ``{region}``) and,
    # where the provider has one, ``test_url`` for a test account (see ``_test_url``).
    live_url: ClassVar[str]
    test_url: ClassVar[str | None] = None

    @classmethod
    def own_hosts(cls) -> dict[str, bool]:
        """This provider's hosts, and whether each is live."""
        if cls.hosts is not None:
            return cls.hosts
        urls = {cls.live_url: True, **({cls.test_url: False} if cls.test_url else {})}
        return {urlsplit(url).hostname or "": live for url, live in urls.items()}

    def default_base_url(self) -> str:
        if self.test_url is not None and self._test_url():
            return self.test_url
        return self.live_url.format_map(dict(self))

    def _test_url(self) -> bool:
        """Whether the account talks to ``test_url``: a test key where the key tells,
        else a test environment."""
        if self.api_key_rule is not None:
            return not self._live_from_key()
        return self.environment in TEST_ENVIRONMENTS

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


@cache
def known_hosts() -> dict[str, bool]:
    """Every registered provider's hosts, and whether each is live (a base_url naming
    any provider's host decides).  The registry is looked up by name, as it looks up
    the adapters, so that this module stays below it."""
    registry = importlib.import_module("paycancel_cli.providers")
    return {
        host: live
        for key in registry.ADAPTERS
        for host, live in registry.account_type(key).own_hosts().items()
    }
