"""The engine's small rules, one at a time: what counts as cancelled and released, the
before a cancel answer implies, the amount guard's words, the keys renewed after a
spent one, the totals per currency, the waits chosen before a retry, and the retry log.

Written against the survivors of ``bench/mutate.py --module engine``: each test fails
on a careless change to its rule that the scenario tests did not notice.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
import stamina

from paycancel_cli import engine, retries
from paycancel_cli.breaker import Breaker
from paycancel_cli.engine import (
    IMPLIED,
    BeforeSend,
    Canceller,
    InFlight,
    Target,
    _info,
    amount_mismatch,
    fresh_key,
    idempotency_key,
    implied_before,
    released,
    was_cancelled,
)
from paycancel_cli.errors import (
    Busy,
    NotCancellable,
    PaycancelError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from paycancel_cli.models import ErrorInfo, Money, Outcome, Payment, PaymentStatus, Result
from paycancel_cli.providers import make_provider

from .conftest import Retries
from .test_providers_unit import account, jresp, vipps_payment
from .test_regressions import run_engine


def pay(
    status: PaymentStatus = PaymentStatus.AUTHORIZED,
    *,
    cancelable: bool = True,
    amount: str | None = "10.00",
    cancelled: str | None = None,
    currency: str = "NOK",
    note: str | None = None,
) -> Payment:
    return Payment(
        account="a",
        provider="vipps",
        payment_id="ref-00000001",
        status=status,
        native_status=status.value.upper(),
        cancelable=cancelable,
        why_not=None if cancelable else "no",
        amount=None if amount is None else Money(Decimal(amount), currency),
        authorized=None if amount is None else Money(Decimal(amount), currency),
        cancelled=None if cancelled is None else Money(Decimal(cancelled), currency),
        amount_note=note,
    )


# was_cancelled / released / implied_before


def test_was_cancelled_needs_nothing_left_and_something_released() -> None:
    assert was_cancelled(pay(PaymentStatus.CANCELLED, cancelable=False))
    # Vipps after a release: state AUTHORIZED, nothing left, a cancelled aggregate
    assert was_cancelled(pay(cancelable=False, cancelled="0.50"))
    # still something to cancel (a partial release): not cancelled
    assert not was_cancelled(pay(cancelable=True, cancelled="5.00"))
    # nothing left because it was captured: not cancelled
    assert not was_cancelled(pay(PaymentStatus.SUCCEEDED, cancelable=False, cancelled="0"))
    assert not was_cancelled(pay(PaymentStatus.SUCCEEDED, cancelable=False))


def test_released_compares_the_cancelled_aggregate_and_the_status() -> None:
    open_ = pay()
    gone = pay(PaymentStatus.CANCELLED, cancelable=False)
    assert released(open_, gone)
    assert not released(gone, gone)  # cancelled before: not this cancel's release
    assert released(pay(cancelled="0"), pay(cancelable=False, cancelled="10.00"))
    assert not released(pay(cancelled="0"), pay(cancelable=False, cancelled="0"))
    assert not released(pay(cancelled="0"), pay(cancelable=True, cancelled="5.00"))
    # one side without an aggregate: nothing to compare, no release
    assert not released(pay(cancelled=None), pay(cancelable=False, cancelled="10.00"))
    assert not released(pay(cancelled="0"), pay(cancelable=False, cancelled=None))
    # no before: released when the payment shows released at all
    assert released(None, gone) and not released(None, open_)


def test_implied_before_is_the_same_payment_open_with_nothing_cancelled() -> None:
    after = pay(PaymentStatus.CANCELLED, cancelable=False, cancelled="10.00")
    before = implied_before(after)
    assert before.status is PaymentStatus.PENDING and before.native_status == IMPLIED
    assert before.cancelable and before.why_not is None and before.cancelled is None
    assert before.amount == after.amount and before.payment_id == after.payment_id


# amount_mismatch


def test_amount_mismatch_says_what_it_saw_and_expected() -> None:
    ten = Money(Decimal("10.00"), "NOK")
    assert amount_mismatch(ten, pay()) is None
    assert amount_mismatch(Money(Decimal("9"), "NOK"), pay()) == (
        "amount is 10.00 NOK, expected 9.00 NOK"
    )
    noted = pay(note="amount 8.00 before tax")
    assert amount_mismatch(Money(Decimal("9"), "NOK"), noted) == (
        "amount is 10.00 NOK (amount 8.00 before tax), expected 9.00 NOK"
    )
    assert amount_mismatch(ten, pay(amount=None)) == (
        "expected amount 10.00 NOK cannot be checked: vipps does not report this payment's amount"
    )


# keys


def test_a_fresh_key_counts_up_from_the_root() -> None:
    root = idempotency_key("run", "acc", "pid")
    assert fresh_key(root) == f"{root}-r1"
    assert fresh_key(f"{root}-r1") == f"{root}-r2"
    assert fresh_key(f"{root}-r9") == f"{root}-r10"
    key = root
    for _ in range(99):
        key = fresh_key(key)
    assert key == f"{root}-r99" and len(key) <= 42  # Vipps allows 50


# totals


def cancelled_totals(results: list[Result]) -> tuple[dict[str, Decimal], int]:
    """What a run's summary sums (``Summary.add``, the one place totals are summed)."""
    from paycancel_cli.runs.summary import Summary

    summary = Summary("r")
    for each in results:
        summary.add(each)
    return summary.cancelled_amounts, summary.unknown_amounts


def result(outcome: Outcome, before: Payment | None, after: Payment | None) -> Result:
    return Result("r", "a", "vipps", "ref-00000001", outcome, before=before, after=after)


