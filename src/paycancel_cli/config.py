"""Configuration: accounts and defaults from a TOML file, overridden by the environment.

Precedence (highest first): ``PAYCANCEL_*`` environment variables, the TOML file.  The
file is found at ``--config PATH``, else ``$PAYCANCEL_CONFIG``, else the user config dir.
Secrets are ``SecretStr`` from the moment they are parsed; error messages are built
from field names and pydantic's message text only, never from the input values, so a
secret cannot leak through a validation error.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from paycancel_cli.errors import ConfigError
from paycancel_cli.providers import ADAPTERS, account_type
from paycancel_cli.providers.accounts import AccountBase

ACCOUNT_NAME = r"^[a-z][a-z0-9_]*$"
# Every account is an ``AccountBase``; each provider's own class (its fields) is
# declared beside its adapter and found through the registry.
Account = AccountBase


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    concurrency: int = Field(default=8, ge=1, le=256)
    journal: str | None = None


class Approvals(BaseModel):
    """``[approvals]``: who may approve plans (an OpenSSH allowed_signers file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allowed_signers: str | None = None


class _RawSettings(BaseSettings):
    """Merges the TOML file and ``PAYCANCEL_*`` variables; accounts stay raw here and
    are validated one by one below, for messages that name the account."""

    model_config = SettingsConfigDict(
        env_prefix="PAYCANCEL_", env_nested_delimiter="__", extra="ignore"
    )
    defaults: dict[str, Any] = Field(default_factory=dict)
    accounts: dict[str, Any] = Field(default_factory=dict)
    approvals: dict[str, Any] = Field(default_factory=dict)

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
class SecretSource:
    """Where one secret field of an account comes from (never its value)."""

    field: str
    kind: Literal["file", "env", "command", "keyring", "sandbox"]
    variable: str | None = None  # the environment variable that set it, if any
    detail: str | None = None  # the command's program, or the keyring SERVICE/USERNAME
    placeholder: bool = False  # still the example's ``replace-me``: not a key

    def describe(self) -> str:
        what = {
            "file": "the config file",
            "env": f"environment variable {self.variable}",
            "command": f"command {self.detail}",
            "keyring": f"keyring {self.detail}",
            "sandbox": "built in (the sandbox's test credentials)",
        }[self.kind]
        if self.kind in ("command", "keyring") and self.variable:
            what += f" (set by {self.variable})"
        if self.placeholder:
            what += f": {PLACEHOLDER_NOTE}"
        return what

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.kind,
            "variable": self.variable,
            "detail": self.detail,
            "placeholder": self.placeholder,
        }


# The example config's stand-in for every secret (``config example``).
PLACEHOLDER = "replace-me"
PLACEHOLDER_NOTE = "placeholder, not a key (from `config example`: put the real one here)"


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and PLACEHOLDER in value


# A stand-in for a secret that is read only when the account is used, so the rest of
# the account can be checked at load time.  Errors on such fields are not reported.
_DEFERRED = "deferred-secret-placeholder"


class _RawAccount:
    """An account's raw fields as configured, and where each came from."""

    name: str
    fields: dict[str, Any]
    origin: str
    env_vars: dict[str, str]  # field -> the variable that set it
    in_file: bool
    builtin: bool  # the sandbox's own accounts

    @property
    def provider(self) -> str | None:
        value = self.fields.get("provider")
        return value if isinstance(value, str) and value in ADAPTERS else None

    @property
    def model(self) -> type[AccountBase] | None:
        return account_type(self.provider) if self.provider else None

    def _from(self, field: str) -> str:
        variable = self.env_vars.get(field)
        return f" (from the environment variable {variable})" if variable else ""


