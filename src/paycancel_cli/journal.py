"""The run journal: SQLite (WAL), file mode 0600; the only module that knows SQL.

A run row records who ran what on which input; a payment row per target records its
idempotency key and its journey ``planned`` -> ``in_flight`` -> ``done`` with outcome,
before/after snapshots, error and attempts.  ``in_flight`` is committed before a
cancel is sent and ``done`` after the answer, so after a crash a payment is either
untouched (planned), finished (done), or uncertain (in_flight: read it back before
sending anything).  An in-flight row's ``before`` is NULL when its cancel was sent
without a read first.  Every failure to write raises ``JournalError``: callers fail closed.

The audit trail: every change above also appends events to ``events`` in the same
transaction (so an event exists exactly for each committed change).  An event has a
sequence number (1, 2, ...), its time (UTC), a type, its run, its fields as canonical
JSON (sorted keys, no spaces, ASCII) and ``prev``, the sha256 of the event before
(``GENESIS`` for the first); its own ``sha256`` is taken over the JSON array
``[seq, at, type, run_id, fields, prev]`` (see ``event_hash``).  The head is read
after ``BEGIN IMMEDIATE``, under SQLite's write lock, so two processes writing one
journal still make one chain.  Events are never updated or deleted.  A journal made
before the trail existed gets its chain when first opened: a ``journal_upgraded``
event, then its runs' facts as reconstructed events (marked ``reconstructed``).

Locks on runs and subscriptions live in ``locks`` (files beside the journal, no SQL).

The sections below: the event model; the row types; the events' fields; opening;
``Journal`` (its own sections marked inside: the audit trail, writing, runs,
payments); reviewed plans; decoding rows.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import re
import socket
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stamina

from paycancel_cli import retries  # noqa: F401  (installs the retry log hook)
from paycancel_cli.errors import JournalError, JournalUnusable
from paycancel_cli.models import ErrorInfo, Money, Outcome, Payment, Result

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    user        TEXT NOT NULL,
    host        TEXT NOT NULL,
    command     TEXT NOT NULL,
    input       TEXT,
    input_hash  TEXT,
    reason      TEXT,
    options     TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS payments (
    run_id          TEXT NOT NULL REFERENCES runs(run_id),
    seq             INTEGER NOT NULL,
    account         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    line            INTEGER,
    reason          TEXT NOT NULL,
    expected        TEXT,
    known           TEXT,
    idempotency_key TEXT NOT NULL,
    state           TEXT NOT NULL,
    outcome         TEXT,
    before          TEXT,
    after           TEXT,
    error           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (run_id, account, payment_id)
);
CREATE INDEX IF NOT EXISTS payments_state ON payments (run_id, state, seq);
"""
EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    type    TEXT NOT NULL,
    run_id  TEXT,
    data    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    sha256  TEXT NOT NULL
)
"""
GENESIS = "0" * 64  # the ``prev`` of event 1

# Event types.
RUN_STARTED = "run_started"
PAYMENTS_PLANNED = "payments_planned"
PAYMENT_SENT = "payment_sent"
PAYMENT_FINISHED = "payment_finished"
PAYMENTS_REQUEUED = "payments_requeued"
RUN_RESUMED = "run_resumed"
RUN_FINISHED = "run_finished"
RUN_INTERRUPTED = "run_interrupted"
JOURNAL_UPGRADED = "journal_upgraded"
PLAN_APPLIED = "plan_applied"  # a run applies a reviewed plan: see ``plan_event``
STATUS_EVENTS = {"running": RUN_RESUMED, "completed": RUN_FINISHED, "interrupted": RUN_INTERRUPTED}
# The plan a run applies (reviewed plans): in its run_started event when its options
# name them (``plan`` is taken as ``plan_id``), and in its plan_applied event.
PLAN_FIELDS = ("plan_id", "plan_digest", "plan_author", "plan_approvers")

# A ping URL works as a credential: never journaled, whatever the caller's redactor knows.
_PING_URL = re.compile(r"(--ping-url)(=|\s+)(\S+)")

PLANNED, IN_FLIGHT, DONE = "planned", "in_flight", "done"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def canonical(fields: dict[str, Any]) -> str:
    """The one serialization of an event's fields that its hash covers."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def event_hash(seq: int, at: str, type_: str, run_id: str | None, data: str, prev: str) -> str:
    line = json.dumps([seq, at, type_, run_id, data, prev], separators=(",", ":"))
    return hashlib.sha256(line.encode()).hexdigest()