def test_cancelled_totals_add_what_each_cancel_released_per_currency() -> None:
    eur = pay(PaymentStatus.PENDING, amount="10.00", currency="EUR")
    eur_done = pay(PaymentStatus.CANCELLED, cancelable=False, amount="2.50", currency="EUR")
    part_before = pay(cancelled="0")
    part_after = pay(cancelable=False, cancelled="7.50")
    no_amount = pay(PaymentStatus.CANCELLED, cancelable=False, amount=None)
    totals, unknown = cancelled_totals(
        [
            result(Outcome.ALREADY_CANCELLED, eur, eur),
            result(Outcome.CANCELLED, None, no_amount),
            result(Outcome.CANCELLED, eur, None),
            result(Outcome.CANCELLED, None, eur_done),
            result(Outcome.CANCELLED, part_before, part_after),
            result(Outcome.CANCELLED, None, no_amount),
            result(Outcome.ALREADY_CANCELLED, eur, eur),
            result(Outcome.NOT_CANCELLABLE, eur, None),
        ]
    )
    assert totals == {"EUR": Decimal("12.50"), "NOK": Decimal("7.50")}
    assert unknown == 2


def test_error_info_from_an_exception_keeps_code_status_and_transience() -> None:
    assert _info(RateLimited("slow", code="rate")) == ErrorInfo("rate", "slow", 429, True)
    assert _info(NotCancellable("no", code="paid", http_status=409)) == ErrorInfo(
        "paid", "no", 409, False
    )
    assert _info(ProviderError("odd")) == ErrorInfo(None, "odd", None, False)
    assert _info(PaycancelError("bare")) == ErrorInfo(None, "bare", None, False)


# waits before a retry


def canceller(provider: str) -> Canceller:
    async def make() -> Canceller:
        acc = account(provider)
        return Canceller(make_provider(acc, httpx.AsyncClient(base_url=acc.url)), run_id="r")

    return asyncio.run(make())


def test_read_backoff_waits_what_the_provider_asks_spread_a_little_and_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fp = canceller("flexportal")
    spreads: list[tuple[float, float]] = []

    def widest(low: float, high: float) -> float:
        spreads.append((low, high))
        return high

    monkeypatch.setattr(engine.random, "uniform", widest)
    for asked, spread in ((7.0, 1.0), (2.0, 0.55), (0.2, 0.1), (0.0, 0.05)):
        wait = fp._read_backoff(RateLimited("slow", retry_after=asked))
        assert wait == pytest.approx(asked + spread)
        assert spreads.pop() == (0, pytest.approx(spread))
    monkeypatch.undo()
    capped = fp._read_backoff(RateLimited("slow", retry_after=3600.0))
    assert isinstance(capped, float) and 120.0 <= capped <= 121.0
    busy = fp._read_backoff(Busy("locked", retry_after=15.0))
    assert isinstance(busy, float) and 15.0 <= busy <= 16.0
    assert fp._read_backoff(Busy("locked")) is True
    assert fp._read_backoff(RateLimited("slow")) is True
    assert fp._read_backoff(ProviderUnavailable("down")) is True
    assert fp._read_backoff(NotCancellable("no")) is False


def test_cancel_backoff_keeps_the_vipps_floor_and_nothing_else_changes() -> None:
    vipps = canceller("vipps")
    assert vipps._cancel_backoff(ProviderUnavailable("down")) == 12.0
    assert vipps._cancel_backoff(RateLimited("slow")) == 12.0
    assert vipps._cancel_backoff(RateLimited("slow", retry_after=3.0)) == 12.0
    assert vipps._cancel_backoff(RateLimited("slow", retry_after=30.0)) >= 30.0
    assert vipps._cancel_backoff(NotCancellable("no")) is False
    fp = canceller("flexportal")
    assert fp._cancel_backoff(ProviderUnavailable("down")) is True
    assert fp._cancel_backoff(NotCancellable("no")) is False
    wait = fp._cancel_backoff(RateLimited("slow", retry_after=2.0))
    assert isinstance(wait, float) and 2.0 <= wait <= 2.6


def test_each_retry_is_logged_with_its_number_wait_and_cause(
    real_retries: Retries, caplog: pytest.LogCaptureFixture
) -> None:
    answers = [
        jresp(429, {"error": {"code": "RATE", "message": "slow"}}, **{"Retry-After": "2"}),
        jresp(200, {"success": True, "payment": {"paymentId": "p1", "total": 1,
                                                 "currency": "EUR", "status": "paid"}}),
    ]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    with caplog.at_level(logging.DEBUG, logger="paycancel.retry"):
        assert run_engine("flexportal", handler, "p1").outcome is Outcome.NOT_CANCELLABLE
    (line,) = [r.getMessage() for r in caplog.records if r.name == "paycancel.retry"]
    # (stamina names a retry_context block "<context block>")
    assert re.fullmatch(r"retry 1 of <context block> in 2\.\d\ds after RateLimited", line), line


# the whole retry's bounds: the jitter's size and the overall timeout


def down_read() -> tuple[Result, int]:
    """A FlexPortal read that gets a 503 every time."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return jresp(503, {"error": {"code": "DOWN", "message": "down"}})

    return run_engine("flexportal", handler, "p1"), calls


@pytest.mark.parametrize(("draw", "jitter"), [("lowest", 0.0), ("highest", 0.5)])
def test_the_backoff_adds_between_none_and_half_a_second_of_jitter(
    real_retries: Retries, monkeypatch: pytest.MonkeyPatch, draw: str, jitter: float
) -> None:
    # Every random draw at one end of its range: the waits are the exponential backoff
    # (0.5 s doubling) plus exactly that end of the jitter.
    monkeypatch.setattr(engine.random, "uniform", lambda low, high: high if jitter else low)
    result, calls = down_read()
    assert result.outcome is Outcome.FAILED and calls == 6
    assert real_retries.waits == [0.5 * 2**n + jitter for n in range(5)], draw


class Clock:
    """A monotonic clock that moves only when a retry waits or a provider is slow."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(real_retries: Retries, monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: object = None) -> object:
        clock.now += delay
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    # the clock stamina's overall timeout reads
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    return clock


