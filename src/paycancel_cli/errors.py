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
          ├── RateLimited               exit 5, retryable, may carry a retry-after delay
          ├── Busy                      exit 5, retryable: the payment is being worked on
          └── ProviderUnavailable       exit 5, retryable: 5xx, timeouts, dropped connections

``retryable`` is also what makes a payment's failure *transient* (``ErrorInfo``): a run
whose unfinished payments all failed that way exits 5, "try again later".

Each class also names its ``kind``: the ``code`` of the JSON error record a command
ends with under ``--json``.  Messages say what happened and what to do next.  They
never contain a secret: the places that build them only ever see ids, codes and the
provider's error text.
"""

from __future__ import annotations


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
    exit_code = 1
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
    exit_code = 1
    kind = "journal_error"


class JournalUnusable(JournalError):
    """The journal cannot be opened at all (a file where a directory should be, a
    directory, not SQLite): a setup problem found before anything was sent."""

    exit_code = 2


class ProviderError(PaycancelError):
    """An error answer from a provider, with its code and HTTP status when known."""

    kind = "provider_error"

    def __init__(
        self, message: str, *, code: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


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
        code: str | None = None,
        http_status: int | None = None,
        already_cancelled: bool | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.already_cancelled = already_cancelled
        # The normalized status the answer names (``succeeded`` for FlexPortal's
        # ALREADY_PAID), when it names one: the refusal's normalized code.
        self.status = status


class RateLimited(ProviderError):
    retryable = True
    exit_code = 5
    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after = retry_after


class Busy(ProviderError):
    """The provider is working on the payment (Vipps 423 Locked, 6160 order processing):
    try again after a wait.  ``fresh_key`` is set when the provider keeps the refusal
    under the idempotency key, so the retry must carry a new one."""

    retryable = True
    exit_code = 5
    kind = "busy"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        fresh_key: bool = False,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after = retry_after
        self.fresh_key = fresh_key


class ProviderUnavailable(ProviderError):
    """5xx, timeouts and network errors.

    ``ambiguous`` is true when a write may have reached the provider (the request was
    sent but no answer came back): the payment must be read back before re-sending.
    ``accepted`` is true when the provider did accept the write and only the state after
    it is unknown (Compago's cancel answers ``{}``; the read after it failed).
    """

    retryable = True
    exit_code = 5
    kind = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        ambiguous: bool = False,
        accepted: bool = False,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.ambiguous = ambiguous or accepted
        self.accepted = accepted
