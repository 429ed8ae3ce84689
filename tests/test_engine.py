"""The engine's decisions, against adapters on httpx.MockTransport: races, lost answers,
retries, guards and the fail-closed journal hook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from paycancel_cli.engine import Canceller, RetryPolicy, Target
from paycancel_cli.errors import JournalError, ProviderUnavailable, RateLimited
from paycancel_cli.models import Money, Outcome, Payment, Result
from paycancel_cli.providers import make_provider

from .test_providers_unit import account

FP = {"paymentId": "p1", "total": 10, "currency": "EUR", "status": "pending"}


class FakeFlexPortal:
    """A FlexPortal whose answers the test scripts, keeping the payment's true state."""

    def __init__(self, *, post: list[Callable[[FakeFlexPortal], httpx.Response]]) -> None:
        self.status = "pending"
        self.posts = 0
        self.gets = 0
        self.post_script = post

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.gets += 1
            return json_response(200, {"success": True, "payment": {**FP, "status": self.status}})
        self.posts += 1
        step = self.post_script.pop(0)
        return step(self)


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def commit_ok(fake: FakeFlexPortal) -> httpx.Response:
    fake.status = "cancelled"
    return json_response(200, {"success": True, "payment": {**FP, "status": "cancelled"}})


def commit_then_drop(fake: FakeFlexPortal) -> httpx.Response:
    fake.status = "cancelled"
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def error(status: int, code: str, *, becomes: str | None = None) -> Callable[..., httpx.Response]:
    def step(fake: FakeFlexPortal) -> httpx.Response:
        if becomes:
            fake.status = becomes
        return json_response(status, {"error": {"code": code, "message": code.lower()}})

    return step


def run(fake: FakeFlexPortal, target: Target | None = None, **kw: Any) -> Result:
    async def go() -> Result:
        acc = account("flexportal")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(fake.handler)
        ) as client:
            canceller = Canceller(
                make_provider(acc, client), run_id="r1", policy=RetryPolicy(attempts=5), **kw
            )
            return await canceller.process(target or Target("flexportal", "p1", "why"), key="k1")

    return asyncio.run(go())


def test_plain_cancel() -> None:
    fake = FakeFlexPortal(post=[commit_ok])
    result = run(fake)
    assert result.outcome is Outcome.CANCELLED and result.attempts == 1 and fake.posts == 1
    assert result.released() == Money(Decimal(10), "EUR")


def test_lost_answer_is_read_back_and_not_sent_again() -> None:
    fake = FakeFlexPortal(post=[commit_then_drop])
    result = run(fake)
    assert result.outcome is Outcome.CANCELLED
    assert fake.posts == 1  # the read-back showed it done: no second cancel


def test_5xx_on_cancel_reads_back_then_resends() -> None:
    fake = FakeFlexPortal(post=[error(503, "UNAVAILABLE"), commit_ok])
    result = run(fake)
    assert result.outcome is Outcome.CANCELLED and result.attempts == 2 and fake.posts == 2


def test_state_changed_since_the_read_reports_the_providers_code() -> None:
    fake = FakeFlexPortal(post=[error(400, "PAYMENT_PROCESSING", becomes="processing")])
    result = run(fake)
    assert result.outcome is Outcome.NOT_CANCELLABLE
    # one normalized code, the status that forbids it; the provider's own code beside it
    assert result.error is not None and result.error.code == "processing"
    assert result.error.provider_code == "PAYMENT_PROCESSING"


def test_already_cancelled_by_the_platform_is_success() -> None:
    fake = FakeFlexPortal(post=[error(400, "ALREADY_CANCELLED", becomes="cancelled")])
    result = run(fake)
    assert result.outcome is Outcome.ALREADY_CANCELLED


def test_retries_exhausted_after_an_ambiguous_failure_say_uncertain() -> None:
    fake = FakeFlexPortal(post=[error(503, "DOWN")] * 20)  # more than any attempt budget
    result = run(fake)
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.code == "uncertain"
    assert "paycancel status p1" in result.error.message


def test_expected_amount_guard_sends_nothing() -> None:
    fake = FakeFlexPortal(post=[])
    target = Target("flexportal", "p1", "why", expected_amount=Money(Decimal("9.99"), "EUR"))
    result = run(fake, target)
    assert result.outcome is Outcome.NOT_CANCELLABLE and fake.posts == 0
    assert result.error is not None and result.error.code == "amount_mismatch"


def test_journal_failure_before_send_means_no_cancel() -> None:
    fake = FakeFlexPortal(post=[commit_ok])

    async def refuse(target: Target, key: str, before: Payment) -> None:
        raise JournalError("disk full")

    with pytest.raises(JournalError):
        run(fake, before_send=refuse)
    assert fake.posts == 0 and fake.status == "pending"


