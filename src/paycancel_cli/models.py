"""Plain typed data shared by every layer: money, normalized payments, outcomes, results.

Invariants:
- Money is a ``Decimal`` in major units plus an upper-case ISO 4217 code; it is built
  from each provider's wire form (minor-unit integers or decimal major units) and never
  passes through ``float``.
- A ``Payment`` is the normalized view of one provider's payment: ``status`` is one of
  ``PaymentStatus``; ``native_status`` keeps the provider's own word; ``cancelable`` is
  decided by the provider module, and ``why_not`` says why when it is false.
- ``Result`` is what one payment ended in; only the engine makes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


@dataclass(frozen=True, slots=True)
class Money:
    value: Decimal
    currency: str

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        if isinstance(minor, bool) or not isinstance(minor, int):
            raise TypeError(f"minor units must be an integer, got {type(minor).__name__}")
        currency = currency.upper()
        return cls(Decimal(minor).scaleb(-currency_exponent(currency)), currency)

    @classmethod
    def from_major(cls, value: Decimal | int | str, currency: str) -> Money:
        if isinstance(value, float):
            raise TypeError("money must not be built from float")
        return cls(Decimal(value), currency.upper())

    def quantized(self) -> Decimal:
        return self.value.quantize(Decimal(1).scaleb(-currency_exponent(self.currency)))

    def __str__(self) -> str:
        return f"{self.quantized()} {self.currency}"

    def to_json(self) -> dict[str, str]:
        return {"value": str(self.quantized()), "currency": self.currency}

    @classmethod
    def from_json(cls, data: dict[str, str] | None) -> Money | None:
        return None if data is None else cls(Decimal(data["value"]), data["currency"])


# The native status of a before state that was not read but implied by the cancel
# answer (cancel first): reports and tables show it as not read, never as a value.
IMPLIED = "implied by the cancel answer"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PROCESSING = "processing"
    PARTIALLY_CAPTURED = "partially_captured"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Payment:
    account: str
    provider: str
    payment_id: str
    status: PaymentStatus
    native_status: str
    cancelable: bool
    why_not: str | None = None
    amount: Money | None = None
    authorized: Money | None = None
    captured: Money | None = None
    cancelled: Money | None = None
    refunded: Money | None = None
    subscription_id: str | None = None
    # The provider's other amount where it differs from ``amount`` (FlexPortal's
    # ``amount`` field beside its ``total``), for the operator to see.
    amount_note: str | None = None

    def releasable(self) -> Money | None:
        """What a cancel would release now: where the provider keeps aggregates (an
        authorized amount), authorized minus captured minus cancelled; otherwise the
        payment's amount.  None when the provider gives no amount."""
        if self.authorized is not None and self.authorized.value != 0:
            spent = sum(
                (m.value for m in (self.captured, self.cancelled) if m is not None), Decimal(0)
            )
            return Money(self.authorized.value - spent, self.authorized.currency)
        return self.amount

    @property
    def was_read(self) -> bool:
        """False for a before state nobody read (implied by a cancel answer)."""
        return self.native_status != IMPLIED

    def refusal(self) -> ErrorInfo:
        """Why this state refuses a cancel: the normalized code (the status that
        forbids it), the provider's own word beside it."""
        why = self.why_not or f"status {self.native_status}"
        return ErrorInfo(self.status.value, why, provider_code=self.native_status)

    def to_json(self) -> dict[str, Any]:
        def money(m: Money | None) -> dict[str, str] | None:
            return None if m is None else m.to_json()

        out = {
            "account": self.account,
            "provider": self.provider,
            "payment_id": self.payment_id,
            "status": self.status.value,
            "native_status": self.native_status,
            "cancelable": self.cancelable,
            "why_not": self.why_not,
            "amount": money(self.amount),
            "authorized": money(self.authorized),
            "captured": money(self.captured),
            "cancelled": money(self.cancelled),
            "refunded": money(self.refunded),
        }
        if self.amount_note is not None:
            out["amount_note"] = self.amount_note
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Payment:
        return cls(
            account=data["account"],
            provider=data["provider"],
            payment_id=data["payment_id"],
            status=PaymentStatus(data["status"]),
            native_status=data["native_status"],
            cancelable=data["cancelable"],
            why_not=data.get("why_not"),
            amount=Money.from_json(data.get("amount")),
            authorized=Money.from_json(data.get("authorized")),
            captured=Money.from_json(data.get("captured")),
            cancelled=Money.from_json(data.get("cancelled")),
            refunded=Money.from_json(data.get("refunded")),
            amount_note=data.get("amount_note"),
        )


