"""Finding the runs a resume would still do something for, and resuming them all.

A run is unfinished when payments are planned or in flight (interrupted, crashed),
failed for a transient cause (exit 5, a dead provider), or its subscriptions were never
listed (the provider was down or the key rejected before the first payment).  A run a
live process holds is not: it is being worked on.  Runs of the other journal's kind
(the built-in sandbox, or real accounts) are left to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from paycancel_cli.errors import PaycancelError
from paycancel_cli.journal import Journal, RunRow
from paycancel_cli.locks import Lock
from paycancel_cli.models import most_severe

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.redact import Redactor
    from paycancel_cli.runs.request import BulkRequest, BulkUI
    from paycancel_cli.runs.summary import BulkOutcome
    from paycancel_cli.tonight import Tonight


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
            yield run.run_id, resume(replace(request, resume=run.run_id, resume_unfinished=False))
        except PaycancelError as exc:
            yield run.run_id, exc


def resume_unfinished(
    config: Config,
    request: BulkRequest,
    ui: BulkUI,
    *,
    redactor: Redactor,
    say: Callable[[str], None],
    emit: Callable[[dict[str, Any]], None] | None = None,
    night: Tonight | None = None,
    word: Callable[[PaycancelError], str] = lambda exc: exc.message,
) -> int:
    """``bulk-cancel --resume-unfinished``: each run of ``resume_each`` resumed; with
    ``emit`` (``--json-summary``) one outcome line per run, or one ``nothing_to_do``
    line when there is none; ``word`` says a run's error to the operator.  Returns
    the exit code, the most severe of theirs."""
    from paycancel_cli import tonight
    from paycancel_cli.runs.start import run_bulk

    started = night.started_at if night is not None else tonight.now()
    codes: list[int] = []
    for run_id, outcome in resume_each(
        config, request, lambda r: run_bulk(config, r, ui, redactor=redactor)
    ):
        each = tonight.Tonight(started_at=started, run_id=run_id)
        if isinstance(outcome, PaycancelError):
            code, message = outcome.exit_code, word(outcome)
            say(f"Run {run_id}: {message}")
            line = each.line(code, code=outcome.kind, message=message)
        else:
            code = 0 if outcome.finished else outcome.exit_code()
            if outcome.summary is not None:
                each.finished(
                    outcome.summary.to_json(), exit_code=code, interrupted=outcome.interrupted
                )
            line = each.line(code)
            say(f"Run {run_id}: exit {code}.")
        codes.append(code)
        if emit is not None:
            emit(line)
        if code == 130:
            break
    if not codes:
        said = "No unfinished run to resume."
        say(said)
        if emit is not None:
            emit({**tonight.Tonight(started_at=started).line(0), "status": "nothing_to_do",
                  "message": said})  # fmt: skip
    by_hand = [r.run_id for r in unfinished_runs(config) if not started_by_automation(r)]
    if by_hand:
        say(
            f"Not resumed: {', '.join(by_hand)}, started at a terminal; whoever stopped it "
            "decides (paycancel bulk-cancel --resume RUN_ID)."
        )
    if night is not None:
        night.written = True  # the lines are out; the error boundary writes no other
    return most_severe(codes)  # the most severe of the resumes' codes
