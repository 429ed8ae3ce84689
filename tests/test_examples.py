"""The shipped example config and demo CSV stay valid."""

from __future__ import annotations

import csv
from pathlib import Path

from paycancel_cli.config import load_config
from paycancel_cli.sandbox import DEMO_PAYMENTS

ROOT = Path(__file__).resolve().parent.parent


def test_config_example_loads() -> None:
    config = load_config(ROOT / "config.example.toml")
    assert set(config.accounts) == {"flexportal_eu", "hedge", "flex", "vipps_no", "compago"}
    assert config.account("hedge").is_live is False


def test_demo_csv_lists_every_demo_payment() -> None:
    with open(ROOT / "examples" / "demo.csv", newline="") as handle:
        rows = {(r["account"], r["payment_id"]) for r in csv.DictReader(handle)}
    expected = {(p, pid) for p, items in DEMO_PAYMENTS.items() for pid, _ in items}
    assert rows == expected
