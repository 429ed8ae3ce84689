"""`paycancel config show|check|example`: what the config says, whether it works, and
an annotated example to start from.

Invariants:
- No secret value, and nothing derived from one (a length, a slice), is ever shown:
  only which fields are set and where each comes from.
- ``check`` sends no cancel (see ``preflight``); ``show`` sends nothing at all.
- Imported by ``cli`` at start-up: only typer at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from paycancel_cli.commands.common import Command, Globals, JsonOpt, globals_of
from paycancel_cli.completion import account_flag, account_names

if TYPE_CHECKING:
    from paycancel_cli.config import AccountEntry, Config
    from paycancel_cli.preflight import CheckResult
    from paycancel_cli.render import Output

EXAMPLE_FILE = "config.example.toml"

config_app = typer.Typer(
    help="Show the accounts, check their credentials, print an example config.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@config_app.command("show")
def show(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Show each account and where its secrets come from.

    The config file used (or every path searched), and per account: provider, LIVE or
    test and what decided it, host, rate limit, timeout, and where each secret comes
    from (file, environment variable, command, keyring); never a value. Secret commands
    and keyring entries are read (once each) to tell LIVE from test.

    \b
    Examples:
      paycancel config show
      paycancel config show --json
      PAYCANCEL_CONFIG=/etc/paycancel/config.toml paycancel config show
    """
    g = globals_of(ctx)
    config = _load(g)
    out = g.output(json_)
    if not json_:
        if config.sandbox:
            _echo(out, "Config: the built-in sandbox accounts (--sandbox)")
        elif config.path:
            _echo(out, f"Config file: {config.path}")
        else:
            _echo(out, "Config file: none. Searched: " + "; ".join(config.searched))
        _echo(out, f"Journal: {config.journal_path}\n")
    problems = 0
    for entry in config.entries.values():
        record = _describe_account(config, entry)
        problems += record["problem"] is not None
        if json_:
            out.json_line(record)
        else:
            _print_account(out, record, entry)
    summary = {
        "type": "config",
        "path": str(config.path) if config.path else None,
        "searched": list(config.searched),
        "sandbox": config.sandbox,
        "accounts": len(config.entries),
        "problems": problems,
        "journal": str(config.journal_path),
    }
    if json_:
        out.json_line(summary)
    elif not config.entries:
        out.message(config.no_account_message(searched=False))  # stdout named the paths
    raise typer.Exit(2 if problems else 0)


@config_app.command("check")
def check(
    ctx: typer.Context,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            "-a",
            metavar="ACCOUNT",
            help="Check only this account (default: every account).",
            autocompletion=account_names,
            callback=account_flag,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Check every account's credentials; sends no cancel.

    One harmless authenticated request per account, in parallel: the pre-flight for a
    cron job. Vipps fetches an access token; the others read a payment id that cannot exist (404
    proves the key, 401/403 rejects it). Exit 0 all ok, 2 an account is misconfigured,
    3 credentials rejected, 5 a provider unreachable or too slow (within the account's
    timeout_s).

    \b
    Examples:
      paycancel config check
      paycancel config check --account hedge --json
      paycancel --sandbox config check
    """
    import asyncio

    from paycancel_cli.preflight import check_accounts, exit_code

    g = globals_of(ctx)
    config = _load(g)
    config.warn = None  # every account gets its own line below
    if account is not None:
        if account not in config.entries:
            config.account(account)  # unknown: the error names the configured ones
        names = [account]
    else:
        names = list(config.entries)
        if not names:
            from paycancel_cli.errors import ConfigError

            raise ConfigError(config.no_account_message())
    out = g.output(json_)
    assert g.redactor is not None
    results = asyncio.run(check_accounts(config, names, redactor=g.redactor))
    for result in results:
        if json_:
            out.json_line(result.to_json())
        else:
            _print_check(out, result)
    code = exit_code(results)
    ok = sum(r.status == "ok" for r in results)
    if json_:
        out.json_line(
            {
                "type": "check_summary",
                "accounts": len(results),
                "ok": ok,
                "statuses": {r.account: r.status for r in results},
                "exit_code": code,
            }
        )
    else:
        out.message(f"{ok} of {len(results)} account(s) ok.")
    raise typer.Exit(code)


@config_app.command("example")
def example() -> None:
    """Print the annotated example config.

    Every field with a comment; start a config file from it.

    \b
    Examples:
      paycancel config example
      paycancel config example > ~/.config/paycancel/config.toml
      chmod 600 ~/.config/paycancel/config.toml
    """
    typer.echo(example_text(), nl=False)


def example_text() -> str:
    """The example shipped inside the package (the repo's copy is tested equal)."""
    from importlib.resources import files

    return files("paycancel_cli").joinpath(EXAMPLE_FILE).read_text(encoding="utf-8")


def _load(g: Globals) -> Config:
    return g.config()


def _describe_account(config: Config, entry: AccountEntry) -> dict[str, Any]:
    """What `config show` says of one account; reads a deferred secret only to tell
    LIVE from test, and keeps no trace of it but the redactor's."""
    from paycancel_cli.errors import ConfigError

    problem: str | None = None
    account = None
    try:
        account = entry.resolve(config.on_secret)
    except ConfigError as exc:
        problem = exc.message
    return {
        "type": "account",
        "account": entry.name,
        "provider": entry.provider,
        "live": account.is_live if account else None,
        "decided_by": account.decided_by if account else None,
        "url": account.url if account else None,
        "requests_per_minute": account.requests_per_minute if account else None,
        "timeout_s": account.timeout_s if account else None,
        "secrets": [{"field": s.field, **s.to_json()} for s in entry.sources()],
        "problem": problem,
    }


def _echo(out: Output, text: str) -> None:
    out.out.print(out.redact(text), soft_wrap=True, highlight=False, markup=False)


def _print_account(out: Output, record: dict[str, Any], entry: AccountEntry) -> None:
    name = record["account"]
    provider = record["provider"] or "unknown provider"
    if record["problem"] is not None:
        _echo(out, f"{name}  {provider}  MISCONFIGURED")
        _echo(out, f"  problem:          {record['problem']}")
    else:
        label = out.account_label(name, bool(record["live"]))
        label.append(f"  {provider}  (decided by {record['decided_by']})")
        out.out.print(label, soft_wrap=True, highlight=False)
        rpm = record["requests_per_minute"]
        _echo(out, f"  host:             {record['url']}")
        _echo(out, f"  rate limit:       {f'{rpm} requests/minute' if rpm else 'none set'}")
        _echo(out, f"  timeout:          {record['timeout_s']:g} s")
    for source in entry.sources():
        _echo(out, f"  {source.field + ':':<17} {source.describe()}")
    _echo(out, "")


def _print_check(out: Output, result: CheckResult) -> None:
    env = "" if result.live is None else (", LIVE" if result.live else ", test")
    head = f"{result.account} ({result.provider or 'unknown provider'}{env})"
    if result.status == "ok":
        _echo(out, f"{head}: ok in {result.ms} ms")
        return
    what = {
        "rejected": "credentials rejected",
        "unreachable": "unreachable",
        "misconfigured": "misconfigured",
        "error": "unexpected answer",
    }[result.status]
    _echo(out, f"{head}: {what}: {result.message} Fix: {result.fix}")


COMMAND = Command(
    config_app,
    name="config",
    short_help=None,
    examples=(
        "paycancel config show",
        "paycancel config check --json",
        "paycancel config example > config.toml",
    ),
)
