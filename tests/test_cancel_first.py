"""Cancel first in CSV mode: requests per payment per provider and answer kind (counted
by the sandbox itself), the modes that read first, the demo CSV's outcomes in both modes,
and a resume of a cancel sent without a read before it."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from paycancel_cli.engine import idempotency_key
from paycancel_cli.journal import Journal, PlanRow
from paycancel_cli.sandbox import Sandbox

from .conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.csv"
N = 3  # payments per kind

# provider: {kind: (add_payment fields, outcome)}
KINDS: dict[str, dict[str, tuple[dict[str, Any], str]]] = {
    "flexportal": {
        "cancelled": ({"status": "pending", "total": "10.00"}, "cancelled"),
        "refused": ({"status": "paid", "total": "10.00"}, "not_cancellable"),
        "already": ({"status": "cancelled", "total": "10.00"}, "already_cancelled"),
    },
    "hedgepayments": {
        "cancelled": ({"status": "pending", "amount": 1000}, "cancelled"),
        "refused": ({"status": "succeeded", "amount": 1000}, "not_cancellable"),
        "already": ({"status": "canceled", "amount": 1000}, "already_cancelled"),
    },
    "flex": {
        "cancelled": ({"status": "requires_capture", "amount": 1000}, "cancelled"),
        "refused": ({"status": "succeeded", "amount": 1000}, "not_cancellable"),
        "already": ({"status": "canceled", "amount": 1000}, "already_cancelled"),
    },
    "vipps": {
        "cancelled": ({"state": "AUTHORIZED", "amount": 1000, "authorized": 1000}, "cancelled"),
        "refused": (
            {"state": "AUTHORIZED", "amount": 1000, "authorized": 1000, "captured": 1000},
            "not_cancellable",
        ),
        "already": (
            {"state": "AUTHORIZED", "amount": 1000, "authorized": 1000, "cancelled": 1000},
            "already_cancelled",
        ),
    },
    "compago": {
        "cancelled": ({"status": "PENDING", "amount": "10.00"}, "cancelled"),
        "refused": ({"status": "CONFIRMED", "amount": "10.00"}, "not_cancellable"),
        "already": ({"status": "CANCELLED", "amount": "10.00"}, "already_cancelled"),
    },
}

# requests per payment (reads and cancels; Vipps' one access token per run aside):
# (cancelled, refused, already cancelled)
CANCEL_FIRST = {
    "flexportal": (1, 1, 1),  # the refusal's code says what the payment is
    "hedgepayments": (1, 1, 1),  # 412 with details.current_status
    "flex": (1, 2, 2),  # a 400 does not say: one read after it
    "vipps": (2, 1, 1),  # reads first: a 200 could be a no-op on a released payment
    "compago": (2, 2, 2),  # the cancel answers {}: a read after it; a 400 says nothing
}
READ_FIRST = {
    "flexportal": (2, 1, 1),
    "hedgepayments": (2, 1, 1),
    "flex": (2, 1, 1),
    "vipps": (2, 1, 1),
    "compago": (3, 1, 1),  # read, cancel, read back
}


def run_csv(cli: Any, config: Path, path: Path, *args: str) -> list[dict[str, Any]]:
    res = cli("--config", str(config), "bulk-cancel", str(path), "--yes", "--json", *args)
    assert res.code in (0, 1), res.stderr
    return res.json_lines()  # type: ignore[no-any-return]


def provider_requests(sb: Sandbox, provider: str) -> int:
    return sum(n for (p, op), n in sb.counts.items() if p == provider and op != "token")


@pytest.mark.parametrize("provider", list(KINDS))
def test_requests_per_payment_per_provider_and_answer_kind(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, provider: str
) -> None:
    for mode, table in (("cancel first", CANCEL_FIRST), ("read first", READ_FIRST)):
        for column, (kind, (fields, outcome)) in enumerate(KINDS[provider].items()):
            ids = [sandbox.add_payment(provider, **fields) for _ in range(N)]
            path = tmp_path / f"{kind}.csv"
            path.write_text("payment_id\n" + "\n".join(ids) + "\n")
            sandbox.reset_counters()
            extra = ["--read-first"] if mode == "read first" else []
            lines = run_csv(cli, config_file, path, "--account", provider, "--reason", "r", *extra)
            results = [line for line in lines if line["type"] == "result"]
            assert [r["outcome"] for r in results] == [outcome] * N, (mode, kind)
            assert provider_requests(sandbox, provider) == N * table[provider][column], (
                mode,
                kind,
                dict(sandbox.counts),
            )
            assert sum(sandbox.cancel_commits.values()) == (N if kind == "cancelled" else 0)
            if kind == "cancelled":
                for r in results:  # the before column: read, or implied by the answer
                    assert r["before"]["cancelable"] is True
                    implied = r["before"]["native_status"] == "implied by the cancel answer"
                    assert implied is (mode == "cancel first" and provider != "vipps")


@pytest.mark.parametrize("provider", ["flexportal", "hedgepayments", "flex"])
def test_an_expected_amount_column_reads_first(
    cli: Any, sandbox: Sandbox, config_file: Path, tmp_path: Path, provider: str
) -> None:
    fields = KINDS[provider]["cancelled"][0]
    currency = {"flexportal": "EUR"}.get(provider, "USD")
    ids = [sandbox.add_payment(provider, **fields) for _ in range(N)]
    mismatch = sandbox.add_payment(provider, **fields)
    rows = [f"{i},10.00,{currency}" for i in ids] + [f"{mismatch},9.99,{currency}"]
    path = tmp_path / "guarded.csv"
    path.write_text("payment_id,expected_amount,expected_currency\n" + "\n".join(rows) + "\n")
    sandbox.reset_counters()
    lines = run_csv(cli, config_file, path, "--account", provider, "--reason", "r")
    outcomes = {r["payment_id"]: r["outcome"] for r in lines if r["type"] == "result"}
    assert outcomes == {**dict.fromkeys(ids, "cancelled"), mismatch: "not_cancellable"}
    assert sandbox.counts[(provider, "get")] == N + 1  # every guarded row is read first
    assert sandbox.counts[(provider, "cancel")] == N  # the mismatch is never sent
    assert provider_requests(sandbox, provider) == 2 * N + 1


def run_demo(tmp_path: Path, cli: Any, *extra: str) -> tuple[list[dict[str, Any]], list[Any]]:
    with Sandbox() as sb:
        config = write_config(tmp_path / "demo.toml", sb.account_config())
        report = tmp_path / "report.csv"
        res = cli(
            "--config",
            str(config),
            "bulk-cancel",
            str(DEMO),
            "--reason",
            "demo",
            "--yes",
            "--json",
            "--report",
            str(report),
            *extra,
        )
        assert res.code == 1, res.stderr
        commits = sorted(k for k, n in sb.cancel_commits.items() if n == 1)
        assert all(n <= 1 for n in sb.cancel_commits.values())
    with open(report, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [*res.json_lines(), *rows], commits


def test_demo_csv_gives_the_same_outcomes_and_amounts_in_both_modes(
    cli: Any, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, first_commits = run_demo(tmp_path / "a", cli)
    second, second_commits = run_demo(tmp_path / "b", cli, "--read-first")

    def facts(lines: list[dict[str, Any]]) -> tuple[Any, ...]:
        summary = next(line for line in lines if line.get("type") == "summary")
        results = {
            line["payment_id"]: line["outcome"] for line in lines if line.get("type") == "result"
        }
        released = {
            row["payment_id"]: (row["released"], row["released_currency"])
            for row in lines
            if "released" in row
        }
        return (
            results,
            released,
            summary["outcomes"],
            summary["cancelled_amounts"],
            summary["unknown_amounts"],
            summary["requests"],
        )

    results_a, released_a, outcomes_a, amounts_a, unknown_a, requests_a = facts(first)
    results_b, released_b, outcomes_b, amounts_b, unknown_b, requests_b = facts(second)
    assert len(results_a) == 31
    assert results_a == results_b
    assert released_a == released_b and len(released_a) == 31
    assert released_a["demo-partcapture-0001"] == ("7.50", "NOK")  # Vipps releases the rest
    assert (
        outcomes_a
        == outcomes_b
        == {
            "cancelled": 11,
            "already_cancelled": 7,
            "not_cancellable": 13,
        }
    )
    assert amounts_a == amounts_b
    assert sum(Decimal(a["value"]) for a in amounts_a) == Decimal("1139.38")
    assert unknown_a == unknown_b == 1
    assert first_commits == second_commits and len(first_commits) == 11
    # today's count with --read-first: a read per payment, a cancel per cancelable one,
    # Compago's read back and Vipps' token; cancel first saves the rest
    assert requests_b == 31 + 11 + 1 + 1
    assert requests_a == 42


# -- a crash between the in-flight record and the answer, with no before recorded --------


def in_flight_without_before(journal_path: Path, run_id: str, account: str, pid: str) -> str:
    journal = Journal(journal_path)
    key = idempotency_key(run_id, account, pid)
    journal.start_run(
        run_id,
        user="u",
        host="h",
        command="paycancel bulk-cancel in.csv",
        input="in.csv",
        input_hash=run_id,
        reason="r",
        options={"kind": "bulk", "accounts": [account], "concurrency": 1},
    )
    journal.plan(run_id, [PlanRow(account, account, pid, "r", key, line=2)])
    journal.mark_in_flight(run_id, account, pid, None)
    journal.set_run_status(run_id, "interrupted")
    assert next(journal.payments(run_id)).before is None
    return key


def send_cancel(sb: Sandbox, provider: str, pid: str, key: str) -> int:
    """The cancel the crashed process had sent (its answer never recorded)."""
    acc = sb.account_config()[provider]
    path = f"/v1/payments/{pid}/cancel"  # the same for both providers used here
    headers = {"Authorization": f"Bearer {acc['api_key']}", "Idempotency-Key": key}
    if provider == "flexportal":
        headers["Tenant-ID"] = acc["tenant_id"]
    return httpx.post(acc["base_url"] + path, json={"reason": "r"}, headers=headers).status_code


@pytest.mark.parametrize(
    ("provider", "pid", "landed", "outcome", "resent", "commits"),
    [
        # the cancel landed: the read shows it cancelled, counted as this run's, and
        # nothing is sent to ask (no provider documents replaying a key's answer)
        ("hedgepayments", "pay_demopending01", True, "cancelled", 0, 1),
        ("flexportal", "fpay_demo_failed_01", True, "cancelled", 0, 1),
        # the cancel never arrived: the read shows it open, the cancel is sent
        ("hedgepayments", "pay_demoinitiated01", False, "cancelled", 1, 1),
        ("flexportal", "fpay_demo_pending_01", False, "cancelled", 1, 1),
        # the documented limit: cancelled by someone else before this run's cancel
        # arrived looks the same as ours landing (--read-first rules it out); no cancel
        # is sent, so nothing changes at the provider
        ("hedgepayments", "pay_democanceled01", False, "cancelled", 0, 0),
    ],
)
def test_resume_of_a_cancel_sent_without_a_read_first(
    cli: Any,
    sandbox: Sandbox,
    config_file: Path,
    tmp_path: Path,
    provider: str,
    pid: str,
    landed: bool,
    outcome: str,
    resent: int,
    commits: int,
) -> None:
    key = in_flight_without_before(tmp_path / "journal.sqlite3", "r-first", provider, pid)
    if landed:
        assert send_cancel(sandbox, provider, pid, key) in (200, 400, 412)
    committed = sandbox.cancel_commits[(provider, pid)]
    sandbox.reset_counters()
    res = cli("--config", str(config_file), "bulk-cancel", "--resume", "r-first", "--yes", "--json")
    assert res.code == 0, res.stderr
    (result,) = [line for line in res.json_lines() if line["type"] == "result"]
    assert result["outcome"] == outcome and result["idempotency_key"] == key
    assert sandbox.counts[(provider, "get")] == 1  # read first, always
    assert sandbox.counts[(provider, "cancel")] == resent
    total = committed + sandbox.cancel_commits[(provider, pid)]
    assert total == commits  # never a second cancel
    shown = result["after"] or result["before"]
    assert shown["status"] == "cancelled"


def test_read_first_is_a_mode_of_the_run_not_of_a_resume(cli: Any, config_file: Path) -> None:
    res = cli("--config", str(config_file), "bulk-cancel", "--resume", "r-x", "--read-first")
    assert res.code == 2
    assert "--read-first" in res.stderr and "Nothing was sent" in res.stderr
    shown = cli("bulk-cancel", "--help")
    assert "--read-first" in shown.stdout