class _AccountSecrets(_RawAccount):
    """Where an account's secret fields come from, and reading the deferred ones."""

    def sources(self) -> list[SecretSource]:
        """Where each set secret field comes from, by the precedence environment
        variable, then command or keyring, then the plain value."""
        from paycancel_cli.secretsources import COMMAND_SUFFIX, keyring_ref

        model = self.model
        out: list[SecretSource] = []
        for name in model.secret_fields if model else ():
            value = self.fields.get(name)
            command = self.fields.get(name + COMMAND_SUFFIX)
            ref = keyring_ref(value)
            if name in self.env_vars and ref is None:
                out.append(
                    SecretSource(name, "env", self.env_vars[name], None, is_placeholder(value))
                )
            elif ref is not None:
                out.append(SecretSource(name, "keyring", self.env_vars.get(name), "/".join(ref)))
            elif command is not None:
                program = command[0] if isinstance(command, list) and command else "?"
                variable = self.env_vars.get(name + COMMAND_SUFFIX)
                out.append(SecretSource(name, "command", variable, str(program)))
            elif value is not None:
                kind: Literal["sandbox", "file"] = "sandbox" if self.builtin else "file"
                out.append(SecretSource(name, kind, None, None, is_placeholder(value)))
        return out

    def plain_secrets(self) -> list[str]:
        """Secret values present as text (file or environment), for the redactor,
        without running anything."""
        from paycancel_cli.secretsources import keyring_ref

        model = self.model
        names = model.secret_fields if model else _ALL_SECRET_FIELDS
        return [
            v for n in names if isinstance(v := self.fields.get(n), str) and keyring_ref(v) is None
        ]

    def _secret_values(self, on_secret: Callable[[str], None] | None) -> dict[str, Any]:
        from paycancel_cli.secretsources import (
            COMMAND_SUFFIX,
            command_argv,
            keyring_ref,
            read_keyring,
            run_command,
        )

        values = dict(self.fields)
        for source in self.sources():
            if source.kind == "command":
                argv = command_argv(
                    self.fields[source.field + COMMAND_SUFFIX],
                    account=self.name,
                    field=source.field,
                    origin=self.origin,
                )
                values[source.field] = run_command(argv, account=self.name, field=source.field)
            elif source.kind == "keyring":
                ref = keyring_ref(self.fields[source.field])
                assert ref is not None
                values[source.field] = read_keyring(*ref, account=self.name, field=source.field)
            else:
                continue
            if on_secret is not None:
                on_secret(values[source.field])
        return values

    def _deferred(self) -> set[str]:
        return {s.field for s in self.sources() if s.kind in ("command", "keyring")}


class _AccountChecks(_RawAccount):
    """What is wrong with an account's fields, found without reading a deferred secret."""

    _known_names: tuple[str, ...]

    def _check_shape(self) -> None:
        if not re.match(ACCOUNT_NAME, self.name):
            raise ConfigError(
                f"Config {self.origin}: account name {self.name!r} is invalid; names are lower "
                "case letters, digits and underscores, starting with a letter (e.g. "
                "flexportal_eu)."
            )
        self._check_commands(self._check_provider())

    def _check_provider(self) -> type[AccountBase]:
        name, where = self.name, f"Config {self.origin}"
        provider = self.fields.get("provider")
        if provider is None:
            if not self.in_file and self.env_vars:
                variables = ", ".join(sorted(set(self.env_vars.values())))
                hint = _did_you_mean(name, self._known_names)
                raise ConfigError(
                    f"The environment variable {variables} names account {name!r}, which the "
                    f"config file does not have{hint}. Unset the variable or fix the account "
                    "name in it; commands on other accounts are not affected."
                )
            raise ConfigError(
                f"{where}: account {name!r} has no 'provider' field; set it to one of "
                f"{', '.join(ADAPTERS)}."
            )
        if str(provider) not in ADAPTERS:
            hint = _did_you_mean(str(provider), ADAPTERS)
            raise ConfigError(
                f"{where}: account {name!r}, field 'provider'{self._from('provider')}: unknown "
                f"provider {provider!r}{hint}; use one of {', '.join(ADAPTERS)}."
            )
        return account_type(str(provider))

    def _check_commands(self, model: type[AccountBase]) -> None:
        """A secret read by a command has a runnable argv and is not also a keyring one."""
        from paycancel_cli.secretsources import COMMAND_SUFFIX, command_argv, keyring_ref

        for field in model.secret_fields:
            command = self.fields.get(field + COMMAND_SUFFIX)
            if command is None:
                continue
            command_argv(command, account=self.name, field=field, origin=self.origin)
            if keyring_ref(self.fields.get(field)) is not None and field not in self.env_vars:
                raise ConfigError(
                    f"Config {self.origin}: account {self.name!r} reads '{field}' both from a "
                    f"command and from the keyring; keep one of '{field}{COMMAND_SUFFIX}' and "
                    f"'{field} = \"keyring:...\"'."
                )

    def _build(self, values: Mapping[str, Any], ignore: Collection[str] = ()) -> Account | None:
        """The account from ``values``; None when only ``ignore``d fields failed."""
        from paycancel_cli.secretsources import COMMAND_SUFFIX

        model = self.model
        assert model is not None
        commands = {f + COMMAND_SUFFIX for f in model.secret_fields}
        data = {k: v for k, v in values.items() if k not in commands}
        try:
            account = model.model_validate({**data, "name": self.name})
        except ValidationError as exc:
            problems = _problems(exc, self.env_vars, _field_names(model), ignore=ignore)
            if not problems:
                return None
            raise ConfigError(_paragraph(self.origin, f"account {self.name!r}", problems)) from None
        return account


