"""The core: decide and carry out one payment's cancel, truthfully.

For each payment: read it (the before state) unless a list page already gave it,
check the guard (expected amount) and whether it can be cancelled, then cancel with
a deterministic idempotency key, retrying 429, 5xx and network errors with backoff
from stamina (honouring the provider's Retry-After or rate-limit reset).

Cancel first: a ``Canceller`` made with ``cancel_first`` (bulk runs from a CSV) sends
the cancel without reading first when the adapter declares ``Capability.CANCEL_FIRST``
and nothing needs the before state (no expected amount, not a dry run, not a payment
left in flight).  The answer then decides: a success is ``cancelled`` (its before is
what the answer implies: open and cancelable, see ``implied_before``), a refusal whose
answer says what the payment is needs no read, and any other refusal is classified by
one read after it (that read is the before state: a refusal changes nothing).

Invariants:
- An outcome is what the provider confirmed: ``cancelled`` only from a successful
  cancel answer that shows the payment released (a yes showing it open or in another
  state is read back), from a read-back that shows it released after a cancel of ours
  whose answer was lost, or from an accepted cancel (Compago) whose state after could
  never be read; a read showing the payment still open voids that acceptance.
- After an ambiguous failure (timeout, dropped connection, 5xx on the cancel) the
  payment is read back before anything is sent again.
- ``before_send`` (the journal's in-flight record) runs before the first cancel
  request; if it raises, nothing is sent.  ``on_new_key`` records a fresh idempotency
  key before the retry that carries it (a provider that keeps a transient refusal
  under the key, Vipps 6160); the result names the key last sent.  The before state
  journaled is None when no read came first.
- A lost answer with no before state: a read that shows the payment still open means
  the cancel did not land (it is re-sent with the same key).  A read that shows it
  cancelled cannot say by whom, and no provider documents replaying a key's first
  answer (HedgePayments' docs deny it: a re-sent key may get 409), so nothing is sent
  to ask: the payment counts as cancelled by this run, as a read-back after a lost
  answer always has.  It could be wrong only for a payment cancelled by someone else
  before this run's cancel arrived, which ``--read-first`` rules out at the cost of
  one read per payment.
- Any unexpected exception while reading or cancelling one payment fails that payment
  (``failed``, naming the provider, the payment and what went wrong); only a
  ``JournalError`` leaves ``process``, because the run must stop when it cannot record.
- With a ``Breaker`` (bulk runs), every request's fate is told to it, and once it is
  open no retry is made: the payment ends with the failure it last had (see
  ``breaker``).
- This module never looks at a provider's field names and imports neither typer nor
  rich.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

import stamina

from paycancel_cli import retries  # noqa: F401  (installs the retry log hook)
from paycancel_cli.breaker import Breaker
from paycancel_cli.errors import (
    AuthError,
    Busy,
    InputError,
    JournalError,
    NotCancellable,
    NotFound,
    PaycancelError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from paycancel_cli.models import (
    AGGREGATES,
    AUTH_FAILED,
    IMPLIED,
    ErrorInfo,
    Money,
    Outcome,
    Payment,
    PaymentStatus,
    Result,
)

if TYPE_CHECKING:
    from paycancel_cli.providers.base import Provider

# Capability names as the adapters declare them (providers.base.Capability is a
# StrEnum); compared as strings so that importing the engine imports no adapter code.
CANCEL_FIRST = "cancel_first"


UNCERTAIN = "uncertain"
INTERNAL = "internal_error"


def idempotency_key(run_id: str, account: str, payment_id: str) -> str:
    """Deterministic per (run, account, payment); 35 characters (Vipps allows 50)."""
    digest = hashlib.sha256(f"{run_id}\x1f{account}\x1f{payment_id}".encode()).hexdigest()
    return f"pc-{digest[:32]}"


def fresh_key(key: str) -> str:
    """The next key of a payment whose last key is spent: ``<root>-r<n+1>``, at most
    42 characters however often it is renewed (Vipps allows 50)."""
    match = re.fullmatch(r"(.*?)-r(\d+)", key)
    root, n = (match.group(1), int(match.group(2))) if match else (key, 0)
    return f"{root}-r{n + 1}"


Hook = Callable[[Exception], bool | float]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry policy: a 429, a 5xx, a network failure or a provider's "busy" is
    retried with stamina's exponential backoff, or after the provider's ``Retry-After``
    (capped at ``max_retry_after``, with a little jitter) when its answer gives one.

    ``call`` is the entry point for one request; the ``Canceller`` uses ``retrying`` with
    its own hook (a breaker, a provider's floor between cancels)."""

    attempts: int = 6
    wait_initial: float = 0.5
    wait_max: float = 30.0
    wait_jitter: float = 0.5
    timeout: float | None = 600.0
    max_retry_after: float = 120.0

    def backoff(self, exc: Exception) -> bool | float:
        """stamina's ``on`` hook: False for an error that is not retried, the seconds to
        wait when the provider said how long, True for stamina's own backoff."""
        if isinstance(exc, RateLimited | Busy) and exc.retry_after is not None:
            # Spread the herd that a shared window releases at once.
            wait = min(exc.retry_after, self.max_retry_after)
            return wait + random.uniform(0, min(1.0, wait / 4 + 0.05))
        return isinstance(exc, RateLimited | ProviderUnavailable | Busy)

    def retrying(self, on: Hook | None = None) -> AsyncIterator[stamina.Attempt]:
        """stamina's attempts under this policy, retried when ``on`` (by default
        ``backoff``) says so."""
        return stamina.retry_context(
            on=on or self.backoff,
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )

    async def call(self, request: Callable[[], Awaitable[T]]) -> T:
        """``await request()``, retried under this policy; the last failure is raised
        when the attempts run out.  ``request`` makes a new awaitable each time."""
        async for attempt in self.retrying():
            with attempt:
                return await request()
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Target:
    """One payment to process, as validated input."""

    account: str
    payment_id: str
    reason: str
    expected_amount: Money | None = None
    known: Payment | None = None  # the before state when a list page gave it
    # The state a reviewed plan recorded: the payment is read first and not cancelled
    # if it differs (``changed_since_plan``).
    planned: Payment | None = None