def test_retries_stop_once_ten_minutes_have_passed_since_the_first_attempt(
    clock: Clock, real_retries: Retries
) -> None:
    # Each answer takes 30 s and asks for 120 s before the next: the fifth answer comes
    # 10.5 minutes after the first attempt started, past the 600 s bound, so there is
    # no sixth attempt although the policy allows 6.
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now)
        clock.now += 30.0
        return jresp(429, {"error": {"code": "RATE", "message": "slow"}}, **{"Retry-After": "120"})

    started = clock.now
    result = run_engine("flexportal", handler, "p1")
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.code == "RATE" and result.error.transient
    assert len(calls) == 5 and len(real_retries.waits) == 4
    assert all(120.0 <= wait <= 121.0 for wait in real_retries.waits), real_retries.waits
    assert 600.0 <= clock.now - started <= 640.0
    # the fourth answer came before the bound: it was retried
    assert calls[3] + 30.0 - started < 600.0


# refusals and resumes, against a HedgePayments whose answers the test scripts (its
# 409 and a 412 without details do not say what the payment is: the engine reads it)


class FakeHedge:
    def __init__(self, status: str, posts: list[tuple[int, str | None, str | None]]) -> None:
        """``posts``: per cancel, (HTTP status, error code or None, the status the
        payment has after it)."""
        self.status = status
        self.script = posts
        self.gets = 0
        self.keys: list[str] = []

    def body(self) -> dict[str, object]:
        return {"id": "pay_abc", "object": "payment", "amount": 1000, "currency": "USD",
                "status": self.status, "refunded_amount": 0}  # fmt: skip

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.gets += 1
            return jresp(200, self.body())
        self.keys.append(request.headers["idempotency-key"])
        status, code, becomes = self.script.pop(0)
        if becomes is not None:
            self.status = becomes
        if status == 200:
            return jresp(200, self.body())
        return jresp(status, {"error": {"code": code, "message": "refused"}})

    def run(
        self,
        *,
        cancel_first: bool,
        in_flight: InFlight | None = None,
        before_send: BeforeSend | None = None,
    ) -> Result:
        async def go() -> Result:
            acc = account("hedgepayments")
            async with httpx.AsyncClient(
                base_url=acc.url, transport=httpx.MockTransport(self.handler)
            ) as client:
                engine = Canceller(
                    make_provider(acc, client),
                    run_id="r",
                    cancel_first=cancel_first,
                    before_send=before_send,
                )
                target = Target("hedgepayments", "pay_abc", "why")
                return await engine.process(target, key="k1", in_flight=in_flight)

        return asyncio.run(go())


def test_sent_first_a_refusal_that_does_not_say_why_is_read_and_the_read_is_the_before() -> None:
    fake = FakeHedge("succeeded", [(412, "payment_not_cancelable", None)])
    result = fake.run(cancel_first=True)
    assert result.outcome is Outcome.NOT_CANCELLABLE and fake.gets == 1
    # the read's own words, not the refusal's: what a read first would have said
    assert result.error is not None and result.error.code == "succeeded"
    assert result.error.message.startswith("succeeded: refund instead")
    # the refusal's own status and code kept beside the normalized one (refusal codes)
    assert result.error.http_status == 412
    assert result.error.provider_code == "payment_not_cancelable"
    assert result.before is not None and result.before.native_status == "succeeded"
    assert result.after is None and result.attempts == 1


def test_sent_first_a_conflict_on_a_cancelled_payment_is_already_cancelled() -> None:
    fake = FakeHedge("canceled", [(409, "conflict", None)])
    result = fake.run(cancel_first=True)
    assert result.outcome is Outcome.ALREADY_CANCELLED and result.error is None
    assert result.before is not None and result.before.native_status == "canceled"
    assert result.after is None and result.attempts == 1


@pytest.mark.parametrize("cancel_first", [True, False])
def test_a_refusal_while_the_payment_is_still_open_is_for_a_person(cancel_first: bool) -> None:
    fake = FakeHedge("pending", [(409, "idempotency_conflict", None)])
    result = fake.run(cancel_first=cancel_first)
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.code == "idempotency_conflict"
    assert result.error.http_status == 409 and not result.error.transient
    assert result.error.message.endswith("; the payment is still pending")
    assert result.before is not None and result.before.native_status == "pending"
    if cancel_first:
        assert result.after is None
    else:
        assert result.after is not None and result.after.native_status == "pending"


def test_read_first_a_refusal_after_the_state_changed_keeps_the_providers_code() -> None:
    fake = FakeHedge("pending", [(412, "payment_not_cancelable", "succeeded")])
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.NOT_CANCELLABLE
    # normalized to the state that forbids it, the provider's own code beside it
    assert result.error is not None and result.error.code == "succeeded"
    assert result.error.provider_code == "payment_not_cancelable"
    assert result.error.http_status == 412
    # the provider's own words about the refusal, not the read's (the read first saw
    # an open payment: the words of the state read after say nothing of this cancel)
    assert result.error.message == "HedgePayments: refused (payment pay_abc)"
    assert result.before is not None and result.before.native_status == "pending"
    assert result.after is not None and result.after.native_status == "succeeded"