def redact_command(command: str) -> str:
    return _PING_URL.sub(r"\1\2[REDACTED]", command)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    at: str
    type: str
    run_id: str | None
    data: str  # canonical JSON of the fields (see ``canonical``)
    prev: str
    sha256: str

    def fields(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value

    def recomputed(self) -> str:
        return event_hash(self.seq, self.at, self.type, self.run_id, self.data, self.prev)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: the journal numbers and chains it."""

    type: str
    run_id: str | None
    fields: dict[str, Any]
    at: str | None = None  # now, unless reconstructed from an earlier journal


def plan_event(
    run_id: str, plan_id: str, digest: str, author: str, approvers: list[str]
) -> NewEvent:
    """The event recording which reviewed plan a run applies, who made it and who
    approved it; appended (``Journal._append``) in the transaction that records it."""
    fields = dict(zip(PLAN_FIELDS, (plan_id, digest, author, sorted(approvers)), strict=True))
    return NewEvent(PLAN_APPLIED, run_id, fields)


def _scrubbed(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, redact) for v in value]
    return value


def _money(money: Money | None) -> tuple[str | None, str | None]:
    return (None, None) if money is None else (str(money.quantized()), money.currency)


# Row types.


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: str
    finished_at: str | None
    status: str
    user: str
    host: str
    command: str
    input: str | None
    input_hash: str | None
    reason: str | None
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlanRow:
    account: str
    provider: str
    payment_id: str
    reason: str
    key: str
    line: int | None = None
    expected: Money | None = None
    known: Payment | None = None
    error: ErrorInfo | None = None  # an invalid row (--skip-invalid), recorded as done
    # Settled without processing, recorded as done: a reviewed plan's payment that the
    # plan does not cancel keeps the outcome the plan gave it.
    outcome: Outcome | None = None


@dataclass(frozen=True)
class PaymentRow:
    seq: int
    account: str
    provider: str
    payment_id: str
    line: int | None
    reason: str
    expected: Money | None
    known: Payment | None
    idempotency_key: str
    state: str
    outcome: Outcome | None
    before: Payment | None
    after: Payment | None
    error: ErrorInfo | None
    attempts: int

    def result(self, run_id: str) -> Result:
        return Result(
            run_id=run_id,
            account=self.account,
            provider=self.provider,
            payment_id=self.payment_id,
            outcome=self.outcome or Outcome.FAILED,
            before=self.before,
            after=self.after,
            error=self.error,
            attempts=self.attempts,
            idempotency_key=self.idempotency_key,
        )


# The fields of the events that record runs and payments.


def _run_fields(run: RunRow) -> dict[str, Any]:
    plan = {name: run.options.get(name) for name in PLAN_FIELDS}
    plan["plan_id"] = plan["plan_id"] or run.options.get("plan")
    return {
        "user": run.user,
        "host": run.host,
        "command": redact_command(run.command),
        "input": run.input,
        "input_hash": run.input_hash,
        "reason": run.reason,
        "kind": run.options.get("kind"),
        "dry_run": bool(run.options.get("dry_run")),
        "accounts": run.options.get("accounts"),
        **plan,
    }


def _sent(account: str, provider: str, payment_id: str, key: str, reason: str) -> dict[str, Any]:
    return {
        "account": account,
        "provider": provider,
        "payment_id": payment_id,
        "idempotency_key": key,
        "reason": reason,
    }


def _finished_fields(result: Result, reason: str | None = None) -> dict[str, Any]:
    payment = result.after or result.before
    amount, currency = _money(payment.amount if payment is not None else None)
    released, released_currency = _money(result.released())
    fields: dict[str, Any] = {
        "account": result.account,
        "provider": result.provider,
        "payment_id": result.payment_id,
        "idempotency_key": result.idempotency_key or None,
        "outcome": result.outcome.value,
        "error_code": result.error.code if result.error else None,
        "provider_code": result.error.provider_code if result.error else None,
        "http_status": result.error.http_status if result.error else None,
        "amount": amount,
        "currency": currency,
        "released": released,
        "released_currency": released_currency,
        "attempts": result.attempts,
    }
    if reason is not None:
        fields["reason"] = reason
    return fields


# Encoding payments; opening the file.


def _dump(payment: Payment | None) -> str | None:
    return None if payment is None else json.dumps(payment.to_json())


def _load(text: str | None) -> Payment | None:
    return None if text is None else Payment.from_json(json.loads(text))


def _unusable(path: Path) -> str | None:
    """Why ``path`` can never hold the journal, checked before anything is created or
    chmod-ed there (a directory must not be turned into mode 0600)."""
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            return f"is below {parent}, which is a file, not a directory"
    if path.exists() and path.is_dir():
        return "is a directory, not a file"
    if path.is_file():
        try:
            with open(path, "rb") as handle:
                head = handle.read(16)
        except OSError:
            return None  # the open below says why
        if head and head != b"SQLite format 3\x00":
            return "is not an SQLite database (another file at that path?)"
    return None


LOCK_WAIT_SECONDS = 30  # how long a writer waits for another process's write lock


def _locked(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


@stamina.retry(
    on=_locked, attempts=None, timeout=LOCK_WAIT_SECONDS, wait_initial=0.01, wait_max=0.5
)
def _enter_wal(db: sqlite3.Connection) -> None:
    """Switch to write-ahead logging, waiting for another process that holds the write
    lock: SQLite answers "locked" at once here rather than calling the busy handler (it
    would deadlock: this connection already reads the file), so two processes opening a
    new journal at the same moment must take turns."""
    db.execute("PRAGMA journal_mode=WAL")


def _connect(path: Path) -> sqlite3.Connection:
    """The journal's database, its file (and directory) private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, timeout=LOCK_WAIT_SECONDS, isolation_level=None)
    _enter_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class Journal:
    """The run journal of one file (see the module docstring); every write is one
    transaction that appends its audit events."""

    # opening

    def __init__(self, path: Path, *, redact: Callable[[str], str] = str) -> None:
        self.path = path
        self.redact = redact  # error texts from providers may echo what they were sent
        self.user, self.host = _os_user(), socket.gethostname()  # who writes each event
        problem = _unusable(path)
        if problem is not None:
            raise JournalUnusable(
                f"The journal {path} cannot be opened: it {problem}. Nothing was sent. Set "
                "defaults.journal in the config to a file path in a directory you can write."
            )
        try:
            self.db = _connect(path)
            self.db.executescript(SCHEMA)
            _migrate_plans(self.db)
            self._ensure_events()
            for extra in ("-wal", "-shm"):
                side = path.with_name(path.name + extra)
                if side.exists():
                    os.chmod(side, 0o600)
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnusable(
                f"The journal {path} cannot be opened ({exc}). Nothing was sent. Check the "
                "directory's permissions and free space, or set defaults.journal in the config."
            ) from None

    def close(self) -> None:
        self.db.close()

    # the audit trail: an older journal's chain, made when first opened

    def _ensure_events(self) -> None:
        """Create the events table; a journal that has runs but had no table (made by
        an earlier version) gets its chain now, under the write lock so that two
        processes upgrading at once do it once."""
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        if self.db.execute(exists).fetchone() is not None:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.db.execute(exists).fetchone() is None:
                self.db.execute(EVENTS_SCHEMA)
                if self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None:
                    self._append(self.db, self._reconstructed())
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _reconstructed(self) -> Iterator[NewEvent]:
        """The runs and payments of a journal made before the trail existed, as events
        (each marked ``reconstructed``), after one ``journal_upgraded`` event."""
        runs, payments = self.db.execute(
            "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM payments)"
        ).fetchone()
        yield NewEvent(
            JOURNAL_UPGRADED,
            None,
            {"runs": runs, "payments": payments, "reconstructed_until": now()},
        )
        cursor = self.db.execute("SELECT * FROM runs ORDER BY started_at, run_id")
        for run in [_run(r) for r in cursor.fetchall()]:
            old = {"reconstructed": True}
            yield NewEvent(RUN_STARTED, run.run_id, _run_fields(run) | old, run.started_at)
            for row in self.payments(run.run_id):
                stamp = self.db.execute(
                    "SELECT updated_at FROM payments WHERE run_id = ? AND account = ?"
                    " AND payment_id = ?",
                    (run.run_id, row.account, row.payment_id),
                ).fetchone()[0]
                if row.state == IN_FLIGHT or row.attempts:
                    sent = _sent(
                        row.account, row.provider, row.payment_id, row.idempotency_key, row.reason
                    )
                    yield NewEvent(PAYMENT_SENT, run.run_id, sent | old, stamp)
                if row.state == DONE:
                    yield NewEvent(
                        PAYMENT_FINISHED,
                        run.run_id,
                        _finished_fields(row.result(run.run_id), row.reason) | old,
                        stamp,
                    )
            if run.status in STATUS_EVENTS and run.status != "running":
                yield NewEvent(
                    STATUS_EVENTS[run.status],
                    run.run_id,
                    {"status": run.status} | old,
                    run.finished_at or run.started_at,
                )

    # the audit trail: appending and reading

    def _append(self, db: sqlite3.Connection, events: Iterable[NewEvent]) -> None:
        """Append events to the chain; only inside a write transaction (the head read
        here is the head while the write lock is held)."""
        head = db.execute("SELECT seq, sha256 FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))

        def rows() -> Iterator[tuple[Any, ...]]:
            nonlocal seq, prev
            stamp = now()
            for event in events:
                seq += 1
                fields = {"user": self.user, "host": self.host} | event.fields
                data = canonical(fields)
                if self.redact(data) != data:  # a secret in a value: scrub each value, so
                    data = canonical(_scrubbed(fields, self.redact))  # the JSON stays JSON
                at = event.at or stamp
                digest = event_hash(seq, at, event.type, event.run_id, data, prev)
                yield (seq, at, event.type, event.run_id, data, prev, digest)
                prev = digest

        db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", rows())

    def append_events(self, events: Iterable[NewEvent]) -> None:
        """Append events in one transaction (a bulk helper for tests and benchmarks:
        the journal's own changes append theirs as they are made)."""
        with self._write("audit events") as db:
            self._append(db, events)

    def head(self) -> dict[str, Any]:
        """The newest event's ``{"seq", "sha256"}`` (seq 0 and ``GENESIS`` when empty)."""
        row = self.db.execute("SELECT seq, sha256 FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return {"seq": 0, "sha256": GENESIS} if row is None else {"seq": row[0], "sha256": row[1]}

    def run_head(self, run_id: str) -> dict[str, Any] | None:
        """The run's newest event: the head of the chain when the run last wrote."""
        row = self.db.execute(
            "SELECT seq, sha256 FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        return None if row is None else {"seq": row[0], "sha256": row[1]}

    def events(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        run_id: str | None = None,
        chunk: int = 5000,
    ) -> Iterator[Event]:
        """Events in chain order, read in chunks by sequence number (bounded memory, and
        no read transaction held open across a whole export).  ``since`` (inclusive)
        and ``until`` (exclusive) compare with the events' UTC ISO times."""
        sql = (
            "SELECT * FROM events WHERE seq > :last AND (:since IS NULL OR at >= :since)"
            " AND (:until IS NULL OR at < :until) AND (:run IS NULL OR run_id = :run)"
            " ORDER BY seq LIMIT :chunk"
        )
        args: dict[str, Any] = {"since": since, "until": until, "run": run_id, "chunk": chunk}
        last = 0
        while True:
            rows = self.db.execute(sql, args | {"last": last}).fetchall()
            if not rows:
                return
            for row in rows:
                yield Event(*row)
            last = rows[-1][0]

    # writing: one transaction per change, failing closed

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")  # never leave a write transaction open
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise JournalError(
                f"The journal {self.path} could not record {what} ({exc}); stopping so that "
                "no cancel goes unrecorded."
            ) from None

    # runs: starting, status, options, pruning

    def start_run(
        self,
        run_id: str,
        *,
        user: str,
        host: str,
        command: str,
        input: str | None,
        input_hash: str | None,
        reason: str | None,
        options: dict[str, Any],
    ) -> None:
        """Plan fields (``plan_id``, ``plan_digest``, ``plan_author``,
        ``plan_approvers``) given in ``options`` go into the run_started event."""
        row = RunRow(
            run_id, now(), None, "running", user, host, redact_command(command), input,
            input_hash, reason, options,
        )  # fmt: skip
        values = [getattr(row, column) for column in _RUN_COLUMNS]
        values[-1] = json.dumps(options)
        with self._write("the run") as db:
            # The runs table's columns are RunRow's fields, in order (see ``_run``).
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)", values)
            self._append(db, [NewEvent(RUN_STARTED, run_id, _run_fields(row))])

    def set_run_status(self, run_id: str, status: str) -> None:
        finished = None if status == "running" else now()
        with self._write("the run's status") as db:
            changed = db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, finished, run_id),
            ).rowcount
            if changed:
                event = STATUS_EVENTS.get(status, "run_status")
                self._append(db, [NewEvent(event, run_id, {"status": status})])

    def set_run_options(self, run_id: str, options: dict[str, Any]) -> None:
        with self._write("the run's options") as db:
            db.execute(
                "UPDATE runs SET options = ? WHERE run_id = ?", (json.dumps(options), run_id)
            )
            self._append(db, [NewEvent("run_options", run_id, {"options": options})])

    def prune_runs(self, before: str) -> tuple[int, int]:
        """Remove the runs started before ``before`` (ISO 8601, UTC) and their payments,
        in one transaction, keeping every unfinished run (see ``unfinished_runs``).
        Returns (runs, payment rows) removed.

        The audit trail's events are never removed: the chain still verifies after a
        prune, which is itself an event (``runs_pruned``, naming the runs), and a pruned
        plan's digest stays recorded, so the plan can never be applied again."""
        keep = {run.run_id for run in self.unfinished_runs()}
        with self._write("the pruning of old runs") as db:
            old = [
                str(r[0])
                for r in db.execute("SELECT run_id FROM runs WHERE started_at < ?", (before,))
                if str(r[0]) not in keep
            ]
            payments = 0
            for run_id in old:
                payments += db.execute("DELETE FROM payments WHERE run_id = ?", (run_id,)).rowcount
                db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            if old:  # the rows go; the events stay, and the prune is one of them
                fields = {"before": before, "runs": old, "payments": payments}
                self._append(db, [NewEvent("runs_pruned", None, fields)])
        return len(old), payments

    # runs: reading them

    def run(self, run_id: str) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _run(row)

    def run_ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """Run ids that start with ``prefix`` (at most ``limit``), newest first."""
        rows = self.db.execute(
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?"
            " ORDER BY started_at DESC LIMIT ?",
            (len(prefix), prefix, limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def runs(self, limit: int = 50) -> list[RunRow]:
        rows = self.db.execute(
            "SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_run(r) for r in rows]

    def unfinished_runs(self) -> list[RunRow]:
        """Runs that sent or meant to send cancels and have something left that a resume
        would do: payments planned or in flight, payments failed for a transient cause,
        or subscriptions never listed; oldest first.  Runs a live process is working on
        are among them: the caller asks the run's lock (``Lock.held``)."""
        rows = self.db.execute(
            "SELECT * FROM runs r WHERE coalesce(json_extract(r.options, '$.dry_run'), 0) = 0"
            " AND (json_extract(r.options, '$.unlisted') IS NOT NULL"
            " OR EXISTS (SELECT 1 FROM payments p WHERE p.run_id = r.run_id"
            " AND (p.state IN (?, ?) OR (p.state = ? AND p.outcome = ?"
            " AND json_extract(p.error, '$.transient') = 1))))"
            " ORDER BY r.started_at",
            (PLANNED, IN_FLIGHT, DONE, Outcome.FAILED.value),
        ).fetchall()
        return [_run(r) for r in rows]

    def outcome_counts(self, run_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT outcome, count(*) FROM payments WHERE run_id = ? AND outcome IS NOT NULL"
            " GROUP BY 1",
            (run_id,),
        ).fetchall()
        return {str(k): int(v) for k, v in rows}

    # payments: the plan

    def plan(self, run_id: str, rows: Iterable[PlanRow]) -> tuple[int, int]:
        """Insert planned payments in one transaction, in order; a repeat of an
        (account, payment id) already planned in this run is skipped.  Returns
        (inserted, skipped duplicates)."""
        start = self.db.execute(
            "SELECT coalesce(max(seq), -1) + 1 FROM payments WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        given = _Given()
        values = given.values(run_id, rows, start, now(), self.redact)
        with self._write("the plan") as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO payments (run_id, seq, account, provider, payment_id,"
                " line, reason, expected, known, idempotency_key, state, outcome, error,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                values,
            )
            inserted = db.total_changes - before
            settled = db.execute(
                "SELECT count(*) FROM payments WHERE run_id = ? AND seq >= ? AND state = ?",
                (run_id, start, DONE),
            ).fetchone()[0]
            planned = {
                "payments": inserted,
                "duplicates": given.count - inserted,
                "settled": settled,  # recorded as done at once
                "digest": given.digest.hexdigest(),
            }
            self._append(db, [NewEvent(PAYMENTS_PLANNED, run_id, planned)])
            if settled:  # done at once (an invalid row kept by --skip-invalid): its outcome
                cursor = db.execute(
                    "SELECT * FROM payments WHERE run_id = ? AND seq >= ? AND state = ?"
                    " ORDER BY seq",
                    (run_id, start, DONE),
                )
                cursor.row_factory = sqlite3.Row
                finished = (
                    NewEvent(PAYMENT_FINISHED, run_id, _finished_fields(p.result(run_id), p.reason))
                    for p in map(_payment_row, cursor)
                )
                self._append(db, finished)  # another table: read while appending
        return inserted, given.count - inserted

    # payments: what is left

    def count_payments(self, run_id: str) -> int:
        row = self.db.execute("SELECT count(*) FROM payments WHERE run_id = ?", (run_id,))
        return int(row.fetchone()[0])

    def count_pending(self, run_id: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM payments WHERE run_id = ? AND state IN (?, ?)",
            (run_id, PLANNED, IN_FLIGHT),
        ).fetchone()
        return int(row[0])

    def pending_per_account(self, run_id: str) -> Counter[str]:
        rows = self.db.execute(
            "SELECT account, count(*) FROM payments WHERE run_id = ? AND state IN (?, ?)"
            " GROUP BY account",
            (run_id, PLANNED, IN_FLIGHT),
        ).fetchall()
        return Counter({str(a): int(n) for a, n in rows})

    def pending(self, run_id: str, *, chunk: int = 500) -> Iterator[PaymentRow]:
        """Planned and in-flight payments in plan order, read in chunks so that writes
        may go on between them."""
        last = -1
        while True:
            cursor = self.db.execute(
                "SELECT * FROM payments WHERE run_id = ? AND state IN (?, ?) AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (run_id, PLANNED, IN_FLIGHT, last, chunk),
            )
            cursor.row_factory = sqlite3.Row
            rows = [_payment_row(r) for r in cursor.fetchall()]
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def transient_per_account(self, run_id: str) -> Counter[str]:
        """Payments that failed for a transient cause (provider unreachable, 5xx, 429
        beyond the retries), per account: what a resume tries again."""
        rows = self.db.execute(
            "SELECT account, count(*) FROM payments WHERE run_id = ? AND state = ?"
            " AND outcome = ? AND json_extract(error, '$.transient') = 1 GROUP BY account",
            (run_id, DONE, Outcome.FAILED.value),
        ).fetchall()
        return Counter({str(a): int(n) for a, n in rows})

    # payments: in flight, a fresh key

    def mark_in_flight(
        self, run_id: str, account: str, payment_id: str, before: Payment | None
    ) -> None:
        """Committed before a cancel is sent.  ``before`` is the state read first, or
        None when the cancel is sent without a read (cancel first): a resume then reads
        the payment and works out whose cancel it was (see the engine)."""
        with self._write(f"payment {payment_id} as in flight") as db:
            changed = db.execute(
                "UPDATE payments SET state = ?, before = ?, updated_at = ?"
                " WHERE run_id = ? AND account = ? AND payment_id = ?"
                " RETURNING provider, idempotency_key, reason",
                (IN_FLIGHT, _dump(before), now(), run_id, account, payment_id),
            ).fetchall()
            for provider, key, reason in changed:
                sent = _sent(account, provider, payment_id, key, reason)
                self._append(db, [NewEvent(PAYMENT_SENT, run_id, sent)])

    def set_key(self, run_id: str, account: str, payment_id: str, key: str) -> None:
        """Record the idempotency key about to be sent, when a retry needs a fresh one
        (committed before the request, like the in-flight mark)."""
        with self._write(f"the idempotency key of payment {payment_id}") as db:
            changed = db.execute(
                "UPDATE payments SET idempotency_key = ?, updated_at = ?"
                " WHERE run_id = ? AND account = ? AND payment_id = ?"
                " RETURNING provider, reason",
                (key, now(), run_id, account, payment_id),
            ).fetchall()
            for provider, reason in changed:
                sent = _sent(account, provider, payment_id, key, reason) | {"key_renewed": True}
                self._append(db, [NewEvent(PAYMENT_SENT, run_id, sent)])

    # payments: back in the queue, done

    def requeue_transient(self, run_id: str) -> int:
        """Put the run's transient failures back in the queue.  One whose cancel was
        ever sent (attempts > 0) goes back as in flight, so it is read back before
        anything is re-sent (with the same idempotency key); the others as planned."""
        with self._write(f"the transient failures of run {run_id} for a retry") as db:
            cursor = db.execute(
                "UPDATE payments SET state = CASE WHEN attempts > 0 THEN ? ELSE ? END,"
                " outcome = NULL, error = NULL, after = NULL, updated_at = ?"
                " WHERE run_id = ? AND state = ? AND outcome = ?"
                " AND json_extract(error, '$.transient') = 1",
                (IN_FLIGHT, PLANNED, now(), run_id, DONE, Outcome.FAILED.value),
            )
            if cursor.rowcount:
                count = {"payments": cursor.rowcount}
                self._append(db, [NewEvent(PAYMENTS_REQUEUED, run_id, count)])
            return int(cursor.rowcount)

    def mark_done(self, result: Result) -> None:
        error = None
        if result.error is not None:
            info = result.error.to_json()
            info["message"] = self.redact(info["message"])
            error = json.dumps(info)
        with self._write(f"the result of payment {result.payment_id}") as db:
            changed = db.execute(
                "UPDATE payments SET state = ?, outcome = ?, before = ?, after = ?, error = ?,"
                " attempts = attempts + ?, updated_at = ?"
                " WHERE run_id = ? AND account = ? AND payment_id = ?"
                " RETURNING reason",
                (
                    DONE,
                    result.outcome.value,
                    _dump(result.before),
                    _dump(result.after),
                    error,
                    result.attempts,
                    now(),
                    result.run_id,
                    result.account,
                    result.payment_id,
                ),
            ).fetchall()
            for (reason,) in changed:
                finished = _finished_fields(result, reason)
                self._append(db, [NewEvent(PAYMENT_FINISHED, result.run_id, finished)])

    # payments: reading them back

    def payments(
        self, run_id: str, *, states: tuple[str, ...] | None = None
    ) -> Iterator[PaymentRow]:
        sql = "SELECT * FROM payments WHERE run_id = ?"
        args: list[Any] = [run_id]
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        cursor = self.db.execute(sql + " ORDER BY seq", args)
        cursor.row_factory = sqlite3.Row
        for row in cursor:
            yield _payment_row(row)

    def results(self, run_id: str) -> list[Result]:
        return [p.result(run_id) for p in self.payments(run_id, states=(DONE,))]


class _Given:
    """The rows given to ``Journal.plan`` as they are inserted: how many, and the
    digest of their (account, payment id, key) in order, the plan's fingerprint."""

    def __init__(self) -> None:
        self.count = 0
        self.digest = hashlib.sha256()

    def values(
        self,
        run_id: str,
        rows: Iterable[PlanRow],
        start: int,
        stamp: str,
        redact: Callable[[str], str],
    ) -> Iterator[tuple[Any, ...]]:
        for seq, row in enumerate(rows, start):
            self.count += 1
            self.digest.update(f"{row.account}\t{row.payment_id}\t{row.key}\n".encode())
            expected = None
            if row.expected is not None:
                money = row.expected
                expected = json.dumps({"value": str(money.value), "currency": money.currency})
            settled = _settled(row)
            yield (
                run_id,
                seq,
                row.account,
                row.provider,
                row.payment_id,
                row.line,
                redact(row.reason),  # an operator may paste anything
                expected,
                _dump(row.known),
                row.key,
                PLANNED if settled is None else DONE,
                settled,
                None if row.error is None else json.dumps(row.error.to_json()),
                stamp,
            )


def _settled(row: PlanRow) -> str | None:
    """The outcome a planned row is recorded with, done at once (None: to process)."""
    if row.outcome is not None:
        return row.outcome.value
    return None if row.error is None else Outcome.INVALID.value


# Reviewed plans (plans.py).  A table of its own, added to any journal (new or older)
# by an idempotent migration: the run that applied a plan, by the plan's digest; the
# unique digest makes "applied at most once" hold in SQL as well.
PLANS_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_plans (
    run_id      TEXT PRIMARY KEY REFERENCES runs(run_id),
    plan_id     TEXT NOT NULL,
    digest      TEXT NOT NULL UNIQUE,
    author      TEXT NOT NULL,
    approvers   TEXT NOT NULL DEFAULT '[]',
    recorded_at TEXT NOT NULL
);
"""


def _migrate_plans(db: sqlite3.Connection) -> None:
    db.executescript(PLANS_SCHEMA)


@dataclass(frozen=True)
class AppliedPlan:
    run_id: str
    plan_id: str
    digest: str
    author: str
    approvers: list[str]


def _applied(row: tuple[Any, ...] | None) -> AppliedPlan | None:
    if row is None:
        return None
    run_id, plan_id, digest, author, approvers = row
    return AppliedPlan(run_id, plan_id, digest, author, list(json.loads(approvers)))


def record_plan(journal: Journal, run_id: str, plan: AppliedPlan) -> bool:
    """Record that ``run_id`` applies ``plan``; False when another run already did."""
    try:
        with journal._write(f"plan {plan.plan_id} of run {run_id}") as db:
            db.execute(
                "INSERT INTO run_plans (run_id, plan_id, digest, author, approvers, recorded_at)"
                " VALUES (?,?,?,?,?,?)",
                (run_id, plan.plan_id, plan.digest, plan.author, json.dumps(plan.approvers), now()),
            )
            journal._append(
                db, [plan_event(run_id, plan.plan_id, plan.digest, plan.author, plan.approvers)]
            )
    except JournalError:
        if applied_plan(journal, digest=plan.digest) is not None:
            return False
        raise
    return True


def applied_plan(
    journal: Journal, *, digest: str | None = None, run_id: str | None = None
) -> AppliedPlan | None:
    """The plan a run applied, found by the plan's digest or by the run."""
    row = journal.db.execute(
        "SELECT run_id, plan_id, digest, author, approvers FROM run_plans"
        " WHERE digest = ? OR run_id = ?",
        (digest, run_id),
    ).fetchone()
    return _applied(row)


_RUN_COLUMNS = tuple(f.name for f in dataclasses.fields(RunRow))


def _run(row: tuple[Any, ...]) -> RunRow:
    """A ``runs`` row: its columns in ``RunRow``'s order, the options as JSON."""
    columns = dict(zip(_RUN_COLUMNS, row, strict=True))
    return RunRow(**columns | {"options": json.loads(columns["options"])})


def _payment_row(row: sqlite3.Row) -> PaymentRow:
    error = json.loads(row["error"]) if row["error"] else None
    return PaymentRow(
        seq=row["seq"],
        account=row["account"],
        provider=row["provider"],
        payment_id=row["payment_id"],
        line=row["line"],
        reason=row["reason"],
        expected=Money.from_json(json.loads(row["expected"])) if row["expected"] else None,
        known=_load(row["known"]),
        idempotency_key=row["idempotency_key"],
        state=row["state"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        before=_load(row["before"]),
        after=_load(row["after"]),
        error=None if error is None else ErrorInfo.from_json(error),
        attempts=row["attempts"],
    )
