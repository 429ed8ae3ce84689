"""What is wrong with what was asked, as a fact and its details: raised by the layers
below the commands (``runs``, ``csvinput``), which know what is wrong but not which
flag of a command line said so.  The command layer words each refusal for
the operator, naming the flags (``commands/messages.py``); until then its message is
the plain fact (``Wrong``'s value, then "Nothing was sent."), which is what a caller
without a command line sees.

A ``Refused`` is a usage error (exit 2); a ``RefusedInput`` an input error (exit 2,
``input_error`` in JSON), as the same message was before it became a refusal.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from paycancel_cli.errors import InputError, PaycancelError, UsageError


class Wrong(Enum):
    """What is wrong, as the plain fact; the details each refusal carries are named
    after its member (``plain``: why a one-column file is not a plain list of ids,
    ``"needs_account"`` or ``"not_an_id"``; ``elsewhere``: ``"real"`` or ``"sandbox"``,
    the other journal that holds the run)."""

    # asked of a run (``runs.request.BulkRequest``)
    INPUT_NOT_ONE = "The input is neither a CSV file nor subscription ids, or both."
    RESUME_SHAPED = "A resumed run keeps its own input, accounts, reason and mode."  # given
    RESUME_ALL_SHAPED = "Resumed runs keep their own input, accounts and reason."
    NO_REASON = "Subscriptions' cancels need a reason."
    # the input (``csvinput``, ``runs.start``, ``runs.plan``)
    CSV_NO_ACCOUNT = "The CSV says no account, and several are configured."  # label, known
    CSV_NO_REASON = "The CSV has no reason column, and no reason was given."  # label
    NO_ID_COLUMN = "The CSV has no payment or subscription id column."  # label, header,
    #                                                                     plain, account
    INVALID_ROWS = "The input has invalid rows."  # invalid, label
    OVER_MAX = "The input selects more payments than allowed."  # selected, max_payments
    # the run a resume names (``runs.request``, ``runs.resume``)
    RUN_NOT_FOUND = "No such run in the journal."  # run_id, journal, elsewhere, resuming
    OTHER_SANDBOX = "The run ran on the other side of the sandbox."  # run_id, sandbox
    # the confirmation (``runs.confirm``)
    LIVE_UNCONFIRMED = "LIVE accounts, and no terminal to confirm on."  # live_names
    UNCONFIRMED = "No confirmation, and no terminal to ask on."


class Refusal(PaycancelError):
    """A request refused for what ``wrong`` says; ``facts`` are its details."""

    def __init__(self, wrong: Wrong, **facts: Any) -> None:
        super().__init__(f"{wrong.value} Nothing was sent.")  # refused before any request
        self.wrong = wrong
        self.facts = facts


class Refused(Refusal, UsageError):
    """Flags that cannot go together or cannot be confirmed: exit 2, nothing sent."""


class RefusedInput(Refusal, InputError):
    """An input that cannot run as it is: exit 2, nothing sent."""