def test_read_first_a_conflict_after_someone_else_cancelled_is_already_cancelled() -> None:
    fake = FakeHedge("pending", [(409, "conflict", "canceled")])
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.ALREADY_CANCELLED and result.error is None
    assert result.before is not None and result.before.native_status == "pending"
    assert result.after is not None and result.after.native_status == "canceled"


@pytest.mark.parametrize("cancel_first", [True, False])
def test_a_refusal_after_a_lost_answer_that_shows_it_released_is_our_cancel(
    cancel_first: bool,
) -> None:
    # The first cancel gets a 503 and does not land; the second lands, but its answer
    # is a conflict (the key's first use still open at the provider): the read says
    # it is cancelled, and only our cancels were sent.
    fake = FakeHedge("pending", [(503, "down", None), (409, "conflict", "canceled")])
    result = fake.run(cancel_first=cancel_first)
    assert result.outcome is Outcome.CANCELLED and result.attempts == 2
    assert result.before is not None and result.before.native_status == "pending"
    assert result.after is not None and result.after.native_status == "canceled"
    assert fake.keys == ["k1", "k1"]


def hedge_payment(status: str) -> Payment:
    return Payment(
        account="hedgepayments",
        provider="hedgepayments",
        payment_id="pay_abc",
        status=PaymentStatus.PENDING,
        native_status=status,
        cancelable=True,
        amount=Money(Decimal("10.00"), "USD"),
    )


def test_resume_with_a_before_finds_the_cancel_landed_and_keeps_what_was_read() -> None:
    before = hedge_payment("read before the crash")
    fake = FakeHedge("canceled", [])
    result = fake.run(cancel_first=True, in_flight=InFlight(before))
    assert result.outcome is Outcome.CANCELLED and fake.keys == [] and fake.gets == 1
    assert result.before == before
    assert result.after is not None and result.after.native_status == "canceled"
    assert result.released() == Money(Decimal("10.00"), "USD")


def test_resume_with_a_before_of_a_cancel_that_never_arrived_sends_it_with_its_key() -> None:
    fake = FakeHedge("pending", [(200, None, "canceled")])
    result = fake.run(cancel_first=True, in_flight=InFlight(hedge_payment("pending")))
    assert result.outcome is Outcome.CANCELLED and fake.keys == ["k1"]
    assert result.idempotency_key == "k1" and result.attempts == 1
    assert result.before is not None and result.before.native_status == "pending"


def test_resume_without_a_before_counts_a_cancelled_payment_as_ours() -> None:
    fake = FakeHedge("canceled", [])
    result = fake.run(cancel_first=True, in_flight=InFlight(None))
    assert result.outcome is Outcome.CANCELLED and fake.keys == []
    assert result.before is not None and result.before.native_status == IMPLIED
    assert result.after is not None and result.after.native_status == "canceled"


@pytest.mark.parametrize(
    ("raised", "shown"), [("boom", "boom"), ("", "no details"), ("y" * 400, "y" * 300)]
)
def test_an_exception_no_layer_expected_fails_the_payment_with_a_clear_message(
    raised: str, shown: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(raised)

    result = run_engine("flexportal", handler, "p1")
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.code == "internal_error" and not result.error.transient
    assert result.error.message == (
        f"FlexPortal: payment p1: unexpected RuntimeError while handling the provider's "
        f"answer ({shown}); check it with `paycancel status p1 --account flexportal`"
    )


class ExplodingHedge(FakeHedge):
    """The first cancel lands, then its answer breaks something beyond the adapter."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not self.keys:
            self.keys.append(request.headers["idempotency-key"])
            self.status = "canceled"
            raise RuntimeError("x" * 400)
        return super().handler(request)


@pytest.mark.parametrize("cancel_first", [True, False])
def test_an_exception_while_cancelling_is_read_back_not_sent_again(cancel_first: bool) -> None:
    fake = ExplodingHedge("pending", [])
    result = fake.run(cancel_first=cancel_first)
    assert result.outcome is Outcome.CANCELLED and fake.keys == ["k1"]
    assert result.after is not None and result.after.native_status == "canceled"
    assert result.before is not None and result.attempts == 1
    assert result.before.native_status == (IMPLIED if cancel_first else "pending")


@pytest.mark.parametrize("cancel_first", [True, False])
def test_a_lost_answer_then_a_read_showing_it_paid_is_not_cancellable(cancel_first: bool) -> None:
    fake = FakeHedge("pending", [(503, "down", "succeeded")])
    result = fake.run(cancel_first=cancel_first)
    assert result.outcome is Outcome.NOT_CANCELLABLE and result.attempts == 1
    assert result.error is not None and result.error.code == "succeeded"
    assert result.after is not None and result.after.native_status == "succeeded"
    assert result.before is not None
    assert result.before.native_status == ("succeeded" if cancel_first else "pending")
    assert fake.keys == ["k1"]


class UnreadableAfterCancel(FakeHedge):
    """The cancel gets a 503 (it may have landed) and every read after it fails."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and self.keys:
            return jresp(503, {"error": {"code": "down", "message": "down"}})
        return super().handler(request)


def test_a_lost_answer_that_cannot_be_read_back_is_never_a_success() -> None:
    fake = UnreadableAfterCancel("pending", [(503, "down", None)] * 20)
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.code == "uncertain" and result.error.transient
    assert len(fake.keys) == 1  # never re-sent blind


def test_the_in_flight_record_gets_the_key_and_the_state_read_first() -> None:
    journaled: list[tuple[str, str | None]] = []

    async def record(target: Target, key: str, before: Payment | None) -> None:
        journaled.append((key, None if before is None else before.native_status))

    fake = FakeHedge("pending", [(200, None, "canceled")])
    assert fake.run(cancel_first=False, before_send=record).outcome is Outcome.CANCELLED
    assert journaled == [("k1", "pending")]


def vipps_problem(code: str) -> dict[str, object]:
    return {"title": "Bad Request", "detail": f"error {code}",
            "extraDetails": [{"name": "ErrorCode", "reason": code}]}  # fmt: skip


def test_a_key_renewed_after_6160_is_kept_for_the_retries_after_it() -> None:
    keys: list[str] = []
    answers = [
        jresp(409, vipps_problem("6160")),
        jresp(503, {"title": "down"}),
        jresp(200, vipps_payment(canc=1000)),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})
        if request.method == "GET":
            return jresp(200, vipps_payment())
        keys.append(request.headers["idempotency-key"])
        return answers.pop(0)

    result = run_engine("vipps", handler, "ref-00000001")
    assert result.outcome is Outcome.CANCELLED
    assert keys == ["k", "k-r1", "k-r1"] and result.idempotency_key == "k-r1"


