"""Benchmarks for paycancel, run by hand (full) or in CI (``--smoke``).

Figures (printed, never asserted as time limits; machines are shared and noisy, so
compare the ratios of one run):

1. throughput: bulk-cancel against the sandbox with latency and a rate limit; cancels
   per second, requests per second as a fraction of the rate limit, requests per
   payment and per cancelled payment, 429s seen, failures.  CSV mode per provider that
   cancels first (FlexPortal, HedgePayments, Flex), HedgePayments again with
   ``--read-first`` and with an ``expected_amount`` column, and subscription mode.
1b. requests per payment per provider and answer kind (cancelled, refused, already
   cancelled), cancel first and ``--read-first``, counted by the sandbox (no latency).
2. client CPU per payment: paycancel's engine vs a plain sequential httpx loop doing the
   same requests (the sandbox serves from another process, so only client CPU counts).
3. start-up: ``paycancel --help`` vs ``python -c "import typer"``.
4. validation: ``bulk-cancel --validate-only`` over a large CSV: time vs a bare
   ``csv.reader`` pass, and peak memory.
5. plan apply: ``bulk-cancel --plan`` of a reviewed plan (``--payments`` HedgePayments
   payments, approvals by real ssh-keygen signatures): requests of the checks before it
   (none), requests per planned payment (at most one read and one cancel), share of the
   rate limit.
6. a dead provider: a run against an account whose every answer is a 503 (the circuit
   breaker: exit 5, its duration and the requests the account got), then ``--resume``
   once the provider is back (every payment cancelled exactly once).
7. monitoring: the same bulk-cancel (a process each, as cron runs it) with
   ``--metrics-file`` and ``--ping-url`` (a loopback ping server) against one without,
   interleaved; wall time per run and per payment.
8. audit trail: ``audit export`` (JSON Lines and CSV) and ``audit verify`` of a journal
   of a million events (time, peak memory), and what the events cost per payment in a
   bulk run: client CPU per payment with the events and without them (the journal as
   it was before the trail), interleaved runs of the same work.

Usage: ``python bench/bench_bulk.py [--smoke] [--payments N] [--rpm N] [--latency-ms N]``
(the JSON report on stdout; the throughput and per-kind tables, as in the README, on
stderr).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# The open (cancelable) payment each provider's CSV-mode benchmark uses: 10.00 each.
OPEN: dict[str, tuple[dict[str, Any], str]] = {
    "flexportal": ({"status": "pending", "total": "10.00"}, "EUR"),
    "hedgepayments": ({"status": "pending", "amount": 1000}, "USD"),
    "flex": ({"status": "requires_capture", "amount": 1000}, "USD"),
    "vipps": ({"state": "AUTHORIZED", "amount": 1000, "authorized": 1000}, "NOK"),
    "compago": ({"status": "PENDING", "amount": "10.00"}, "MXN"),
}
# Per provider: a payment per answer kind, and the outcome it must end in.
KINDS: dict[str, dict[str, tuple[dict[str, Any], str]]] = {
    "flexportal": {
        "cancelled": (OPEN["flexportal"][0], "cancelled"),
        "refused": ({"status": "paid", "total": "10.00"}, "not_cancellable"),
        "already_cancelled": ({"status": "cancelled", "total": "10.00"}, "already_cancelled"),
    },
    "hedgepayments": {
        "cancelled": (OPEN["hedgepayments"][0], "cancelled"),
        "refused": ({"status": "succeeded", "amount": 1000}, "not_cancellable"),
        "already_cancelled": ({"status": "canceled", "amount": 1000}, "already_cancelled"),
    },
    "flex": {
        "cancelled": (OPEN["flex"][0], "cancelled"),
        "refused": ({"status": "succeeded", "amount": 1000}, "not_cancellable"),
        "already_cancelled": ({"status": "canceled", "amount": 1000}, "already_cancelled"),
    },
    "vipps": {
        "cancelled": (OPEN["vipps"][0], "cancelled"),
        "refused": (
            {"state": "AUTHORIZED", "amount": 1000, "authorized": 1000, "captured": 1000},
            "not_cancellable",
        ),
        "already_cancelled": (
            {"state": "AUTHORIZED", "amount": 1000, "authorized": 1000, "cancelled": 1000},
            "already_cancelled",
        ),
    },
    "compago": {
        "cancelled": (OPEN["compago"][0], "cancelled"),
        "refused": ({"status": "CONFIRMED", "amount": "10.00"}, "not_cancellable"),
        "already_cancelled": ({"status": "CANCELLED", "amount": "10.00"}, "already_cancelled"),
    },
}

Spec = tuple[str, dict[str, Any], int]  # provider, add_payment fields, how many


def serve(
    conn: Any,
    specs: list[Spec],
    subscription: int,
    rpm: int | None,
    window: float,
    latency_ms: int,
    dead: bool = False,
) -> None:
    """Child process: a sandbox holding ``specs``' payments (and, when ``subscription``,
    a FlexPortal rental with that many pending payments); ``dead``: every answer about
    them is a 503 until the parent sends "recover"."""
    from paycancel_cli.sandbox import Faults, Sandbox

    sb = Sandbox(
        faults=Faults(latency_ms=latency_ms),
        requests_per_minute=rpm,
        rate_window_s=window,
        seed_demo=False,
        record_requests=False,
    )
    ids = [[sb.add_payment(p, **fields) for _ in range(n)] for p, fields, n in specs]
    if subscription:
        sb.seed_subscription("rent_bench", {"pending": subscription})
    if dead:
        for (provider, _, _), batch in zip(specs, ids, strict=True):
            for payment_id in batch:
                sb.add_fault(provider, payment_id, "html_502", op="any", status=503)
    sb.start()
    conn.send({"accounts": sb.account_config(), "ids": ids})
    while (asked := conn.recv()) in ("counts?", "recover"):
        if asked == "recover":
            sb.faults = Faults(latency_ms=latency_ms)
            sb.reset_counters()
        conn.send(
            {
                "counts": {f"{p}:{o}": n for (p, o), n in sb.counts.items()},
                "commits": sum(sb.cancel_commits.values()),
            }
        )
    sb.stop()


class Served:
    def __init__(
        self,
        specs: list[Spec],
        rpm: int | None,
        window: float,
        latency_ms: int,
        *,
        subscription: int = 0,
        dead: bool = False,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=serve,
            args=(child, specs, subscription, rpm, window, latency_ms, dead),
            daemon=True,
        )
        self.proc.start()
        info = self.conn.recv()
        self.accounts: dict[str, dict[str, str]] = info["accounts"]
        self.ids: list[list[str]] = info["ids"]

    def counts(self) -> dict[str, Any]:
        self.conn.send("counts?")
        return self.conn.recv()  # type: ignore[no-any-return]

    def recover(self) -> None:
        """The provider is back: no more 503s, counters from zero."""
        self.conn.send("recover")
        self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


def provider_requests(counts: dict[str, int]) -> int:
    """Reads, cancels and list pages: Vipps' access token (one per run) aside."""
    return sum(n for key, n in counts.items() if not key.endswith(":token"))