@dataclass(frozen=True)
class InFlight:
    """A cancel journaled as in flight whose answer was never recorded (a crash)."""

    before: Payment | None  # None: the cancel was sent without a read first


BeforeSend = Callable[[Target, str, Payment | None], Awaitable[None]]
OnNewKey = Callable[[Target, str], Awaitable[None]]


def was_cancelled(payment: Payment) -> bool:
    """Cancelled before: nothing is left to release and something was released."""
    if payment.status is PaymentStatus.CANCELLED:
        return True
    return not payment.cancelable and payment.cancelled is not None and payment.cancelled.value > 0


def released(before: Payment | None, now: Payment) -> bool:
    """True when ``now`` shows a release that ``before`` did not (with no before: when
    ``now`` shows the payment released at all)."""
    if before is None:
        return was_cancelled(now)
    if now.status is PaymentStatus.CANCELLED and before.status is not PaymentStatus.CANCELLED:
        return True
    if now.cancelled is not None and before.cancelled is not None:
        return now.cancelled.value > before.cancelled.value and not now.cancelable
    return False


def implied_before(after: Payment) -> Payment:
    """The before state a successful cancel answer implies when nothing was read first:
    the same payment, open and cancelable, with nothing cancelled yet."""
    return replace(
        after,
        status=PaymentStatus.PENDING,
        native_status=IMPLIED,
        cancelable=True,
        why_not=None,
        cancelled=None,
    )


def amount_mismatch(expected: Money, payment: Payment) -> str | None:
    if payment.amount is None:
        return (
            f"expected amount {expected} cannot be checked: {payment.provider} does not "
            "report this payment's amount"
        )
    if payment.amount.currency != expected.currency or payment.amount.value != expected.value:
        note = f" ({payment.amount_note})" if payment.amount_note else ""
        return f"amount is {payment.amount}{note}, expected {expected}"
    return None


CHANGED_SINCE_PLAN = "changed_since_plan"