def test_resume_of_a_partly_released_vipps_payment_whose_rest_was_captured() -> None:
    # Before the crash: 10.00 authorized, 2.50 released earlier, 7.50 left to cancel.
    # Now: the 7.50 was captured; the cancelled aggregate did not grow: not ours.
    payloads = [vipps_payment(canc=250), vipps_payment(cap=750, canc=250)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})
        assert request.method == "GET"
        return jresp(200, payloads.pop(0))

    async def go() -> Result:
        acc = account("vipps")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            provider = make_provider(acc, client)
            before = await provider.get("ref-00000001")
            return await Canceller(provider, run_id="r").process(
                Target("vipps", "ref-00000001", "r"), key="k", in_flight=InFlight(before)
            )

    result = asyncio.run(go())
    assert result.outcome is not Outcome.CANCELLED, result
    assert result.released() is None


def test_two_lost_answers_sent_first_keep_the_state_read_between_them_as_the_before() -> None:
    # Sent first: the first cancel is lost and did not land (the read shows it open: that
    # read is the before); the second lands and its answer is lost too.
    fake = FakeHedge("pending", [(503, "down", None), (503, "down", "canceled")])
    result = fake.run(cancel_first=True)
    assert result.outcome is Outcome.CANCELLED and result.attempts == 2
    assert result.before is not None and result.before.native_status == "pending"
    assert result.after is not None and result.after.native_status == "canceled"
    assert fake.keys == ["k1", "k1"]


def test_an_accepted_compago_cancel_whose_after_state_cannot_be_read_is_cancelled_once() -> None:
    uuid = "7d3f0b4e-0000-4000-8000-000000000001"
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            return jresp(200, {})
        if posts:  # every read after the cancel fails
            return jresp(503, {"title": "down"})
        return jresp(200, {"id": uuid, "status": "PENDING", "expired": False})

    result = run_engine("compago", handler, uuid)
    assert result.outcome is Outcome.CANCELLED and posts == 1
    assert result.before is not None and result.before.native_status == "PENDING"
    assert result.after is None and result.attempts == 1


def test_sent_first_a_lost_answer_then_an_accepted_cancel_keeps_the_read_between() -> None:
    uuid = "7d3f0b4e-0000-4000-8000-000000000001"
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            return jresp(503, {"title": "down"}) if posts == 1 else jresp(200, {})
        if posts >= 2:  # every read after the accepted cancel fails
            return jresp(503, {"title": "down"})
        return jresp(200, {"id": uuid, "status": "PENDING", "expired": False})

    async def go() -> Result:
        acc = account("compago")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            engine = Canceller(make_provider(acc, client), run_id="r", cancel_first=True)
            return await engine.process(Target("compago", uuid, "r"), key="k")

    result = asyncio.run(go())
    assert result.outcome is Outcome.CANCELLED and posts == 2 and result.attempts == 2
    assert result.before is not None and result.before.native_status == "PENDING"


# Vipps races after a lost cancel answer, for a payment partly released before this run
# (10.00 authorized, 2.50 released earlier, 7.50 left): the rest captured meanwhile
# leaves nothing to cancel while the cancelled aggregate still shows 2.50 released.

PARTLY_RELEASED = vipps_payment(canc=250)
REST_CAPTURED = vipps_payment(cap=750, canc=250)


def lost_cancel(kind: str) -> httpx.Response:
    """A cancel whose answer never says what happened: a 5xx, or the connection dropped."""
    if kind == "dropped":
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    return jresp(503, {"title": "Service Unavailable"})


class RacedVipps:
    """A Vipps payment whose reads the test scripts (the last read repeats) and whose
    cancels answer in turn from ``cancels``: ``lost_cancel``'s kind, an HTTP status for
    a 6040 refusal, or the payment a 200 answer shows."""

    def __init__(
        self, reads: list[dict[str, object]], cancels: list[str | int | dict[str, object]]
    ) -> None:
        self.reads = reads
        self.cancels = cancels
        self.gets = 0
        self.posts = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/accesstoken/get"):
            return jresp(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})
        if request.method == "GET":
            self.gets += 1
            return jresp(200, self.reads.pop(0) if len(self.reads) > 1 else self.reads[0])
        self.posts += 1
        answer = self.cancels.pop(0)
        if isinstance(answer, str):
            return lost_cancel(answer)
        if isinstance(answer, dict):
            return jresp(200, answer)
        return jresp(answer, vipps_problem("6040"))

    def run(self) -> Result:
        return run_engine("vipps", self.handler, "ref-00000001")


