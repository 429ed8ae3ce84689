"""The exception tree.  Every expected failure is a ``PaycancelError``.

::

    PaycancelError                      exit 1 unless a subclass says otherwise
     ├── UsageError                     exit 2: bad flags, refused confirmation, nothing sent
     ├── Declined                       exit 1: the operator said no at the prompt (a plain
     │                                  sentence, not an error)
     ├── ConfigError                    exit 2: bad config file or account
     ├── InputError                     exit 2: bad payment id or CSV, nothing sent
     │    └── IdSourceError             exit 2: the subscription id command failed
     ├── AuthError                      exit 3: the provider rejected the credentials
     ├── LockError                      exit 4: another process holds the lock
     ├── Interrupted                    exit 130: stopped by a signal, resumable
     ├── JournalError                   exit 1: the journal cannot be written (fail closed)
     │    └── JournalUnusable           exit 2: the journal cannot be opened, nothing sent
     └── ProviderError                  exit 1: the provider answered with an error
          ├── NotFound
          ├── NotCancellable            the state forbids a cancel (carries the code)
          └── Transient                 exit 5, retryable, may carry a retry-after delay
               ├── RateLimited          too many requests
               ├── Busy                 the payment is being worked on
               └── ProviderUnavailable  5xx, timeouts, dropped connections

``retryable`` is also what makes a payment's failure *transient* (``ErrorInfo``): a run
whose unfinished payments all failed that way exits 5, "try again later".

Each class also names its ``kind``: the ``code`` of the JSON error record a command
ends with under ``--json``.  Messages say what happened and what to do next.  They
never contain a secret: the places that build them only ever see ids, codes and the
provider's error text.
"""

from __future__ import annotations

from typing import TypedDict, Unpack


class PaycancelError(Exception):
    exit_code = 1
    retryable = False
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(PaycancelError):
    exit_code = 2
    kind = "usage_error"


class Declined(PaycancelError):
    kind = "declined"


class PlanRefused(UsageError):
    """A plan that cannot be made, approved or applied: exit 2, nothing sent."""

    kind = "plan_refused"


class ConfigError(PaycancelError):
    exit_code = 2
    kind = "config_error"


class InputError(PaycancelError):
    exit_code = 2
    kind = "input_error"


class IdSourceError(InputError):
    """``--subscriptions-command`` could not be run or failed: no run was started."""

    kind = "id_source_failed"


class AuthError(PaycancelError):
    exit_code = 3
    kind = "auth_failed"

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class LockError(PaycancelError):
    exit_code = 4
    kind = "locked"


class Interrupted(PaycancelError):
    exit_code = 130
    kind = "interrupted"


class JournalError(PaycancelError):
    kind = "journal_error"


class JournalUnusable(JournalError):
    """The journal cannot be opened at all (a file where a directory should be, a
    directory, not SQLite): a setup problem found before anything was sent."""

    exit_code = 2


class Answer(TypedDict, total=False):
    """What a provider's error answer says beside its message: the keywords every
    ``ProviderError`` takes, whatever its own."""

    code: str | None
    http_status: int | None


class ProviderError(PaycancelError):
    """An error answer from a provider, with its code and HTTP status when known."""

    kind = "provider_error"

    def __init__(self, message: str, **answer: Unpack[Answer]) -> None:
        super().__init__(message)
        self.code = answer.get("code")
        self.http_status = answer.get("http_status")


class NotFound(ProviderError):
    pass


class NotCancellable(ProviderError):
    """The provider refused the cancel because of the payment's state.

    ``already_cancelled`` is what the answer itself says: True, the payment was
    cancelled before (a success for the operator); False, it is not cancellable for
    another reason (the code says which); None, the answer does not say, so the engine
    reads the payment once to classify the refusal.
    """

    def __init__(
        self,
        message: str,
        *,
        already_cancelled: bool | None = None,
        status: str | None = None,
        **answer: Unpack[Answer],
    ) -> None:
        super().__init__(message, **answer)
        self.already_cancelled = already_cancelled
        # The normalized status the answer names (``succeeded`` for FlexPortal's
        # ALREADY_PAID), when it names one: the refusal's normalized code.
        self.status = status


class Transient(ProviderError):
    """A failure that trying again later may clear: retryable, exit 5.  ``retry_after``
    is the wait the answer asks for, in seconds, when it names one."""

    retryable = True
    exit_code = 5

    def __init__(
        self, message: str, *, retry_after: float | None = None, **answer: Unpack[Answer]
    ) -> None:
        super().__init__(message, **answer)
        self.retry_after = retry_after


class RateLimited(Transient):
    """Too many requests: HTTP 429 unless the answer says otherwise."""

    kind = "rate_limited"

    def __init__(
        self, message: str, *, retry_after: float | None = None, **answer: Unpack[Answer]
    ) -> None:
        answer.setdefault("http_status", 429)
        super().__init__(message, retry_after=retry_after, **answer)


class Busy(Transient):
    """The provider is working on the payment (Vipps 423 Locked, 6160 order processing):
    try again after a wait.  ``fresh_key`` is set when the provider keeps the refusal
    under the idempotency key, so the retry must carry a new one."""

    kind = "busy"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        fresh_key: bool = False,
        **answer: Unpack[Answer],
    ) -> None:
        super().__init__(message, retry_after=retry_after, **answer)
        self.fresh_key = fresh_key


class ProviderUnavailable(Transient):
    """5xx, timeouts and network errors.

    ``ambiguous`` is true when a write may have reached the provider (the request was
    sent but no answer came back): the payment must be read back before re-sending.
    ``accepted`` is true when the provider did accept the write and only the state after
    it is unknown (Compago's cancel answers ``{}``; the read after it failed).
    """

    kind = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool = False,
        accepted: bool = False,
        **answer: Unpack[Answer],
    ) -> None:
        super().__init__(message, **answer)
        self.ambiguous = ambiguous or accepted
        self.accepted = accepted
