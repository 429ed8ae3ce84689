"""`config check`: one harmless authenticated read per account, all in parallel.

Invariants:
- Nothing here can change a payment: the only requests are a Vipps access token, or
  a read of a payment id that cannot exist (a 404 proves the credentials were taken,
  401/403 that they were not).
- Each account's check ends within the account's ``timeout_s``.
- A transient failure (5xx, 429, a refused or dropped connection) is tried again, at
  most ``ATTEMPTS`` requests in all, within that same bound, before the account is
  called unreachable: one 502 from a proxy must not skip a night.
- An account's secrets are read (command, keyring) only for the accounts checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from paycancel_cli.errors import (
    AuthError,
    ConfigError,
    PaycancelError,
    ProviderUnavailable,
    RateLimited,
)

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.redact import Redactor
    from paycancel_cli.session import TransportFactory

Status = Literal["ok", "rejected", "unreachable", "misconfigured", "error"]

# Exit codes by status, and the order in which they win (SPEC "Exit codes").
EXIT = {"ok": 0, "misconfigured": 2, "rejected": 3, "error": 1, "unreachable": 5}
PRECEDENCE = (2, 3, 4, 1, 5)
# Requests per account before a transient failure makes it unreachable, and the waits
# between them (seconds, exponential with jitter).
ATTEMPTS = 3
WAIT_INITIAL_S, WAIT_MAX_S = 0.25, 1.0


@dataclass(frozen=True)
class CheckResult:
    account: str
    provider: str | None
    live: bool | None
    url: str | None
    status: Status
    ms: int | None = None
    message: str | None = None
    fix: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]

    def to_json(self) -> dict[str, Any]:
        return {"type": "check", **dataclasses.asdict(self)}


def exit_code(results: list[CheckResult]) -> int:
    codes = {r.exit_code for r in results}
    return next((c for c in PRECEDENCE if c in codes), 0)


async def check_accounts(
    config: Config,
    names: list[str],
    *,
    redactor: Redactor,
    transport: TransportFactory | None = None,
) -> list[CheckResult]:
    """Check ``names`` in parallel; results in the order given."""
    from paycancel_cli.session import Session

    # Secret commands may take a moment each: read them side by side.
    resolved = await asyncio.gather(*(_resolve(config, name) for name in names))
    async with Session(config, redactor=redactor, transport=transport, rate_limit=False) as s:
        for account in resolved:
            if not isinstance(account, CheckResult):
                s.provider(account.name)  # set-up and imports are not the round trip
        return list(await asyncio.gather(*(_check(config, s, a) for a in resolved)))


async def _resolve(config: Config, name: str) -> Account | CheckResult:
    entry = config.entries[name]
    try:
        return await asyncio.to_thread(entry.resolve, config.on_secret)
    except ConfigError as exc:
        return CheckResult(
            name,
            entry.provider,
            None,
            None,
            "misconfigured",
            message=exc.message,
            fix="Fix what is named above (`paycancel config example` shows every field).",
        )


async def _check(config: Config, session: Any, account: Account | CheckResult) -> CheckResult:
    if isinstance(account, CheckResult):
        return account  # misconfigured: nothing to send
    placeholders = [s.field for s in config.entries[account.name].sources() if s.placeholder]
    if placeholders:  # the example's stand-ins: no request could prove anything
        from paycancel_cli.config import PLACEHOLDER_NOTE

        return CheckResult(
            account.name,
            account.provider,
            account.is_live,
            account.url,
            "misconfigured",
            message=f"{', '.join(placeholders)}: {PLACEHOLDER_NOTE}.",
            fix="Put the account's real credentials in the config file or its environment "
            "variables; nothing was sent.",
        )
    began = time.monotonic()

    def result(status: Status, message: str | None = None, fix: str | None = None) -> CheckResult:
        ms = round((time.monotonic() - began) * 1000)
        return CheckResult(
            account.name, account.provider, account.is_live, account.url, status, ms, message, fix
        )

    try:
        await asyncio.wait_for(_probe(session, account), timeout=account.timeout_s)
    except AuthError as exc:
        return result("rejected", exc.message, _rejected_fix(config, account))
    except (ProviderUnavailable, RateLimited) as exc:
        return result(
            "unreachable", f"{exc.message} ({ATTEMPTS} attempts)", _unreachable_fix(account)
        )
    except TimeoutError:
        return result(
            "unreachable",
            f"no answer within the account's timeout of {account.timeout_s:g} s.",
            _unreachable_fix(account),
        )
    except PaycancelError as exc:
        return result(
            "error",
            exc.message,
            "An unexpected answer: check that the account's base_url points at the provider.",
        )
    return result("ok")


async def _probe(session: Any, account: Account) -> None:
    """The check's request, tried again on a transient failure under the engine's one
    retry policy (Retry-After honoured), with fewer attempts and shorter waits
    (``ATTEMPTS``): the whole check stays inside the account's timeout."""
    from paycancel_cli.engine import RetryPolicy

    policy = RetryPolicy(
        attempts=ATTEMPTS,
        wait_initial=WAIT_INITIAL_S,
        wait_max=WAIT_MAX_S,
        wait_jitter=WAIT_INITIAL_S,
        timeout=None,  # the caller's bound: the account's timeout
    )
    await policy.call(lambda: _probe_once(session, account))


async def _probe_once(session: Any, account: Account) -> None:
    await session.provider(account.name).probe()


def _rejected_fix(config: Config, account: Account) -> str:
    sources = config.entries[account.name].sources()
    where = ", ".join(f"{s.field} from {s.describe()}" for s in sources) or "its secret fields"
    env = "live" if account.is_live else "test"
    return (
        f"Check {where}: the credentials must be valid for this {env} host ({account.url}) "
        "and not revoked or rotated."
    )


def _unreachable_fix(account: Account) -> str:
    return (
        f"Is {account.url} reachable from here (network, proxy, base_url)? timeout_s is "
        f"{account.timeout_s:g}. Running again later may pass."
    )