@pytest.mark.parametrize("lost", ["503", "dropped"])
def test_a_lost_vipps_answer_then_the_rest_captured_is_no_release_by_this_run(lost: str) -> None:
    # Read first: 7.50 left.  The cancel's answer is lost; the read back shows the 7.50
    # captured and still 2.50 released, as before: nothing this run released.
    fake = RacedVipps([PARTLY_RELEASED, REST_CAPTURED], [lost])
    result = fake.run()
    assert result.outcome is Outcome.ALREADY_CANCELLED, result
    assert result.released() is None
    assert fake.posts == 1 and fake.gets == 2 and result.attempts == 1
    assert result.before is not None and result.before.cancelable
    assert result.after is not None and not result.after.cancelable
    assert result.after.captured == Money(Decimal("7.50"), "NOK")
    totals, unknown = cancelled_totals([result])
    assert totals == {} and unknown == 0


@pytest.mark.parametrize("lost", ["503", "dropped"])
def test_a_lost_vipps_answer_then_a_refusal_as_the_rest_was_captured_is_no_release(
    lost: str,
) -> None:
    # Read first: 7.50 left.  The first cancel's answer is lost and the read back shows
    # it did not land (still 7.50 left); before the cancel is sent again, the 7.50 is
    # captured and the second cancel is refused (6040).  The read after the refusal
    # shows 2.50 released, as before the run: not a release by this run.
    fake = RacedVipps([PARTLY_RELEASED, PARTLY_RELEASED, REST_CAPTURED], [lost, 400])
    result = fake.run()
    assert result.outcome is Outcome.ALREADY_CANCELLED, result
    assert result.released() is None
    assert fake.posts == 2 and fake.gets == 3 and result.attempts == 2
    assert result.before is not None and result.before.cancelable
    assert result.after is not None and result.after.captured == Money(Decimal("7.50"), "NOK")


def test_a_vipps_yes_that_shows_the_rest_captured_is_no_release_by_this_run() -> None:
    # Read first: 7.50 left.  The cancel is answered 200, but the payment it shows (and
    # the read back) has the 7.50 captured and still 2.50 released, as before: a yes
    # that released nothing is for a person to check, never a cancel of 0.00.
    fake = RacedVipps([PARTLY_RELEASED, REST_CAPTURED], [REST_CAPTURED])
    result = fake.run()
    assert result.outcome is Outcome.FAILED, result
    assert result.error is not None and result.error.code == "not_confirmed"
    assert result.released() is None
    assert fake.posts == 1 and fake.gets == 2 and result.attempts == 1
    assert result.after is not None and result.after.captured == Money(Decimal("7.50"), "NOK")


# what a person at a terminal reads while a request is retried


