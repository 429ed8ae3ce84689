"""What was asked of a run: the request, the plan shown for confirmation, the
observer (``BulkUI``) the flow reports to, and the run a ``--resume`` names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Protocol

from paycancel_cli.csvinput import Validation
from paycancel_cli.errors import UsageError
from paycancel_cli.journal import Journal, RunRow
from paycancel_cli.models import Result
from paycancel_cli.refusals import Refused, Wrong

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


@dataclass(frozen=True)
class BulkRequest:
    """What a run was asked to do, checked on construction: a request that exists is a
    valid one (one input, an account the config has, a reason where a cancel needs one,
    a resume that shapes nothing).  Made with ``config``, its account is checked against
    it.  The checks run in the order their refusals have always been reported."""

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
    resume_unfinished: bool = False  # every unfinished run, each resumed as ``resume``
    plan: bool = False  # a reviewed plan applied: its input and flags are checked with it
    wait: float | None = None  # seconds to wait for a lock; None: refuse at once
    read_first: bool = False
    command: str = "paycancel bulk-cancel"
    config: InitVar[Config | None] = None

    def __post_init__(self, config: Config | None) -> None:
        if self.resume_unfinished:
            shaping = [self.csv, self.subscriptions, self.resume, self.reason, self.account]
            if any(shaping) or self.dry_run or self.validate_only:
                raise Refused(Wrong.RESUME_ALL_SHAPED)
        elif self.resume:
            given = [name for name in RUN_SHAPING if _given(getattr(self, name))]
            if given:
                raise Refused(Wrong.RESUME_SHAPED, given=given)
        elif not self.plan:
            if bool(self.csv) == bool(self.subscriptions):
                raise Refused(Wrong.INPUT_NOT_ONE)
            if config is not None and (default := self.default_account(config)) is not None:
                config.account(default)  # unknown names fail here, exit 2
            if self.subscriptions and self.reason_text is None and not self.sends_nothing:
                raise Refused(Wrong.NO_REASON)

    def default_account(self, config: Config) -> str | None:
        """The account of rows that name none: ``account``, or the only one configured."""
        if self.account is None and len(config.accounts) == 1:
            return next(iter(config.accounts))
        return self.account

    @property
    def reason_text(self) -> str | None:
        """The reason given; an all-blank reason is no reason."""
        return (self.reason or "").strip() or None

    @property
    def sends_nothing(self) -> bool:
        """A dry run or a validation: no cancel, so no reason needed."""
        return self.dry_run or self.validate_only


def _given(value: object) -> bool:
    """A flag given: a value, ``True``, a number (0 too), not an empty text or list."""
    return value not in (None, "", []) and value is not False


# The fields that shape a new run, which a resumed run keeps from its start.
RUN_SHAPING = (
    "csv",
    "subscriptions",
    "reason",
    "dry_run",
    "validate_only",
    "skip_invalid",
    "max_payments",
    "account",
    "read_first",
)


def no_such_run(config: Config, run_id: str, *, resuming: bool = False) -> Refused:
    """The refusal for a run id the journal does not hold; it says when the other journal
    (the sandbox's, or the real one) holds it, so that the words can say how to get
    there, resuming it or showing it."""
    elsewhere = None
    if not config.defaults.journal:  # the sandbox keeps its own journal beside the real one
        other = config.journal_path.with_name(
            "journal.sqlite3" if config.sandbox else "journal-sandbox.sqlite3"
        )
        if other.exists() and Journal(other).run(run_id) is not None:
            elsewhere = "real" if config.sandbox else "sandbox"
    return Refused(
        Wrong.RUN_NOT_FOUND,
        run_id=run_id,
        journal=str(config.journal_path),
        elsewhere=elsewhere,
        resuming=resuming,
    )


def find_run(config: Config, journal: Journal, run_id: str, *, resuming: bool = False) -> RunRow:
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
        raise no_such_run(config, run_id, resuming=resuming)
    return run
