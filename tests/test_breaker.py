"""The circuit breaker per account: a dead provider ends the run promptly with exit 5
after a bounded number of requests, and ``--resume`` finishes the run once it is back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from paycancel_cli.breaker import CIRCUIT_OPEN, THRESHOLD, Breaker
from paycancel_cli.config import load_config
from paycancel_cli.engine import RetryPolicy
from paycancel_cli.redact import Redactor
from paycancel_cli.runs.request import BulkRequest
from paycancel_cli.runs.start import run_bulk
from paycancel_cli.runs.summary import BulkOutcome
from paycancel_cli.sandbox import Faults, Sandbox

from .conftest import write_config
from .test_bulk_faults import Recorder

# Real (short) backoff: the retries and their count are what is measured.
POLICY = RetryPolicy(attempts=6, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


@pytest.fixture
def real_backoff() -> Iterator[None]:
    stamina.set_testing(False)
    yield


def dead(sb: Sandbox, provider: str, ids: list[str]) -> None:
    """Every answer about these payments is a 503 (a provider down behind its proxy)."""
    for payment_id in ids:
        sb.add_fault(provider, payment_id, "html_502", op="any", status=503)


def bulk(tmp_path: Path, sb: Sandbox, request: BulkRequest) -> tuple[BulkOutcome, Recorder]:
    config = load_config(write_config(tmp_path / "c.toml", sb.account_config()))
    ui = Recorder()
    return run_bulk(config, request, ui, redactor=Redactor(), policy=POLICY), ui


def test_breaker_opens_on_a_streak_across_payments_only() -> None:
    breaker = Breaker()
    for _ in range(THRESHOLD * 3):
        breaker.failure("pay_one")  # one payment failing alone: not the provider
    assert not breaker.open
    breaker.answered()
    for n in range(THRESHOLD - 1):
        breaker.failure(f"pay_{n}")
    assert not breaker.open
    breaker.answered()  # any answer ends the streak
    for n in range(THRESHOLD):
        breaker.failure(f"pay_{n}")
    assert breaker.open


def test_dead_provider_ends_with_exit_5_then_resume_cancels_each_once(
    tmp_path: Path, real_backoff: None
) -> None:
    with Sandbox(seed_demo=False) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=1000) for _ in range(60)]
        dead(sb, "hedgepayments", ids)
        csv_path = tmp_path / "sixty.csv"
        csv_path.write_text("account,payment_id\n" + "".join(f"hedgepayments,{i}\n" for i in ids))
        outcome, ui = bulk(
            tmp_path, sb, BulkRequest(csv=str(csv_path), reason="early return", yes=True)
        )
        down = sb.counts
        assert outcome.exit_code() == 5
        assert outcome.summary is not None and outcome.summary.remaining == 0
        sent = sum(n for (p, _), n in down.items() if p == "hedgepayments")
        assert sent <= 50, down  # without the breaker: 60 payments x (6 cancels + reads)
        assert not sb.cancel_commits
        assert {r.outcome.value for r in ui.results} == {"failed"}
        assert all(r.error is not None and r.error.transient for r in ui.results)
        skipped = [r for r in ui.results if r.error and r.error.code == CIRCUIT_OPEN]
        assert len(skipped) >= 40 and all(r.attempts == 0 for r in skipped)
        assert "--resume" in skipped[0].error.message  # type: ignore[union-attr]

        sb.faults = Faults()  # the provider is back
        run_id = outcome.run_id
        again, ui = bulk(tmp_path, sb, BulkRequest(resume=run_id, yes=True))
        assert again.exit_code() == 0
        assert again.summary is not None
        assert again.summary.outcomes == Counter({"cancelled": 60})
        assert sb.cancel_commits == Counter({("hedgepayments", i): 1 for i in ids})


def test_breaker_is_per_account(tmp_path: Path, real_backoff: None) -> None:
    with Sandbox(seed_demo=False) as sb:
        hedge = [sb.add_payment("hedgepayments", status="pending", amount=1000) for _ in range(30)]
        flex = [sb.add_payment("flexportal", status="pending", total="10.00") for _ in range(30)]
        dead(sb, "hedgepayments", hedge)
        csv_path = tmp_path / "two.csv"
        rows = [f"hedgepayments,{i}\n" for i in hedge] + [f"flexportal,{i}\n" for i in flex]
        csv_path.write_text("account,payment_id\n" + "".join(rows))
        outcome, ui = bulk(
            tmp_path, sb, BulkRequest(csv=str(csv_path), reason="early return", yes=True)
        )
        assert outcome.exit_code() == 5
        by_account = Counter((r.account, r.outcome.value) for r in ui.results)
        assert by_account == {("flexportal", "cancelled"): 30, ("hedgepayments", "failed"): 30}


def test_one_payment_failing_alone_does_not_stop_its_account(
    tmp_path: Path, real_backoff: None
) -> None:
    with Sandbox(seed_demo=False) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=1000) for _ in range(12)]
        dead(sb, "hedgepayments", ids[:1])
        csv_path = tmp_path / "one.csv"
        csv_path.write_text("payment_id\n" + "".join(f"{i}\n" for i in ids))
        outcome, ui = bulk(
            tmp_path,
            sb,
            BulkRequest(
                csv=str(csv_path), account="hedgepayments", reason="r", yes=True, concurrency=1
            ),
        )
        outcomes = Counter(r.outcome.value for r in ui.results)
        assert outcomes == {"cancelled": 11, "failed": 1}
        assert not [r for r in ui.results if r.error and r.error.code == CIRCUIT_OPEN]
        assert outcome.exit_code() == 5