class Notices(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def notices() -> Iterator[Notices]:
    handler = Notices()
    retries.notice.addHandler(handler)
    level = retries.notice.level
    retries.notice.setLevel(logging.INFO)
    yield handler
    retries.notice.setLevel(level)
    retries.notice.removeHandler(handler)


def test_a_retry_tells_the_terminal_why_when_and_which_retry(
    real_retries: Retries, notices: Notices
) -> None:
    answers = [
        jresp(429, {"error": {"code": "RATE", "message": "slow down"}}, **{"Retry-After": "2"}),
        jresp(200, {"success": True, "payment": {"paymentId": "p1", "total": 1,
                                                 "currency": "EUR", "status": "paid"}}),
    ]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    assert run_engine("flexportal", handler, "p1").outcome is Outcome.NOT_CANCELLABLE
    (line,) = notices.lines
    assert re.fullmatch(r".*slow down.* Retrying in 2\.\ds \(retry 1\)\.\.\.", line), line


def test_a_retry_caused_by_an_error_without_words_names_its_type(notices: Notices) -> None:
    def details(cause: Exception) -> stamina.instrumentation.RetryDetails:
        return stamina.instrumentation.RetryDetails(
            name="cancel", args=(), kwargs={}, retry_num=3, wait_for=1.25, waited_so_far=2.0,
            caused_by=cause,
        )  # fmt: skip

    retries.log_retry(details(ValueError("odd answer")))
    retries.log_retry(details(ProviderUnavailable("")))
    retries.log_retry(details(ProviderUnavailable("FlexPortal is down")))
    assert notices.lines == [
        "ValueError: odd answer Retrying in 1.2s (retry 3)...",
        "ProviderUnavailable:  Retrying in 1.2s (retry 3)...",
        "FlexPortal is down Retrying in 1.2s (retry 3)...",
    ]


# the retries run out


def test_a_cancel_refused_for_pacing_to_the_end_fails_with_the_providers_answer() -> None:
    # Every cancel gets a 429: the provider never took it, so nothing is uncertain and
    # the payment fails with the provider's own answer (a resume tries it again).
    fake = FakeHedge("pending", [(429, "rate_limited", None)] * 8)
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.FAILED and len(fake.keys) == 8
    assert result.error is not None and result.error.code == "rate_limited"
    assert result.error.http_status == 429 and result.error.transient
    assert "may have been applied" not in result.error.message
    assert result.attempts == 8


def test_a_lost_answer_that_cannot_be_read_back_says_so_with_the_last_status() -> None:
    fake = UnreadableAfterCancel("pending", [(503, "down", None)] * 20)
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.code == "uncertain" and result.error.http_status == 503
    assert result.error.message.endswith(
        "; the cancel may have been applied: check with "
        "`paycancel status pay_abc --account hedgepayments`"
    )


class ExplodingThenUnreadable(ExplodingHedge):
    """The first cancel's answer breaks something beyond the adapter; every read after
    it fails."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and self.keys:
            return jresp(503, {"error": {"code": "down", "message": "down"}})
        return super().handler(request)


def test_an_exception_while_cancelling_is_no_acceptance_when_nothing_can_be_read() -> None:
    # Unlike an accepted Compago cancel, an answer nobody could read says nothing about
    # the cancel: with no read after it, the payment is uncertain, never cancelled.
    fake = ExplodingThenUnreadable("pending", [])
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.FAILED and fake.keys == ["k1"]
    assert result.error is not None and result.error.code == "uncertain"
    assert result.error.transient


def test_an_accepted_cancel_on_the_last_attempt_is_cancelled() -> None:
    # Compago: 7 cancels answered 503 (each read back open), the 8th (the last attempt
    # of the test policy) accepted, and the read of its after state fails.
    uuid = "7d3f0b4e-0000-4000-8000-000000000001"
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            return jresp(503, {"title": "down"}) if posts < 8 else jresp(200, {})
        if posts >= 8:
            return jresp(503, {"title": "down"})
        return jresp(200, {"id": uuid, "status": "PENDING", "expired": False})

    result = run_engine("compago", handler, uuid)
    assert result.outcome is Outcome.CANCELLED and posts == 8, result
    assert result.error is None and result.attempts == 8


# a yes that the payment does not show


@pytest.mark.parametrize(
    ("becomes", "shows"),
    [
        ("pending", "still shows an amount to release"),
        ("succeeded", "shows succeeded, not cancelled"),
    ],
)
@pytest.mark.parametrize("cancel_first", [True, False])
def test_a_yes_the_payment_does_not_show_is_for_a_person_to_check(
    cancel_first: bool, becomes: str, shows: str
) -> None:
    fake = FakeHedge("pending", [(200, None, becomes)])
    result = fake.run(cancel_first=cancel_first)
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.code == "not_confirmed"
    assert result.error.message == (
        f"the provider accepted the cancel but the payment {shows}; check it with "
        "`paycancel status pay_abc --account hedgepayments`"
    )
    assert result.after is not None and result.after.native_status == becomes
    # sent first: the read after the yes is all that was seen
    assert result.before is not None
    assert result.before.native_status == (becomes if cancel_first else "pending")


# a reviewed plan's payment that changed since the plan was made


def test_changed_since_the_plan_names_each_difference_that_matters() -> None:
    planned = pay(cancelled="0")
    assert engine.changed_since(planned, pay(cancelled="0")) is None
    # the same amounts written another way are no change
    assert engine.changed_since(planned, pay(amount="10.0", cancelled="0.00")) is None
    # (native status words and the reason it may not be cancelled are not compared)
    assert engine.changed_since(planned, replace(pay(cancelled="0"), native_status="x")) is None
    assert engine.changed_since(planned, pay(PaymentStatus.SUCCEEDED, cancelled="0")) == (
        "changed since the plan was made: status authorized -> succeeded; not cancelled"
    )
    captured = replace(pay(cancelled="0"), captured=Money(Decimal("4.00"), "NOK"))
    moved = replace(captured, amount=Money(Decimal("6.00"), "NOK"), cancelled=None)
    assert engine.changed_since(planned, moved) == (
        "changed since the plan was made: amount 10.00 NOK -> 6.00 NOK; captured none -> "
        "4.00 NOK; cancelled 0.00 NOK -> none; not cancelled"
    )
    refunded = replace(planned, refunded=Money(Decimal("1.00"), "NOK"))
    authorized = replace(planned, authorized=Money(Decimal("9.00"), "NOK"))
    assert engine.changed_since(planned, refunded) == (
        "changed since the plan was made: refunded none -> 1.00 NOK; not cancelled"
    )
    assert engine.changed_since(planned, authorized) == (
        "changed since the plan was made: authorized 10.00 NOK -> 9.00 NOK; not cancelled"
    )


@pytest.mark.parametrize("drift", [False, True])
def test_a_planned_payment_is_read_first_and_cancelled_only_if_unchanged(drift: bool) -> None:
    fake = FakeHedge("pending", [(200, None, "canceled")])

    async def go() -> Result:
        acc = account("hedgepayments")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(fake.handler)
        ) as client:
            provider = make_provider(acc, client)
            planned = await provider.get("pay_abc")  # what the plan recorded
            if drift:
                planned = replace(planned, amount=Money(Decimal("12.00"), "USD"))
            canceller = Canceller(provider, run_id="r", cancel_first=True)
            target = Target("hedgepayments", "pay_abc", "why", planned=planned)
            return await canceller.process(target, key="k1")

    result = asyncio.run(go())
    assert fake.gets >= 2  # read again before the cancel, cancel first or not
    if not drift:
        assert result.outcome is Outcome.CANCELLED and fake.keys == ["k1"]
        return
    assert result.outcome is Outcome.NOT_CANCELLABLE and fake.keys == []
    assert result.error is not None and result.error.code == "changed_since_plan"
    assert result.error.message == (
        "changed since the plan was made: amount 12.00 USD -> 10.00 USD; not cancelled "
        "(payment pay_abc)"
    )


def test_an_idempotency_key_is_35_characters_and_the_same_for_the_same_payment() -> None:
    key = idempotency_key("run", "acc", "pid")
    assert re.fullmatch(r"pc-[0-9a-f]{32}", key) and len(key) == 35
    assert key == idempotency_key("run", "acc", "pid")
    assert len({key, idempotency_key("run2", "acc", "pid"), idempotency_key("run", "acc2", "pid"),
                idempotency_key("run", "acc", "pid2")}) == 4  # fmt: skip


def test_a_payment_refused_at_the_read_keeps_the_read_as_its_before() -> None:
    fake = FakeHedge("succeeded", [])
    result = fake.run(cancel_first=False)
    assert result.outcome is Outcome.NOT_CANCELLABLE and fake.keys == []
    assert result.before is not None and result.before.native_status == "succeeded"


class AlwaysExploding(FakeHedge):
    """Every cancel's answer breaks something beyond the adapter; reads show it open."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.keys.append(request.headers["idempotency-key"])
            raise RuntimeError("boom")
        return super().handler(request)


def test_answers_nobody_could_read_to_the_last_attempt_leave_it_uncertain_and_say_why() -> None:
    fake = AlwaysExploding("pending", [])
    result = fake.run(cancel_first=True)
    assert result.outcome is Outcome.FAILED and len(fake.keys) == 8  # read back between
    assert result.error is not None and result.error.code == "uncertain"
    assert result.error.transient and result.attempts == 8
    assert result.error.message == (
        "HedgePayments: payment pay_abc: unexpected RuntimeError while handling the "
        "provider's answer (boom); check it with `paycancel status pay_abc --account "
        "hedgepayments`; the cancel may have been applied: check with `paycancel status "
        "pay_abc --account hedgepayments`"
    )
    assert result.before is not None and result.before.native_status == "pending"


@pytest.mark.parametrize("cancel_first", [False, True])
def test_the_breaker_counts_each_payment_that_failed_and_stops_the_second(
    cancel_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Every request gets a 503.  One payment failing alone never opens the breaker (it
    # takes two here); the second payment's first failure does, and it is not retried.
    requests: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        pid = request.url.path.split("/")[-2 if request.method == "POST" else -1]
        requests[pid] = requests.get(pid, 0) + 1
        return jresp(503, {"error": {"code": "down", "message": "down"}})

    async def go() -> list[Result]:
        acc = account("hedgepayments")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            breaker = Breaker(threshold=3, min_payments=2)
            canceller = Canceller(
                make_provider(acc, client), run_id="r", cancel_first=cancel_first,
                breaker=breaker,
            )  # fmt: skip
            results = []
            for pid in ("pay_1", "pay_2"):
                caplog.clear()
                target = Target("hedgepayments", pid, "why")
                results.append(await canceller.process(target, key=f"k-{pid}"))
            assert breaker.open and breaker.payments == {"pay_1", "pay_2"}
            return results

    with caplog.at_level(logging.DEBUG, logger="paycancel.retry"):
        first, second = asyncio.run(go())
    assert first.outcome is Outcome.FAILED and second.outcome is Outcome.FAILED
    assert [r for r in caplog.records if r.name == "paycancel.retry"] == []  # none announced
    # (sent first: the lost cancel, then 7 rounds of a read-back retried 8 times)
    assert requests == {"pay_1": 57 if cancel_first else 8, "pay_2": 1}, requests


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_cancel_answered_with_an_odd_refusal_fails_with_that_answer(cancel_first: bool) -> None:
    # A 422 that is neither a refusal about the payment nor transient: not cancelled,
    # not retried, and the operator reads what the provider said.
    fake = FakeHedge("pending", [(422, "weird", None)])
    result = fake.run(cancel_first=cancel_first)
    assert result.outcome is Outcome.FAILED and len(fake.keys) == 1
    assert result.error == ErrorInfo(
        "weird", "HedgePayments answered HTTP 422: refused (payment pay_abc)", 422
    )


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_breaker_opened_by_another_payment_stops_a_retry_already_decided(
    cancel_first: bool,
) -> None:
    # Two payments of one account at once, every request a 503: the first one's retry
    # is decided (the breaker still closed) and, while it waits, the second one's
    # failure opens the breaker.  The first then ends without sending again.
    requests: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        pid = request.url.path.split("/")[-2 if request.method == "POST" else -1]
        requests[pid] = requests.get(pid, 0) + 1
        return jresp(503, {"error": {"code": "down", "message": "down"}})

    async def go() -> list[Result]:
        acc = account("hedgepayments")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            canceller = Canceller(
                make_provider(acc, client), run_id="r", cancel_first=cancel_first,
                breaker=Breaker(threshold=2, min_payments=2),
            )  # fmt: skip
            return list(
                await asyncio.gather(
                    *(
                        canceller.process(Target("hedgepayments", pid, "why"), key=f"k-{pid}")
                        for pid in ("pay_1", "pay_2")
                    )
                )
            )

    results = asyncio.run(go())
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert requests == {"pay_1": 1, "pay_2": 1}, requests
    assert all(r.error is not None and r.error.transient for r in results)


def test_a_dry_run_names_no_key_and_every_result_names_its_provider() -> None:
    fake = FakeHedge("pending", [])

    async def go() -> Result:
        acc = account("hedgepayments")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(fake.handler)
        ) as client:
            canceller = Canceller(make_provider(acc, client), run_id="r", dry_run=True)
            return await canceller.process(Target("hedgepayments", "pay_abc", "why"), key="k1")

    result = asyncio.run(go())
    assert result.outcome is Outcome.WOULD_CANCEL and fake.keys == []
    assert result.idempotency_key is None and result.provider == "hedgepayments"
    sent = FakeHedge("pending", [(200, None, "canceled")]).run(cancel_first=False)
    assert sent.idempotency_key == "k1" and sent.provider == "hedgepayments"


def test_an_id_the_provider_can_never_have_is_invalid_and_nothing_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return jresp(500, {})

    result = run_engine("compago", handler, "not a uuid")
    assert result.outcome is Outcome.INVALID and seen == []
    assert result.error is not None and result.error.code == "invalid_id"
    assert "Nothing was sent; check the id." in result.error.message
    assert (result.provider, result.payment_id, result.run_id) == ("compago", "not a uuid", "r")


def test_rejected_credentials_fail_the_payment_with_the_providers_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return jresp(401, {"error": {"code": "unauthorized", "message": "bad key"}})

    result = run_engine("hedgepayments", handler, "pay_abc")
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert (result.error.code, result.error.http_status) == ("auth_failed", 401)
