"""``bulk-cancel --json-summary``: the one line an invocation leaves, whatever stops it.

A cron job appends it to a log; a monitor reads it.  It is one JSON object,
``{"type": "outcome", "run_id", "status", "exit_code", "code", "message",
"started_at", "finished_at", ...}``, where ``status`` is one of

- ``completed``: every payment has its outcome (exit 0, 1 or 3);
- ``unfinished``: payments failed for a transient cause (exit 5): a resume finishes them;
- ``interrupted``: stopped by a signal (exit 130): a resume finishes it;
- ``failed``: the run was started and stopped before its summary (``code`` says why);
- ``not_started``: no run was started (bad flags, config or input, the id source
  failed, the lock was held, ...): ``code`` and ``message`` say why; ``run_id`` is the
  run it was asked to resume, if any;
- ``nothing_to_do``: no subscription ids, or no unfinished run to resume (exit 0);
- ``validated``: ``--validate-only``.

A run with a summary adds its fields (``total``, ``outcomes``, ``cancelled_amounts``,
``remaining``, ``requests``, ...).  Times are UTC, ISO 8601.

Invariants: the line is written exactly once per invocation, by the CLI's one error
boundary, after everything else; ``code`` is null when the run reached its summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Tonight:
    started_at: str = field(default_factory=now)
    run_id: str | None = None
    started_run: bool = False  # this invocation journaled (or resumed) the run
    status: str | None = None  # decided by the command when it ends normally
    message: str | None = None
    summary: dict[str, Any] | None = None
    written: bool = False  # the command wrote its own lines (--resume-unfinished)

    def line(
        self, exit_code: int, *, code: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        status = self.status
        if code is not None or status is None:
            if exit_code == 130 and self.started_run:
                status = "interrupted"
            elif self.started_run:
                status = "failed"
            else:
                status = "not_started"
        fields = {k: v for k, v in (self.summary or {}).items() if k not in ("type", "run_id")}
        return {
            "type": "outcome",
            "run_id": self.run_id,
            "status": status,
            "exit_code": exit_code,
            "code": code,
            "message": message if message is not None else self.message,
            "started_at": self.started_at,
            "finished_at": now(),
            **fields,
        }

    def run_started(self, run_id: str) -> None:
        """A run observer (``runs.request.Observed``): this invocation started ``run_id``."""
        self.run_id = run_id
        self.started_run = True

    def finished(self, summary: dict[str, Any], *, exit_code: int, interrupted: bool) -> None:
        self.summary = summary
        self.run_id = summary.get("run_id") or self.run_id
        if interrupted:
            self.status = "interrupted"
        elif exit_code == 5:
            self.status = "unfinished"
        else:
            self.status = "completed"


current: Tonight | None = None


def begin() -> Tonight:
    global current
    current = Tonight()
    return current


def end() -> None:
    global current
    current = None
