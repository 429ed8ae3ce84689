"""The plain data's rules, one at a time: money in minor and major units, what a payment
could release, a result's release and verdict, and the JSON each round-trips through
(the journal, reports and ``--json`` keep these exact forms).

Written against the survivors of ``bench/mutate.py --module models``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from paycancel_cli.models import (
    AUTH_FAILED,
    IMPLIED,
    ErrorInfo,
    Money,
    Outcome,
    Payment,
    PaymentStatus,
    Result,
    currency_exponent,
    verdict,
)


def nok(value: str) -> Money:
    return Money(Decimal(value), "NOK")


def pay(**kw: Any) -> Payment:
    fields: dict[str, Any] = {
        "account": "vipps_no",
        "provider": "vipps",
        "payment_id": "ref-00000001",
        "status": PaymentStatus.AUTHORIZED,
        "native_status": "AUTHORIZED",
        "cancelable": True,
        "amount": nok("10.00"),
    }
    fields.update(kw)
    return Payment(**fields)


def result(outcome: Outcome, **kw: Any) -> Result:
    return Result(run_id="r", account="vipps_no", provider="vipps",
                  payment_id="ref-00000001", outcome=outcome, **kw)  # fmt: skip


# Money


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("NOK", 2), ("JPY", 0), ("jpy", 0), ("KRW", 0), ("XPF", 0), ("BHD", 3), ("TND", 3)],
)
def test_a_currency_has_its_iso_4217_minor_unit(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


def test_minor_units_become_major_units_in_the_currencys_exponent() -> None:
    assert Money.from_minor(1050, "nok") == Money(Decimal("10.50"), "NOK")
    assert Money.from_minor(1050, "JPY") == Money(Decimal(1050), "JPY")
    assert Money.from_minor(1050, "kwd") == Money(Decimal("1.050"), "KWD")
    assert str(Money.from_minor(5, "NOK")) == "0.05 NOK"


@pytest.mark.parametrize(
    ("minor", "kind"), [(True, "bool"), (10.5, "float"), ("1050", "str"), (Decimal(1), "Decimal")]
)
def test_minor_units_must_be_an_integer(minor: Any, kind: str) -> None:
    with pytest.raises(TypeError) as raised:
        Money.from_minor(minor, "NOK")
    assert str(raised.value) == f"minor units must be an integer, got {kind}"


def test_major_units_never_come_from_a_float() -> None:
    assert Money.from_major("10.5", "eur") == Money(Decimal("10.5"), "EUR")
    assert Money.from_major(7, "EUR") == Money(Decimal(7), "EUR")
    with pytest.raises(TypeError) as raised:
        Money.from_major(10.5, "EUR")
    assert str(raised.value) == "money must not be built from float"


def test_money_is_shown_and_written_in_its_currencys_places() -> None:
    assert str(Money(Decimal("10.5"), "NOK")) == "10.50 NOK"
    assert str(Money(Decimal("1000"), "JPY")) == "1000 JPY"
    assert Money(Decimal("1.5"), "BHD").to_json() == {"value": "1.500", "currency": "BHD"}
    assert Money.from_json({"value": "1.500", "currency": "BHD"}) == Money(Decimal("1.5"), "BHD")
    assert Money.from_json(None) is None


# Payment


def test_a_payment_with_aggregates_releases_what_is_neither_captured_nor_cancelled() -> None:
    aggregated = pay(authorized=nok("10.00"), captured=nok("2.00"), cancelled=nok("3.00"))
    assert aggregated.releasable() == nok("5.00")
    assert pay(authorized=nok("10.00"), captured=nok("2.00")).releasable() == nok("8.00")
    assert pay(authorized=nok("10.00"), cancelled=nok("3.00")).releasable() == nok("7.00")
    # no aggregates, or an authorized amount of zero: the payment's amount
    assert pay().releasable() == nok("10.00")
    assert pay(authorized=nok("0"), captured=nok("2.00")).releasable() == nok("10.00")
    assert pay(amount=None).releasable() is None


def test_a_before_state_is_read_unless_the_cancel_answer_implied_it() -> None:
    assert pay().was_read
    assert not pay(native_status=IMPLIED).was_read


def test_a_refusal_names_the_status_that_forbids_it_and_the_providers_word() -> None:
    paid = pay(status=PaymentStatus.SUCCEEDED, native_status="paid", cancelable=False,
               why_not="paid: refund instead")  # fmt: skip
    assert paid.refusal() == ErrorInfo("succeeded", "paid: refund instead", provider_code="paid")
    silent = pay(status=PaymentStatus.PROCESSING, native_status="WEIRD", cancelable=False)
    assert silent.refusal() == ErrorInfo("processing", "status WEIRD", provider_code="WEIRD")


def test_a_payment_round_trips_through_json() -> None:
    full = pay(
        cancelable=False,
        why_not="no",
        authorized=nok("10.00"),
        captured=nok("1.00"),
        cancelled=nok("9.00"),
        refunded=nok("0"),
        amount_note="amount 9.99",
    )
    data = full.to_json()
    assert data == {
        "account": "vipps_no",
        "provider": "vipps",
        "payment_id": "ref-00000001",
        "status": "authorized",
        "native_status": "AUTHORIZED",
        "cancelable": False,
        "why_not": "no",
        "amount": {"value": "10.00", "currency": "NOK"},
        "authorized": {"value": "10.00", "currency": "NOK"},
        "captured": {"value": "1.00", "currency": "NOK"},
        "cancelled": {"value": "9.00", "currency": "NOK"},
        "refunded": {"value": "0.00", "currency": "NOK"},
        "amount_note": "amount 9.99",
    }
    assert Payment.from_json(data) == full
    slim = pay(amount=None)
    assert "amount_note" not in slim.to_json() and slim.to_json()["amount"] is None
    assert Payment.from_json(slim.to_json()) == slim


# Outcomes, verdicts, results


def test_only_cancelled_already_cancelled_and_would_cancel_are_successes() -> None:
    assert {o for o in Outcome if o.is_success} == {
        Outcome.CANCELLED,
        Outcome.ALREADY_CANCELLED,
        Outcome.WOULD_CANCEL,
    }


def test_a_results_verdict_is_0_done_3_credentials_5_transient_1_otherwise() -> None:
    transient = ErrorInfo("http_503", "down", 503, transient=True)
    assert verdict(result(Outcome.CANCELLED)) == 0
    assert verdict(result(Outcome.WOULD_CANCEL, error=transient)) == 0
    assert verdict(result(Outcome.FAILED, error=ErrorInfo(AUTH_FAILED, "no"))) == 3
    assert verdict(result(Outcome.NOT_FOUND, error=ErrorInfo(AUTH_FAILED, "no"))) == 3
    assert verdict(result(Outcome.FAILED, error=transient)) == 5
    assert verdict(result(Outcome.NOT_CANCELLABLE, error=transient)) == 1
    assert verdict(result(Outcome.FAILED, error=ErrorInfo("x", "odd"))) == 1
    assert verdict(result(Outcome.FAILED)) == 1
    assert verdict(result(Outcome.NOT_FOUND)) == 1


def test_an_error_round_trips_through_json_and_an_old_record_reads_with_defaults() -> None:
    info = ErrorInfo("succeeded", "paid", 412, transient=True, provider_code="ALREADY_PAID")
    data = info.to_json()
    assert data == {"code": "succeeded", "message": "paid", "http_status": 412,
                    "transient": True, "provider_code": "ALREADY_PAID"}  # fmt: skip
    assert ErrorInfo.from_json(data) == info
    assert ErrorInfo.from_json({}) == ErrorInfo(None, "", None, False, None)
    assert ErrorInfo.from_json({"message": 5, "transient": 1}) == ErrorInfo(None, "5", None, True)


def test_a_vipps_release_is_the_cancelled_aggregate_after_minus_before() -> None:
    before = pay(cancelled=nok("2.50"))
    after = pay(cancelable=False, cancelled=nok("10.00"))
    assert result(Outcome.CANCELLED, before=before, after=after).released() == nok("7.50")
    # nothing cancelled before (or no before): all of it
    assert result(Outcome.CANCELLED, before=pay(), after=after).released() == nok("10.00")
    assert result(Outcome.CANCELLED, after=after).released() == nok("10.00")
    # only a cancel of this run releases anything
    assert result(Outcome.ALREADY_CANCELLED, before=before, after=after).released() is None


def test_without_a_cancelled_aggregate_the_release_is_the_payments_amount() -> None:
    def plain(amount: str | None) -> Payment:
        return pay(amount=None if amount is None else nok(amount))

    both = result(Outcome.CANCELLED, before=plain("9.00"), after=plain("8.00"))
    assert both.released() == nok("8.00")  # the after state first
    assert result(Outcome.CANCELLED, before=plain("9.00"), after=plain(None)).released() == (
        nok("9.00")
    )
    assert result(Outcome.CANCELLED, before=plain("9.00")).released() == nok("9.00")
    assert result(Outcome.CANCELLED, before=plain(None), after=plain(None)).released() is None
    assert result(Outcome.CANCELLED).released() is None


def test_a_dry_run_would_release_what_the_before_state_can_release() -> None:
    before = pay(authorized=nok("10.00"), captured=nok("4.00"))
    assert result(Outcome.WOULD_CANCEL, before=before).would_release() == nok("6.00")
    assert result(Outcome.WOULD_CANCEL).would_release() is None
    assert result(Outcome.CANCELLED, before=before).would_release() is None


def test_a_result_is_written_as_the_spec_s_result_line() -> None:
    error = ErrorInfo("http_503", "down", 503, transient=True)
    line = result(Outcome.FAILED, before=pay(), error=error, attempts=6, idempotency_key="k")
    assert line.to_json() == {
        "type": "result",
        "run_id": "r",
        "account": "vipps_no",
        "provider": "vipps",
        "payment_id": "ref-00000001",
        "outcome": "failed",
        "before": pay().to_json(),
        "after": None,
        "error": error.to_json(),
        "attempts": 6,
        "idempotency_key": "k",
    }
    bare = result(Outcome.CANCELLED, after=pay()).to_json()
    assert bare["before"] is None and bare["error"] is None and bare["after"] == pay().to_json()
