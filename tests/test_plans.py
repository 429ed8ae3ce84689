"""Reviewed plans and four-eyes approvals, over the sandbox, with real OpenSSH keys
(``ssh-keygen -t ed25519``) and real ``ssh-keygen -Y`` signatures.

Every refusal is exit 2 and no request of any kind at the sandbox (its own counters)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paycancel_cli.journal import Journal
from paycancel_cli.plans import canonical, digest_of, dumps, parse_expiry
from paycancel_cli.sandbox import Sandbox

from .conftest import SENTINEL, CliResult, spawn

PEOPLE = ("alice", "bob", "carol")  # in allowed_signers; "eve" is not


def keygen(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


@dataclass
class Team:
    """Keys, an allowed_signers file, a sandbox with payments, and a config."""

    tmp: Path
    sb: Sandbox
    keys: dict[str, Path]
    allowed: Path
    config: Path
    ids: list[str]  # open payments at HedgePayments
    paid: str  # one that is not cancellable
    csv: Path

    def write_config(self, approvals: int = 1, **override: Any) -> None:
        fields = {**self.sb.account_config()["hedgepayments"], "approvals": approvals}
        fields.update(override)
        lines = ["[approvals]", f"allowed_signers = {json.dumps(str(self.allowed))}", ""]
        lines += ["[accounts.hedge]", *(f"{k} = {json.dumps(v)}" for k, v in fields.items())]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o600)

    def requests(self) -> int:
        return sum(self.sb.counts.values())

    @property
    def plan(self) -> Path:
        return self.tmp / "night.plan.json"


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    keys = {name: keygen(tmp_path, name) for name in (*PEOPLE, "eve")}
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(
        "".join(
            f"{n} {' '.join(keys[n].with_suffix('.pub').read_text().split()[:2])}\n" for n in PEOPLE
        )
    )
    with Sandbox(seed_demo=False) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=1000) for _ in range(3)]
        paid = sb.add_payment("hedgepayments", status="succeeded", amount=500)
        csv = tmp_path / "night.csv"
        csv.write_text("payment_id\n" + "\n".join([*ids, paid]) + "\n")
        t = Team(tmp_path, sb, keys, allowed, tmp_path / "config.toml", ids, paid, csv)
        t.write_config()
        yield t


def pc(cli: Any, team: Team, *args: str) -> CliResult:
    return cli("--config", str(team.config), *args)  # type: ignore[no-any-return]


def make_plan(cli: Any, team: Team, *extra: str, author: str = "alice") -> CliResult:
    res = pc(
        cli, team, "bulk-cancel", str(team.csv), "--reason", "early return",
        "--plan-out", str(team.plan), "--key", str(team.keys[author]), *extra,
    )  # fmt: skip
    assert res.code == 1, res.stderr  # the dry run: one payment is not cancellable
    assert team.plan.exists()
    return res


def approve(cli: Any, team: Team, who: str) -> CliResult:
    return pc(cli, team, "plan", "approve", str(team.plan), "--key", str(team.keys[who]))


def refused(cli: Any, team: Team, *args: str) -> CliResult:
    """Run ``args`` and check: exit 2, and not one request reached the sandbox."""
    team.sb.reset_counters()
    res = pc(cli, team, *args)
    assert res.code == 2, (res.stdout, res.stderr)
    assert team.requests() == 0, team.sb.counts
    return res


def apply_args(team: Team, *extra: str) -> list[str]:
    return ["bulk-cancel", "--plan", str(team.plan), "--yes", *extra]


def edit_plan(team: Team, change: Any) -> None:
    data = json.loads(team.plan.read_text())
    change(data)
    team.plan.write_text(dumps(data))


# the whole flow


def test_plan_show_approve_apply(cli: Any, team: Team, tmp_path: Path) -> None:
    made = make_plan(cli, team)
    # the message wraps at 80 columns wherever the path of the plan ends: read it as words
    assert "3 of 4 payment(s) would be cancelled" in " ".join(made.stderr.split())
    plan = json.loads(team.plan.read_text())
    assert list(plan) == [
        "format", "plan_id", "created_at", "expires_at", "author", "command", "input",
        "reason", "accounts", "payments", "totals", "digest",
    ]  # fmt: skip
    assert plan["format"] == "paycancel-plan/1"
    assert plan["author"]["principal"] == "alice"
    assert plan["digest"] == digest_of(plan)
    assert [p["plan"] for p in plan["payments"]] == ["would_cancel"] * 3 + ["not_cancellable"]
    assert plan["accounts"] == [
        {"name": "hedge", "provider": "hedgepayments", "live": False,
         "host": team.sb.base_url.removeprefix("http://")},
    ]  # fmt: skip
    assert plan["totals"]["would_release"] == [{"value": "30.00", "currency": "USD"}]
    assert (team.tmp / "night.plan.json.approvals" / "alice.sig").exists()

    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    assert shown.code == 1  # intact, one approval missing
    *planned, record = shown.json_lines()
    assert [p["type"] for p in planned] == ["planned"] * 4
    assert record["type"] == "plan" and record["intact"] and not record["expired"]
    assert record["approvals_missing"] == {"hedge": 1} and not record["applicable"]
    assert record["approvals"][0]["principal"] == "alice"

    assert approve(cli, team, "bob").code == 0
    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    assert shown.code == 0, shown.stdout
    assert shown.json_lines()[-1]["approvers"] == ["bob"]

    # a row added to the CSV after the plan was made changes nothing: the plan is the input
    late = team.sb.add_payment("hedgepayments", status="pending", amount=700)
    team.csv.write_text(team.csv.read_text() + late + "\n")
    team.sb.reset_counters()
    report = tmp_path / "report.csv"
    res = pc(cli, team, *apply_args(team, "--json", "--report", str(report)))
    assert res.code == 1, res.stderr  # the paid one stays not cancellable
    assert "approved by bob" in res.stderr
    summary = res.json_lines()[-1]
    assert summary["outcomes"] == {"cancelled": 3, "not_cancellable": 1}
    # one read and one cancel per planned payment, nothing for the other
    assert team.sb.counts == {("hedgepayments", "get"): 3, ("hedgepayments", "cancel"): 3}
    assert team.sb.cancel_commits == {("hedgepayments", i): 1 for i in team.ids}

    runs = pc(cli, team, "runs", "--json").json_lines()
    applied = next(r for r in runs if "plan" in r)
    assert applied["plan"]["plan_id"] == plan["plan_id"]
    assert applied["plan"]["digest"] == plan["digest"]
    assert applied["plan"]["approvers"] == ["bob"]
    assert "alice" in applied["plan"]["author"]
    shown_run = pc(cli, team, "runs", "show", applied["run_id"])
    assert f"Applied plan {plan['plan_id']}" in shown_run.stderr
    header = report.read_text().splitlines()[0].split(",")
    assert header[-4:] == ["plan_id", "plan_digest", "plan_author", "plan_approvers"]
    assert plan["digest"] in report.read_text()


def test_a_signature_made_by_hand_counts_the_same(cli: Any, team: Team) -> None:
    make_plan(cli, team)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "paycancel-plan", "-f", str(team.keys["carol"]),
         str(team.plan)],
        check=True, capture_output=True,
    )  # fmt: skip
    folder = team.tmp / "night.plan.json.approvals"
    (team.tmp / "night.plan.json.sig").rename(folder / "by-hand.sig")
    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    assert shown.code == 0, shown.stdout
    assert shown.json_lines()[-1]["approvers"] == ["carol"]
    # and ours verify with ssh-keygen by hand
    done = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(team.allowed), "-I", "alice", "-n",
         "paycancel-plan", "-s", str(folder / "alice.sig")],
        input=team.plan.read_bytes(), capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# refusals: exit 2, not one request


def _amount(data: dict[str, Any]) -> None:
    data["payments"][0]["state"]["amount"]["value"] = "1.00"


def _added(data: dict[str, Any]) -> None:
    data["payments"].append({**data["payments"][0], "payment_id": "pay_sandbox999999"})


def _removed(data: dict[str, Any]) -> None:
    del data["payments"][1]


@pytest.mark.parametrize("change", [_amount, _added, _removed], ids=["amount", "added", "removed"])
def test_an_edited_plan_is_refused(cli: Any, team: Team, change: Any) -> None:
    make_plan(cli, team)
    approve(cli, team, "bob")
    edit_plan(team, change)
    res = refused(cli, team, *apply_args(team))
    assert "changed after it was made" in res.stderr
    assert pc(cli, team, "plan", "show", str(team.plan)).code == 2
    refused(cli, team, "plan", "approve", str(team.plan), "--key", str(team.keys["carol"]))


def test_an_edit_that_keeps_the_digest_breaks_every_signature(cli: Any, team: Team) -> None:
    """Recomputing the digest after an edit does not help: the approvals sign the bytes."""
    make_plan(cli, team)
    approve(cli, team, "bob")

    def reseal(data: dict[str, Any]) -> None:
        _added(data)
        data["digest"] = digest_of(data)

    edit_plan(team, reseal)
    res = refused(cli, team, *apply_args(team))
    assert "bob.sig does not count" in res.stderr


def test_an_expired_plan_is_refused(cli: Any, team: Team) -> None:
    make_plan(cli, team, "--expires", "1s")
    approve(cli, team, "bob")
    time.sleep(2.1)
    res = refused(cli, team, *apply_args(team))
    assert "expired" in res.stderr
    refused(cli, team, "plan", "approve", str(team.plan), "--key", str(team.keys["carol"]))
    assert pc(cli, team, "plan", "show", str(team.plan)).code == 2


def test_a_second_apply_is_refused_naming_the_first_run(cli: Any, team: Team) -> None:
    make_plan(cli, team)
    approve(cli, team, "bob")
    first = pc(cli, team, *apply_args(team, "--json"))
    run_id = first.json_lines()[-1]["run_id"]
    res = refused(cli, team, *apply_args(team))
    assert f"applied before, by run {run_id}" in res.stderr
    assert f"--resume {run_id}" in res.stderr
    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    assert shown.code == 2 and shown.json_lines()[-1]["applied_by_run"] == run_id
    record = refused(cli, team, *apply_args(team, "--json")).json_lines()[-1]
    assert record["type"] == "error" and record["code"] == "plan_refused"
    assert record["exit_code"] == 2 and run_id in record["message"]


@pytest.mark.parametrize("what", ["host", "provider"])
def test_a_changed_account_is_refused(cli: Any, team: Team, what: str) -> None:
    make_plan(cli, team)
    approve(cli, team, "bob")
    if what == "host":
        team.write_config(
            base_url=team.sb.base_url.replace("127.0.0.1", "localhost") + "/hedgepayments"
        )
    else:
        flex = team.sb.account_config()["flex"]
        lines = ["[approvals]", f"allowed_signers = {json.dumps(str(team.allowed))}", ""]
        lines += ["[accounts.hedge]", *(f"{k} = {json.dumps(v)}" for k, v in flex.items())]
        team.config.write_text("\n".join(lines) + "\napprovals = 1\n")
    res = refused(cli, team, *apply_args(team))
    assert "account hedge changed since the plan was made" in res.stderr


def test_the_author_cannot_approve(cli: Any, team: Team) -> None:
    make_plan(cli, team)
    before = sorted((team.tmp / "night.plan.json.approvals").iterdir())
    res = refused(cli, team, "plan", "approve", str(team.plan), "--key", str(team.keys["alice"]))
    assert "alice made this plan" in res.stderr
    assert sorted((team.tmp / "night.plan.json.approvals").iterdir()) == before


def test_an_unlisted_key_cannot_approve_and_its_signature_never_counts(
    cli: Any, team: Team
) -> None:
    make_plan(cli, team)
    res = refused(cli, team, "plan", "approve", str(team.plan), "--key", str(team.keys["eve"]))
    assert "not in the allowed_signers file" in res.stderr
    assert not (team.tmp / "night.plan.json.approvals" / "eve.sig").exists()
    # signed by hand and dropped in: listed, not counted
    sig = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "paycancel-plan", "-f", str(team.keys["eve"])],
        input=team.plan.read_bytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    (team.tmp / "night.plan.json.approvals" / "eve.sig").write_bytes(sig)
    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    assert shown.code == 1
    eve = next(a for a in shown.json_lines()[-1]["approvals"] if a["file"] == "eve.sig")
    assert not eve["valid"] and "not in allowed_signers" in eve["problem"]
    refused(cli, team, *apply_args(team))


def test_a_signature_with_one_byte_flipped_is_invalid_and_not_counted(cli: Any, team: Team) -> None:
    make_plan(cli, team)
    approve(cli, team, "bob")
    sig = team.tmp / "night.plan.json.approvals" / "bob.sig"
    lines = sig.read_bytes().splitlines(keepends=True)
    body = bytearray(lines[3])  # a line of the base64 signature blob, past the key
    body[10] = ord("A") if body[10] != ord("A") else ord("B")
    lines[3] = bytes(body)
    sig.write_bytes(b"".join(lines))
    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    assert shown.code == 1
    record = shown.json_lines()[-1]
    bob = next(a for a in record["approvals"] if a["file"] == "bob.sig")
    assert not bob["valid"] and bob["problem"]
    assert record["approvers"] == [] and record["approvals_missing"] == {"hedge": 1}
    res = refused(cli, team, *apply_args(team))
    assert "bob.sig does not count" in res.stderr


def test_too_few_approvers_and_one_principal_counts_once(cli: Any, team: Team) -> None:
    team.write_config(approvals=2)
    make_plan(cli, team)
    approve(cli, team, "bob")
    sig = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "paycancel-plan", "-f", str(team.keys["bob"])],
        input=team.plan.read_bytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    (team.tmp / "night.plan.json.approvals" / "bob-again.sig").write_bytes(sig)
    shown = pc(cli, team, "plan", "show", str(team.plan), "--json")
    record = shown.json_lines()[-1]
    assert shown.code == 1
    assert [a["valid"] for a in record["approvals"]] == [True, True, True]
    assert record["approvers"] == ["bob"] and record["approvals_missing"] == {"hedge": 1}
    res = refused(cli, team, *apply_args(team))
    assert "needs 2 approver(s) besides the author, 1 missing" in res.stderr
    assert "bob (2 signatures, counted once)" in res.stderr
    assert approve(cli, team, "carol").code == 0
    team.sb.reset_counters()
    assert pc(cli, team, *apply_args(team)).code == 1  # applied (the paid one stays)
    assert sum(team.sb.cancel_commits.values()) == 3


def test_without_a_plan_cancel_and_bulk_cancel_are_refused(cli: Any, team: Team) -> None:
    res = refused(cli, team, "cancel", team.ids[0], "--reason", "x", "--yes")
    assert "--plan-out p.json --key KEY" in res.stderr
    assert "echo ID | paycancel bulk-cancel - --account hedge" in res.stderr
    res = refused(cli, team, "bulk-cancel", str(team.csv), "--reason", "x", "--yes")
    assert "takes cancels only from a plan" in res.stderr
    refused(cli, team, "bulk-cancel", "--subscription", "sub_x", "--reason", "x", "--yes")
    # looking is still allowed
    assert pc(cli, team, "bulk-cancel", str(team.csv), "--dry-run").code == 1


def test_a_plan_without_a_signed_author_is_refused(cli: Any, team: Team) -> None:
    res = refused(
        cli, team, "bulk-cancel", str(team.csv), "--reason", "r", "--plan-out", str(team.plan)
    )
    assert "--key" in res.stderr and not team.plan.exists()
    team.write_config(approvals=0)
    res = pc(cli, team, "bulk-cancel", str(team.csv), "--reason", "r", "--plan-out", str(team.plan))
    assert res.code == 1 and team.plan.exists()
    team.write_config(approvals=1)
    approve(cli, team, "bob")
    res = refused(cli, team, *apply_args(team))
    assert "no signed author" in res.stderr


def test_a_missing_ssh_keygen_is_a_clear_error(
    cli: Any, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_plan(cli, team)
    monkeypatch.setenv("PATH", str(team.tmp / "empty-bin"))
    res = refused(cli, team, "plan", "approve", str(team.plan), "--key", str(team.keys["bob"]))
    assert "ssh-keygen" in res.stderr and "8.2" in res.stderr
    res = refused(cli, team, *apply_args(team))
    assert "ssh-keygen" in res.stderr and "Traceback" not in res.stderr


# drift between plan and apply


def test_a_payment_paid_or_repriced_since_the_plan_is_not_cancelled(cli: Any, team: Team) -> None:
    make_plan(cli, team)
    approve(cli, team, "bob")
    paid, repriced, untouched = team.ids
    team.sb.update_payment("hedgepayments", paid, status="succeeded")
    team.sb.update_payment("hedgepayments", repriced, amount=2500)
    team.sb.reset_counters()
    res = pc(cli, team, *apply_args(team, "--json"))
    assert res.code == 1
    results = {r["payment_id"]: r for r in res.json_lines() if r["type"] == "result"}
    assert results[untouched]["outcome"] == "cancelled"
    for pid, what in (
        (paid, "status pending -> succeeded"),
        (repriced, "amount 10.00 USD -> 25.00 USD"),
    ):
        assert results[pid]["outcome"] == "not_cancellable"
        assert results[pid]["error"]["code"] == "changed_since_plan"
        assert what in results[pid]["error"]["message"]
    cancels = {pid for (_, pid) in team.sb.cancel_commits}
    assert cancels == {untouched}
    assert team.sb.counts[("hedgepayments", "cancel")] == 1  # no cancel sent for the drifted


# crash safety


@pytest.mark.timeout(120)
def test_sigkill_mid_apply_then_resume_cancels_each_once(tmp_path: Path, cli: Any) -> None:
    keys = {n: keygen(tmp_path, n) for n in ("alice", "bob")}
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(
        "".join(
            f"{n} {' '.join(keys[n].with_suffix('.pub').read_text().split()[:2])}\n" for n in keys
        )
    )
    from paycancel_cli.sandbox import Faults

    with Sandbox(seed_demo=False) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=1000) for _ in range(24)]
        t = Team(tmp_path, sb, keys, allowed, tmp_path / "c.toml", ids, "", tmp_path / "in.csv")
        t.write_config()
        t.csv.write_text("payment_id\n" + "\n".join(ids) + "\n")
        res = pc(cli, t, "bulk-cancel", str(t.csv), "--reason", "r", "--plan-out", str(t.plan),
                 "--key", str(keys["alice"]))  # fmt: skip
        assert res.code == 0, res.stderr
        assert approve(cli, t, "bob").code == 0
        journal = Path(os.environ["PAYCANCEL_DEFAULTS__JOURNAL"])
        env = {**os.environ}
        sb.faults = Faults(latency_ms=150)
        first = spawn(
            ["--config", str(t.config), *apply_args(t, "--json", "--concurrency", "4")], env
        )
        try:
            deadline = time.monotonic() + 60
            while sum(sb.cancel_commits.values()) < 6 and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert first.returncode == -signal.SIGKILL
        run = next(r for r in Journal(journal).runs() if r.options.get("plan"))
        assert run.status == "running"
        sb.faults = Faults()
        committed = sb.cancel_commits  # (the refusal below resets the sandbox's counters)
        # a fresh apply is refused while (and after) the run exists
        refusal = refused(cli, t, *apply_args(t))
        assert run.run_id in refusal.stderr
        resumed = spawn(
            ["--config", str(t.config), "bulk-cancel", "--resume", run.run_id, "--yes", "--json"],
            env,
        )
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
        summary = json.loads(out.splitlines()[-1])
        assert summary["outcomes"] == {"cancelled": 24} and summary["remaining"] == 0
        assert committed + sb.cancel_commits == {("hedgepayments", i): 1 for i in ids}
        assert 0 < sum(committed.values()) < 24  # killed mid-apply
        refused(cli, t, *apply_args(t))


# secrets


def test_no_secret_in_the_plan_or_its_approvals(cli: Any, team: Team) -> None:
    team.sb.stop()
    with Sandbox(
        seed_demo=False, credentials={"hedgepayments": {"api_key": "sk_test_" + SENTINEL}}
    ) as sb:
        ids = [sb.add_payment("hedgepayments", status="pending", amount=1000) for _ in range(2)]
        team.sb, team.ids = sb, ids
        team.write_config(api_key="sk_test_" + SENTINEL)
        team.csv.write_text("payment_id\n" + "\n".join(ids) + "\n")
        outputs = []
        res = pc(cli, team, "bulk-cancel", str(team.csv), "--reason", "r", "--plan-out",
                 str(team.plan), "--key", str(team.keys["alice"]), "-v")  # fmt: skip
        assert res.code == 0, res.stderr
        outputs.append(res)
        outputs.append(approve(cli, team, "bob"))
        outputs.append(pc(cli, team, "plan", "show", str(team.plan)))
        outputs.append(pc(cli, team, "plan", "show", str(team.plan), "--json"))
        outputs.append(pc(cli, team, *apply_args(team, "-v", "--report", str(team.tmp / "r.csv"))))
        outputs.append(pc(cli, team, *apply_args(team)))  # refused: the message too
        for out in outputs:
            assert SENTINEL not in out.stdout + out.stderr
        files = [team.plan, team.tmp / "r.csv", *(team.tmp / "night.plan.json.approvals").iterdir()]
        for path in files:
            assert SENTINEL.encode() not in path.read_bytes(), path
        assert SENTINEL.encode() not in Path(os.environ["PAYCANCEL_DEFAULTS__JOURNAL"]).read_bytes()


# small parts


def test_expiry_durations() -> None:
    assert parse_expiry("90s").total_seconds() == 90
    assert parse_expiry("30m").total_seconds() == 1800
    assert parse_expiry("3d").days == 3
    for bad in ("8d", "0h", "1.5h", "24", "h", "-1h"):
        with pytest.raises(Exception, match="--expires"):
            parse_expiry(bad)


def test_the_digest_is_over_canonical_json_without_itself() -> None:
    body = {"b": 1, "a": "ø", "digest": "x"}
    assert canonical(body) == '{"a":"ø","b":1}'.encode()
    import hashlib

    assert digest_of(body) == "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def test_the_migration_adds_the_plans_table_to_an_older_journal(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE run_plans")  # as a journal made before plans existed
    db.commit()
    db.close()
    for _ in range(2):  # idempotent
        journal = Journal(path)
        tables = {r[0] for r in journal.db.execute("SELECT name FROM sqlite_master")}
        assert "run_plans" in tables
        journal.close()


def test_plan_show_fits_80_columns(cli: Any, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plan(cli, team)
    monkeypatch.setenv("COLUMNS", "80")
    shown = pc(cli, team, "plan", "show", str(team.plan))
    assert shown.code == 1
    for pid in (*team.ids, team.paid):
        assert pid in shown.stdout
    assert json.loads(team.plan.read_text())["digest"] in shown.stdout


@pytest.mark.parametrize("width", [80, 120])
def test_plan_show_on_a_terminal_never_runs_past_its_width(
    cli: Any, team: Team, width: int
) -> None:
    import io
    import re

    from rich.console import Console

    from paycancel_cli.commands.plan import render_plan
    from paycancel_cli.config import load_config
    from paycancel_cli.plans import evaluate, read_plan
    from paycancel_cli.render import Output

    make_plan(cli, team)
    approve(cli, team, "bob")
    buf, err = io.StringIO(), io.StringIO()
    out = Output(stdout=buf, stderr=err)
    out.out = Console(file=buf, width=width, force_terminal=True, color_system=None)
    plan = read_plan(team.plan)
    render_plan(out, evaluate(plan, load_config(team.config), None))
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue()).splitlines()
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    for whole in (*team.ids, team.paid, plan.digest, plan.plan_id, "10.00 USD", "5.00 USD"):
        assert whole in text
    assert "bob" in text and "author" in text


def test_ssh_keygen_is_installed() -> None:
    """CI installs openssh-client: the approval tests must run, never skip."""
    assert shutil.which("ssh-keygen") is not None


def test_a_sandbox_plan_applies_in_a_later_sandbox(cli: Any, tmp_path: Path) -> None:
    """--sandbox serves on a new port each invocation: its host check ignores the port."""
    root = Path(__file__).resolve().parent.parent
    plan = tmp_path / "demo.plan.json"
    res = cli("--sandbox", "bulk-cancel", str(root / "examples" / "demo.csv"), "--reason",
              "demo", "--plan-out", str(plan))  # fmt: skip
    assert plan.exists(), res.stderr
    assert cli("--sandbox", "plan", "show", str(plan)).code == 0
    res = cli("--sandbox", "bulk-cancel", "--plan", str(plan), "--yes", "--json")
    assert res.code in (0, 1), res.stderr
    summary = res.json_lines()[-1]
    assert summary["outcomes"].get("cancelled", 0) == sum(
        1 for p in json.loads(plan.read_text())["payments"] if p["plan"] == "would_cancel"
    )


def test_a_subscription_plan(cli: Any, team: Team) -> None:
    """--plan-out works on --subscription too: the list page is the state planned."""
    ids = team.sb.seed_subscription("rent_plan", {"pending": 3, "failed": 1})
    fp = team.sb.account_config()["flexportal"]
    lines = ["[approvals]", f"allowed_signers = {json.dumps(str(team.allowed))}", ""]
    lines += ["[accounts.fp]", *(f"{k} = {json.dumps(v)}" for k, v in fp.items()), "approvals = 1"]
    team.config.write_text("\n".join(lines) + "\n")
    key = str(team.keys["alice"])
    res = pc(cli, team, "bulk-cancel", "--subscription", "rent_plan", "-a", "fp", "--reason",
             "returned", "--plan-out", str(team.plan), "--key", key)  # fmt: skip
    assert res.code == 0, res.stderr
    planned = json.loads(team.plan.read_text())["payments"]
    assert sorted(p["payment_id"] for p in planned) == sorted(ids)
    assert approve(cli, team, "carol").code == 0
    team.sb.reset_counters()
    res = pc(cli, team, *apply_args(team, "--json"))
    assert res.code == 0, res.stderr
    assert res.json_lines()[-1]["outcomes"] == {"cancelled": 4}
    assert ("flexportal", "list") not in team.sb.counts  # the plan is the input: no listing
