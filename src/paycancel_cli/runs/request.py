"""What was asked of a run: the request, the plan shown for confirmation, the
observer (``BulkUI``) the flow reports to, and the run a ``--resume`` names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from paycancel_cli.csvinput import Validation
from paycancel_cli.errors import UsageError
from paycancel_cli.journal import Journal, RunRow
from paycancel_cli.models import Result

if TYPE_CHECKING:
    from paycancel_cli.config import Config


class BulkUI(Protocol):
    """What the flow tells the person (or test) running it.  The CLI renders these;
    it decides nothing (``runs.confirm`` asks and refuses)."""

    def validated(self, validation: Validation) -> None: ...

    def warn(self, message: str) -> None: ...

    def waiting(self, message: str) -> None: ...

    def show_plan(self, plan: Plan, *, prompting: bool) -> None: ...

    def started(self, run_id: str, total: int, resumed: bool) -> None: ...

    def result(self, result: Result) -> None: ...

    def finished(self) -> None: ...


class Observed:
    """A ``BulkUI`` that tells each observer the run id once the run has started, then
    passes everything on: how ``--ping-url`` sends its start ping and ``--json-summary``
    learns its run, without either wrapping the terminal's view."""

    def __init__(self, ui: BulkUI, *on_start: Callable[[str], None]) -> None:
        self.ui = ui
        self.on_start = on_start

    def validated(self, validation: Validation) -> None:
        self.ui.validated(validation)

    def warn(self, message: str) -> None:
        self.ui.warn(message)

    def waiting(self, message: str) -> None:
        self.ui.waiting(message)

    def show_plan(self, plan: Plan, *, prompting: bool) -> None:
        self.ui.show_plan(plan, prompting=prompting)

    def started(self, run_id: str, total: int, resumed: bool) -> None:
        for tell in self.on_start:
            tell(run_id)
        self.ui.started(run_id, total, resumed)

    def result(self, result: Result) -> None:
        self.ui.result(result)

    def finished(self) -> None:
        self.ui.finished()


@dataclass
class Plan:
    per_account: Counter[str]
    live: dict[str, bool]
    dry_run: bool
    subscriptions: dict[str, int] = field(default_factory=dict)  # id: open payments found

    @property
    def total(self) -> int:
        return sum(self.per_account.values())


@dataclass
class BulkRequest:
    csv: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    account: str | None = None
    reason: str | None = None
    dry_run: bool = False
    validate_only: bool = False
    skip_invalid: bool = False
    yes: bool = False
    live: bool = False
    interactive: bool = False
    concurrency: int | None = None
    max_payments: int | None = None
    resume: str | None = None
    wait: float | None = None  # seconds to wait for a lock; None: refuse at once
    read_first: bool = False
    command: str = "paycancel bulk-cancel"


def no_such_run(config: Config, run_id: str, command: str = "runs show") -> UsageError:
    """The error for a run id the journal does not hold; when the other journal (the
    sandbox's, or the real one) holds it, the hint says which flag finds it, in the
    ``command`` the operator was typing."""
    message = (
        f"No run {run_id!r} in the journal {config.journal_path}; `paycancel runs` lists the runs."
    )
    if not config.defaults.journal:  # the sandbox keeps its own journal beside the real one
        other = config.journal_path.with_name(
            "journal.sqlite3" if config.sandbox else "journal-sandbox.sqlite3"
        )
        if other.exists() and Journal(other).run(run_id) is not None:
            if config.sandbox:
                message += " It is a run on real accounts: leave out --sandbox to use it."
            else:
                message += (
                    " It is a run in the built-in sandbox: add --sandbox "
                    f"(paycancel --sandbox {command} {run_id})."
                )
    return UsageError(message)


def find_run(config: Config, journal: Journal, run_id: str, command: str = "runs show") -> RunRow:
    """The run ``run_id`` names: the whole id, or the start of exactly one run's id."""
    run = journal.run(run_id)
    if run is None and run_id:
        matches = journal.run_ids_starting(run_id)
        if len(matches) > 1:
            raise UsageError(
                f"Run id {run_id!r} is the start of several runs ({', '.join(matches)}"
                f"{', ...' if len(matches) == 5 else ''}); give more of the id."
            )
        if matches:
            run = journal.run(matches[0])
    if run is None:
        raise no_such_run(config, run_id, command)
    return run