def test_backoff_honours_retry_after_and_the_vipps_floor() -> None:
    async def make(provider: str) -> Canceller:
        acc = account(provider)
        client = httpx.AsyncClient(base_url=acc.url)
        return Canceller(make_provider(acc, client), run_id="r")

    fp = asyncio.run(make("flexportal"))
    wait = fp._read_backoff(RateLimited("slow", retry_after=7.0))
    assert isinstance(wait, float) and 7.0 <= wait <= 9.0
    assert fp._read_backoff(ProviderUnavailable("down")) is True
    assert fp._read_backoff(ValueError()) is False
    vipps = asyncio.run(make("vipps"))
    assert vipps._cancel_backoff(ProviderUnavailable("down")) == 12.0
    assert vipps._cancel_backoff(RateLimited("slow", retry_after=30.0)) >= 30.0


# -- cancel first (bulk CSV mode) ---------------------------------------------------------


def test_cancel_first_sends_one_request_and_implies_the_before() -> None:
    journaled: list[Payment | None] = []

    async def record(target: Target, key: str, before: Payment | None) -> None:
        journaled.append(before)

    fake = FakeFlexPortal(post=[commit_ok])
    result = run(fake, cancel_first=True, before_send=record)
    assert result.outcome is Outcome.CANCELLED and (fake.gets, fake.posts) == (0, 1)
    assert journaled == [None]  # in flight, with no before, before the cancel
    assert result.before is not None and result.before.cancelable
    assert result.before.native_status == "implied by the cancel answer"
    assert result.released() == Money(Decimal(10), "EUR")


@pytest.mark.parametrize(
    ("code", "becomes", "outcome"),
    [
        ("ALREADY_CANCELLED", "cancelled", Outcome.ALREADY_CANCELLED),
        ("ALREADY_PAID", "paid", Outcome.NOT_CANCELLABLE),
        ("PAYMENT_PROCESSING", "processing", Outcome.NOT_CANCELLABLE),
    ],
)
def test_cancel_first_refusal_classified_by_its_code_needs_no_read(
    code: str, becomes: str, outcome: Outcome
) -> None:
    fake = FakeFlexPortal(post=[error(400, code, becomes=becomes)])
    result = run(fake, cancel_first=True)
    assert result.outcome is outcome and (fake.gets, fake.posts) == (0, 1)
    if outcome is Outcome.NOT_CANCELLABLE:
        normalized = {"ALREADY_PAID": "succeeded", "PAYMENT_PROCESSING": "processing"}[code]
        assert result.error is not None and result.error.code == normalized
        assert result.error.provider_code == code


def test_cancel_first_lost_answer_is_read_back_not_sent_again() -> None:
    fake = FakeFlexPortal(post=[commit_then_drop])
    result = run(fake, cancel_first=True)
    assert result.outcome is Outcome.CANCELLED and (fake.gets, fake.posts) == (1, 1)
    assert result.after is not None and result.after.native_status == "cancelled"


def test_cancel_first_5xx_reads_then_resends_with_the_read_as_before() -> None:
    fake = FakeFlexPortal(post=[error(503, "UNAVAILABLE"), commit_ok])
    result = run(fake, cancel_first=True)
    assert result.outcome is Outcome.CANCELLED and (fake.gets, fake.posts) == (1, 2)
    assert result.before is not None and result.before.native_status == "pending"


def test_cancel_first_is_off_for_a_guard_and_a_dry_run() -> None:
    fake = FakeFlexPortal(post=[commit_ok])
    target = Target("flexportal", "p1", "why", expected_amount=Money(Decimal(10), "EUR"))
    assert run(fake, target, cancel_first=True).outcome is Outcome.CANCELLED
    assert (fake.gets, fake.posts) == (1, 1)
    dry = FakeFlexPortal(post=[])
    assert run(dry, cancel_first=True, dry_run=True).outcome is Outcome.WOULD_CANCEL
    assert (dry.gets, dry.posts) == (1, 0)


# -- a yes that the payment contradicts ---------------------------------------------------


def says_yes_shows(status: str) -> Callable[[FakeFlexPortal], httpx.Response]:
    """A 2xx to the cancel whose payment shows ``status`` (the true state stays put)."""

    def step(fake: FakeFlexPortal) -> httpx.Response:
        return json_response(200, {"success": True, "payment": {**FP, "status": status}})

    return step


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_yes_showing_the_payment_paid_is_not_cancelled(cancel_first: bool) -> None:
    # The answer says the payment is paid, the read says it is still pending: nothing
    # confirms a release, so the payment is not reported cancelled.
    fake = FakeFlexPortal(post=[says_yes_shows("paid")])
    result = run(fake, cancel_first=cancel_first)
    assert result.outcome is Outcome.FAILED, result
    assert result.error is not None and result.error.code == "not_confirmed"
    assert fake.posts == 1 and fake.gets == (1 if cancel_first else 2)


def test_a_yes_showing_paid_is_cancelled_when_the_read_back_shows_it_released() -> None:
    def step(fake: FakeFlexPortal) -> httpx.Response:
        fake.status = "cancelled"
        return json_response(200, {"success": True, "payment": {**FP, "status": "paid"}})

    fake = FakeFlexPortal(post=[step])
    result = run(fake, cancel_first=True)
    assert result.outcome is Outcome.CANCELLED and (fake.gets, fake.posts) == (1, 1)