class AccountEntry(_AccountChecks, _AccountSecrets):
    """One configured account: its raw fields, where each came from, and the account
    built from them on first use (secret commands and the keyring run then, once)."""

    def __init__(
        self,
        name: str,
        fields: Mapping[str, Any],
        *,
        origin: str,
        env_vars: Mapping[str, str],
        in_file: bool,
        known_names: Collection[str] = (),
        problem: ConfigError | None = None,
        builtin: bool = False,
    ) -> None:
        self.name = name
        self.builtin = builtin  # the sandbox's own accounts
        self.fields = dict(fields)
        self.origin = origin
        self.env_vars = dict(env_vars)  # field -> the variable that set it
        self.in_file = in_file
        self._known_names = tuple(known_names)
        self._lock = threading.Lock()
        self._account: Account | None = None
        self._error: ConfigError | None = None
        self.problem = problem or self._check_statically()

    def resolve(self, on_secret: Callable[[str], None] | None = None) -> Account:
        """The validated account; reads deferred secrets the first time only."""
        with self._lock:
            if self._account is not None:
                return self._account
            if self._error is not None:
                raise self._error
            if self.problem is not None:
                raise self.problem
            try:
                account = self._build(self._secret_values(on_secret))
            except ConfigError as exc:
                self._error = exc
                raise
            assert account is not None
            self._account = account
            return account

    @property
    def resolved(self) -> Account | None:
        return self._account

    def _check_statically(self) -> ConfigError | None:
        """What is wrong with this account without reading a deferred secret."""
        try:
            self._check_shape()
            deferred = self._deferred()
            if not deferred:
                self._account = self._build(self.fields)
            else:
                values = {f: _DEFERRED for f in deferred}
                self._build({**self.fields, **values}, ignore=deferred)
        except ConfigError as exc:
            return exc
        return None


_ALL_SECRET_FIELDS = ("api_key", "client_secret", "subscription_key")


def _field_names(model: type[BaseModel]) -> list[str]:
    from paycancel_cli.secretsources import COMMAND_SUFFIX

    names = [n for n in model.model_fields if n != "name"]
    secret_fields: tuple[str, ...] = getattr(model, "secret_fields", ())
    return names + [f + COMMAND_SUFFIX for f in secret_fields]


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problems(
    exc: ValidationError,
    env_vars: Mapping[str, str],
    known: Collection[str],
    *,
    ignore: Collection[str] = (),
) -> list[str]:
    """Field locations and pydantic's messages, never the input values."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        top = str(err["loc"][0]) if err["loc"] else ""
        if top in ignore or (ignore and not field):
            continue  # a deferred secret: checked when it is read
        variable = env_vars.get(top)
        origin = f" (from the environment variable {variable})" if variable else ""
        if not field:  # a check across fields
            problems.append(err["msg"].removeprefix("Value error, "))
        elif err["type"] == "missing":
            problems.append(f"field '{field}' is required")
        elif err["type"] == "extra_forbidden":
            problems.append(
                f"field '{field}'{origin} is not a known field{_did_you_mean(field, known)}"
            )
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"field '{field}'{origin} {msg}")
    return problems


def _paragraph(origin: str, who: str, problems: list[str]) -> str:
    return f"Config {origin}: {who}: {'; '.join(problems)}. Fix it and try again."


class _Accounts(Mapping[str, "Account"]):
    """``config.accounts``: names of every configured account; an item is the account
    built on first access (so iterating names runs nothing)."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def __getitem__(self, name: str) -> Account:
        if name not in self._config.entries:
            raise KeyError(name)
        return self._config.account(name)

    def __contains__(self, name: object) -> bool:
        return name in self._config.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._config.entries)

    def __len__(self) -> int:
        return len(self._config.entries)


