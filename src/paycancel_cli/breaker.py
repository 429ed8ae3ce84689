"""The circuit breaker of one account in one run: stop hammering a dead provider.

The rule (the README's "Circuit breaker"): after ``THRESHOLD`` consecutive transient
failures of requests to one account (5xx, timeouts, dropped or refused connections),
spanning at least ``MIN_PAYMENTS`` different payments, with no answer from the
provider in between, the breaker opens for the rest of the invocation.  From then on
no new request goes to that account: payments in flight stop retrying and end as
transient failures (a cancel that may have landed is ``uncertain``, and read back
first by a resume), and the account's payments not yet started end at once, without
a request, as transient failures with code ``circuit_open``.  The run exits 5 and
``--resume`` tries them all again.

Invariants:
- Any answer the provider gives (a success, a 404, a refusal, a 401) closes the
  streak: the provider is there.  A 429 or a busy answer (Vipps 423) is neither: it is
  a provider pacing us, honoured by waiting, and never opens the breaker.
- One payment failing on its own (a hostile answer about that payment alone) cannot
  open it, because the streak must span several payments.
- Once open it stays open: a run does not probe a dead provider again; the resume
  does, later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

THRESHOLD = 10
MIN_PAYMENTS = 3
CIRCUIT_OPEN = "circuit_open"


@dataclass
class Breaker:
    threshold: int = THRESHOLD
    min_payments: int = MIN_PAYMENTS
    streak: int = 0
    payments: set[str] = field(default_factory=set)
    open: bool = False

    def failure(self, payment_id: str) -> None:
        """A request about ``payment_id`` failed for a transient cause."""
        self.streak += 1
        self.payments.add(payment_id)
        if self.streak >= self.threshold and len(self.payments) >= self.min_payments:
            self.open = True

    def answered(self) -> None:
        """The provider answered (whatever it said)."""
        self.streak = 0
        self.payments.clear()

    def message(self, account: str) -> str:
        return (
            f"not sent: account {account!r} failed {self.threshold} or more requests in a "
            "row (5xx, timeouts, connection errors), so this run stopped sending to it; "
            "`paycancel bulk-cancel --resume RUN_ID` tries again later"
        )
