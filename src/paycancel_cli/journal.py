"""The run journal: SQLite (WAL), file mode 0600; the only module that knows SQL.

A run row records who ran what on which input; a payment row per target records its
idempotency key and its journey ``planned`` -> ``in_flight`` -> ``done`` with outcome,
before/after snapshots, error and attempts.  ``in_flight`` is committed before a
cancel is sent and ``done`` after the answer, so after a crash a payment is either
untouched (planned), finished (done), or uncertain (in_flight: read it back before
sending anything).  An in-flight row's ``before`` is NULL when its cancel was sent
without a read first.  Every failure to write raises ``JournalError``: callers fail closed.

Locks are ``fcntl`` locks on files beside the journal; the kernel drops them when the
holder dies, so a SIGKILLed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from paycancel_cli.errors import JournalError, JournalUnusable, LockError
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

PLANNED, IN_FLIGHT, DONE = "planned", "in_flight", "done"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


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


class Journal:
    def __init__(self, path: Path, *, redact: Callable[[str], str] = str) -> None:
        self.path = path
        self.redact = redact  # error texts from providers may echo what they were sent
        problem = _unusable(path)
        if problem is not None:
            raise JournalUnusable(
                f"The journal {path} cannot be opened: it {problem}. Nothing was sent. Set "
                "defaults.journal in the config to a file path in a directory you can write."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(path, 0o600)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
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

    # runs

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
        with self._write("the run") as db:
            db.execute(
                "INSERT INTO runs (run_id, started_at, status, user, host, command, input,"
                " input_hash, reason, options) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    now(),
                    "running",
                    user,
                    host,
                    command,
                    input,
                    input_hash,
                    reason,
                    json.dumps(options),
                ),
            )

    def set_run_status(self, run_id: str, status: str) -> None:
        finished = None if status == "running" else now()
        with self._write("the run's status") as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, finished, run_id),
            )

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

    def outcome_counts(self, run_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT outcome, count(*) FROM payments WHERE run_id = ? AND outcome IS NOT NULL"
            " GROUP BY 1",
            (run_id,),
        ).fetchall()
        return {str(k): int(v) for k, v in rows}

    # payments

    def plan(self, run_id: str, rows: Iterable[PlanRow]) -> tuple[int, int]:
        """Insert planned payments in one transaction, in order; a repeat of an
        (account, payment id) already planned in this run is skipped.  Returns
        (inserted, skipped duplicates)."""
        stamp = now()
        seen = 0
        start = self.db.execute(
            "SELECT coalesce(max(seq), -1) + 1 FROM payments WHERE run_id = ?", (run_id,)
        ).fetchone()[0]

        def values() -> Iterator[tuple[Any, ...]]:
            nonlocal seen
            for seq, row in enumerate(rows, start):
                seen += 1
                yield (
                    run_id,
                    seq,
                    row.account,
                    row.provider,
                    row.payment_id,
                    row.line,
                    row.reason,
                    None
                    if row.expected is None
                    else json.dumps(
                        {"value": str(row.expected.value), "currency": row.expected.currency}
                    ),
                    _dump(row.known),
                    row.key,
                    PLANNED if row.error is None else DONE,
                    None if row.error is None else Outcome.INVALID.value,
                    None if row.error is None else json.dumps(row.error.to_json()),
                    stamp,
                )

        with self._write("the plan") as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO payments (run_id, seq, account, provider, payment_id,"
                " line, reason, expected, known, idempotency_key, state, outcome, error,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                values(),
            )
            inserted = db.total_changes - before
        return inserted, seen - inserted

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

    def mark_in_flight(
        self, run_id: str, account: str, payment_id: str, before: Payment | None
    ) -> None:
        """Committed before a cancel is sent.  ``before`` is the state read first, or
        None when the cancel is sent without a read (cancel first): a resume then reads
        the payment and works out whose cancel it was (see the engine)."""
        with self._write(f"payment {payment_id} as in flight") as db:
            db.execute(
                "UPDATE payments SET state = ?, before = ?, updated_at = ?"
                " WHERE run_id = ? AND account = ? AND payment_id = ?",
                (IN_FLIGHT, _dump(before), now(), run_id, account, payment_id),
            )

    def set_key(self, run_id: str, account: str, payment_id: str, key: str) -> None:
        """Record the idempotency key about to be sent, when a retry needs a fresh one
        (committed before the request, like the in-flight mark)."""
        with self._write(f"the idempotency key of payment {payment_id}") as db:
            db.execute(
                "UPDATE payments SET idempotency_key = ?, updated_at = ?"
                " WHERE run_id = ? AND account = ? AND payment_id = ?",
                (key, now(), run_id, account, payment_id),
            )

    def transient_per_account(self, run_id: str) -> Counter[str]:
        """Payments that failed for a transient cause (provider unreachable, 5xx, 429
        beyond the retries), per account: what a resume tries again."""
        rows = self.db.execute(
            "SELECT account, count(*) FROM payments WHERE run_id = ? AND state = ?"
            " AND outcome = ? AND json_extract(error, '$.transient') = 1 GROUP BY account",
            (run_id, DONE, Outcome.FAILED.value),
        ).fetchall()
        return Counter({str(a): int(n) for a, n in rows})

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
            return int(cursor.rowcount)

    def mark_done(self, result: Result) -> None:
        error = None
        if result.error is not None:
            info = result.error.to_json()
            info["message"] = self.redact(info["message"])
            error = json.dumps(info)
        with self._write(f"the result of payment {result.payment_id}") as db:
            db.execute(
                "UPDATE payments SET state = ?, outcome = ?, before = ?, after = ?, error = ?,"
                " attempts = attempts + ?, updated_at = ?"
                " WHERE run_id = ? AND account = ? AND payment_id = ?",
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
            )

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


def _run(row: tuple[Any, ...]) -> RunRow:
    (
        run_id,
        started,
        finished,
        status,
        user,
        host,
        command,
        input_,
        input_hash,
        reason,
        options,
    ) = row
    return RunRow(
        run_id,
        started,
        finished,
        status,
        user,
        host,
        command,
        input_,
        input_hash,
        reason,
        json.loads(options),
    )


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


Waiter = Callable[[str], None]


class Lock:
    """An exclusive lock named by ``key``: refused at once, or waited for.

    ``wait`` is None (refuse at once), a number of seconds, or ``math.inf``.  A waiting
    caller is told once, through ``on_wait``, what it waits for; the lock is polled
    rather than blocked on, so the limit holds and Ctrl-C ends the wait at once.
    """

    POLL_S = 0.2

    def __init__(self, journal_path: Path, key: str) -> None:
        directory = journal_path.with_name(journal_path.name + ".locks")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / f"{key}.lock"
        self._file: IO[str] | None = None

    def acquire(
        self,
        *,
        what: str,
        wait: float | None = None,
        on_wait: Waiter | None = None,
        limit: float | None = None,
    ) -> None:
        """``limit``: the whole wait the operator asked for, when ``wait`` is what is
        left of it (several locks share one ``--wait SECONDS``)."""
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        try:
            if not _try_lock(handle):
                holder = _holder(handle)
                if wait is None:
                    raise LockError(
                        f"{what} is being worked on by {holder}. Wait for it to finish (or "
                        "pass --wait [SECONDS] to queue behind it); nothing was sent."
                    )
                asked = wait if limit is None else limit
                most = "" if asked == math.inf else f" (at most {asked:g} s)"
                if on_wait is not None:
                    on_wait(
                        f"Waiting for {holder} to finish with {what[0].lower()}{what[1:]}"
                        f"{most}; Ctrl-C stops waiting."
                    )
                deadline = time.monotonic() + wait
                while not _try_lock(handle):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LockError(
                            f"{what} is still being worked on by {holder} after waiting "
                            f"{asked:g} s; nothing was sent. Try again later, or wait longer "
                            "(--wait SECONDS, or --wait alone for no limit)."
                        )
                    time.sleep(min(self.POLL_S, left))
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


class Locks:
    """Several locks taken in order and released together."""

    def __init__(
        self, journal_path: Path, *, wait: float | None, on_wait: Waiter | None = None
    ) -> None:
        self.journal_path = journal_path
        self.wait = wait
        self.on_wait = on_wait
        self.held: list[Lock] = []
        # One --wait SECONDS covers every lock taken here, not each of them.
        self.deadline = None if wait is None else time.monotonic() + wait

    def take(self, key: str, what: str) -> None:
        lock = Lock(self.journal_path, key)
        left = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        try:
            lock.acquire(what=what, wait=left, on_wait=self.on_wait, limit=self.wait)
        except LockError:
            self.release()
            raise
        self.held.append(lock)

    def release(self) -> None:
        while self.held:
            self.held.pop().release()
