"""The audit trail read back: verify the journal's hash chain, export its events.

Invariants:
- ``verify`` walks the events once, in sequence order, holding only the previous
  event's hash: a chain of any length verifies in constant memory.  It names the first
  event that does not fit (a gap in the sequence, a ``prev`` that is not the previous
  event's sha256, content that does not hash to its sha256) and stops there.
- A chain proves nothing about events deleted from its end; ``head`` (a ``SEQ:SHA256``
  kept elsewhere) does: the chain must still hold that event, with that hash.
- ``write_export`` streams: one event in memory at a time.  Events hold no secret (the
  journal redacts them on the way in), so an export holds none either.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from paycancel_cli.errors import UsageError
from paycancel_cli.journal import GENESIS, JOURNAL_UPGRADED, Event

EXPORT_FIELDS = (
    "seq", "time", "type", "run_id", "user", "host", "account", "provider", "payment_id",
    "outcome", "error_code", "provider_code", "amount", "currency", "released",
    "released_currency", "reason", "idempotency_key", "command", "input", "input_hash",
    "plan_id", "plan_digest", "plan_author", "plan_approvers", "prev", "sha256",
)  # fmt: skip
_HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")


@dataclass(frozen=True)
class Problem:
    seq: int
    run_id: str | None
    what: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verification:
    # In the order of the ``audit verify --json`` record (``to_json``).
    events: int = 0
    head: dict[str, Any] = field(default_factory=lambda: {"seq": 0, "sha256": GENESIS})
    checked_head: dict[str, Any] | None = None
    upgraded_at: str | None = None  # the chain began when an earlier journal was upgraded
    reconstructed: int = 0  # events rebuilt from that journal's rows
    problem: Problem | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {"type": "audit_verify", "intact": self.intact, **asdict(self)}

    def describe(self) -> str:
        if self.problem is not None:
            p = self.problem
            run = f" (run {p.run_id})" if p.run_id else ""
            return (
                f"The audit trail is NOT intact: event {p.seq}{run} does not fit: {p.what}. "
                f"Events 1 to {max(0, p.seq - 1)} are intact; keep a copy of this journal "
                "as it is for whoever investigates."
            )
        if not self.events:
            return "The journal has no audit events yet: nothing to verify."
        text = (
            f"The audit trail is intact: events 1 to {self.events}, head "
            f"{self.head['seq']}:{self.head['sha256']}."
        )
        if self.checked_head is not None:
            text += f" It still holds the head kept elsewhere (event {self.checked_head['seq']})."
        if self.upgraded_at is not None:
            text += (
                f" The chain starts at the upgrade of a journal made by an earlier version "
                f"({self.upgraded_at}): events 2 to {self.reconstructed + 1} were "
                "reconstructed then from its rows, which no chain protected before."
            )
        return text


def parse_head(text: str) -> tuple[int, str]:
    match = _HEAD.match(text.strip().lower())
    if match is None:
        raise UsageError(
            f"--head {text!r} is not SEQ:SHA256 (a sequence number, a colon and 64 hex "
            "digits), as a run's summary prints it in audit_head."
        )
    return int(match.group(1)), match.group(2)


def verify(events: Iterable[Event], head: tuple[int, str] | None = None) -> Verification:
    result = Verification()
    expected, prev = 1, GENESIS
    at_head: Event | None = None
    for event in events:
        problem = _misfit(event, expected, prev)
        if problem is not None:
            result.problem = problem
            return result
        if event.type == JOURNAL_UPGRADED:
            result.upgraded_at = event.at
        elif '"reconstructed":true' in event.data:
            result.reconstructed += 1
        if head is not None and event.seq == head[0]:
            at_head = event
        result.events += 1
        result.head = {"seq": event.seq, "sha256": event.sha256}
        expected, prev = event.seq + 1, event.sha256
    if head is not None:
        result.problem = _head_problem(head, at_head, expected)
        if result.problem is None:
            result.checked_head = {"seq": head[0], "sha256": head[1]}
    return result


def _misfit(event: Event, expected: int, prev: str) -> Problem | None:
    if event.seq != expected:
        if event.seq < expected:
            what = f"its sequence number comes before event {expected}: it was inserted"
        else:
            missing = (
                f"event {expected} was"
                if event.seq == expected + 1
                else f"events {expected} to {event.seq - 1} were"
            )
            what = f"the chain jumps from event {expected - 1} to it: {missing} deleted"
        return Problem(event.seq, event.run_id, what)
    if event.prev != prev:
        before = "the chain's start" if expected == 1 else f"event {expected - 1}'s sha256"
        return Problem(
            event.seq,
            event.run_id,
            f"its prev is not {before}: an event before it was deleted, inserted or rewritten",
        )
    if event.recomputed() != event.sha256:
        return Problem(
            event.seq,
            event.run_id,
            "its content does not hash to its sha256: the event was edited after it was written",
        )
    return None


def _head_problem(head: tuple[int, str], at_head: Event | None, next_seq: int) -> Problem | None:
    seq, sha = head
    if at_head is None:
        last = next_seq - 1
        return Problem(
            next_seq,
            None,
            f"the chain ends at event {last}, but the head kept elsewhere is event {seq}: "
            f"events {next_seq} to {seq} were deleted from the end (or this is another journal)",
        )
    if at_head.sha256 != sha:
        return Problem(
            seq,
            at_head.run_id,
            f"its sha256 is {at_head.sha256}, not {sha} as kept elsewhere: the chain was "
            "rebuilt up to here (or this is another journal)",
        )
    return None


# export


def parse_time(text: str, option: str) -> str:
    """A date (``2026-12-01``, midnight UTC) or an ISO time (UTC when it has no
    offset), as the journal writes times, so that they compare as strings."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a date or time: give YYYY-MM-DD (midnight UTC) or an "
            "ISO time such as 2026-12-01T06:00:00Z."
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


_BLANK: dict[str, Any] = dict.fromkeys(EXPORT_FIELDS)
_OWN = frozenset(("seq", "time", "type", "run_id", "prev", "sha256"))  # the event's columns


def export_row(event: Event) -> dict[str, Any]:
    row = _BLANK.copy()  # every column, in order, null unless the event has it
    for name, value in event.fields().items():
        if name in row and name not in _OWN:
            row[name] = value
    row["seq"], row["time"], row["type"] = event.seq, event.at, event.type
    row["run_id"], row["prev"], row["sha256"] = event.run_id, event.prev, event.sha256
    return row


def write_export(events: Iterable[Event], handle: IO[str], fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(handle)
        writer.writerow(EXPORT_FIELDS)
        for event in events:
            writer.writerow([_cell(v) for v in export_row(event).values()])
            count += 1
    else:
        for event in events:
            handle.write(json.dumps(export_row(event)) + "\n")
            count += 1
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)
