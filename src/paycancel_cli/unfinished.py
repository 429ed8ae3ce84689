"""Finding the runs a resume would still do something for, and resuming them all.

A run is unfinished when payments are planned or in flight (interrupted, crashed),
failed for a transient cause (exit 5, a dead provider), or its subscriptions were never
listed (the provider was down or the key rejected before the first payment).  A run a
live process holds is not: it is being worked on.  Runs of the other journal's kind
(the built-in sandbox, or real accounts) are left to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from paycancel_cli.errors import PaycancelError
from paycancel_cli.journal import Journal, Lock, RunRow

if TYPE_CHECKING:
    from paycancel_cli.bulk import BulkOutcome, BulkRequest
    from paycancel_cli.config import Config


def unfinished_runs(config: Config) -> list[RunRow]:
    """Oldest first."""
    journal = Journal(config.journal_path)
    try:
        return [
            run
            for run in journal.unfinished_runs()
            if bool(run.options.get("sandbox")) == config.sandbox
            and not Lock(config.journal_path, f"run-{run.run_id}").held()
        ]
    finally:
        journal.close()


def started_by_automation(run: RunRow) -> bool:
    """A run started with no terminal (cron, a script).  A person who stopped their own
    run at a terminal decides whether it goes on: automation never resumes it."""
    return run.options.get("interactive") is False


def resume_each(
    config: Config,
    request: BulkRequest,
    resume: Callable[[BulkRequest], BulkOutcome],
) -> Iterator[tuple[str, BulkOutcome | PaycancelError]]:
    """Each unfinished run started by automation resumed in turn, oldest first, with
    ``request``'s flags: its outcome, or the error that stopped it (the next run is
    still tried)."""
    from dataclasses import replace

    for run in filter(started_by_automation, unfinished_runs(config)):
        try:
            yield run.run_id, resume(replace(request, resume=run.run_id))
        except PaycancelError as exc:
            yield run.run_id, exc


PRECEDENCE = (130, 2, 3, 4, 1, 5)


def combined(codes: list[int]) -> int:
    """The exit code of several resumes: the first of ``PRECEDENCE`` that any had."""
    return next((c for c in PRECEDENCE if c in codes), 0)