@dataclass
class Config:
    entries: Mapping[str, AccountEntry]
    defaults: Defaults
    path: Path | None = None
    sandbox: bool = False
    searched: tuple[str, ...] = ()
    warn: Callable[[str], None] | None = None
    on_secret: Callable[[str], None] | None = None
    _warned: bool = False
    approvals: Approvals = dataclass_field(default_factory=Approvals)

    @property
    def accounts(self) -> Mapping[str, Account]:
        return _Accounts(self)

    @property
    def providers(self) -> dict[str, str]:
        """Account name -> provider key, for every account whose provider is known
        (usable or not), without reading any secret."""
        return {n: e.provider for n, e in self.entries.items() if e.provider is not None}

    def account(self, name: str | None) -> Account:
        if name is None:
            if len(self.entries) == 1:
                name = next(iter(self.entries))
            elif not self.entries:
                raise ConfigError(self.no_account_message())
            else:
                raise ConfigError(
                    "Several accounts are configured; choose one with --account "
                    f"({', '.join(sorted(self.entries))})."
                )
        entry = self.entries.get(name)
        if entry is None and not self.entries:  # no config at all: say where to start
            raise ConfigError(f"Unknown account {name!r}. {self.no_account_message()}")
        if entry is None:
            known = ", ".join(sorted(self.entries)) or "none"
            hint = _did_you_mean(name, self.entries)
            raise ConfigError(f"Unknown account {name!r}{hint}. Configured accounts: {known}.")
        account = entry.resolve(self.on_secret)
        self._warn_unusable(name)
        return account

    def _warn_unusable(self, used: str) -> None:
        """Once per invocation: accounts that cannot be used, while this one can."""
        if self._warned or self.warn is None:
            return
        self._warned = True
        for name, entry in self.entries.items():
            if name != used and entry.problem is not None:
                self.warn(f"Warning: account {name!r} is skipped: {entry.problem.message}")

    def secrets(self) -> list[str]:
        """Every secret known so far: of built accounts, and those present as text."""
        out = []
        for entry in self.entries.values():
            account = entry.resolved
            out.extend(account.secrets() if account is not None else entry.plain_secrets())
        return out

    def no_account_message(self, *, searched: bool = True) -> str:
        """``searched=False``: without the paths searched (shown already)."""
        where = (
            f"The config file {self.path} has no [accounts.NAME] table. "
            if self.path is not None
            else f"No config file was found (searched: {'; '.join(self.searched)}). "
            if searched
            else ""
        )
        return (
            f"No account is configured. {where}`paycancel config example` prints an "
            "annotated example to start from; or try the built-in sandbox with --sandbox."
        )

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


def searched_paths(explicit: Path | None) -> tuple[str, ...]:
    """Every place looked at, in order, as an operator would check them."""
    if explicit is not None:
        return (f"--config {explicit}",)
    from_env = os.environ.get("PAYCANCEL_CONFIG")
    if from_env:
        return ("--config (not given)", f"$PAYCANCEL_CONFIG={from_env}")
    return (
        "--config (not given)",
        "$PAYCANCEL_CONFIG (not set)",
        f"{default_config_path()} (does not exist)",
    )


def load_config(
    explicit: Path | None = None,
    *,
    warn: Callable[[str], None] | None = None,
    on_secret: Callable[[str], None] | None = None,
) -> Config:
    """Read the file and the environment; a broken account is kept as a problem of
    its own (it fails only the commands that use it), a broken file or [defaults]
    fails everything."""
    path, required = find_config_path(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path, required=required)
    where = str(path) if path is not None else "the environment"
    unknown = set(data) - {"defaults", "accounts", "approvals"}
    if unknown:
        sections = ("defaults", "accounts", "approvals")
        hints = "".join(_did_you_mean(u, sections) for u in sorted(unknown))
        raise ConfigError(
            f"Config file {where}: unknown section(s) {', '.join(sorted(unknown))}{hints}. "
            "Only [defaults], [approvals] and [accounts.NAME] are allowed."
        )
    raw = _merge(data)
    env_accounts, env_defaults = _env_variables()
    try:
        defaults = Defaults.model_validate(raw.defaults)
    except ValidationError as exc:
        problems = _problems(exc, env_defaults, list(Defaults.model_fields))
        raise ConfigError(_paragraph(where, "[defaults]", problems)) from None
    try:
        approvals = Approvals.model_validate(raw.approvals)
    except ValidationError as exc:
        problems = _problems(exc, {}, list(Approvals.model_fields))
        raise ConfigError(_paragraph(where, "[approvals]", problems)) from None
    file_accounts = data.get("accounts", {})
    entries: dict[str, AccountEntry] = {}
    for name, fields in raw.accounts.items():
        env_vars = env_accounts.get(name, {})
        origin = where if name in file_accounts else "the environment"
        problem = None
        if not isinstance(fields, dict):  # PAYCANCEL_ACCOUNTS__<NAME> set to a plain value
            variable = next(iter(env_vars.values()), f"PAYCANCEL_ACCOUNTS__{name.upper()}")
            fields, env_vars = {}, {}
            problem = ConfigError(
                f"The environment variable {variable} sets account {name!r} to a plain value; "
                f"set single fields as PAYCANCEL_ACCOUNTS__{name.upper()}__<FIELD> instead."
            )
        entries[name] = AccountEntry(
            name,
            fields,
            origin=origin,
            env_vars=env_vars,
            in_file=name in file_accounts,
            known_names=list(file_accounts),
            problem=problem,
        )
    config = Config(
        entries=entries,
        defaults=defaults,
        path=path,
        searched=searched_paths(explicit) if path is None else (str(path),),
        warn=warn,
        on_secret=on_secret,
        approvals=approvals,
    )
    if path is not None and warn is not None:
        _warn_permissions(path, data, warn)
    return config