def write_config(path: Path, accounts: dict[str, dict[str, Any]]) -> None:
    lines = []
    for name, fields in accounts.items():
        lines.append(f"[accounts.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


class Quiet:
    def validated(self, v: Any) -> None: ...
    def warn(self, m: str) -> None: ...
    def waiting(self, m: str) -> None: ...
    def show_plan(self, p: Any, *, prompting: bool) -> None: ...
    def started(self, r: str, t: int, resumed: bool) -> None: ...
    def result(self, r: Any) -> None: ...
    def finished(self) -> None: ...


def throughput(
    payments: int,
    rpm: int,
    latency_ms: int,
    concurrency: int,
    tmp: Path,
    *,
    mode: str = "csv",
    provider: str = "hedgepayments",
    read_first: bool = False,
    expected: bool = False,
) -> dict[str, Any]:
    """``csv``: ``provider``'s open payments from a CSV (cancel first where the adapter
    declares it; ``read_first`` and ``expected`` (an ``expected_amount`` column) read
    first); ``subscription``: a FlexPortal rental's open payments (list pages, then one
    cancel each)."""
    from paycancel_cli.config import load_config
    from paycancel_cli.redact import Redactor
    from paycancel_cli.runs.request import BulkRequest
    from paycancel_cli.runs.start import run_bulk

    window = 6.0
    if mode == "csv":
        served = Served([(provider, OPEN[provider][0], payments)], rpm, window, latency_ms)
    else:
        provider = "flexportal"
        served = Served([], rpm, window, latency_ms, subscription=payments)
    try:
        accounts = {"acct": {**served.accounts[provider], "requests_per_minute": rpm}}
        write_config(tmp / "bench.toml", accounts)
        csv_path = tmp / "bench.csv"
        if expected:
            currency = OPEN[provider][1]
            csv_path.write_text(
                "payment_id,expected_amount,expected_currency\n"
                + "".join(f"{i},10.00,{currency}\n" for i in served.ids[0])
            )
        elif mode == "csv":
            csv_path.write_text("payment_id\n" + "\n".join(served.ids[0]) + "\n")
        os.environ["PAYCANCEL_DEFAULTS__JOURNAL"] = str(tmp / f"bench-{mode}.sqlite3")
        config = load_config(tmp / "bench.toml")
        if mode == "csv":
            request = BulkRequest(
                csv=str(csv_path),
                reason="bench",
                yes=True,
                concurrency=concurrency,
                read_first=read_first,
            )
        else:
            request = BulkRequest(
                subscriptions=["rent_bench"],
                account="acct",
                reason="bench",
                yes=True,
                concurrency=concurrency,
            )
        cpu0, t0 = time.process_time(), time.perf_counter()
        outcome = run_bulk(config, request, Quiet(), redactor=Redactor())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        counts = served.counts()
    finally:
        served.stop()
    summary = outcome.summary
    assert summary is not None
    limit_per_s = rpm / 60
    requests = provider_requests(counts["counts"])
    cancelled = summary.outcomes.get("cancelled", 0)
    return {
        "mode": mode,
        "provider": provider,
        "read_first": read_first,
        "expected_amount_column": expected,
        "payments": payments,
        "rate_limit_per_min": rpm,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "cancelled": cancelled,
        "failed": summary.total - cancelled,
        "provider_commits": counts["commits"],
        "requests_seen_by_provider": requests,
        "requests_per_payment": round(requests / payments, 3),
        "requests_per_cancelled": round(requests / cancelled, 3) if cancelled else None,
        "cancels_per_s": round(cancelled / wall, 2),
        "requests_per_s": round(requests / wall, 2),
        "rate_limit_utilisation": round(requests / wall / limit_per_s, 3),
        "cancels_as_share_of_limit": round(cancelled / wall / limit_per_s, 3),
        "client_cpu_ms_per_payment": round(cpu * 1000 / payments, 3),
    }


def plan_apply(
    payments: int, rpm: int, latency_ms: int, concurrency: int, tmp: Path
) -> dict[str, Any]:
    """Apply of a reviewed plan of ``payments`` open HedgePayments payments on an account
    with ``approvals = 1``: made by one key, approved by another (real ssh-keygen), then
    ``bulk-cancel --plan``.  Counts the requests of the checks (digest, expiry,
    signatures: none expected) and of the apply (one read and one cancel per planned
    payment at most), and the apply's requests as a share of the rate limit."""
    from paycancel_cli.config import load_config
    from paycancel_cli.journal import Journal
    from paycancel_cli.plans import (
        approve,
        author_of,
        evaluate,
        plan_document,
        read_plan,
        write_plan,
    )
    from paycancel_cli.redact import Redactor
    from paycancel_cli.runs.fromplan import apply_plan
    from paycancel_cli.runs.request import BulkRequest
    from paycancel_cli.runs.start import run_bulk

    for name in ("alice", "bob"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tmp / name)],
            check=True,
        )
    allowed = tmp / "allowed_signers"
    allowed.write_text(
        "".join(
            f"{n} {' '.join((tmp / (n + '.pub')).read_text().split()[:2])}\n"
            for n in ("alice", "bob")
        )
    )
    window = 6.0
    served = Served(
        [("hedgepayments", OPEN["hedgepayments"][0], payments)], rpm, window, latency_ms
    )
    try:
        account = {**served.accounts["hedgepayments"], "requests_per_minute": rpm, "approvals": 1}
        write_config(tmp / "plan.toml", {"acct": account})
        with open(tmp / "plan.toml", "a") as handle:
            handle.write(f'\n[approvals]\nallowed_signers = "{allowed}"\n')
        csv_path = tmp / "plan.csv"
        csv_path.write_text("payment_id\n" + "\n".join(served.ids[0]) + "\n")
        os.environ["PAYCANCEL_DEFAULTS__JOURNAL"] = str(tmp / "plan.sqlite3")
        config = load_config(tmp / "plan.toml")
        author = author_of(config, tmp / "alice")
        dry = run_bulk(
            config,
            BulkRequest(csv=str(csv_path), reason="bench", dry_run=True, concurrency=concurrency),
            Quiet(),
            redactor=Redactor(),
        )
        assert dry.run_id is not None
        journal = Journal(config.journal_path)
        document = plan_document(
            journal, config, dry.run_id, author=author, expires=timedelta(hours=1),
            command="bench", reason="bench", user="bench", host="bench",
        )  # fmt: skip
        path = tmp / "plan.json"
        write_plan(path, document, config=config, author=author)
        approve(read_plan(path), config, tmp / "bob")
        time.sleep(window)  # the dry run's reads leave the rate window
        before = provider_requests(served.counts()["counts"])
        verdict = evaluate(read_plan(path), config, journal)
        checks = provider_requests(served.counts()["counts"]) - before
        assert verdict.applicable, verdict.problems
        cpu0, t0 = time.process_time(), time.perf_counter()
        outcome = apply_plan(
            config,
            path,
            BulkRequest(plan=True, yes=True, concurrency=concurrency, command="bench"),
            Quiet(),
            redactor=Redactor(),
            announce=lambda _: None,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        spent = provider_requests(served.counts()["counts"]) - before - checks
    finally:
        served.stop()
    summary = outcome.summary
    assert summary is not None
    cancelled = summary.outcomes.get("cancelled", 0)
    limit_per_s = rpm / 60
    return {
        "payments": payments,
        "planned_would_cancel": sum(1 for p in document["payments"] if p["plan"] == "would_cancel"),
        "rate_limit_per_min": rpm,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "requests_of_the_checks": checks,
        "requests_seen_by_provider": spent,
        "requests_per_planned_payment": round(spent / payments, 3),
        "cancelled": cancelled,
        "failed": summary.total - cancelled,
        "requests_as_share_of_limit": round(spent / wall / limit_per_s, 3),
        "cancels_as_share_of_limit": round(cancelled / wall / limit_per_s, 3),
        "client_cpu_ms_per_payment": round(cpu * 1000 / payments, 3),
    }


def plan_table(row: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| run | requests of the checks | requests/planned payment "
            "| requests as share of limit | cancels as share of limit | failed |",
            "|---|---|---|---|---|---|",
            f"| plan apply hedgepayments ({row['payments']}) | {row['requests_of_the_checks']} "
            f"| {row['requests_per_planned_payment']:g} | {row['requests_as_share_of_limit']:.1%} "
            f"| {row['cancels_as_share_of_limit']:.1%} | {row['failed']} |",
        ]
    )