def changed_since(planned: Payment, now: Payment) -> str | None:
    """What differs between the state a reviewed plan recorded and the one read now
    (status, amount, aggregate amounts), or None when nothing that matters did."""
    changes = []
    if planned.status is not now.status:
        changes.append(f"status {planned.status.value} -> {now.status.value}")
    for name in ("amount", *AGGREGATES):
        was, is_ = getattr(planned, name), getattr(now, name)
        if was != is_:  # Money compares by value (10.0 == 10.00) and currency
            changes.append(f"{name} {was or 'none'} -> {is_ or 'none'}")
    if not changes:
        return None
    return "changed since the plan was made: " + "; ".join(changes) + "; not cancelled"


class Canceller:
    """Processes payments of one account through one provider adapter."""

    def __init__(
        self,
        provider: Provider,
        *,
        run_id: str | None,
        policy: RetryPolicy | None = None,
        dry_run: bool = False,
        before_send: BeforeSend | None = None,
        on_new_key: OnNewKey | None = None,
        cancel_first: bool = False,
        breaker: Breaker | None = None,
    ) -> None:
        self.provider = provider
        self.breaker = breaker
        self.run_id = run_id
        self.policy = policy or RetryPolicy()
        self.dry_run = dry_run
        self.before_send = before_send
        self.on_new_key = on_new_key
        self.cancel_first = cancel_first and CANCEL_FIRST in provider.capabilities

    async def read(self, payment_id: str) -> Payment:
        """Read one payment, retrying transient failures."""
        seen: list[Exception] = []
        async for attempt in self._retrying(self._read_backoff, seen):
            with attempt:
                self._stop_if_tripped(seen)
                return await self._watched(payment_id, self.provider.get(payment_id))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _watched(self, payment_id: str, call: Awaitable[Payment]) -> Payment:
        """``call``'s answer, its fate told to the breaker: a transient failure counts
        against the account, any answer from the provider clears the count."""
        try:
            answer = await call
        except ProviderUnavailable:
            if self.breaker is not None:
                self.breaker.failure(payment_id)
            raise
        except (RateLimited, Busy):
            raise  # the provider pacing us: neither dead nor a clean answer
        except Exception:
            if self.breaker is not None:
                self.breaker.answered()
            raise
        if self.breaker is not None:
            self.breaker.answered()
        return answer

    def _stop_if_tripped(self, seen: list[Exception]) -> None:
        """At the start of a retry: with the breaker opened meanwhile (by this payment or
        another of the account), end with the failure that asked for the retry instead
        of sending one more request."""
        if seen and self.breaker is not None and self.breaker.open:
            raise seen[0]

    def reads_first(self, target: Target) -> bool:
        """Whether ``target`` is read before its cancel (when no list page gave it)."""
        return (
            not self.cancel_first
            or self.dry_run
            or target.expected_amount is not None
            or target.planned is not None
        )

    async def process(
        self, target: Target, *, key: str, in_flight: InFlight | None = None
    ) -> Result:
        """``_process``, with every error message naming its payment."""
        result = await self._process(target, key=key, in_flight=in_flight)
        error = result.error
        if error is not None and target.payment_id not in error.message:
            named = f"{error.message} (payment {target.payment_id})"
            return replace(result, error=replace(error, message=named))
        return result

    async def _process(
        self, target: Target, *, key: str, in_flight: InFlight | None = None
    ) -> Result:
        """Decide and, unless dry-run, cancel one payment.

        ``in_flight`` marks a cancel journaled as sent whose answer was never recorded
        (a crash mid-flight): the payment is read first and, if released since, counted
        as cancelled by this run (see the module's invariants when no before was
        journaled).
        """
        base = Result(
            run_id=self.run_id,
            account=target.account,
            provider=self.provider.key,
            payment_id=target.payment_id,
            outcome=Outcome.FAILED,
            idempotency_key=None if self.dry_run else key,
        )
        try:
            if in_flight is not None:
                return await self._resume(target, key, in_flight, base)
            before = target.known
            if before is None and self.reads_first(target):
                before = await self.read(target.payment_id)
            if before is None:
                return await self._cancel(target, key, None, base)
            return await self._decide_and_cancel(target, key, before, base)
        except NotFound as exc:
            return replace(base, outcome=Outcome.NOT_FOUND, error=_info(exc))
        except InputError as exc:
            return replace(
                base, outcome=Outcome.INVALID, error=ErrorInfo("invalid_id", exc.message)
            )
        except AuthError as exc:
            return replace(base, error=ErrorInfo(AUTH_FAILED, exc.message, exc.http_status))
        except ProviderError as exc:
            # Any other answer the provider gave (409, 422, an unreadable body...): this
            # payment failed; the run goes on.
            return replace(base, error=_info(exc))
        except JournalError:
            raise
        except Exception as exc:
            return replace(base, error=unexpected_error(self.provider.title, target, exc))

    async def _decide_and_cancel(
        self, target: Target, key: str, before: Payment, base: Result
    ) -> Result:
        verdict = self._decide(target, before)
        if verdict is not None:
            return replace(base, before=before, outcome=verdict[0], error=verdict[1])
        if self.dry_run:
            return replace(base, outcome=Outcome.WOULD_CANCEL, before=before)
        return await self._cancel(target, key, before, replace(base, before=before))

    async def _resume(self, target: Target, key: str, in_flight: InFlight, base: Result) -> Result:
        now = await self.read(target.payment_id)
        if in_flight.before is not None:
            if released(in_flight.before, now):
                return replace(base, outcome=Outcome.CANCELLED, before=in_flight.before, after=now)
            return await self._decide_and_cancel(target, key, now, base)
        if now.cancelable or not was_cancelled(now):
            # Still open: the cancel did not land (re-sent with the same key); or not
            # cancellable for another reason: decided from the read.
            return await self._decide_and_cancel(target, key, now, base)
        return self._attribute(now, base)

    def _attribute(self, now: Payment, base: Result) -> Result:
        """``now`` shows cancelled after a cancel of ours with no before state whose
        answer was lost: counted as ours (see the module docstring)."""
        return replace(base, outcome=Outcome.CANCELLED, before=implied_before(now), after=now)

    def _decide(self, target: Target, before: Payment) -> tuple[Outcome, ErrorInfo | None] | None:
        if target.planned is not None:
            drift = changed_since(target.planned, before)
            if drift is not None:
                return Outcome.NOT_CANCELLABLE, ErrorInfo(CHANGED_SINCE_PLAN, drift)
        if target.expected_amount is not None:
            problem = amount_mismatch(target.expected_amount, before)
            if problem is not None:
                return Outcome.NOT_CANCELLABLE, ErrorInfo("amount_mismatch", problem)
        if before.cancelable:
            return None
        if was_cancelled(before):
            return Outcome.ALREADY_CANCELLED, None
        return Outcome.NOT_CANCELLABLE, before.refusal()

    async def _cancel(
        self,
        target: Target,
        key: str,
        before: Payment | None,
        base: Result,
    ) -> Result:
        """Send the cancel (retrying) and classify the answer.  ``before`` is None when
        no read came first."""
        if self.before_send is not None:
            await self.before_send(target, key, before)
        sending = Sending(target, key, before, replace(base, idempotency_key=key))
        seen: list[Exception] = []
        try:
            async for attempt in self._retrying(self._cancel_backoff, seen):
                with attempt:
                    self._stop_if_tripped(seen)
                    return await self._attempt(sending)
        except NotCancellable as exc:
            return await self._refused(sending, exc)
        except (RateLimited, ProviderUnavailable, Busy) as exc:
            return sending.gave_up(exc)
        except JournalError:
            raise
        except PaycancelError as exc:
            if isinstance(exc, AuthError | NotFound):
                raise
            return sending.gave_up(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, sending: Sending) -> Result:
        """One round of the retry loop: a fresh key if the provider asked for one, a
        read-back if the last answer was lost, then the cancel and its answer."""
        if sending.renew:
            sending.renew_key()
            if self.on_new_key is not None:
                await self.on_new_key(sending.target, sending.key)
        if sending.uncertain:
            settled = await self._read_back(sending)
            if settled is not None:
                return settled
        sending.attempts += 1
        after = await self._send(sending)
        if released(sending.before, after):
            return sending.cancelled(after)
        # The provider said yes but the payment it shows is not released (still open, or
        # in a state no cancel leads to): confirmed only by a read-back, never assumed.
        now = await self.read(sending.target.payment_id)
        if released(sending.before, now):
            return sending.cancelled(now)
        return sending.not_confirmed(now)

    async def _read_back(self, sending: Sending) -> Result | None:
        """After a lost answer: the result when a read settles the payment, or None to
        send the cancel again (the payment is still open)."""
        try:
            now = await self.read(sending.target.payment_id)
        except (RateLimited, ProviderUnavailable, Busy):
            if not sending.accepted:
                raise
            # The provider took the cancel and the state after it cannot be read (the
            # read retried already): the answer stands; rounds of re-sends and read-backs
            # gain nothing.
            return sending.gave_up(None)
        if sending.before is None and now.cancelable:
            sending.before = now  # the lost cancel did not land: now we know
        elif released(sending.before, now):
            # With no before state, a payment shown cancelled counts as ours (see the
            # module docstring).
            return sending.cancelled(now)
        elif not now.cancelable:
            outcome, error = self._decide(sending.target, now) or (Outcome.FAILED, None)
            return sending.result(
                outcome=outcome, before=sending.before or now, after=now, error=error
            )
        # Still open: whatever an earlier answer accepted did not take.
        sending.uncertain = sending.accepted = False
        return None

    async def _send(self, sending: Sending) -> Payment:
        """One cancel request; what its failure says is noted on ``sending``."""
        target = sending.target
        try:
            return await self._watched(
                target.payment_id,
                self.provider.cancel(
                    target.payment_id, reason=target.reason, idempotency_key=sending.key
                ),
            )
        except ProviderUnavailable as exc:
            sending.lost(exc.ambiguous, accepted=exc.accepted)
            raise
        except Busy as exc:
            sending.renew = exc.fresh_key
            raise
        except (PaycancelError, JournalError):
            raise
        except Exception as exc:
            # An answer the adapter could not make sense of: the cancel may have
            # happened; read it back before deciding anything.
            sending.lost(True)
            info = unexpected_error(self.provider.title, target, exc)
            raise ProviderUnavailable(info.message, code=info.code, ambiguous=True) from None

    async def _refused(self, sending: Sending, exc: NotCancellable) -> Result:
        before = sending.before
        done = sending.result()
        if before is None and exc.already_cancelled is not None:
            # Sent first, and the answer says what the payment is: no read needed.
            if exc.already_cancelled:
                return replace(done, outcome=Outcome.ALREADY_CANCELLED)
            error = replace(_info(exc), code=exc.status or exc.code, provider_code=exc.code)
            return replace(done, outcome=Outcome.NOT_CANCELLABLE, error=error)
        # The state changed since the read, or the refusal does not say why: find out.
        now = await self.read(sending.target.payment_id)
        if sending.ever_uncertain and released(before, now):
            return sending.cancelled(now)
        # Sent first: a refusal changed nothing, so this read is the before state.
        seen, after = (now, None) if before is None else (before, now)
        if exc.already_cancelled or was_cancelled(now):
            return replace(done, outcome=Outcome.ALREADY_CANCELLED, before=seen, after=after)
        if now.cancelable:
            # Refused, yet the payment still shows something to cancel: the refusal
            # was not about its state (a bad request), so a person must look.
            return replace(
                done,
                error=ErrorInfo(
                    exc.code,
                    f"{exc.message}; the payment is still {now.native_status}",
                    exc.http_status,
                ),
                before=seen,
                after=after,
            )
        # Sent first, the read says why (as a read first would have); else the state
        # changed since the read, and the refusal's own code says how.
        error = replace(
            now.refusal(),
            message=exc.message if before is not None else now.why_not or exc.message,
            http_status=exc.http_status,
            provider_code=exc.code or now.native_status,
        )
        return replace(done, outcome=Outcome.NOT_CANCELLABLE, error=error, before=seen, after=after)

    def _retrying(self, hook: Hook, seen: list[Exception]) -> AsyncIterator[stamina.Attempt]:
        """Retries by ``hook``; ``seen`` keeps the failure that asked for each retry, and
        an open breaker asks for none."""

        def on(exc: Exception) -> bool | float:
            seen[:] = [exc]
            if self.breaker is not None and self.breaker.open:
                return False
            return hook(exc)

        return self.policy.retrying(on)

    def _read_backoff(self, exc: Exception) -> bool | float:
        """A read's retries: the policy's backoff."""
        return self.policy.backoff(exc)

    def _cancel_backoff(self, exc: Exception) -> bool | float:
        """A cancel's retries: the policy's backoff, and at least the provider's floor
        between cancels (Vipps)."""
        wait = self._read_backoff(exc)
        floor = self.provider.min_cancel_retry_s
        if wait is False or not floor:
            return wait
        return max(floor, 0.0 if wait is True else wait)


