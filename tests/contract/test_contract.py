"""Contract: every request the Vipps and FlexPortal adapters send, and every answer the
matching simulator gives, conforms to the provider's OpenAPI document (``specs/``).

The exchanges are real: paycancel's own client and adapters against the sandbox over
loopback, recorded by a transport wrapping the real one, then validated by openapi-core
(``oas.Report``).  Three sessions: the sandbox's demo payments read, cancelled and read
again through the adapters; the error answers (not found, refusals, idempotency
conflict, rejected credentials, an expired token, a lock, rate limits, server errors);
and bulk runs through the CLI (a CSV of every demo payment and a subscription cleanup
over several list pages).  Each test asserts zero violations and that the operations and
statuses it means to cover were seen, so a session that stopped early cannot pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.errors import PaycancelError
from paycancel_cli.providers.base import Provider
from paycancel_cli.sandbox import Faults, Sandbox
from paycancel_cli.sandbox.flexportal import FlexPortalSim
from paycancel_cli.sandbox.vipps import VippsSim

from .oas import Exchange, Report
from .recording import recording_cli, with_adapter

PROVIDERS = ("vipps", "flexportal")


def validated(log: list[Exchange]) -> Report:
    report = Report()
    for exchange in log:
        report.check(exchange)
    print(report.summary())  # the counts, for whoever runs this with -s
    assert report.violations == [], "\n".join(report.violations)
    return report


def statuses(log: list[Exchange], provider: str, suffix: str = "") -> set[int]:
    return {e.status for e in log if e.provider == provider and e.path.endswith(suffix)}


async def _each(adapter: Provider, calls: list[Callable[[Provider], Any]]) -> None:
    """Every call in turn; a refusal or an error answer is an answer like any other."""
    for call in calls:
        with contextlib.suppress(PaycancelError):
            result = call(adapter)
            if hasattr(result, "__anext__"):
                _ = [item async for item in result]
            else:
                await result


def _read_cancel_read(payment_id: str) -> list[Callable[[Provider], Any]]:
    return [
        lambda a: a.get(payment_id),
        lambda a: a.cancel(payment_id, reason="contract", idempotency_key=f"ct-{payment_id}"),
        lambda a: a.get(payment_id),
    ]


def test_demo_payments_read_cancelled_and_read_again(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox()
    log: list[Exchange] = []
    demos = {"vipps": VippsSim.demo, "flexportal": FlexPortalSim.demo}
    unknown = {"vipps": "no-such-reference-1", "flexportal": "fpay_no_such_01"}
    for provider in PROVIDERS:
        calls = [lambda a: a.list_for_subscription("rent_demo_01")]
        for demo in demos[provider]:
            calls += _read_cancel_read(demo.payment_id)
        calls += _read_cancel_read(unknown[provider])
        with_adapter(sb, provider, log, lambda a, calls=calls: _each(a, calls))

    report = validated(log)
    assert statuses(log, "vipps", "/cancel") == {200, 400, 404}
    assert statuses(log, "flexportal", "/cancel") == {200, 400, 404}
    assert report.answers["vipps.getPayment"] >= 2 * len(VippsSim.demo)
    assert report.answers["flexportal.getPayment"] >= 2 * len(FlexPortalSim.demo)
    assert report.answers["flexportal.listPayments"] == 2  # pending, failed
    assert report.answers["vipps.fetchAuthorizationTokenUsingPost"] == 1


def test_error_answers(make_sandbox: Callable[..., Sandbox]) -> None:
    log: list[Exchange] = []
    sb = make_sandbox()
    locked = sb.add_payment("vipps", state="CREATED", amount=1000, processing_lock=True)
    busy = sb.add_payment("vipps", state="AUTHORIZED", amount=500, authorized=500)
    sb.add_fault("vipps", busy, "locked_423", op="cancel")
    first = sb.add_payment("vipps", state="AUTHORIZED", amount=700, authorized=700)
    second = sb.add_payment("vipps", state="AUTHORIZED", amount=800, authorized=800)

    async def vipps(adapter: Provider) -> None:
        await _each(adapter, [
            lambda a: a.cancel(locked, reason="r", idempotency_key="ct-locked"),  # 400 6160
            lambda a: a.cancel(busy, reason="r", idempotency_key="ct-busy"),  # 423
            lambda a: a.cancel(first, reason="r", idempotency_key="ct-same-key"),  # 200
            lambda a: a.cancel(second, reason="r", idempotency_key="ct-same-key"),  # 409
        ])  # fmt: skip
        sb.expire_tokens()  # the next call gets 401, fetches a new token, and retries
        await adapter.get(first)

    with_adapter(sb, "vipps", log, vipps)
    assert statuses(log, "vipps", "/cancel") == {200, 400, 409, 423}
    assert 401 in statuses(log, "vipps", first)

    # Rejected credentials: the token endpoint's 401, FlexPortal's 401.
    wrong = {"vipps": {"client_secret": "not-the-secret-1234"},
             "flexportal": {"api_key": "not-the-api-key-1234"}}  # fmt: skip
    for provider in PROVIDERS:
        with_adapter(
            sb, provider, log, lambda a: _each(a, _read_cancel_read("fpay_demo_paid_01")),
            override=wrong[provider],
        )  # fmt: skip

    # Rate limits (one request a minute) and server errors, in each provider's shape.
    limited = make_sandbox(requests_per_minute=1)
    failing = make_sandbox(faults=Faults(fail_rate=1.0, seed=7))
    for sandbox in (limited, failing):
        for provider, demo in (("vipps", "demo-created-0001"),
                               ("flexportal", "fpay_demo_pending_01")):  # fmt: skip
            with_adapter(
                sandbox, provider, log,
                lambda a, demo=demo: _each(a, [*_read_cancel_read(demo), lambda a: a.get(demo)]),
            )  # fmt: skip

    report = validated(log)
    for provider in PROVIDERS:
        seen = {e.status for e in log if e.provider == provider}
        assert {401, 429} <= seen, (provider, seen)
        assert seen & {500, 502, 503}, (provider, seen)
    assert report.undocumented  # the platform-wide statuses were checked too


def test_bulk_runs_through_the_cli(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    demo = Path(__file__).parents[2] / "examples" / "demo.csv"
    rows = [line for line in demo.read_text().splitlines()[1:]
            if line.split(",")[0] in PROVIDERS]  # fmt: skip
    rows += ["vipps,no-such-reference-2", "flexportal,fpay_no_such_02"]
    csv = tmp_path / "contract.csv"
    csv.write_text("account,payment_id\n" + "\n".join(rows) + "\n")
    sandbox.seed_subscription("rent_contract", {"pending": 130, "failed": 40, "paid": 5})
    ids = [row.split(",")[1] for row in rows]
    config = ("--config", str(config_file))

    with recording_cli(monkeypatch) as log:
        status = cli(*config, "status", *ids[:3], "--account", "flexportal", "--json")
        dry = cli(*config, "bulk-cancel", str(csv), "--dry-run", "--json")
        run = cli(*config, "bulk-cancel", str(csv), "--reason", "contract", "--yes", "--json")
        again = cli(*config, "bulk-cancel", str(csv), "--reason", "again", "--yes", "--json")
        sub = cli(*config, "bulk-cancel", "--subscription", "rent_contract", "--account",
                  "flexportal", "--reason", "early return", "--yes", "--json")  # fmt: skip

    assert status.code == 0, status.stderr
    assert {dry.code, run.code, again.code} == {1}  # some demo payments cannot be cancelled
    assert sub.code == 0, sub.stderr
    summary = sub.json_lines()[-1]
    assert summary["outcomes"] == {"cancelled": 170}
    report = validated(log)
    assert report.requests["flexportal.listPayments"] == 3  # pending: 2 pages; failed: 1
    # Vipps reads first in bulk: a payment that cannot be cancelled gets no cancel.
    assert statuses(log, "vipps", "/cancel") == {200}
    assert statuses(log, "vipps", "0001") == {200}
    assert statuses(log, "flexportal", "/cancel") == {200, 400, 404}
    assert {"vipps.cancelPayment", "flexportal.cancelPayment", "flexportal.getPayment",
            "vipps.getPayment"} <= set(report.answers)  # fmt: skip
