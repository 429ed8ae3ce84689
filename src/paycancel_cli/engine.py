"""The core: decide and carry out one payment's cancel, truthfully.

For each payment: read it (the before state) unless a list page already gave it,
check the guard (expected amount) and whether it can be cancelled, then cancel with
a deterministic idempotency key, retrying 429, 5xx and network errors with backoff
from stamina (honouring the provider's Retry-After or rate-limit reset).

Invariants:
- An outcome is what the provider confirmed: ``cancelled`` only from a successful
  cancel answer, or from a read-back that shows the payment released after a cancel
  of ours whose answer was lost.
- After an ambiguous failure (timeout, dropped connection, 5xx on the cancel) the
  payment is read back before anything is sent again.
- ``before_send`` (the journal's in-flight record) runs before the first cancel
  request; if it raises, nothing is sent.  ``on_new_key`` records a fresh idempotency
  key before the retry that carries it (a provider that keeps a transient refusal
  under the key, Vipps 6160); the result names the key last sent.
- Any unexpected exception while reading or cancelling one payment fails that payment
  (``failed``, naming the provider, the payment and what went wrong); only a
  ``JournalError`` leaves ``process``, because the run must stop when it cannot record.
- This module never looks at a provider's field names and imports neither typer nor
  rich.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

import stamina

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
from paycancel_cli.models import ErrorInfo, Money, Outcome, Payment, PaymentStatus, Result

if TYPE_CHECKING:
    from paycancel_cli.providers.base import Provider

log = logging.getLogger("paycancel.retry")


def _log_retry(details: stamina.instrumentation.RetryDetails) -> None:
    log.debug(
        "retry %s of %s in %.2fs after %s",
        details.retry_num,
        details.name,
        details.wait_for,
        type(details.caused_by).__name__,
    )


# stamina's default hook logs a WARNING per retry through the root logger; paycancel keeps
# retries in its own verbose log and reports the outcome instead.
stamina.instrumentation.set_on_retry_hooks([_log_retry])

AUTH_FAILED = "auth_failed"
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


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    wait_initial: float = 0.5
    wait_max: float = 30.0
    wait_jitter: float = 0.5
    timeout: float | None = 600.0
    max_retry_after: float = 120.0


@dataclass(frozen=True)
class Target:
    """One payment to process, as validated input."""

    account: str
    payment_id: str
    reason: str
    expected_amount: Money | None = None
    known: Payment | None = None  # the before state when a list page gave it


BeforeSend = Callable[[Target, str, Payment], Awaitable[None]]
OnNewKey = Callable[[Target, str], Awaitable[None]]


def was_cancelled(payment: Payment) -> bool:
    """Cancelled before: nothing is left to release and something was released."""
    if payment.status is PaymentStatus.CANCELLED:
        return True
    return not payment.cancelable and payment.cancelled is not None and payment.cancelled.value > 0


def released(before: Payment, now: Payment) -> bool:
    """True when ``now`` shows a release that ``before`` did not."""
    if now.status is PaymentStatus.CANCELLED and before.status is not PaymentStatus.CANCELLED:
        return True
    if now.cancelled is not None and before.cancelled is not None:
        return now.cancelled.value > before.cancelled.value and not now.cancelable
    return False


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
    ) -> None:
        self.provider = provider
        self.run_id = run_id
        self.policy = policy or RetryPolicy()
        self.dry_run = dry_run
        self.before_send = before_send
        self.on_new_key = on_new_key

    async def read(self, payment_id: str) -> Payment:
        """Read one payment, retrying transient failures."""
        async for attempt in self._retrying(self._read_backoff):
            with attempt:
                return await self.provider.get(payment_id)
        raise AssertionError("unreachable")  # pragma: no cover

    async def process(
        self, target: Target, *, key: str, uncertain: Payment | None = None
    ) -> Result:
        """``_process``, with every error message naming its payment."""
        result = await self._process(target, key=key, uncertain=uncertain)
        error = result.error
        if error is not None and target.payment_id not in error.message:
            named = f"{error.message} (payment {target.payment_id})"
            return replace(result, error=replace(error, message=named))
        return result

    async def _process(
        self, target: Target, *, key: str, uncertain: Payment | None = None
    ) -> Result:
        """Decide and, unless dry-run, cancel one payment.

        ``uncertain`` is the before state journaled for a cancel whose answer was never
        recorded (a crash mid-flight): the payment is read first and, if released
        since, counted as cancelled by this run.
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
            before = target.known if uncertain is None and target.known else None
            if before is None:
                before = await self.read(target.payment_id)
            if uncertain is not None and released(uncertain, before):
                return replace(base, outcome=Outcome.CANCELLED, before=uncertain, after=before)
            verdict = self._decide(target, before)
            if verdict is not None:
                return replace(base, before=before, outcome=verdict[0], error=verdict[1])
            if self.dry_run:
                return replace(base, outcome=Outcome.WOULD_CANCEL, before=before)
            return await self._cancel(target, key, before, replace(base, before=before))
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

    def _decide(self, target: Target, before: Payment) -> tuple[Outcome, ErrorInfo | None] | None:
        if target.expected_amount is not None:
            problem = amount_mismatch(target.expected_amount, before)
            if problem is not None:
                return Outcome.NOT_CANCELLABLE, ErrorInfo("amount_mismatch", problem)
        if before.cancelable:
            return None
        if was_cancelled(before):
            return Outcome.ALREADY_CANCELLED, None
        why = before.why_not or f"status {before.native_status}"
        return Outcome.NOT_CANCELLABLE, ErrorInfo(before.native_status, why)

    async def _cancel(self, target: Target, key: str, before: Payment, base: Result) -> Result:
        if self.before_send is not None:
            await self.before_send(target, key, before)
        attempts = 0
        uncertain = ever_uncertain = renew = False
        base = replace(base, idempotency_key=key)
        try:
            async for attempt in self._retrying(self._cancel_backoff):
                with attempt:
                    if renew:
                        key, renew = fresh_key(key), False
                        if self.on_new_key is not None:
                            await self.on_new_key(target, key)
                        base = replace(base, idempotency_key=key)
                    if uncertain:
                        now = await self.read(target.payment_id)
                        if released(before, now):
                            return replace(
                                base, outcome=Outcome.CANCELLED, after=now, attempts=attempts
                            )
                        if not now.cancelable:
                            outcome, error = self._decide(target, now) or (Outcome.FAILED, None)
                            return replace(
                                base, outcome=outcome, after=now, error=error, attempts=attempts
                            )
                        uncertain = False
                    attempts += 1
                    try:
                        after = await self.provider.cancel(
                            target.payment_id, reason=target.reason, idempotency_key=key
                        )
                    except ProviderUnavailable as exc:
                        uncertain = exc.ambiguous
                        ever_uncertain = ever_uncertain or exc.ambiguous
                        raise
                    except Busy as exc:
                        renew = exc.fresh_key
                        raise
                    except (PaycancelError, JournalError):
                        raise
                    except Exception as exc:
                        # An answer the adapter could not make sense of: the cancel may
                        # have happened; read it back before deciding anything.
                        uncertain = ever_uncertain = True
                        info = unexpected_error(self.provider.title, target, exc)
                        raise ProviderUnavailable(
                            info.message, code=info.code, ambiguous=True
                        ) from None
                    if after.cancelable and not released(before, after):
                        # The provider said yes but the payment still shows something to
                        # release: confirmed only by a read-back, never assumed.
                        now = await self.read(target.payment_id)
                        if released(before, now):
                            return replace(
                                base, outcome=Outcome.CANCELLED, after=now, attempts=attempts
                            )
                        return replace(
                            base,
                            after=now,
                            attempts=attempts,
                            error=ErrorInfo(
                                "not_confirmed",
                                "the provider accepted the cancel but the payment still shows "
                                "an amount to release; check it with `paycancel status "
                                f"{target.payment_id} --account {target.account}`",
                            ),
                        )
                    return replace(base, outcome=Outcome.CANCELLED, after=after, attempts=attempts)
        except NotCancellable as exc:
            # The state changed since the read: find out how.
            now = await self.read(target.payment_id)
            if ever_uncertain and released(before, now):
                return replace(base, outcome=Outcome.CANCELLED, after=now, attempts=attempts)
            if exc.already_cancelled or was_cancelled(now):
                return replace(
                    base, outcome=Outcome.ALREADY_CANCELLED, after=now, attempts=attempts
                )
            if now.cancelable:
                # Refused, yet the payment still shows something to cancel: the refusal
                # was not about its state (a bad request), so a person must look.
                return replace(
                    base,
                    after=now,
                    attempts=attempts,
                    error=ErrorInfo(
                        exc.code,
                        f"{exc.message}; the payment is still {now.native_status}",
                        exc.http_status,
                    ),
                )
            return replace(
                base,
                outcome=Outcome.NOT_CANCELLABLE,
                after=now,
                error=_info(exc),
                attempts=attempts,
            )
        except (RateLimited, ProviderUnavailable, Busy) as exc:
            error = _info(exc)
            if ever_uncertain:
                # Still transient: a resume (or a new run) reads it back first.
                error = ErrorInfo(
                    UNCERTAIN,
                    f"{exc.message}; the cancel may have been applied: check with "
                    f"`paycancel status {target.payment_id} --account {target.account}`",
                    exc.http_status,
                    transient=True,
                )
            return replace(base, error=error, attempts=attempts)
        except JournalError:
            raise
        except PaycancelError as exc:
            if isinstance(exc, AuthError | NotFound):
                raise
            return replace(base, error=_info(exc), attempts=attempts)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retrying(
        self, hook: Callable[[Exception], bool | float]
    ) -> stamina._core._RetryContextIterator:
        p = self.policy
        return stamina.retry_context(
            on=hook,
            attempts=p.attempts,
            timeout=p.timeout,
            wait_initial=p.wait_initial,
            wait_max=p.wait_max,
            wait_jitter=p.wait_jitter,
        )

    def _read_backoff(self, exc: Exception) -> bool | float:
        if isinstance(exc, RateLimited | Busy) and exc.retry_after is not None:
            # Spread the herd that a shared window releases at once.
            wait = min(exc.retry_after, self.policy.max_retry_after)
            return wait + random.uniform(0, min(1.0, wait / 4 + 0.05))
        return isinstance(exc, RateLimited | ProviderUnavailable | Busy)

    def _cancel_backoff(self, exc: Exception) -> bool | float:
        wait = self._read_backoff(exc)
        floor = self.provider.min_cancel_retry_s
        if wait is False or not floor:
            return wait
        return max(floor, 0.0 if wait is True else wait)


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


def cancelled_totals(results: list[Result]) -> tuple[dict[str, Decimal], int]:
    """Amounts released per currency by ``cancelled`` results, and how many of those
    results had no amount to add."""
    totals: dict[str, Decimal] = {}
    unknown = 0
    for result in results:
        if result.outcome is not Outcome.CANCELLED:
            continue
        money = result.released()
        if money is None:
            unknown += 1
        else:
            totals[money.currency] = totals.get(money.currency, Decimal(0)) + money.value
    return totals, unknown
