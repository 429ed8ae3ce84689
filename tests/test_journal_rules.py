"""The journal's bookkeeping, one rule at a time: a payment's journey and what each
query counts, the keys renewed before a retry, what a resume takes back, and who holds
a lock.  Written against the survivors of ``bench/mutate.py --module journal``.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from paycancel_cli.audit import verify
from paycancel_cli.errors import JournalError, LockError
from paycancel_cli.journal import (
    AppliedPlan,
    Journal,
    NewEvent,
    PlanRow,
    _locked,
    applied_plan,
    canonical,
    event_hash,
    record_plan,
)
from paycancel_cli.locks import Lock
from paycancel_cli.models import ErrorInfo, Money, Outcome, Payment, PaymentStatus, Result

BEFORE = Payment(
    account="a",
    provider="flex",
    payment_id="p1",
    status=PaymentStatus.AUTHORIZED,
    native_status="requires_capture",
    cancelable=True,
    amount=Money(Decimal("12.34"), "USD"),
)


def journal_with_run(tmp_path: Path, run_id: str = "r1", n: int = 4) -> Journal:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.start_run(
        run_id, user="u", host="h", command="c", input="in.csv", input_hash="x", reason="r",
        options={"kind": "bulk"},
    )  # fmt: skip
    rows = [PlanRow("a" if i % 2 == 0 else "b", "flex", f"p{i}", "r", f"k{i}") for i in range(n)]
    assert journal.plan(run_id, rows) == (n, 0)
    return journal


def done(
    run_id: str,
    account: str,
    pid: str,
    outcome: Outcome,
    *,
    error: ErrorInfo | None = None,
    attempts: int = 1,
) -> Result:
    return Result(run_id, account, "flex", pid, outcome, error=error, attempts=attempts)


def test_in_flight_keeps_the_before_and_done_records_the_result(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path)
    journal.mark_in_flight("r1", "a", "p0", BEFORE)
    journal.mark_in_flight("r1", "b", "p1", None)
    rows = {p.payment_id: p for p in journal.payments("r1")}
    assert (rows["p0"].state, rows["p0"].before) == ("in_flight", BEFORE)
    assert (rows["p1"].state, rows["p1"].before) == ("in_flight", None)
    assert rows["p2"].state == "planned"  # only the one named
    journal.mark_done(done("r1", "a", "p0", Outcome.CANCELLED, attempts=2))
    (result,) = journal.results("r1")
    assert (result.payment_id, result.outcome, result.attempts) == ("p0", Outcome.CANCELLED, 2)
    assert result.idempotency_key == "k0" and result.run_id == "r1"
    assert journal.count_payments("r1") == 4 and journal.count_pending("r1") == 3
    assert journal.count_payments("other") == 0


def test_a_renewed_key_is_recorded_for_that_payment_only(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path)
    journal.set_key("r1", "a", "p2", "k2-r1")
    keys = {p.payment_id: p.idempotency_key for p in journal.payments("r1")}
    assert keys == {"p0": "k0", "p1": "k1", "p2": "k2-r1", "p3": "k3"}


def test_counts_per_account_and_per_outcome(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path, n=6)  # a: p0 p2 p4, b: p1 p3 p5
    journal_with_run(tmp_path, "r2", n=2).close()  # another run's rows never count
    down = ErrorInfo("http_503", "down", 503, transient=True)
    journal.mark_done(done("r1", "a", "p0", Outcome.CANCELLED))
    journal.mark_done(done("r1", "a", "p2", Outcome.FAILED, error=down))
    journal.mark_done(done("r1", "b", "p1", Outcome.FAILED, error=ErrorInfo("x", "odd")))
    journal.mark_done(done("r1", "b", "p3", Outcome.FAILED, error=down))
    journal.mark_done(done("r1", "b", "p5", Outcome.NOT_CANCELLABLE))
    assert journal.outcome_counts("r1") == {"cancelled": 1, "failed": 3, "not_cancellable": 1}
    assert journal.pending_per_account("r1") == {"a": 1}
    assert journal.transient_per_account("r1") == {"a": 1, "b": 1}


def test_requeue_takes_back_only_transient_failures_in_flight_where_sent(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path)
    other = journal_with_run(tmp_path, "r2")
    down = ErrorInfo("http_503", "down", 503, transient=True)
    journal.mark_done(done("r1", "a", "p0", Outcome.FAILED, error=down, attempts=3))
    journal.mark_done(done("r1", "b", "p1", Outcome.FAILED, error=down, attempts=0))
    journal.mark_done(done("r1", "a", "p2", Outcome.FAILED, error=ErrorInfo("x", "odd")))
    other.mark_done(done("r2", "a", "p0", Outcome.FAILED, error=down, attempts=3))
    assert journal.requeue_transient("r1") == 2
    rows = {p.payment_id: p for p in journal.payments("r1")}
    assert rows["p0"].state == "in_flight" and rows["p1"].state == "planned"
    for pid in ("p0", "p1"):
        assert (rows[pid].outcome, rows[pid].error, rows[pid].after) == (None, None, None)
    assert rows["p2"].state == "done" and rows["p2"].outcome is Outcome.FAILED
    assert next(p.state for p in other.payments("r2")) == "done"  # not another run's


def test_runs_newest_first_and_limited(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path, "r1", n=1)
    for run_id in ("r2", "r3"):
        time.sleep(0.005)  # started_at has milliseconds
        journal.start_run(
            run_id, user="u", host="h", command="c", input=None, input_hash=None, reason=None,
            options={},
        )  # fmt: skip
    assert [r.run_id for r in journal.runs()] == ["r3", "r2", "r1"]
    assert [r.run_id for r in journal.runs(limit=2)] == ["r3", "r2"]
    journal.set_run_status("r2", "completed")
    r2 = journal.run("r2")
    assert r2 is not None and r2.status == "completed" and r2.finished_at is not None
    journal.set_run_status("r2", "running")
    again = journal.run("r2")
    assert again is not None and again.finished_at is None


def test_a_held_lock_names_its_holder(tmp_path: Path) -> None:
    first = Lock(tmp_path / "j.sqlite3", "input-x")
    first.acquire(what="The same input (in.csv)")
    try:
        second = Lock(tmp_path / "j.sqlite3", "input-x")
        with pytest.raises(LockError) as refused:
            second.acquire(what="The same input (in.csv)")
        assert f"The same input (in.csv) is being worked on by process {os.getpid()}." in str(
            refused.value
        )
        with pytest.raises(LockError) as waited:
            second.acquire(what="Run r1", wait=0.3)
        assert f"still being worked on by process {os.getpid()} after waiting 0.3 s" in str(
            waited.value
        )
    finally:
        first.release()
    free = Lock(tmp_path / "j.sqlite3", "input-x")
    free.acquire(what="The same input (in.csv)")  # released: free again
    free.release()


def test_a_wait_says_once_what_it_waits_for_and_for_how_long(tmp_path: Path) -> None:
    journal_path = tmp_path / "j.sqlite3"
    holder = Lock(journal_path, "run-r1")
    holder.acquire(what="Run r1")
    directory = tmp_path / "j.sqlite3.locks"
    assert holder.path == directory / "run-r1.lock"
    assert directory.stat().st_mode & 0o777 == 0o700
    said: list[str] = []
    try:
        for limit, most in ((5.0, " (at most 5 s)"), (math.inf, "")):
            started = time.monotonic()
            with pytest.raises(LockError) as late:
                Lock(journal_path, "run-r1").acquire(
                    what="Run r1", wait=0.2, on_wait=said.append, limit=limit
                )
            assert time.monotonic() - started >= 0.2  # it did wait, polling
            assert f"after waiting {limit:g} s; nothing was sent" in str(late.value)
            assert said.pop() == (
                f"Waiting for process {os.getpid()} to finish with run r1{most}; "
                "Ctrl-C stops waiting."
            )
            assert said == []
    finally:
        holder.release()


def test_runs_lists_the_latest_fifty_by_default(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    for n in range(51):
        journal.start_run(
            f"r{n:02d}", user="u", host="h", command="c", input=None, input_hash=None,
            reason=None, options={},
        )  # fmt: skip
    assert len(journal.runs()) == 50


def test_a_failed_write_names_what_could_not_be_recorded(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = journal_with_run(tmp_path)
    journal.db.close()
    journal.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    writes = {
        "payment p0 as in flight": lambda: journal.mark_in_flight("r1", "a", "p0", None),
        "the idempotency key of payment p0": lambda: journal.set_key("r1", "a", "p0", "k"),
        "the transient failures of run r1 for a retry": lambda: journal.requeue_transient("r1"),
        "the plan": lambda: journal.plan("r1", [PlanRow("a", "flex", "p9", "r", "k9")]),
        "the run's status": lambda: journal.set_run_status("r1", "completed"),
        "audit events": lambda: journal.append_events([NewEvent("x", None, {})]),
        "the run's options": lambda: journal.set_run_options("r1", {}),
        "plan x of run r1": lambda: record_plan(
            journal, "r1", AppliedPlan("r1", "x", "d", "a", [])
        ),
        "the result of payment p0": lambda: journal.mark_done(
            done("r1", "a", "p0", Outcome.CANCELLED)
        ),
    }
    for what, write in writes.items():
        with pytest.raises(JournalError) as failed:
            write()
        assert f"could not record {what} (" in str(failed.value)


def test_a_lock_beside_a_journal_not_yet_created_and_a_release_never_taken(
    tmp_path: Path,
) -> None:
    lock = Lock(tmp_path / "new" / "dir" / "j.sqlite3", "run-r1")
    lock.release()  # never acquired: nothing to do
    lock.acquire(what="Run r1")
    lock.release()


def test_a_holder_that_has_not_written_its_name_is_another_process(tmp_path: Path) -> None:
    journal_path = tmp_path / "j.sqlite3"
    Lock(journal_path, "input-x")  # makes the directory
    with open(tmp_path / "j.sqlite3.locks" / "input-x.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockError) as refused:
            Lock(journal_path, "input-x").acquire(what="The same input (in.csv)")
    assert str(refused.value) == (
        "The same input (in.csv) is being worked on by another process. Wait for it to "
        "finish (or pass --wait [SECONDS] to queue behind it); nothing was sent."
    )


# the audit trail: what each change appends


def test_each_change_of_a_payment_appends_its_event_with_the_fields_that_say_what(
    tmp_path: Path,
) -> None:
    journal = journal_with_run(tmp_path, n=2)  # a: p0, b: p1
    assert journal.run_head("r2") is None
    down = ErrorInfo("http_503", "down", 503, transient=True)
    journal.mark_in_flight("r1", "a", "p0", BEFORE)
    journal.mark_in_flight("r1", "a", "nope", None)  # no such payment: no event
    journal.set_key("r1", "a", "p0", "k0-r1")
    journal.set_key("r1", "a", "nope", "k9")
    journal.mark_done(done("r1", "a", "p0", Outcome.FAILED, error=down, attempts=2))
    assert journal.requeue_transient("r1") == 1
    assert journal.requeue_transient("r1") == 0  # nothing left to requeue: no event
    me = {"user": journal.user, "host": journal.host}
    sent = me | {"account": "a", "provider": "flex", "payment_id": "p0", "reason": "r"}
    rows = "".join(f"{acc}\tp{i}\tk{i}\n" for i, acc in enumerate("ab"))
    assert [(e.seq, e.type, e.run_id, e.fields()) for e in journal.events()] == [
        (1, "run_started", "r1", {
            "user": "u", "host": "h", "command": "c", "input": "in.csv", "input_hash": "x",
            "reason": "r", "kind": "bulk", "dry_run": False, "accounts": None,
            "plan_id": None, "plan_digest": None, "plan_author": None, "plan_approvers": None,
        }),
        (2, "payments_planned", "r1", me | {
            "payments": 2, "duplicates": 0, "settled": 0,
            "digest": hashlib.sha256(rows.encode()).hexdigest(),
        }),
        (3, "payment_sent", "r1", sent | {"idempotency_key": "k0"}),
        (4, "payment_sent", "r1", sent | {"idempotency_key": "k0-r1", "key_renewed": True}),
        (5, "payment_finished", "r1", me | {
            "account": "a", "provider": "flex", "payment_id": "p0", "reason": "r",
            "idempotency_key": None, "outcome": "failed", "error_code": "http_503",
            "provider_code": None, "http_status": 503, "amount": None, "currency": None,
            "released": None, "released_currency": None, "attempts": 2,
        }),
        (6, "payments_requeued", "r1", me | {"payments": 1}),
    ]  # fmt: skip
    last = list(journal.events())[-1]
    assert journal.head() == {"seq": 6, "sha256": last.sha256}
    assert journal.run_head("r1") == {"seq": 6, "sha256": last.sha256}
    assert last.sha256 == last.recomputed()


def test_an_empty_journal_has_the_genesis_head(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    assert journal.head() == {"seq": 0, "sha256": "0" * 64}
    assert journal.run_head("r1") is None and list(journal.events()) == []


def test_a_plan_is_recorded_once_and_found_by_its_digest_or_its_run(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path, n=1)
    journal_with_run(tmp_path, "r2", n=1).close()
    plan = AppliedPlan("r1", "plan-1", "d" * 64, "alice", ["carol", "bob"])
    assert record_plan(journal, "r1", plan)
    assert applied_plan(journal, digest="d" * 64) == plan
    assert applied_plan(journal, run_id="r1") == plan
    assert applied_plan(journal, digest="e" * 64) is None
    assert applied_plan(journal, run_id="r2") is None
    # the same plan again, by another run: refused, and nothing more recorded
    assert not record_plan(journal, "r2", replace(plan, run_id="r2"))
    assert applied_plan(journal, run_id="r2") is None
    (event,) = [e for e in journal.events() if e.type == "plan_applied"]
    assert event.run_id == "r1"
    assert event.fields() == {
        "user": journal.user, "host": journal.host, "plan_id": "plan-1",
        "plan_digest": "d" * 64, "plan_author": "alice", "plan_approvers": ["bob", "carol"],
    }  # fmt: skip


def test_a_finished_event_carries_the_amount_seen_last_and_the_amount_released(
    tmp_path: Path,
) -> None:
    journal = journal_with_run(tmp_path, n=3)  # a: p0 p2, b: p1
    gone = replace(BEFORE, status=PaymentStatus.CANCELLED, native_status="canceled",
                   cancelable=False, amount=Money(Decimal("12.3"), "USD"))  # fmt: skip
    sent_first = Result("r1", "b", "flex", "p1", Outcome.CANCELLED, after=gone, attempts=1)
    read_first = Result("r1", "a", "flex", "p0", Outcome.CANCELLED, before=BEFORE, after=gone)
    refused = Result("r1", "a", "flex", "p2", Outcome.NOT_CANCELLABLE, before=BEFORE,
                     error=ErrorInfo("succeeded", "paid", 409, provider_code="paid"))  # fmt: skip
    for result in (sent_first, read_first, refused):
        journal.mark_done(result)
    finished = [e.fields() for e in journal.events() if e.type == "payment_finished"]
    seen = [
        {k: f[k] for k in ("payment_id", "amount", "currency", "released", "released_currency")}
        for f in finished
    ]
    assert seen == [
        {"payment_id": "p1", "amount": "12.30", "currency": "USD", "released": "12.30",
         "released_currency": "USD"},
        {"payment_id": "p0", "amount": "12.30", "currency": "USD", "released": "12.30",
         "released_currency": "USD"},
        {"payment_id": "p2", "amount": "12.34", "currency": "USD", "released": None,
         "released_currency": None},
    ]  # fmt: skip
    assert (finished[2]["error_code"], finished[2]["provider_code"]) == ("succeeded", "paid")
    assert finished[2]["http_status"] == 409 and finished[2]["outcome"] == "not_cancellable"


def test_the_journals_side_files_are_private_too(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    first = journal_with_run(tmp_path)  # its writes leave the WAL and shared-memory files
    sides = [tmp_path / "j.sqlite3-wal", tmp_path / "j.sqlite3-shm"]
    for side in sides:
        side.chmod(0o644)  # as another umask could have made them
    second = Journal(path)
    assert [oct(side.stat().st_mode & 0o777) for side in sides] == ["0o600", "0o600"]
    second.close()
    first.close()


# runs: upkeep


def start(journal: Journal, run_id: str, **options: object) -> None:
    time.sleep(0.005)  # started_at has milliseconds
    journal.start_run(
        run_id, user="u", host="h", command="c", input=None, input_hash=None, reason=None,
        options=dict(options),
    )  # fmt: skip


def test_unfinished_runs_are_those_a_resume_would_still_work_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    down = ErrorInfo("http_503", "down", 503, transient=True)
    for run_id in ("planned", "in-flight", "transient", "odd", "cancelled", "dry"):
        start(journal, run_id, **({"dry_run": True} if run_id == "dry" else {}))
        journal.plan(run_id, [PlanRow("a", "flex", "p", "r", "k")])
    start(journal, "unlisted", unlisted=["sub"])  # subscriptions never listed, no payment
    start(journal, "empty")
    journal.mark_in_flight("in-flight", "a", "p", None)
    journal.mark_done(done("transient", "a", "p", Outcome.FAILED, error=down))
    journal.mark_done(done("odd", "a", "p", Outcome.FAILED, error=ErrorInfo("x", "odd")))
    journal.mark_done(done("cancelled", "a", "p", Outcome.CANCELLED))
    journal.mark_done(done("dry", "a", "p", Outcome.WOULD_CANCEL))
    journal.plan("dry", [PlanRow("a", "flex", "q", "r", "k2")])  # a dry run never counts
    assert [run.run_id for run in journal.unfinished_runs()] == [
        "planned", "in-flight", "transient", "unlisted",
    ]  # fmt: skip


def test_run_ids_starting_with_a_prefix_newest_first(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    for run_id in ("20261205-aa", "20261205-ab", "20261204-ac", "x20261205"):
        start(journal, run_id)
    assert journal.run_ids_starting("20261205-") == ["20261205-ab", "20261205-aa"]
    assert journal.run_ids_starting("2026", limit=2) == ["20261204-ac", "20261205-ab"]
    assert journal.run_ids_starting("2026") == ["20261204-ac", "20261205-ab", "20261205-aa"]
    assert journal.run_ids_starting("nope") == []
    for n in range(4):
        start(journal, f"20261206-{n}")
    assert len(journal.run_ids_starting("2026")) == 5  # at most 5 unless asked


def test_run_options_are_replaced_and_the_change_is_an_event(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    start(journal, "r1", kind="subscriptions")
    start(journal, "r2", kind="bulk")
    journal.set_run_options("r1", {"kind": "subscriptions", "subscriptions": {"a": 2}})
    r1, r2 = journal.run("r1"), journal.run("r2")
    assert r1 is not None and r1.options == {"kind": "subscriptions", "subscriptions": {"a": 2}}
    assert r2 is not None and r2.options == {"kind": "bulk"}
    event = list(journal.events())[-1]
    assert (event.type, event.run_id) == ("run_options", "r1")
    assert event.fields()["options"] == {"kind": "subscriptions", "subscriptions": {"a": 2}}


def test_prune_removes_old_finished_runs_keeps_the_rest_and_says_so(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    for run_id in ("old-done", "old-open", "old-done-2"):
        start(journal, run_id)
        journal.plan(run_id, [PlanRow("a", "flex", f"p{i}", "r", f"k{i}") for i in range(2)])
    for pid in ("p0", "p1"):
        journal.mark_done(done("old-done", "a", pid, Outcome.CANCELLED))
        journal.mark_done(done("old-done-2", "a", pid, Outcome.CANCELLED))
    time.sleep(0.005)
    cutoff = datetime.now(UTC).isoformat(timespec="milliseconds")
    start(journal, "new")
    journal.plan("new", [PlanRow("a", "flex", "p0", "r", "k0")])
    journal.mark_done(done("new", "a", "p0", Outcome.CANCELLED))
    assert journal.prune_runs(cutoff) == (2, 4)
    assert {run.run_id for run in journal.runs()} == {"old-open", "new"}
    assert journal.count_payments("old-done") == 0 and journal.count_payments("old-open") == 2
    event = list(journal.events())[-1]
    assert (event.type, event.run_id) == ("runs_pruned", None)
    assert {k: v for k, v in event.fields().items() if k not in ("user", "host")} == {
        "before": cutoff, "runs": ["old-done", "old-done-2"], "payments": 4,
    }  # fmt: skip
    head = journal.head()
    assert journal.prune_runs(cutoff) == (0, 0)  # nothing more: no event either
    assert journal.head() == head


def test_a_failed_prune_names_what_could_not_be_recorded(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    start(journal, "old")
    journal.plan("old", [PlanRow("a", "flex", "p0", "r", "k0")])
    journal.mark_done(done("old", "a", "p0", Outcome.CANCELLED))
    time.sleep(0.005)
    cutoff = datetime.now(UTC).isoformat(timespec="milliseconds")
    journal.db.close()
    journal.db = sqlite3.connect(
        f"file:{tmp_path / 'j.sqlite3'}?mode=ro", uri=True, isolation_level=None
    )
    with pytest.raises(JournalError) as failed:
        journal.prune_runs(cutoff)
    assert "could not record the pruning of old runs (" in str(failed.value)
    assert [run.run_id for run in journal.runs()] == ["old"]  # nothing half-done
    assert journal.count_payments("old") == 1


def test_a_secret_inside_a_list_or_a_mapping_of_an_event_is_redacted(tmp_path: Path) -> None:
    secret = "sk_live_" + "9" * 24
    journal = Journal(tmp_path / "j.sqlite3", redact=lambda text: text.replace(secret, "[X]"))
    journal.start_run(
        "r1", user="u", host="h", command="c", input=None, input_hash=None, reason=None,
        options={"plan_id": "p", "plan_author": "alice",
                 "plan_approvers": ["bob", f"carol {secret}", 2, None]},
    )  # fmt: skip
    journal.append_events(
        [NewEvent("note", "r1", {"seen": [{"key": secret, "n": 1}, [secret]], "ok": True})]
    )
    started, note = journal.events()
    assert started.fields()["plan_approvers"] == ["bob", "carol [X]", 2, None]
    assert note.fields()["seen"] == [{"key": "[X]", "n": 1}, ["[X]"]]
    assert note.fields()["ok"] is True
    # the audit trail as stored holds no secret (the run's own row keeps its options as
    # the caller gave them: flags and names, the caller's to redact)
    stored = journal.db.execute("SELECT group_concat(data, '') FROM events").fetchone()[0]
    assert "[X]" in stored and secret not in stored


def test_a_result_is_read_back_whole_with_its_words_redacted(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path)
    journal.redact = lambda text: text.replace("sk_live_123", "[REDACTED]")
    gone = replace(BEFORE, status=PaymentStatus.CANCELLED, cancelable=False)
    error = ErrorInfo("x", "echoed sk_live_123 back", 400)
    journal.mark_in_flight("r1", "a", "p0", BEFORE)
    journal.mark_done(
        Result("r1", "a", "flex", "p0", Outcome.FAILED, before=BEFORE, after=gone, error=error)
    )
    # a failure with nothing to say (a read that settled it with no refusal words)
    journal.mark_done(done("r1", "b", "p1", Outcome.FAILED))
    first, second = journal.results("r1")
    assert (first.provider, first.before, first.after) == ("flex", BEFORE, gone)
    assert first.error == ErrorInfo("x", "echoed [REDACTED] back", 400)
    assert (second.payment_id, second.error, second.before) == ("p1", None, None)
    # neither counts as a transient failure, and the queries over errors still work
    assert journal.transient_per_account("r1") == {}
    assert journal.requeue_transient("r1") == 0
    assert [run.run_id for run in journal.unfinished_runs()] == ["r1"]  # p2, p3 planned
    states = [(p.payment_id, p.state) for p in journal.payments("r1", states=("done", "planned"))]
    assert states == [("p0", "done"), ("p1", "done"), ("p2", "planned"), ("p3", "planned")]
    assert journal.run("r1") is not None and journal.run("nope") is None


def test_a_planned_row_keeps_what_the_plan_knew_and_pending_reads_in_chunks(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    start(journal, "r1")
    rows = [PlanRow("a", "flex", f"p{i}", "r", f"k{i}", known=BEFORE) for i in range(5)]
    journal.plan("r1", rows)
    pending = list(journal.pending("r1", chunk=2))
    assert [p.payment_id for p in pending] == ["p0", "p1", "p2", "p3", "p4"]
    assert {(p.provider, p.known) for p in pending} == {("flex", BEFORE)}


def test_a_run_status_change_is_an_event_named_for_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    start(journal, "r1")
    for status in ("interrupted", "running", "completed", "paused"):
        journal.set_run_status("r1", status)
    journal.set_run_status("nope", "completed")  # no such run: no event
    events = [(e.type, e.run_id, e.fields()["status"]) for e in list(journal.events())[1:]]
    assert events == [
        ("run_interrupted", "r1", "interrupted"),
        ("run_resumed", "r1", "running"),
        ("run_finished", "r1", "completed"),
        ("run_status", "r1", "paused"),
    ]


def test_a_run_is_stamped_in_utc_and_its_ping_url_never_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    command = "paycancel cron --ping-url https://hc.example/ping/abc123 --accounts a"
    journal.start_run(
        "r1", user="u", host="h", command=command, input=None, input_hash=None, reason=None,
        options={},
    )  # fmt: skip
    run = journal.run("r1")
    assert run is not None and run.started_at.endswith("+00:00")
    assert run.command == "paycancel cron --ping-url [REDACTED] --accounts a"
    (event,) = journal.events()
    assert event.fields()["command"] == run.command and event.at.endswith("+00:00")


def test_plans_added_to_a_run_number_on_and_keep_invalid_rows_as_done(tmp_path: Path) -> None:
    journal = journal_with_run(tmp_path, n=2)
    bad = ErrorInfo("invalid_id", "not an id")
    more = [PlanRow("a", "flex", "p2", "r", "k2", error=bad), PlanRow("b", "flex", "p3", "r", "k3")]
    assert journal.plan("r1", more) == (2, 0)
    rows = list(journal.payments("r1"))
    assert [(p.seq, p.payment_id) for p in rows] == [(0, "p0"), (1, "p1"), (2, "p2"), (3, "p3")]
    assert (rows[2].state, rows[2].outcome, rows[2].error) == ("done", Outcome.INVALID, bad)
    assert (rows[3].state, rows[3].outcome, rows[3].error) == ("planned", None, None)


def test_an_older_journal_gets_its_runs_facts_as_events_stamped_when_they_happened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = journal_with_run(tmp_path, n=3)  # a: p0 p2, b: p1
    journal.mark_in_flight("r1", "a", "p0", BEFORE)
    journal.mark_done(done("r1", "a", "p0", Outcome.CANCELLED))
    journal.mark_in_flight("r1", "b", "p1", None)  # in flight when the old version stopped
    journal.set_run_status("r1", "completed")
    start(journal, "r2")  # still running: no status event
    journal.db.execute("DROP TABLE events")  # as a version before the trail left it
    journal.close()
    db = sqlite3.connect(path)
    stamps = dict(db.execute("SELECT payment_id, updated_at FROM payments").fetchall())
    r1_start, r1_end = db.execute(
        "SELECT started_at, finished_at FROM runs WHERE run_id = 'r1'"
    ).fetchone()
    db.close()
    events = list(Journal(path).events())
    old = {"reconstructed": True}
    assert [(e.type, e.run_id, e.at) for e in events[1:]] == [
        ("run_started", "r1", r1_start),
        ("payment_sent", "r1", stamps["p0"]),
        ("payment_finished", "r1", stamps["p0"]),
        ("payment_sent", "r1", stamps["p1"]),
        ("run_finished", "r1", r1_end),
        ("run_started", "r2", events[-1].at),
    ]
    upgraded = events[0].fields()
    assert events[0].type == "journal_upgraded" and (upgraded["runs"], upgraded["payments"]) == (
        2,
        3,
    )
    assert upgraded["reconstructed_until"] >= r1_end
    sent = events[2].fields()
    keys = ("account", "provider", "payment_id", "idempotency_key", "reason", "reconstructed")
    assert {k: sent[k] for k in keys} == {
        "account": "a", "provider": "flex", "payment_id": "p0", "idempotency_key": "k0",
        "reason": "r",
    } | old  # fmt: skip
    finished = events[3].fields()
    assert (finished["reason"], finished["outcome"], finished["reconstructed"]) == (
        "r",
        "cancelled",
        True,
    )
    assert events[5].fields()["status"] == "completed" and events[5].fields()["reconstructed"]
    assert events[4].fields()["payment_id"] == "p1"


def test_opening_waits_only_for_sqlites_locked_answer() -> None:
    # Another process's write lock is waited for (up to LOCK_WAIT_SECONDS); any other
    # failure while opening the journal is reported at once.
    assert _locked(sqlite3.OperationalError("database is locked"))
    assert _locked(sqlite3.OperationalError("database table is locked"))
    assert not _locked(sqlite3.OperationalError("disk I/O error"))
    assert not _locked(sqlite3.OperationalError("unable to open database file"))
    assert not _locked(sqlite3.DatabaseError("database is locked"))  # not SQLite's answer
    assert not _locked(OSError("locked"))


def test_an_invalid_row_planned_as_done_has_its_finished_event_with_its_reason(
    tmp_path: Path,
) -> None:
    journal = journal_with_run(tmp_path, n=0)
    bad = ErrorInfo("invalid_id", "not an id")
    journal.plan("r1", [PlanRow("a", "flex", "p/1", "why not", "k0", error=bad)])
    finished = list(journal.events())[-1]
    assert (finished.type, finished.run_id) == ("payment_finished", "r1")
    fields = finished.fields()
    assert (fields["payment_id"], fields["outcome"], fields["error_code"], fields["reason"]) == (
        "p/1", "invalid", "invalid_id", "why not",
    )  # fmt: skip


def test_a_new_journal_is_private_from_its_creation_in_new_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file is created 0600, not made private afterwards: there is no moment when
    # another user could open it (an open handle outlives a later chmod).
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    path = tmp_path / "new" / "dir" / "j.sqlite3"
    Journal(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_writer_waits_up_to_its_lock_wait_for_another_process() -> None:
    journal = Journal(Path(os.environ["PAYCANCEL_DEFAULTS__JOURNAL"]))
    assert journal.db.execute("PRAGMA busy_timeout").fetchone() == (30_000,)


def test_a_started_run_is_running_and_its_event_carries_its_plan_and_options(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    start(journal, "r1", kind="bulk", dry_run=True, accounts=["a", "b"], plan_id="pl-1",
          plan_digest="d" * 64, plan_author="alice", plan_approvers=["bob"])  # fmt: skip
    start(journal, "r2", plan="pl-2")  # an older run's plan id
    r1 = journal.run("r1")
    assert r1 is not None and r1.status == "running"
    started = [e.fields() for e in journal.events() if e.type == "run_started"]
    assert {k: started[0][k] for k in ("kind", "dry_run", "accounts", "plan_id", "plan_digest",
                                       "plan_author", "plan_approvers")} == {
        "kind": "bulk", "dry_run": True, "accounts": ["a", "b"], "plan_id": "pl-1",
        "plan_digest": "d" * 64, "plan_author": "alice", "plan_approvers": ["bob"],
    }  # fmt: skip
    assert (started[1]["plan_id"], started[1]["dry_run"], started[1]["accounts"]) == (
        "pl-2", False, None,
    )  # fmt: skip


def test_an_events_fields_are_canonical_json_and_its_hash_covers_the_compact_line() -> None:
    assert canonical({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'
    line = b'[7,"2026-12-05T10:00:00.000+00:00","x",null,"{}","' + b"0" * 64 + b'"]'
    assert event_hash(7, "2026-12-05T10:00:00.000+00:00", "x", None, "{}", "0" * 64) == (
        hashlib.sha256(line).hexdigest()
    )


def test_a_failed_start_names_the_run(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.db.close()
    journal.db = sqlite3.connect(
        f"file:{tmp_path / 'j.sqlite3'}?mode=ro", uri=True, isolation_level=None
    )
    with pytest.raises(JournalError) as failed:
        start(journal, "r1")
    assert "could not record the run (" in str(failed.value)


def test_a_user_the_os_cannot_name_is_recorded_as_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No login name (a container's uid without a passwd entry): the journal still opens,
    and what it records says "unknown" for who rather than failing."""
    import getpass

    def nameless() -> str:
        raise KeyError("getpwuid(): uid not found: 12345")

    monkeypatch.setattr(getpass, "getuser", nameless)
    assert Journal(tmp_path / "j.sqlite3").user == "unknown"


def test_a_journal_path_that_is_a_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "j.sqlite3").mkdir()
    with pytest.raises(JournalError) as refused:
        Journal(tmp_path / "j.sqlite3")
    path = tmp_path / "j.sqlite3"
    assert f"The journal {path} cannot be opened: it is a directory, not a file." in str(
        refused.value
    )


def test_an_upgrade_that_fails_halfway_leaves_no_chain_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older journal whose upgrade fails after its first events: the open is refused
    with the failure's own words, none of the chain is kept, and the next open upgrades
    it whole."""
    path = tmp_path / "j.sqlite3"
    journal = journal_with_run(tmp_path, n=2)
    journal.db.execute("DROP TABLE events")  # as a version before the trail left it
    journal.close()
    real = Journal._reconstructed

    def broken(self: Journal) -> Iterator[NewEvent]:
        events = real(self)
        yield next(events)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Journal, "_reconstructed", broken)
    with pytest.raises(JournalError, match=r"cannot be opened \(disk I/O error\)"):
        Journal(path)
    monkeypatch.undo()
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "events" not in tables  # rolled back whole, the table too
    events = list(Journal(path).events())
    assert [e.type for e in events][:2] == ["journal_upgraded", "run_started"]
    assert verify(iter(events)).intact