def _env_variables() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The ``PAYCANCEL_ACCOUNTS__<NAME>__<FIELD>`` and ``PAYCANCEL_DEFAULTS__<FIELD>``
    variables by (account, field), as pydantic-settings reads them (any case)."""
    accounts: dict[str, dict[str, str]] = {}
    defaults: dict[str, str] = {}
    for variable in os.environ:
        upper = variable.upper()
        if upper.startswith("PAYCANCEL_ACCOUNTS__"):
            name, _, field = variable[len("PAYCANCEL_ACCOUNTS__") :].partition("__")
            accounts.setdefault(name.lower(), {})[field.lower()] = variable
        elif upper.startswith("PAYCANCEL_DEFAULTS__"):
            defaults[variable[len("PAYCANCEL_DEFAULTS__") :].lower()] = variable
    return accounts, defaults


def _read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(
                f"Config file {path} does not exist. Check the path given by --config or "
                "$PAYCANCEL_CONFIG; `paycancel config example` prints an annotated example "
                "to start from."
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
    approvals = data.get("approvals", {})
    if not all(isinstance(t, dict) for t in (defaults, accounts, approvals)):
        raise ConfigError("Config: [defaults], [approvals] and [accounts.NAME] must be tables.")
    for name, fields in accounts.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"Config: account {name!r} must be a table [accounts.{name}].")
    try:
        return _RawSettings(defaults=defaults, accounts=accounts, approvals=approvals)
    except ValidationError as exc:
        problems = _problems(exc, {}, ())
        raise ConfigError(_paragraph("the environment", "PAYCANCEL_*", problems)) from None
    except SettingsError:
        raise ConfigError(
            "A PAYCANCEL_* environment variable cannot be read (PAYCANCEL_ACCOUNTS or "
            "PAYCANCEL_DEFAULTS set as a whole must be JSON); set single fields as "
            "PAYCANCEL_ACCOUNTS__<NAME>__<FIELD> instead."
        ) from None


def _warn_permissions(path: Path, data: dict[str, Any], warn: Callable[[str], None]) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return
    holds_secrets = any(
        isinstance(fields, dict)
        and any(
            isinstance(fields.get(f), str) and not fields[f].startswith("keyring:")
            for f in _ALL_SECRET_FIELDS
        )
        for fields in data.get("accounts", {}).values()
    )
    if holds_secrets:
        warn(
            f"Warning: config file {path} holds secrets and is readable by group or others; "
            f"run: chmod 600 {path}"
        )


def sandbox_config(accounts: Mapping[str, Mapping[str, str]], base: Config | None) -> Config:
    """The built-in sandbox accounts, one per provider, named after it."""
    entries = {
        name: AccountEntry(name, f, origin="(sandbox)", env_vars={}, in_file=True, builtin=True)
        for name, f in accounts.items()
    }
    for entry in entries.values():
        if entry.problem is not None:
            raise entry.problem
    defaults = base.defaults if base is not None else Defaults()
    return Config(
        entries=entries,
        defaults=defaults,
        path=None,
        sandbox=True,
        searched=("(built-in sandbox accounts)",),
        warn=base.warn if base is not None else None,
        on_secret=base.on_secret if base is not None else None,
        approvals=base.approvals if base is not None else Approvals(),
    )


def stderr_warn(message: str) -> None:
    print(message, file=sys.stderr)