AGGREGATES = ("authorized", "captured", "cancelled", "refunded")


class Outcome(StrEnum):
    CANCELLED = "cancelled"
    ALREADY_CANCELLED = "already_cancelled"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    WOULD_CANCEL = "would_cancel"
    INVALID = "invalid"

    @property
    def is_success(self) -> bool:
        return self in (Outcome.CANCELLED, Outcome.ALREADY_CANCELLED, Outcome.WOULD_CANCEL)


# The error code of a payment whose account's credentials were rejected (exit 3).
AUTH_FAILED = "auth_failed"


def verdict(result: Result) -> int:
    """One result's share of the exit code: 0 done, 3 credentials rejected, 5 failed
    for a transient cause, 1 anything a person must look at."""
    if result.outcome.is_success:
        return 0
    error = result.error
    if error is not None and error.code == AUTH_FAILED:
        return 3
    if result.outcome is Outcome.FAILED and error is not None and error.transient:
        return 5
    return 1


# Which exit code a command ends with when several apply (SPEC "Exit codes"): an
# interruption, then usage, credentials, a lock, something to look at, a transient cause.
PRECEDENCE = (130, 2, 3, 4, 1, 5)


def most_severe(codes: Iterable[int]) -> int:
    """The one exit code of several (results, resumes, checks): the first of
    ``PRECEDENCE`` among them, else 0.  Every command's exit code comes from here."""
    seen = set(codes)
    return next((c for c in PRECEDENCE if c in seen), 0)


def combine(verdicts: Iterable[int], *, remaining: int = 0) -> int:
    """The exit code of a run from its results' verdicts (SPEC "Exit codes"; 2 and 4
    stop a command before it has results, 130 is the caller's): 3, then 1 (payments
    left unprocessed count as 1), then 5, then 0."""
    return most_severe([*verdicts, *([1] if remaining else [])])


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a payment failed.  ``transient`` marks a cause that trying again later may
    clear (provider unreachable, timeouts, 5xx, 429 or busy beyond the retry budget):
    decided from the exception's class where the failure is classified, never from
    the message; it decides exit 5 and what ``--resume`` tries again."""

    code: str | None
    message: str
    http_status: int | None = None
    transient: bool = False
    # A refusal's own code at the provider (``ALREADY_PAID``, ``6040``...), beside the
    # normalized ``code`` (the status that forbids the cancel).
    provider_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # the fields in their order are the record

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorInfo:
        return cls(
            data.get("code"),
            str(data.get("message", "")),
            data.get("http_status"),
            bool(data.get("transient", False)),
            data.get("provider_code"),
        )


@dataclass(frozen=True, slots=True)
class Result:
    run_id: str | None
    account: str
    provider: str
    payment_id: str
    outcome: Outcome
    before: Payment | None = None
    after: Payment | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    idempotency_key: str | None = None

    def released(self) -> Money | None:
        """What this result released: for ``cancelled`` only.

        Where the provider keeps a cancelled aggregate (Vipps) it is the cancelled
        amount after minus before; otherwise the payment's amount.
        """
        if self.outcome is not Outcome.CANCELLED:
            return None
        if self.after is not None and self.after.cancelled is not None:
            before = self.before.cancelled if self.before is not None else None
            start = before.value if before is not None else Decimal(0)
            return Money(self.after.cancelled.value - start, self.after.cancelled.currency)
        for p in (self.after, self.before):
            if p is not None and p.amount is not None:
                return p.amount
        return None

    def would_release(self) -> Money | None:
        """What a dry run's ``would_cancel`` would have released (None otherwise)."""
        if self.outcome is not Outcome.WOULD_CANCEL or self.before is None:
            return None
        return self.before.releasable()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "result",
            "run_id": self.run_id,
            "account": self.account,
            "provider": self.provider,
            "payment_id": self.payment_id,
            "outcome": self.outcome.value,
            "before": None if self.before is None else self.before.to_json(),
            "after": None if self.after is None else self.after.to_json(),
            "error": None if self.error is None else self.error.to_json(),
            "attempts": self.attempts,
            "idempotency_key": self.idempotency_key,
        }