def dead_provider(payments: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    """``payments`` HedgePayments payments whose every answer is a 503, with the
    production retry policy: the circuit breaker ends the run (exit 5); then the
    provider recovers and ``--resume`` cancels them, each once."""
    from paycancel_cli.config import load_config
    from paycancel_cli.redact import Redactor
    from paycancel_cli.runs.request import BulkRequest
    from paycancel_cli.runs.start import run_bulk

    provider = "hedgepayments"
    served = Served([(provider, OPEN[provider][0], payments)], None, 60.0, 0, dead=True)
    try:
        write_config(tmp / "dead.toml", {"acct": served.accounts[provider]})
        csv_path = tmp / "dead.csv"
        csv_path.write_text("payment_id\n" + "\n".join(served.ids[0]) + "\n")
        os.environ["PAYCANCEL_DEFAULTS__JOURNAL"] = str(tmp / "dead.sqlite3")
        config = load_config(tmp / "dead.toml")
        request = BulkRequest(csv=str(csv_path), reason="bench", yes=True, concurrency=concurrency)
        t0 = time.perf_counter()
        down = run_bulk(config, request, Quiet(), redactor=Redactor())
        wall = time.perf_counter() - t0
        sent = provider_requests(served.counts()["counts"])
        served.recover()
        again = run_bulk(
            config, BulkRequest(resume=down.run_id, yes=True), Quiet(), redactor=Redactor()
        )
        back = served.counts()
    finally:
        served.stop()
    assert again.summary is not None
    cancelled = again.summary.outcomes.get("cancelled", 0)
    return {
        "payments": payments,
        "concurrency": concurrency,
        "exit_code": down.exit_code(),
        "wall_s": round(wall, 2),
        "requests_to_dead_account": sent,
        "resume_exit_code": again.exit_code(),
        "resume_cancelled": cancelled,
        "resume_commits": back["commits"],
        "failed": payments - cancelled + (back["commits"] != payments) + (down.exit_code() != 5),
    }


def requests_by_kind(per_kind: int, tmp: Path) -> dict[str, Any]:
    """Requests per payment for each provider and answer kind, cancel first and with
    ``--read-first``: one sandbox per provider (no latency, no limit), one run per kind
    and mode, the sandbox's own counts.  A payment ending in another outcome than its
    kind's is counted in ``wrong_outcomes``."""
    from paycancel_cli.config import load_config
    from paycancel_cli.redact import Redactor
    from paycancel_cli.runs.request import BulkRequest
    from paycancel_cli.runs.start import run_bulk

    modes = {"cancel_first": False, "read_first": True}
    table: dict[str, Any] = {}
    wrong = 0
    for provider, kinds in KINDS.items():
        specs = [(provider, fields, per_kind) for _ in modes for fields, _ in kinds.values()]
        served = Served(specs, None, 60.0, 0)
        try:
            write_config(tmp / f"{provider}.toml", {"acct": served.accounts[provider]})
            config = load_config(tmp / f"{provider}.toml")
            os.environ["PAYCANCEL_DEFAULTS__JOURNAL"] = str(tmp / f"kinds-{provider}.sqlite3")
            batches = iter(served.ids)
            row: dict[str, dict[str, float]] = {}
            for mode, read_first in modes.items():
                row[mode] = {}
                for kind, (_fields, outcome) in kinds.items():
                    csv_path = tmp / f"{provider}-{mode}-{kind}.csv"
                    csv_path.write_text("payment_id\n" + "\n".join(next(batches)) + "\n")
                    before = provider_requests(served.counts()["counts"])
                    done = run_bulk(
                        config,
                        BulkRequest(
                            csv=str(csv_path), reason="bench", yes=True, read_first=read_first
                        ),
                        Quiet(),
                        redactor=Redactor(),
                    )
                    spent = provider_requests(served.counts()["counts"]) - before
                    assert done.summary is not None
                    wrong += per_kind - done.summary.outcomes.get(outcome, 0)
                    row[mode][kind] = round(spent / per_kind, 3)
        finally:
            served.stop()
        table[provider] = row
    return {"payments_per_kind": per_kind, "wrong_outcomes": wrong, "providers": table}


def kinds_table(kinds: dict[str, Any]) -> str:
    """The README's table: requests per cancelled, refused and already-cancelled payment."""
    lines = [
        "| provider | cancelled | refused | already cancelled "
        "| --read-first: cancelled | refused | already cancelled |",
        "|---|---|---|---|---|---|---|",
    ]
    for provider, row in kinds["providers"].items():
        cells = [f"{row[m][k]:g}" for m in ("cancel_first", "read_first") for k in row[m]]
        lines.append(f"| {provider} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def throughput_table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| run | requests/payment | requests/cancelled | cancels as share of limit "
        "| requests as share of limit | failed |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        name = f"{r['mode']} {r['provider']}"
        if r["read_first"]:
            name += " --read-first"
        if r["expected_amount_column"]:
            name += " expected_amount"
        lines.append(
            f"| {name} | {r['requests_per_payment']:g} | {r['requests_per_cancelled']} "
            f"| {r['cancels_as_share_of_limit']:.1%} | {r['rate_limit_utilisation']:.1%} "
            f"| {r['failed']} |"
        )
    return "\n".join(lines)


def baseline_cpu(payments: int, tmp: Path) -> dict[str, Any]:
    """A plain sequential httpx loop: GET then POST cancel per payment, no journal."""
    import httpx

    served = Served([("hedgepayments", OPEN["hedgepayments"][0], payments)], None, 60.0, 0)
    try:
        acc = served.accounts["hedgepayments"]
        headers = {"Authorization": f"Bearer {acc['api_key']}"}
        cpu0, t0 = time.process_time(), time.perf_counter()
        with httpx.Client(base_url=acc["base_url"], headers=headers) as client:
            for pid in served.ids[0]:
                client.get(f"/v1/payments/{pid}").raise_for_status()
                client.post(
                    f"/v1/payments/{pid}/cancel", json={"reason": "bench"}
                ).raise_for_status()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        served.stop()
    return {
        "payments": payments,
        "wall_s": round(wall, 2),
        "client_cpu_ms_per_payment": round(cpu * 1000 / payments, 3),
    }


def baseline_async_cpu(payments: int) -> float:
    """The same loop on httpx.AsyncClient (the async stack paycancel is built on)."""
    import asyncio

    import httpx

    served = Served([("hedgepayments", OPEN["hedgepayments"][0], payments)], None, 60.0, 0)
    try:
        acc = served.accounts["hedgepayments"]
        headers = {"Authorization": f"Bearer {acc['api_key']}"}

        async def loop() -> None:
            async with httpx.AsyncClient(base_url=acc["base_url"], headers=headers) as client:
                for pid in served.ids[0]:
                    (await client.get(f"/v1/payments/{pid}")).raise_for_status()
                    cancel = await client.post(f"/v1/payments/{pid}/cancel", json={"reason": "b"})
                    cancel.raise_for_status()

        cpu0 = time.process_time()
        asyncio.run(loop())
        cpu = time.process_time() - cpu0
    finally:
        served.stop()
    return round(cpu * 1000 / payments, 3)


def engine_cpu(payments: int, tmp: Path) -> dict[str, Any]:
    """paycancel's engine on the same work (a read and a cancel each: ``--read-first``),
    unlimited, concurrency 1 and 8."""
    out = {}
    for concurrency in (1, 8):
        result = throughput(
            payments, 10**7, 0, concurrency, tmp / f"c{concurrency}", read_first=True
        )
        out[f"concurrency_{concurrency}"] = result["client_cpu_ms_per_payment"]
    return out


STARTUP_TARGET = 1.3


def startup(repeat: int) -> dict[str, Any]:
    """Interleaved runs (both see the same machine load), with bytecode
    cached as after `pip install` (which compiles it): without that, every run would
    also time compiling paycancel's sources, which an installed CLI never does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {
        "help": [sys.executable, "-m", "paycancel_cli", "--help"],
        "typer": [sys.executable, "-c", "import typer"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(repeat + 1):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            if run:  # the first run writes the bytecode cache
                times[name].append(time.perf_counter() - t0)
    # The minimum is what start-up costs on this machine; the median adds its load.
    help_s, typer_s = (min(times[name]) for name in commands)
    help_med, typer_med = (statistics.median(times[name]) for name in commands)
    return {
        "paycancel_help_s": round(help_s, 3),
        "import_typer_s": round(typer_s, 3),
        "ratio": round(help_s / typer_s, 2),
        "ratio_of_medians": round(help_med / typer_med, 2),
        "target_ratio": STARTUP_TARGET,  # shell completion and `config` must not cost it
    }


def validation(rows: int, tmp: Path) -> dict[str, Any]:
    csv_path = tmp / "big.csv"
    with open(csv_path, "w") as handle:
        handle.write("payment_id,account\n")
        for i in range(rows):
            handle.write(f"pay_{i:012d},hedge\n")
    config = tmp / "val.toml"
    write_config(
        config,
        {
            "hedge": {
                "provider": "hedgepayments",
                "api_key": "sk_test_bench",
                "base_url": "http://127.0.0.1:9",
            }
        },
    )

    def measure(cmd: list[str]) -> tuple[float, float]:
        # peak RSS of one child: run it through a tiny wrapper that reports its own maxrss
        wrapper = (
            "import resource,subprocess,sys,time;t=time.perf_counter();"
            "r=subprocess.run(sys.argv[1:],capture_output=True);"
            "ru=resource.getrusage(resource.RUSAGE_CHILDREN);"
            "print(time.perf_counter()-t, ru.ru_maxrss, r.returncode)"
        )
        done = subprocess.run(
            [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True
        )
        seconds, rss_kb, code = done.stdout.split()
        assert code == "0", code
        return float(seconds), int(rss_kb) / 1024

    env_cmd = [
        sys.executable,
        "-m",
        "paycancel_cli",
        "--config",
        str(config),
        "bulk-cancel",
        str(csv_path),
        "--validate-only",
        "--json",
        "--reason",
        "bench",
    ]
    bare = [
        sys.executable,
        "-c",
        f"import csv\nwith open({str(csv_path)!r}, newline='') as f:\n"
        "    n = sum(1 for _ in csv.reader(f))",
    ]
    ours_s, ours_mb = measure(env_cmd)
    bare_s, bare_mb = measure(bare)
    return {
        "rows": rows,
        "validate_only_s": round(ours_s, 2),
        "bare_csv_reader_s": round(bare_s, 2),
        "time_ratio": round(ours_s / bare_s, 2),
        "peak_rss_mb": round(ours_mb, 1),
        "bare_peak_rss_mb": round(bare_mb, 1),
    }


def monitoring_overhead(payments: int, rounds: int, tmp: Path) -> dict[str, Any]:
    """bulk-cancel with --metrics-file and --ping-url against the same run without them:
    each run a fresh batch of ``payments`` open payments (30 ms latency, no rate limit),
    as a process of its own, the two kinds interleaved ``rounds`` times."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pings: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            pings.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    batches = 2 * rounds
    served = Served(
        [("hedgepayments", OPEN["hedgepayments"][0], payments) for _ in range(batches)],
        None,
        60.0,
        30,
    )
    times: dict[str, list[float]] = {"without": [], "with": []}
    try:
        write_config(tmp / "mon.toml", {"acct": served.accounts["hedgepayments"]})
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp / "mon.sqlite3")}
        prom = tmp / "paycancel.prom"
        options = [
            "--metrics-file", str(prom),
            "--ping-url", f"http://127.0.0.1:{server.server_address[1]}/bench-check",
        ]  # fmt: skip
        for n, ids in enumerate(served.ids):
            # without, with, with, without, ...: a drift in the machine's load over the
            # runs weighs on both kinds alike
            kind = ("without", "with", "with", "without")[n % 4]
            csv_path = tmp / f"mon-{n}.csv"
            csv_path.write_text("payment_id\n" + "\n".join(ids) + "\n")
            cmd = [sys.executable, "-m", "paycancel_cli", "--config", str(tmp / "mon.toml")]
            cmd += ["bulk-cancel", str(csv_path), "--reason", "bench", "--yes", "--json"]
            t0 = time.perf_counter()
            subprocess.run(
                cmd + (options if kind == "with" else []), env=env, check=True, capture_output=True
            )
            times[kind].append(time.perf_counter() - t0)
        # The monitoring work alone, in this process: the file (prometheus_client's
        # first import included) and one ping to the loopback server, start to answer.
        from paycancel_cli import monitoring
        from paycancel_cli.redact import Redactor

        t0 = time.perf_counter()
        monitoring.write_metrics(
            tmp / "alone.prom", "bench", code=0, now=time.time(), duration_s=1.0, summary=None
        )
        write_ms = (time.perf_counter() - t0) * 1000
        ping = monitoring.Ping(options[-1], Redactor())
        ping.send("0", "warm-up")  # httpx and the engine are imported by then in a run
        ping.wait()
        t0 = time.perf_counter()
        ping.send("0", "bench")
        ping.wait()
        ping_ms = (time.perf_counter() - t0) * 1000
    finally:
        served.stop()
        server.shutdown()
    without, with_ = (statistics.median(times[k]) for k in ("without", "with"))
    return {
        "payments_per_run": payments,
        "runs_each": rounds,
        "latency_ms": 30,
        "without_s": [round(t, 3) for t in times["without"]],
        "with_s": [round(t, 3) for t in times["with"]],
        "median_without_s": round(without, 3),
        "median_with_s": round(with_, 3),
        "added_s": round(with_ - without, 3),
        "added_ms_per_payment": round((with_ - without) * 1000 / payments, 3),
        "metrics_write_ms": round(write_ms, 1),
        "end_ping_ms": round(ping_ms, 1),
        "pings_received": len(pings),
        "metrics_file_written": prom.exists(),
    }


