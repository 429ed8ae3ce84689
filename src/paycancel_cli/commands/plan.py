"""``paycancel plan show|approve``, and the plan options of ``bulk-cancel`` (``--plan``,
``--plan-out``): parse, call ``plans``, render.  Imports nothing from cli.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paycancel_cli.commands.common import Command, examples, globals_of
from paycancel_cli.errors import UsageError

if TYPE_CHECKING:
    from paycancel_cli.config import Config
    from paycancel_cli.plans import Author, Plan, Verdict
    from paycancel_cli.render import Output, Sheet
    from paycancel_cli.runs.summary import BulkOutcome


plan_app = typer.Typer(
    help="Reviewed plans: show one, approve one (four eyes).", no_args_is_help=True
)

PlanArg = Annotated[
    Path,
    typer.Argument(
        metavar="PLAN", help="The plan file (bulk-cancel --plan-out).", show_default=False
    ),
]


@plan_app.command(
    "show",
    short_help="Show a plan: who made it, its payments, its approvals.",
    epilog=examples(
        "paycancel plan show night.plan.json",
        "paycancel plan show night.plan.json --json",
    ),
)
def show(
    ctx: typer.Context,
    plan_file: PlanArg,
    json_: Annotated[
        bool, typer.Option("--json", help="JSON Lines on stdout, nothing else.")
    ] = False,
) -> None:
    """Show a plan as its reviewer reads it: who made it and when, when it expires, the
    input and reason, the accounts, the payments and totals, and the approvals.  Exit 0
    when it can be applied now, 1 when approvals are missing, 2 when it is unreadable,
    altered, expired, applied before or its accounts changed."""
    from paycancel_cli.journal import Journal
    from paycancel_cli.plans import evaluate, read_plan

    g = globals_of(ctx)
    config: Config = g.config()
    out: Output = g.output(json_)
    plan = read_plan(plan_file)
    journal = Journal(config.journal_path) if config.journal_path.exists() else None
    verdict = evaluate(plan, config, journal)
    if json_:
        for p in plan.payments:
            out.json_line({"type": "planned", **p})
        out.json_line(plan_record(verdict))
    else:
        render_plan(out, verdict)
    raise typer.Exit(verdict.exit_code)


@plan_app.command(
    "approve",
    short_help="Sign a plan as its reviewer (ssh-keygen, namespace paycancel-plan).",
    epilog=examples(
        "paycancel plan approve night.plan.json --key ~/.ssh/id_ed25519",
        "(the same, by hand:) ssh-keygen -Y sign -n paycancel-plan -f KEY night.plan.json",
    ),
)
def approve(
    ctx: typer.Context,
    plan_file: PlanArg,
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="PATH",
            help="Your SSH private key (or its .pub with ssh-agent); listed in allowed_signers.",
            show_default=False,
        ),
    ],
    json_: Annotated[
        bool, typer.Option("--json", help="JSON Lines on stdout, nothing else.")
    ] = False,
) -> None:
    """Approve a plan: sign it with your SSH key into PLAN.approvals/PRINCIPAL.sig.
    Refused for an altered or expired plan, a key not in allowed_signers, and the plan's
    own author."""
    from paycancel_cli.journal import Journal
    from paycancel_cli.plans import approve as sign_plan
    from paycancel_cli.plans import evaluate, read_plan

    g = globals_of(ctx)
    config: Config = g.config()
    out: Output = g.output(json_)
    plan = read_plan(plan_file)
    principal, path = sign_plan(plan, config, key.expanduser())
    journal = Journal(config.journal_path) if config.journal_path.exists() else None
    verdict = evaluate(plan, config, journal)
    state = (
        "it can be applied now"
        if verdict.applicable
        else f"not applicable yet: {verdict.approvals_text()}"
        if verdict.exit_code == 1
        else "it cannot be applied: " + "; ".join(verdict.problems)
    )
    if json_:
        out.json_line(
            {"type": "approval", "principal": principal, "file": str(path), **plan_record(verdict)}
        )
    out.message(f"Approved by {principal}: {path}. Plan {plan.plan_id}: {state}.")


# bulk-cancel --plan / --plan-out


def check_plan_flags(
    *,
    plan: Path | None,
    plan_out: Path | None,
    expires: str | None,
    key: Path | None,
    given: dict[str, Any],
    reason: str | None,
) -> None:
    """Refuse, before anything, flags that do not go with ``--plan`` / ``--plan-out``."""
    if plan is not None:
        shaping = [name for name, value in given.items() if value]
        if plan_out is not None:
            shaping.insert(0, "--plan-out")
        if expires is not None or key is not None:
            shaping.append("--expires/--key")
        if shaping:
            raise UsageError(
                f"--plan takes only --yes, --live, --concurrency, --report, --wait and --json, "
                f"not {', '.join(shaping)}: the plan is the input (its payments, accounts and "
                "reason). Nothing was sent."
            )
        return
    if plan_out is None:
        if expires is not None or key is not None:
            raise UsageError("--expires and --key go with --plan-out PLAN. Nothing was sent.")
        return
    for name in ("--validate-only", "--resume"):
        if given.get(name):
            raise UsageError(f"--plan-out does not go with {name}. Nothing was sent.")
    if not (reason or "").strip():
        raise UsageError(
            "--plan-out needs --reason TEXT: the plan records what will be sent. Nothing was sent."
        )
    if not (plan_out.parent.is_dir()):
        raise UsageError(f"--plan-out {plan_out}: the directory does not exist. Nothing was sent.")


def write_plan_out(
    out: Output,
    config: Config,
    outcome: BulkOutcome,
    *,
    path: Path,
    expires: str | None,
    author: Author,
    command: str,
    reason: str,
) -> None:
    """After the dry run of ``--plan-out``: write the plan (and the author's signature)."""
    from paycancel_cli.journal import Journal
    from paycancel_cli.plans import DEFAULT_EXPIRY, parse_expiry, plan_document, write_plan
    from paycancel_cli.plans import default_plan_user as who

    if outcome.run_id is None or outcome.interrupted:
        out.message("The dry run did not finish: no plan was written.", style="yellow")
        return
    journal = Journal(config.journal_path)
    user, host = who()
    document = plan_document(
        journal,
        config,
        outcome.run_id,
        author=author,
        expires=parse_expiry(expires) if expires else DEFAULT_EXPIRY,
        command=command,
        reason=reason,
        user=user,
        host=host,
    )
    notes = write_plan(path, document, config=config, author=author)
    would = sum(1 for p in document["payments"] if p["plan"] == "would_cancel")
    out.message(
        f"Plan {document['plan_id']} written to {path}: {would} of "
        f"{len(document['payments'])} payment(s) would be cancelled; it expires "
        f"{document['expires_at']}. Nothing was sent."
    )
    for note in notes:
        out.message(f"Note: {note}.")
    out.message("Next: paycancel plan show " + str(path))


# rendering


def plan_record(v: Verdict) -> dict[str, Any]:
    plan = v.plan
    data = plan.data
    return {
        "type": "plan",
        "plan_id": plan.plan_id,
        "digest": plan.digest,
        "author": plan.author,
        "created_at": data["created_at"],
        "expires_at": data["expires_at"],
        "expired": v.expired,
        "intact": plan.intact,
        "accounts": [{**a, "approvals": v.needed.get(a["name"])} for a in plan.accounts],
        "totals": data.get("totals"),
        "approvals": [
            {"principal": a.principal, "valid": a.valid, "problem": a.problem, "file": a.file}
            for a in v.approvals
        ],
        "approvers": v.approvers,
        "author_signed": v.author_signed,
        "approvals_missing": {a: n for a, n in v.missing.items()},
        "problems": v.problems + ([v.author_problem] if v.author_problem else []),
        "applicable": v.applicable,
        "applied_by_run": v.applied_by.run_id if v.applied_by else None,
    }


def render_plan(out: Output, v: Verdict) -> None:
    from rich.text import Text

    from paycancel_cli.render import Col, Sheet, kept

    plan = v.plan
    data = plan.data
    head = Sheet(
        Text("Plan ") + kept(plan.plan_id), [Col("field"), Col("value")], show_header=False
    )
    head.add_row("made by", f"{plan.author_label}, {data['created_at']}")
    head.add_row("expires", _expiry(plan))
    source = data.get("input") or {}
    head.add_row("input", str(source.get("name") or ""))
    if source.get("sha256"):
        head.add_row("sha256", kept(str(source["sha256"])))
    head.add_row("reason", out.redact(str(data["reason"])))
    head.add_row("digest", kept(plan.digest))
    head.add_row(
        "intact", "yes" if plan.intact else Text("NO: changed after it was made", style="bold red")
    )
    out.table(head)

    accounts = Sheet(
        Text("Accounts"),
        [
            Col("account", head=True),
            Col("provider"),
            Col("host"),
            Col("approvals", keep=True, right=True),
        ],
    )
    for a in plan.accounts:
        accounts.add_row(
            out.account_label(a["name"], bool(a["live"])),
            a["provider"],
            a["host"],
            str(v.needed.get(a["name"], "?")),
        )
    out.table(accounts)

    payments = Sheet(
        Text("Payments"),
        [
            Col("account", group=True, detail=""),
            Col("payment id", keep=True, head=True),
            Col("line", keep=True, right=True, detail="line "),
            Col("status", detail=""),
            Col("amount", keep=True, right=True),
            Col("plan"),
            Col("why", detail=""),
        ],
    )
    for p in plan.payments:
        state = p.get("state") or {}
        amount = state.get("amount")
        payments.add_row(
            p["account"],
            p["payment_id"],
            "" if p.get("line") is None else str(p["line"]),
            str(state.get("status") or ""),
            f"{amount['value']} {amount['currency']}" if amount else "",
            Text(p["plan"], style="cyan" if p["plan"] == "would_cancel" else "yellow"),
            out.redact(str(p.get("why") or p.get("code") or "")),
        )
    payments.empty = "The plan holds no payments."
    totals = data.get("totals") or {}
    counts = _outcome_totals(totals.get("per_account") or {})
    if counts:
        payments.note("Totals:", counts)
    release = totals.get("would_release") or []
    payments.note(
        "Would release:",
        *([kept(f"{m['value']} {m['currency']}") for m in release] or [Text("none")]),
    )
    out.table(payments)
    out.table(approvals_sheet(out, v))
    _verdict_lines(out, v)


def _outcome_totals(per_account: dict[str, dict[str, int]]) -> str:
    totals: dict[str, int] = {}
    for counts in per_account.values():
        for outcome, n in counts.items():
            totals[outcome] = totals.get(outcome, 0) + n
    return ", ".join(f"{k} {n}" for k, n in sorted(totals.items()))


def approvals_sheet(out: Output, v: Verdict) -> Sheet:
    from rich.text import Text

    from paycancel_cli.render import Col, Sheet

    author = v.plan.author.get("principal")
    sheet = Sheet(
        Text("Approvals"),
        [
            Col("signature", keep=True, head=True),
            Col("principal"),
            Col("counts"),
            Col("why", detail=""),
        ],
        empty="Approvals: none in " + v.plan.path.name + ".approvals/.",
    )
    for a in v.approvals:
        if a.valid and a.principal == author:
            counts = Text("author", style="dim")
        elif a.valid:
            counts = Text("yes", style="green")
        else:
            counts = Text("no", style="bold red")
        sheet.add_row(a.file, a.principal or "", counts, out.redact(a.problem or ""))
    return sheet


def _verdict_lines(out: Output, v: Verdict) -> None:
    for problem in v.problems:
        out.message(f"Cannot be applied: {problem}.", style="bold red")
    if v.author_problem:
        out.message(f"Not applicable yet: {v.author_problem}.", style="yellow")
    for account, n in sorted(v.missing.items()):
        if n:
            out.message(
                f"Not applicable yet: account {account} needs {v.needed[account]} approver(s) "
                f"besides the author; {n} missing.",
                style="yellow",
            )
    if v.applicable:
        out.message(
            "Applicable now: paycancel bulk-cancel --plan " + str(v.plan.path), style="green"
        )


def _expiry(plan: Plan) -> str:
    left = plan.expires_at - datetime.now(UTC)
    when = plan.data["expires_at"]
    if left.total_seconds() <= 0:
        return f"{when} (EXPIRED)"
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return f"{when} (in {hours}h {rest // 60:02d}m)"


COMMAND = Command(
    plan_app,
    name="plan",
    short_help="Reviewed plans: `plan show PLAN`, `plan approve PLAN --key PATH`.",
    examples=(
        "paycancel bulk-cancel night.csv -a fp_eu --reason R --plan-out p.json --key KEY",
        "paycancel plan show p.json",
        "paycancel plan approve p.json --key ~/.ssh/id_ed25519",
        "paycancel bulk-cancel --plan p.json --yes --live",
    ),
)