@dataclass
class Sending:
    """One payment's cancel across its retries: what is known and what the last
    answers said."""

    target: Target
    key: str
    before: Payment | None  # None: sent first, and no read has shown the payment open
    base: Result  # the result so far, carrying the key last sent
    attempts: int = 0  # cancel requests sent
    uncertain: bool = False  # the last answer was lost: read back before sending again
    ever_uncertain: bool = False  # some answer was lost: the cancel may have landed
    accepted: bool = False  # a lost answer the provider accepted (Compago)
    renew: bool = False  # the provider keeps the refusal under this key: send a fresh one

    def renew_key(self) -> None:
        self.key, self.renew = fresh_key(self.key), False
        self.base = replace(self.base, idempotency_key=self.key)

    def lost(self, ambiguous: bool, *, accepted: bool = False) -> None:
        """The cancel's answer failed; ``ambiguous``: it may have landed."""
        self.uncertain = ambiguous
        self.ever_uncertain = self.ever_uncertain or ambiguous
        self.accepted = self.accepted or accepted

    def result(
        self,
        outcome: Outcome = Outcome.FAILED,
        *,
        before: Payment | None = None,
        after: Payment | None = None,
        error: ErrorInfo | None = None,
    ) -> Result:
        """The result so far (the key last sent, the attempts made), with ``outcome``;
        ``before`` defaults to the before state known now."""
        return replace(
            self.base,
            outcome=outcome,
            before=self.before if before is None else before,
            after=after,
            error=error,
            attempts=self.attempts,
        )

    def cancelled(self, now: Payment) -> Result:
        """Released, so cancelled: ``now`` shows the release."""
        return self.result(
            outcome=Outcome.CANCELLED, before=self.before or implied_before(now), after=now
        )

    def not_confirmed(self, now: Payment) -> Result:
        target = self.target
        shows = (
            "still shows an amount to release"
            if now.cancelable
            else f"shows {now.native_status}, not cancelled"
        )
        return self.result(
            before=self.before or now,
            after=now,
            error=ErrorInfo(
                "not_confirmed",
                f"the provider accepted the cancel but the payment {shows}; check it with "
                f"`paycancel status {target.payment_id} --account {target.account}`",
            ),
        )

    def gave_up(self, exc: PaycancelError | None) -> Result:
        """The retries ended with ``exc`` (None: a read after an accepted cancel
        failed)."""
        if self.accepted or exc is None:
            # The provider accepted the cancel; only the state after it could not be
            # read: confirmed, with no after state to show.
            return self.result(outcome=Outcome.CANCELLED)
        error = _info(exc)
        if self.ever_uncertain and isinstance(exc, RateLimited | ProviderUnavailable | Busy):
            # Still transient: a resume (or a new run) reads it back first.
            target = self.target
            error = ErrorInfo(
                UNCERTAIN,
                f"{exc.message}; the cancel may have been applied: check with "
                f"`paycancel status {target.payment_id} --account {target.account}`",
                exc.http_status,
                transient=True,
            )
        return self.result(error=error)


def unexpected_error(provider: str, target: Target, exc: Exception) -> ErrorInfo:
    """An exception no layer expected, as one payment's error (never a traceback)."""
    text = str(exc)[:300] or "no details"
    return ErrorInfo(
        INTERNAL,
        f"{provider}: payment {target.payment_id}: unexpected {type(exc).__name__} while "
        f"handling the provider's answer ({text}); check it with `paycancel status "
        f"{target.payment_id} --account {target.account}`",
    )


def _info(exc: PaycancelError) -> ErrorInfo:
    code = getattr(exc, "code", None)
    status = getattr(exc, "http_status", None)
    return ErrorInfo(code, exc.message, status, transient=exc.retryable)