def audit_journal(events: int, path: Path) -> float:
    """A journal of ``events`` events shaped like a bulk run's (a start, then a sent and
    a finished event per payment), appended through the journal's own bulk helper."""
    from paycancel_cli.journal import Journal, NewEvent

    journal = Journal(path)
    t0 = time.perf_counter()

    def shaped(start: int, count: int) -> Any:
        for n in range(start, start + count):
            run = f"20261201-020000-{n // 100_000:06x}"
            pid = f"pay_{n // 2:012d}"
            common = {"account": "hedge", "provider": "hedgepayments", "payment_id": pid}
            key = f"pc-{n // 2:032x}"
            if n % 100_000 == 0:
                yield NewEvent("run_started", run, {"command": "paycancel bulk-cancel in.csv"})
            elif n % 2:
                fields = common | {"idempotency_key": key, "reason": "early return"}
                yield NewEvent("payment_sent", run, fields)
            else:
                fields = common | {
                    "idempotency_key": key,
                    "outcome": "cancelled",
                    "error_code": None,
                    "amount": "10.00",
                    "currency": "USD",
                    "released": "10.00",
                    "released_currency": "USD",
                    "attempts": 1,
                }
                yield NewEvent("payment_finished", run, fields)

    batch = 50_000
    for start in range(0, events, batch):
        journal.append_events(shaped(start, min(batch, events - start)))
    journal.close()
    return time.perf_counter() - t0