class FakeCompago:
    """A Compago intent: the cancel answers ``{}`` and changes nothing; cancels follow
    ``posts`` (status codes), then answer 503; reads follow ``gets`` (a status code, or
    None for the intent as it is), then answer normally."""

    ID = "0b4e7f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

    def __init__(self, *, posts: list[int], gets: list[int | None]) -> None:
        self.status = "PENDING"
        self.post_script, self.get_script = posts, gets
        self.posts = self.gets = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.gets += 1
            code = self.get_script.pop(0) if self.get_script else None
            if code is not None:
                return json_response(code, {"message": "down"})
            return json_response(200, {"id": self.ID, "status": self.status, "expired": False})
        self.posts += 1
        code = self.post_script.pop(0) if self.post_script else 503
        return json_response(code, {} if code < 300 else {"message": "down"})


def run_compago(fake: FakeCompago, **kw: Any) -> Result:
    async def go() -> Result:
        acc = account("compago")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(fake.handler)
        ) as client:
            canceller = Canceller(
                make_provider(acc, client),
                run_id="r1",
                policy=RetryPolicy(attempts=4, wait_initial=0, wait_max=0, wait_jitter=0),
                **kw,
            )
            return await canceller.process(Target("compago", fake.ID, "why"), key="k1")

    return asyncio.run(go())


@pytest.mark.parametrize("cancel_first", [False, True])
def test_compago_accepted_then_shown_still_open_is_not_cancelled(cancel_first: bool) -> None:
    # The cancel answered {} (the intent stays PENDING), the read after it failed; a later
    # read shows the intent still open and every re-sent cancel fails: not cancelled.
    fake = FakeCompago(posts=[200], gets=[None, 503] if not cancel_first else [503])
    result = run_compago(fake, cancel_first=cancel_first)
    assert fake.status == "PENDING" and fake.posts > 1
    assert result.outcome is Outcome.FAILED, result
    assert result.error is not None and result.error.code == "uncertain"


def test_compago_accepted_with_no_read_after_is_cancelled() -> None:
    # The documented claim: accepted, and no read ever succeeds afterwards.
    fake = FakeCompago(posts=[200], gets=[503] * 1000)
    result = run_compago(fake, cancel_first=True)
    assert result.outcome is Outcome.CANCELLED and fake.posts == 1


# -- HedgePayments 409: whose cancel was it? ----------------------------------------------


def hedge_run(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> Result:
    async def go() -> Result:
        acc = account("hedgepayments")
        async with httpx.AsyncClient(
            base_url=acc.url, transport=httpx.MockTransport(handler)
        ) as client:
            canceller = Canceller(make_provider(acc, client), run_id="r1", **kw)
            return await canceller.process(Target("hedgepayments", "pay_abc", "why"), key="k1")

    return asyncio.run(go())


@pytest.mark.parametrize("cancel_first", [False, True])
def test_hedge_409_to_a_first_send_on_a_payment_cancelled_by_another_is_already_cancelled(
    cancel_first: bool,
) -> None:
    # The key was never sent before, so the 409 is not about a cancel of ours; someone
    # else cancelled the payment between our read and our cancel.
    state = {"status": "pending", "posts": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            state["posts"] += 1
            state["status"] = "canceled"  # another party's cancel, at the same moment
            return json_response(409, {"error": {"code": "conflict", "message": "conflict"}})
        body = {"id": "pay_abc", "status": state["status"], "amount": 500, "currency": "usd"}
        return json_response(200, body)

    result = hedge_run(handler, cancel_first=cancel_first)
    assert result.outcome is Outcome.ALREADY_CANCELLED, result
    assert state["posts"] == 1


# -- the retry policy's entry point for one request -----------------------------------------


def test_retry_policy_call_retries_one_request_until_it_answers() -> None:
    calls: list[int] = []

    async def page() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimited("slow", retry_after=0.01)
        if len(calls) == 2:
            raise ProviderUnavailable("down")
        return "answer"

    assert asyncio.run(RetryPolicy(attempts=3).call(page)) == "answer"
    assert len(calls) == 3


def test_retry_policy_call_gives_up_with_the_last_failure_and_never_retries_a_refusal() -> None:
    calls: list[int] = []

    async def down() -> str:
        calls.append(1)
        raise ProviderUnavailable(f"down {len(calls)}")

    with pytest.raises(ProviderUnavailable) as raised:
        asyncio.run(RetryPolicy(attempts=3).call(down))
    assert len(calls) > 1 and raised.value.message == f"down {len(calls)}"

    async def refused() -> str:
        calls.append(1)
        raise JournalError("disk full")

    calls.clear()
    with pytest.raises(JournalError):
        asyncio.run(RetryPolicy(attempts=3).call(refused))
    assert len(calls) == 1
