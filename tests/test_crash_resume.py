"""SIGKILL a bulk run at several points, resume it, and find every payment cancelled
exactly once (by the sandbox's own count) and the run's summary accounting for all."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.audit import verify
from paycancel_cli.engine import idempotency_key
from paycancel_cli.journal import Journal
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import spawn, write_config

PAYMENTS = {
    "hedgepayments": [{"status": "pending", "amount": 1000}] * 24,
    "flexportal": [{"status": "pending", "total": "10.00"}] * 12
    + [{"status": "paid", "total": "1.00"}] * 4,
    "vipps": [{"state": "AUTHORIZED", "amount": 500, "authorized": 500}] * 6,
    "compago": [{"status": "PENDING", "amount": "5.00"}] * 6,
}


def assert_chain_matches(journal_path: Path, run_id: str, *, resumes: int) -> None:
    """The audit chain is intact and holds one event per committed change: the run's
    start and plan, a payment_sent per in-flight mark (at most one before the crash and
    one on resume), one payment_finished per payment agreeing with its row, and the
    status changes; nothing else."""
    journal = Journal(journal_path)
    checked = verify(journal.events())
    assert checked.intact, checked.problem
    events = [e for e in journal.events() if e.run_id == run_id]
    assert checked.events == len(events)  # no event of another run, none without a run
    types = [e.type for e in events]
    assert types[:2] == ["run_started", "payments_planned"]
    assert types.count("run_resumed") == resumes and types[-1] == "run_finished"
    finished = [e.fields() for e in events if e.type == "payment_finished"]
    sent = Counter(e.fields()["payment_id"] for e in events if e.type == "payment_sent")
    rows = list(journal.payments(run_id))
    assert sorted(f["payment_id"] for f in finished) == sorted(r.payment_id for r in rows)
    by_id = {r.payment_id: r for r in rows}
    for fields in finished:
        row = by_id[fields["payment_id"]]
        assert fields["outcome"] == row.outcome.value  # type: ignore[union-attr]
        assert fields["idempotency_key"] == row.idempotency_key
    assert all(1 <= n <= 2 for n in sent.values()), sent
    interrupted = types.count("run_interrupted")
    assert len(types) == 2 + sum(sent.values()) + len(finished) + resumes + interrupted + 1


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


def cancel_requests(sb: Sandbox) -> int:
    return sum(n for (_, op), n in sb.counts.items() if op == "cancel")


KILL_POINTS: dict[str, tuple[Faults, Callable[[Sandbox], bool]]] = {
    # a cancel request has reached the provider but nothing is committed yet
    "request in flight, before commit": (
        Faults(latency_ms=400),
        lambda sb: cancel_requests(sb) >= 3,
    ),
    # the provider committed the cancel; its answer has not reached the client
    "between commit and response": (
        Faults(latency_ms=5, commit_delay_ms=400),
        lambda sb: sum(sb.cancel_commits.values()) >= 5,
    ),
    # in the middle of the run, between payments
    "mid-run": (
        Faults(latency_ms=20),
        lambda sb: sum(sb.cancel_commits.values()) >= 20,
    ),
    # before any cancel: only reads so far (the run reads first: --read-first)
    "during the first reads": (
        Faults(latency_ms=200),
        lambda sb: sb.counts[("hedgepayments", "get")] >= 1,
    ),
}
READ_FIRST = {"during the first reads"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_cancels_each_payment_exactly_once(tmp_path: Path, point: str) -> None:
    faults, when = KILL_POINTS[point]
    with Sandbox(seed_demo=False) as sb:
        expected: dict[tuple[str, str], bool] = {}
        for provider, items in PAYMENTS.items():
            for fields in items:
                pid = sb.add_payment(provider, **fields)
                expected[(provider, pid)] = fields.get("status") != "paid"
        config = write_config(tmp_path / "c.toml", sb.account_config())
        csv_path = tmp_path / "in.csv"
        csv_path.write_text("account,payment_id\n" + "".join(f"{p},{i}\n" for p, i in expected))
        journal_path = tmp_path / "journal.sqlite3"
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(journal_path)}
        sb.faults = faults

        first = spawn(
            [
                "--config",
                str(config),
                "bulk-cancel",
                str(csv_path),
                "--reason",
                "crash",
                "--yes",
                "--json",
                "--concurrency",
                "4",
                *(["--read-first"] if point in READ_FIRST else []),
            ],
            env,
        )
        try:
            wait_for(lambda: when(sb))
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert first.returncode == -signal.SIGKILL
        committed_at_kill = sum(sb.cancel_commits.values())

        (run,) = Journal(journal_path).runs()
        assert run.status == "running"  # it died mid-run
        sb.faults = Faults()
        resumed = spawn(
            ["--config", str(config), "bulk-cancel", "--resume", run.run_id, "--yes", "--json"], env
        )
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 1, err  # the paid ones are not cancellable
        lines = [json.loads(line) for line in out.splitlines()]
        summary = lines[-1]
        assert summary["type"] == "summary" and summary["run_id"] == run.run_id
        assert summary["total"] == len(expected) and summary["remaining"] == 0
        n_cancelable = sum(expected.values())
        assert summary["outcomes"] == {
            "cancelled": n_cancelable,
            "not_cancellable": len(expected) - n_cancelable,
        }
        for key, cancelable in expected.items():
            assert sb.cancel_commits[key] == (1 if cancelable else 0), (point, key)
        # the resumed invocation printed results only for what it processed
        processed = [line for line in lines if line["type"] == "result"]
        assert 0 < len(processed) <= len(expected)
        for line in processed:  # the keys persisted before the crash are the ones used
            key = idempotency_key(run.run_id, line["account"], line["payment_id"])
            assert line["idempotency_key"] == key
        if point == "between commit and response":
            assert committed_at_kill >= 5
        assert Journal(journal_path).run(run.run_id).status == "completed"  # type: ignore[union-attr]
        assert_chain_matches(journal_path, run.run_id, resumes=1)
        assert summary["audit_head"] == Journal(journal_path).head()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_cleanly_and_prints_the_resume_command(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=30)) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=100) for _ in range(60)]
        config = write_config(tmp_path / "c.toml", sb.account_config())
        csv_path = tmp_path / "in.csv"
        csv_path.write_text("payment_id\n" + "\n".join(ids) + "\n")
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3")}
        proc = spawn(
            [
                "--config",
                str(config),
                "bulk-cancel",
                str(csv_path),
                "--reason",
                "r",
                "--account",
                "hedgepayments",
                "--yes",
                "--concurrency",
                "2",
            ],
            env,
        )
        wait_for(lambda: sum(sb.cancel_commits.values()) >= 5)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "bulk-cancel --resume" in err and "--yes" in err
        done = sum(sb.cancel_commits.values())
        assert 5 <= done < 60
        (run,) = Journal(tmp_path / "j.sqlite3").runs()
        assert run.status == "interrupted"
        # every cancel the provider committed was recorded as done
        journal = Journal(tmp_path / "j.sqlite3")
        recorded = {r.payment_id for r in journal.payments(run.run_id) if r.outcome is not None}
        assert {pid for (_, pid), n in sb.cancel_commits.items() if n} == recorded
        shown = spawn(["--config", str(config), "runs", "show", run.run_id], env)
        _out, err = shown.communicate(timeout=60)
        assert shown.returncode == 0, err
        assert err.endswith(
            f"Not finished. Resume with:\n  paycancel --config {config} bulk-cancel --resume "
            f"{run.run_id}\n"
        ), err
        resumed = spawn(
            ["--config", str(config), "bulk-cancel", "--resume", run.run_id, "--yes"], env
        )
        resumed.communicate(timeout=60)
        assert resumed.returncode == 0
        assert all(sb.cancel_commits[("hedgepayments", i)] == 1 for i in ids)
        assert_chain_matches(tmp_path / "j.sqlite3", run.run_id, resumes=1)


def test_second_process_on_the_same_input_gets_exit_4(tmp_path: Path) -> None:
    with Sandbox(seed_demo=False, faults=Faults(latency_ms=150)) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=100) for _ in range(30)]
        config = write_config(tmp_path / "c.toml", sb.account_config())
        csv_path = tmp_path / "in.csv"
        csv_path.write_text("payment_id\n" + "\n".join(ids) + "\n")
        env = {**os.environ, "PAYCANCEL_DEFAULTS__JOURNAL": str(tmp_path / "j.sqlite3")}
        args = [
            "--config",
            str(config),
            "bulk-cancel",
            str(csv_path),
            "--reason",
            "r",
            "--yes",
            "--account",
            "hedgepayments",
            "--concurrency",
            "2",
        ]
        first = spawn(args, env)
        wait_for(lambda: sum(sb.cancel_commits.values()) >= 1)
        second = spawn(args, env)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 4 and "being worked on" in err
        first.communicate(timeout=60)
        assert first.returncode == 0
        waited = spawn([*args, "--wait"], env)  # after the first: nothing left to cancel
        waited.communicate(timeout=60)
        assert waited.returncode == 0
        assert all(sb.cancel_commits[("hedgepayments", i)] == 1 for i in ids)


def test_an_interrupted_single_cancel_resumes(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    """A `cancel` that died with its request in flight: the run's payment is `in_flight`;
    `bulk-cancel --resume` reads it first and finishes it without a second cancel."""
    from paycancel_cli.journal import PlanRow

    journal = Journal(tmp_path / "journal.sqlite3")
    before = cli(
        "--config",
        str(config_file),
        "status",
        "pay_demopending01",
        "--account",
        "hedgepayments",
        "--json",
    ).json_lines()[0]
    from paycancel_cli.models import Payment

    snapshot = Payment.from_json({k: v for k, v in before.items() if k != "type"})
    key = idempotency_key("r-single", "hedgepayments", "pay_demopending01")
    journal.start_run(
        "r-single",
        user="u",
        host="h",
        command="paycancel cancel",
        input="hedgepayments:pay_demopending01",
        input_hash="x",
        reason="r",
        options={"kind": "cancel", "accounts": ["hedgepayments"]},
    )
    journal.plan(
        "r-single",
        [PlanRow("hedgepayments", "hedgepayments", "pay_demopending01", "r", key, known=snapshot)],
    )
    journal.mark_in_flight("r-single", "hedgepayments", "pay_demopending01", snapshot)
    journal.set_run_status("r-single", "interrupted")
    # the provider committed the cancel before the process died
    sent = cli(
        "--config",
        str(config_file),
        "cancel",
        "pay_demopending01",
        "--account",
        "hedgepayments",
        "--reason",
        "r",
        "--yes",
    )
    assert sent.code == 0
    sandbox.reset_counters()
    res = cli(
        "--config", str(config_file), "bulk-cancel", "--resume", "r-single", "--yes", "--json"
    )
    assert res.code == 0, res.stderr
    (result,) = [line for line in res.json_lines() if line["type"] == "result"]
    assert result["outcome"] == "cancelled" and result["idempotency_key"] == key
    assert sandbox.counts[("hedgepayments", "cancel")] == 0


def test_a_run_being_worked_on_cannot_be_resumed_twice(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    from paycancel_cli.locks import Lock

    journal = Journal(tmp_path / "journal.sqlite3")
    journal.start_run(
        "r-busy",
        user="u",
        host="h",
        command="c",
        input="i",
        input_hash="busy",
        reason="r",
        options={"kind": "bulk", "accounts": ["flex"]},
    )
    holder = Lock(tmp_path / "journal.sqlite3", "run-r-busy")
    holder.acquire(what="Run r-busy")
    try:
        res = cli("--config", str(config_file), "bulk-cancel", "--resume", "r-busy", "--yes")
    finally:
        holder.release()
    assert res.code == 4 and "being worked on" in res.stderr