def child_peak(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of one child process."""
    wrapper = (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
        "ru=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(time.perf_counter()-t, ru.ru_maxrss, r.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True, env=env
    )
    seconds, rss_kb, code = done.stdout.split()
    assert code in ("0", "1"), code  # verify: 0 intact
    return float(seconds), int(rss_kb) / 1024


def audit_export(events: int, tmp: Path) -> dict[str, Any]:
    path = tmp / "audit.sqlite3"
    build_s = audit_journal(events, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCANCEL_")}
    env |= {
        "PAYCANCEL_DEFAULTS__JOURNAL": str(path),
        "HOME": str(tmp),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "data"),
    }
    cli = [sys.executable, "-m", "paycancel_cli", "audit"]
    out: dict[str, Any] = {"events": events, "build_s": round(build_s, 1)}
    for fmt in ("jsonl", "csv"):
        target = tmp / f"audit.{fmt}"
        seconds, mb = child_peak([*cli, "export", "--format", fmt, "--output", str(target)], env)
        with open(target, "rb") as handle:
            lines = sum(1 for _ in handle)
        assert lines == events + (fmt == "csv"), (fmt, lines)
        out[f"export_{fmt}_s"] = round(seconds, 2)
        out[f"export_{fmt}_peak_rss_mb"] = round(mb, 1)
        out[f"export_{fmt}_mb"] = round(target.stat().st_size / 2**20, 1)
        target.unlink()
    seconds, mb = child_peak([*cli, "verify"], env)
    out["verify_s"], out["verify_peak_rss_mb"] = round(seconds, 2), round(mb, 1)
    out["peak_rss_limit_mb"] = 150
    return out


def audit_cost(payments: int, tmp: Path, rounds: int) -> dict[str, Any]:
    """Client CPU per payment of one bulk run (``--read-first``, concurrency 1, no rate
    limit or latency), with the audit events and without them, interleaved so both see
    the same machine load; the median of each."""
    from paycancel_cli.journal import Journal

    appended = Journal._append
    with_events: list[float] = []
    without: list[float] = []
    (tmp / "warm").mkdir()
    throughput(payments // 4, 10**7, 0, 1, tmp / "warm", read_first=True)  # imports, caches
    for n in range(rounds):
        order = (("on", with_events), ("off", without))
        for label, runs in order if n % 2 == 0 else order[::-1]:
            sub = tmp / f"{label}{n}"
            sub.mkdir()
            if label == "off":  # the journal as before the trail: no event appended
                Journal._append = lambda self, db, events: None  # type: ignore[method-assign]
            try:
                result = throughput(payments, 10**7, 0, 1, sub, read_first=True)
            finally:
                Journal._append = appended  # type: ignore[method-assign]
            runs.append(result["client_cpu_ms_per_payment"])
    on, off = statistics.median(with_events), statistics.median(without)
    return {
        "payments": payments,
        "rounds": rounds,
        "client_cpu_ms_per_payment_with_events": round(on, 3),
        "client_cpu_ms_per_payment_without_events": round(off, 3),
        "events_cpu_ms_per_payment": round(on - off, 3),
        "events_share_of_client_cpu": round((on - off) / on, 3),
        "runs_with_events": with_events,
        "runs_without_events": without,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="small and quick (CI)")
    parser.add_argument("--payments", type=int, default=600)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--latency-ms", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--audit-events", type=int, default=1_000_000)
    parser.add_argument(
        "--only",
        choices=("throughput", "kinds", "dead", "audit"),
        help="run only the throughput runs, the per-kind request counts, the dead provider "
        "or the audit trail",
    )
    args = parser.parse_args()
    if args.smoke:
        args.payments, args.rpm, args.csv_rows, args.audit_events = 60, 3000, 20_000, 20_000
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        report: dict[str, Any] = {"mode": "smoke" if args.smoke else "full"}
        if args.only == "audit":
            report["audit"] = audit_report(args, tmp)
            print(json.dumps(report, indent=2))
            return
        shape = (args.payments, args.rpm, args.latency_ms, args.concurrency)
        runs: list[dict[str, Any]] = []
        variants: list[dict[str, Any]] = [
            {"provider": "flexportal"},
            {"provider": "hedgepayments"},
            {"provider": "flex"},
            {"provider": "hedgepayments", "read_first": True},
            {"provider": "hedgepayments", "expected": True},
            {"mode": "subscription"},
        ]
        if args.only == "dead":
            variants = []
        for n, variant in enumerate(variants if args.only != "kinds" else []):
            (tmp / f"t{n}").mkdir()
            runs.append(throughput(*shape, tmp / f"t{n}", **variant))
        report["throughput"] = runs
        if args.only not in ("kinds", "dead"):
            (tmp / "plan").mkdir()
            report["plan_apply"] = plan_apply(*shape, tmp / "plan")
        (tmp / "k").mkdir()
        kinds: dict[str, Any] = {"wrong_outcomes": 0, "providers": {}}
        if args.only not in ("throughput", "dead"):
            kinds = requests_by_kind(5 if args.smoke else 40, tmp / "k")
        report["requests_by_kind"] = kinds
        if args.only == "dead":
            (tmp / "dead").mkdir()
            report["dead_provider"] = dead_provider(
                50 if args.smoke else args.payments, args.concurrency, tmp / "dead"
            )
        if args.only:
            finish(report, runs)
            return
        cpu_n = 100 if args.smoke else 1000
        for sub in ("c1", "c8"):
            (tmp / sub).mkdir()
        report["client_cpu"] = {
            "sequential_httpx_loop": baseline_cpu(cpu_n, tmp)["client_cpu_ms_per_payment"],
            "sequential_async_httpx_loop": baseline_async_cpu(cpu_n),
            "paycancel": engine_cpu(cpu_n, tmp),
        }
        report["startup"] = startup(3 if args.smoke else 15)
        report["validation"] = validation(args.csv_rows, tmp)
        (tmp / "dead").mkdir()
        report["dead_provider"] = dead_provider(
            50 if args.smoke else 500, args.concurrency, tmp / "dead"
        )
        (tmp / "mon").mkdir()
        report["monitoring"] = monitoring_overhead(
            20 if args.smoke else args.payments, 1 if args.smoke else 4, tmp / "mon"
        )
        report["audit"] = audit_report(args, tmp)
    finish(report, runs)


def audit_report(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    (tmp / "audit").mkdir()
    (tmp / "cost").mkdir()
    return {
        "export": audit_export(args.audit_events, tmp / "audit"),
        "cost": audit_cost(100 if args.smoke else 1000, tmp / "cost", 1 if args.smoke else 3),
    }


def finish(report: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    print(json.dumps(report, indent=2))
    if runs:
        print(throughput_table(runs), file=sys.stderr)
    if "plan_apply" in report:
        print(plan_table(report["plan_apply"]), file=sys.stderr)
    if report["requests_by_kind"]["providers"]:
        print(kinds_table(report["requests_by_kind"]), file=sys.stderr)
    failed = sum(r["failed"] for r in runs) + report["requests_by_kind"]["wrong_outcomes"]
    if "plan_apply" in report:
        row = report["plan_apply"]
        failed += row["failed"]
        if row["requests_of_the_checks"] or row["requests_per_planned_payment"] > 2:
            print("bench: a plan apply cost more than one read and one cancel", file=sys.stderr)
            failed += 1
    if "dead_provider" in report:
        dead = report["dead_provider"]
        print(
            f"dead provider: {dead['payments']} payments, every answer 503: exit "
            f"{dead['exit_code']} after {dead['wall_s']} s and {dead['requests_to_dead_account']} "
            f"requests; --resume after recovery: exit {dead['resume_exit_code']}, "
            f"{dead['resume_cancelled']} cancelled, {dead['resume_commits']} cancels applied",
            file=sys.stderr,
        )
        failed += dead["failed"]
    if failed:
        print(f"bench: {failed} payment(s) without their expected outcome", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
