"""Reviewed plans and four-eyes approvals: what runs is exactly what a second person
approved.

The flow (Terraform's ``plan -out`` / ``apply PLANFILE``, with OpenSSH signatures for
approvals, no server): ``bulk-cancel --plan-out PLAN`` is a dry run written down
(``write_plan``); ``plan show`` and ``plan approve`` read and sign it (``evaluate``,
``approve``); ``bulk-cancel --plan PLAN`` applies it (``apply_plan``).  Accounts with
``approvals = N`` take cancels only from such a plan (``bulk.require_plan``).

Invariants:
- The plan file is one UTF-8 JSON document, keys in a fixed order, ending with
  ``"digest": "sha256:<hex>"`` over the canonical JSON (sorted keys, no spaces) of
  everything else.  It never holds a secret: accounts by name, provider, live/test and
  host; payments by id and the state read.
- Approvals are ``ssh-keygen -Y sign`` signatures of the plan file's bytes, namespace
  ``paycancel-plan``, one ``*.sig`` per signer in ``PLAN.approvals/``; they are made and
  checked by ``ssh-keygen`` itself (OpenSSH 8.2 or later), never by code of ours, so
  signatures made by hand count the same.  A signature counts for the principal that
  ``allowed_signers`` names for its key, once per principal, never for the plan's author.
- Every check of an apply (digest, expiry, accounts, approvals, applied before) runs
  before any request; only payments the plan marks ``would_cancel`` get a request, each
  read first and not cancelled if it differs from the plan (the engine's
  ``changed_since``).  The journal keeps each applied plan's digest (``run_plans``),
  unique: a plan runs once, and a stopped apply continues with ``--resume``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from paycancel_cli.errors import PlanRefused, UsageError
from paycancel_cli.models import ErrorInfo, Money, Outcome, Payment

if TYPE_CHECKING:
    from paycancel_cli.config import Account, Config
    from paycancel_cli.journal import AppliedPlan, Journal

FORMAT = "paycancel-plan/1"
NAMESPACE = "paycancel-plan"
DEFAULT_EXPIRY = timedelta(hours=24)
MAX_EXPIRY = timedelta(days=7)
SIGN_TIMEOUT_S = 120.0  # signing may ask for the key's passphrase
VERIFY_TIMEOUT_S = 15.0
STATE_FIELDS = ("status", "native_status", "cancelable", "why_not", "amount", "authorized",
                "captured", "cancelled", "refunded")  # fmt: skip


# durations and times


def parse_expiry(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``3d``: at most 7 days."""
    match = re.fullmatch(r"\s*([0-9]+)\s*([smhd])\s*", text or "")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if match is None or int(match.group(1)) == 0:
        raise UsageError(
            f"--expires {text}: give a whole number with s, m, h or d (90s, 30m, 24h, 3d). "
            "Nothing was sent."
        )
    delta = timedelta(**{unit[match.group(2)]: int(match.group(1))})
    if delta > MAX_EXPIRY:
        raise UsageError(
            f"--expires {text} is longer than 7d: providers keep idempotency keys for about "
            "a day and payments change; make a new plan when this one expires. Nothing was sent."
        )
    return delta


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# the file


def canonical(body: dict[str, Any]) -> bytes:
    """What the digest covers: the document without its digest, keys sorted, no spaces."""
    rest = {k: v for k, v in body.items() if k != "digest"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(body: dict[str, Any]) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def dumps(body: dict[str, Any]) -> str:
    """The file's text: pretty-printed in the document's own (fixed) key order."""
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def approvals_dir(path: Path) -> Path:
    return path.with_name(path.name + ".approvals")


@dataclass
class Plan:
    """A plan file as read: its document, its bytes (what signatures cover), and
    whether its digest still matches its content."""

    path: Path
    data: dict[str, Any]
    raw: bytes
    intact: bool

    @property
    def plan_id(self) -> str:
        return str(self.data["plan_id"])

    @property
    def digest(self) -> str:
        return str(self.data["digest"])

    @property
    def author(self) -> dict[str, Any]:
        return dict(self.data["author"])

    @property
    def author_label(self) -> str:
        a = self.author
        who = f"{a.get('user')}@{a.get('host')}"
        return f"{who} (principal {a['principal']})" if a.get("principal") else who

    @property
    def expires_at(self) -> datetime:
        return _parse_stamp(self.data["expires_at"])

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires_at

    @property
    def accounts(self) -> list[dict[str, Any]]:
        return list(self.data["accounts"])

    @property
    def payments(self) -> list[dict[str, Any]]:
        return list(self.data["payments"])

    def would_cancel(self) -> Counter[str]:
        return Counter(
            p["account"] for p in self.payments if p["plan"] == Outcome.WOULD_CANCEL.value
        )


def read_plan(path: Path) -> Plan:
    """The plan at ``path``; refused (exit 2) when it is not a readable plan.  An edited
    plan is read (``intact`` False) so that ``plan show`` can say what it is."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanRefused(f"The plan {path} does not exist. Nothing was sent.") from None
    except OSError as exc:
        raise PlanRefused(
            f"The plan {path} cannot be read ({exc.strerror}). Nothing was sent."
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))
        _check_shape(data)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PlanRefused(
            f"{path} is not a paycancel plan, or it was damaged ({exc}). Make a plan with "
            "`paycancel bulk-cancel ... --plan-out PLAN`. Nothing was sent."
        ) from None
    return Plan(path, data, raw, intact=digest_of(data) == data["digest"])


def _check_shape(data: Any) -> None:
    """Raise ``ValueError`` (or what reading a field raises) for a document that is not
    a plan: its fields, accounts and payments, each payment's outcome and state."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f'no "format": "{FORMAT}"')
    for key in ("plan_id", "digest", "created_at", "expires_at", "reason"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"no {key!r}")
    _parse_stamp(data["expires_at"])
    if not isinstance(data.get("author"), dict):
        raise ValueError("no 'author'")
    _check_items(data)


def _check_items(data: dict[str, Any]) -> None:
    """The plan's accounts and payments, each with its fields."""
    for item in (*data.get("accounts", []), *data.get("payments", [])):
        if not isinstance(item, dict):
            raise ValueError("an account or payment that is not an object")
    for acc in data.get("accounts", []):
        for key in ("name", "provider", "live", "host"):
            if key not in acc:
                raise ValueError(f"an account without {key!r}")
    for p in data.get("payments", []):
        for key in ("account", "payment_id", "plan", "state"):
            if key not in p:
                raise ValueError(f"a payment without {key!r}")
        Outcome(p["plan"])
        if p["state"] is not None:
            payment_of(p)
    if not isinstance(data.get("accounts"), list) or not isinstance(data.get("payments"), list):
        raise ValueError("no accounts or payments list")


def payment_of(item: dict[str, Any]) -> Payment:
    """The state a plan recorded for one payment, as the engine compares it."""
    state = item["state"]
    return Payment.from_json(
        {
            **state,
            "account": item["account"],
            "provider": item["provider"],
            "payment_id": item["payment_id"],
        }
    )


def host_of(account: Account) -> str:
    return urlsplit(account.url).netloc


def account_entry(account: Account) -> dict[str, Any]:
    return {
        "name": account.name,
        "provider": account.provider,
        "live": account.is_live,
        "host": host_of(account),
    }


# signatures: ssh-keygen does all of it


@dataclass(frozen=True)
class Approval:
    file: str
    principal: str | None
    valid: bool
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # the fields in their order are the record


def _keygen(
    args: list[str], *, data: bytes | None, timeout: float
) -> subprocess.CompletedProcess[bytes]:
    program = shutil.which("ssh-keygen")
    if program is None:
        raise PlanRefused(
            "Approvals need OpenSSH's ssh-keygen (8.2 or later), which is not on PATH. Install "
            "it (Debian/Ubuntu: apt-get install openssh-client; macOS has it). Nothing was sent."
        )
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program, arguments of ours
            [program, *args],
            input=data,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PlanRefused(
            f"ssh-keygen {args[0]} {args[1]} did not finish in {timeout:g} s. Nothing was sent."
        ) from None
    err = done.stderr.decode(errors="replace")
    if done.returncode != 0 and ("unknown option" in err or "illegal option" in err):
        raise PlanRefused(
            f"{program} is older than OpenSSH 8.2 (it has no -Y): approvals need ssh-keygen "
            "8.2 or later. Nothing was sent."
        )
    return done


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no details"


def sign(key: Path, data: bytes) -> bytes:
    """``ssh-keygen -Y sign -n paycancel-plan -f KEY`` over ``data``: the signature."""
    if not key.is_file():
        raise PlanRefused(f"--key {key}: no such key file. Nothing was written.")
    done = _keygen(
        ["-Y", "sign", "-n", NAMESPACE, "-f", str(key)], data=data, timeout=SIGN_TIMEOUT_S
    )
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        raise PlanRefused(
            f"ssh-keygen could not sign with {key} ({_last_line(done.stderr)}). Give the private "
            "key (or, with ssh-agent, its .pub). Nothing was written."
        )
    return done.stdout


def verify(allowed: Path, signature: Path, data: bytes) -> Approval:
    """Who made ``signature`` over ``data``, by ``allowed``'s principals."""
    name = signature.name
    found = _keygen(
        ["-Y", "find-principals", "-s", str(signature), "-f", str(allowed)],
        data=None,
        timeout=VERIFY_TIMEOUT_S,
    )
    principals = found.stdout.decode(errors="replace").split() if found.returncode == 0 else []
    for principal in principals:
        done = _keygen(
            ["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE, "-s",
             str(signature)],
            data=data,
            timeout=VERIFY_TIMEOUT_S,
        )  # fmt: skip
        if done.returncode == 0:
            return Approval(name, principal, True)
    if principals:
        return Approval(
            name,
            principals[0],
            False,
            "does not verify: the plan changed after it was signed, or the signature was "
            f"altered ({_last_line(done.stderr)})",
        )
    check = _keygen(
        ["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(signature)],
        data=data,
        timeout=VERIFY_TIMEOUT_S,
    )
    if check.returncode == 0:
        key = re.search(r"(SHA256:\S+)", check.stdout.decode(errors="replace"))
        which = f" ({key.group(1)})" if key else ""
        return Approval(name, None, False, f"signed by a key{which} that is not in allowed_signers")
    return Approval(
        name,
        None,
        False,
        "not a valid signature of this plan (altered, unreadable, another file or "
        f"namespace: {_last_line(check.stderr)})",
    )


def principal_of(allowed: Path, key: Path, probe: bytes) -> tuple[str, bytes]:
    """The principal ``allowed`` names for ``key``, found by signing ``probe`` with it
    (ssh-keygen matches a signature's key, never a key file, to a principal)."""
    signature = sign(key, probe)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.sig"
        path.write_bytes(signature)
        found = _keygen(
            ["-Y", "find-principals", "-s", str(path), "-f", str(allowed)],
            data=None,
            timeout=VERIFY_TIMEOUT_S,
        )
    principals = found.stdout.decode(errors="replace").split()
    if found.returncode != 0 or not principals:
        raise PlanRefused(
            f"The key {key} is not in the allowed_signers file {allowed}: only keys listed "
            "there may sign plans. Add its line (principal, then the public key) or use a "
            "listed key. Nothing was written."
        )
    return principals[0], signature


def allowed_signers(config: Config) -> Path | None:
    value = config.approvals.allowed_signers
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and config.path is not None:
        path = config.path.parent / path
    return path


def _require_allowed(config: Config, what: str) -> Path:
    path = allowed_signers(config)
    where = f" ({config.path})" if config.path else ""
    if path is None:
        raise PlanRefused(
            f"{what} needs the OpenSSH allowed_signers file that says who may sign plans: set "
            f'[approvals] allowed_signers = "PATH" in the config{where}. Nothing was written.'
        )
    if not path.is_file():
        raise PlanRefused(
            f"The allowed_signers file {path} (from [approvals] in the config) does not exist. "
            "Nothing was written."
        )
    return path


def signatures(plan: Plan, allowed: Path | None) -> list[Approval]:
    folder = approvals_dir(plan.path)
    files = sorted(folder.glob("*.sig")) if folder.is_dir() else []
    out = []
    for sig in files:
        if allowed is None or not allowed.is_file():
            problem = (
                "not checked: no [approvals] allowed_signers file is configured"
                if allowed is None
                else f"not checked: the allowed_signers file {allowed} does not exist"
            )
            out.append(Approval(sig.name, None, False, problem))
            continue
        out.append(verify(allowed, sig, plan.raw))
    return out


# checks: everything before any request


@dataclass
class Verdict:
    plan: Plan
    problems: list[str] = field(default_factory=list)  # the plan cannot run (exit 2)
    approvals: list[Approval] = field(default_factory=list)
    author_signed: bool = False
    approvers: list[str] = field(default_factory=list)  # distinct, valid, not the author
    needed: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    author_problem: str | None = None
    applied_by: AppliedPlan | None = None
    expired: bool = False

    @property
    def approved(self) -> bool:
        return not any(self.missing.values()) and self.author_problem is None

    @property
    def applicable(self) -> bool:
        return not self.problems and self.approved

    @property
    def exit_code(self) -> int:
        return 2 if self.problems else 0 if self.approved else 1

    def approvals_text(self) -> str:
        """Who signed, which signatures do not count and why, what is missing."""
        parts = []
        valid = Counter(a.principal for a in self.approvals if a.valid and a.principal)
        names = [
            p if n == 1 else f"{p} ({n} signatures, counted once)" for p, n in sorted(valid.items())
        ]
        parts.append(f"signed by {', '.join(names)}" if names else "no valid signature")
        for a in self.approvals:
            if not a.valid:
                parts.append(f"{a.file} does not count: {a.problem}")
        if self.author_problem:
            parts.append(self.author_problem)
        for account, n in sorted(self.missing.items()):
            if n:
                parts.append(
                    f"account {account} needs {self.needed[account]} approver(s) besides the "
                    f"author, {n} missing"
                )
        return "; ".join(parts)


def evaluate(
    plan: Plan, config: Config, journal: Journal | None, *, now: datetime | None = None
) -> Verdict:
    """Every check of a plan, without a request: intact, not expired, accounts as
    planned, approvals, not applied before."""
    from paycancel_cli.errors import ConfigError
    from paycancel_cli.journal import applied_plan

    v = Verdict(plan)
    if not plan.intact:
        v.problems.append(
            "it was changed after it was made (its digest does not match its content); "
            "make a new plan instead of editing one"
        )
    v.expired = plan.expired(now)
    if v.expired:
        v.problems.append(
            f"it expired at {plan.data['expires_at']}; make a new plan (payments change, and "
            "providers keep idempotency keys for about a day)"
        )
    for entry in plan.accounts:
        name = entry["name"]
        if name not in config.accounts:
            v.problems.append(f"account {name} is not in the config")
            continue
        try:
            account = config.account(name)
        except ConfigError as exc:
            v.problems.append(f"account {name} cannot be used: {exc.message.rstrip('.')}")
            continue
        now_is = account_entry(account)
        if config.sandbox:  # the built-in sandbox serves on a new port each invocation
            now_is["host"] = _without_port(now_is["host"])
            entry = {**entry, "host": _without_port(str(entry["host"]))}
        for key, what in (("provider", "provider"), ("live", "live/test"), ("host", "host")):
            if now_is[key] != entry[key]:
                v.problems.append(
                    f"account {name} changed since the plan was made: its {what} is "
                    f"{_said(now_is[key])}, the plan's is {_said(entry[key])}"
                )
        v.needed[name] = account.approvals
    if journal is not None:
        v.applied_by = applied_plan(journal, digest=plan.digest)
        if v.applied_by is not None:
            v.problems.append(f"it was applied before, by run {v.applied_by.run_id}")
    _check_approvals(v, config)
    return v


def _without_port(netloc: str) -> str:
    return urlsplit(f"//{netloc}").hostname or netloc


def _said(value: Any) -> str:
    if isinstance(value, bool):
        return "LIVE" if value else "test"
    return str(value)


def _check_approvals(v: Verdict, config: Config) -> None:
    files = approvals_dir(v.plan.path)
    has_sigs = files.is_dir() and any(files.glob("*.sig"))
    needs = any(v.needed.values())
    if not has_sigs and not needs:
        return
    allowed = allowed_signers(config)
    if needs and (allowed is None or not allowed.is_file()):
        v.author_problem = (
            "no allowed_signers file to check approvals against: set [approvals] "
            "allowed_signers in the config"
            if allowed is None
            else f"the allowed_signers file {allowed} does not exist"
        )
    v.approvals = signatures(v.plan, allowed)
    author = v.plan.author.get("principal")
    valid = {a.principal for a in v.approvals if a.valid and a.principal}
    v.author_signed = author is not None and author in valid
    v.approvers = sorted(valid - {author})
    if needs and v.author_problem is None:
        if author is None:
            v.author_problem = (
                "the plan has no signed author, so approvals cannot be told apart from its "
                "author's: make it again with --key PATH"
            )
        elif not v.author_signed:
            v.author_problem = (
                f"the author's signature ({author}) is missing or invalid in {files.name}/"
            )
    v.missing = {a: max(0, n - len(v.approvers)) for a, n in v.needed.items() if n}


def refusal(v: Verdict, verb: str = "applied") -> PlanRefused:
    """One paragraph: what is wrong with the plan, then the approvals' state."""
    reasons = list(v.problems)
    if not v.plan.intact:  # its signatures sign other bytes: saying so is enough
        reasons[0] += " (its signatures no longer verify either)"
    elif not v.approved:
        reasons.append("its approvals are not enough")
    text = f"The plan {v.plan.path} ({v.plan.plan_id}) cannot be {verb}: " + "; ".join(reasons)
    if v.plan.intact and (v.approvals or v.author_problem or any(v.missing.values())):
        text += f". Approvals: {v.approvals_text()}"
    if v.applied_by is not None:
        text += (
            f". `paycancel runs show {v.applied_by.run_id}` shows that run; if it did not "
            f"finish, `paycancel bulk-cancel --resume {v.applied_by.run_id}` continues it"
        )
    return PlanRefused(text + ". Nothing was sent.")


# policy


# making a plan: a dry run, written down


@dataclass(frozen=True)
class Author:
    principal: str | None
    key: Path | None
    probe_signature: bytes | None = None


def author_of(config: Config, key: Path | None, account: str | None = None) -> Author:
    """Who makes the plan: with ``--key``, the principal allowed_signers names for the
    key (found before any request, so a wrong key costs nothing).  Without a key, a
    plan for an account that needs approvals is refused here when the account is known
    before reading the input (``--account``, or the only one configured); otherwise
    ``write_plan`` refuses it after the reads."""
    if key is None:
        if account is not None or len(config.accounts) == 1:
            _require_author([config.account(account)], None)
        return Author(None, None)
    allowed = _require_allowed(config, "--key")
    probe = f"paycancel-plan author probe {datetime.now(UTC).isoformat()}".encode()
    principal, signature = principal_of(allowed, key, probe)
    return Author(principal, key, signature)


def plan_document(
    journal: Journal,
    config: Config,
    run_id: str,
    *,
    author: Author,
    expires: timedelta,
    command: str,
    reason: str,
    user: str,
    host: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The plan of a dry run journaled as ``run_id``."""
    from paycancel_cli.runs.summary import summarize

    created = now or datetime.now(UTC)
    run = journal.run(run_id)
    assert run is not None
    payments = []
    names: list[str] = []
    for row in journal.payments(run_id):
        result = row.result(run_id)
        if row.account and row.account not in names and row.account in config.accounts:
            names.append(row.account)
        state = row.before or row.known
        payments.append(
            {
                "account": row.account,
                "provider": row.provider,
                "payment_id": row.payment_id,
                "line": row.line,
                "reason": row.reason,
                "state": None if state is None else _state(state),
                "plan": result.outcome.value,
                "code": result.error.code if result.error else None,
                "why": _why(result.error, row.payment_id),
            }
        )
    summary = summarize(journal, run_id)
    return _with_digest(
        {
            "format": FORMAT,
            "plan_id": f"plan-{run_id}",
            "created_at": _stamp(created),
            "expires_at": _stamp(created + expires),
            "author": {"user": user, "host": host, "principal": author.principal},
            "command": command,
            "input": {"name": run.input, "sha256": run.input_hash},
            "reason": reason,
            "accounts": [account_entry(config.account(n)) for n in sorted(names)],
            "payments": payments,
            "totals": {
                "payments": summary.total,
                "per_account": {
                    a: dict(sorted(c.items())) for a, c in sorted(summary.per_account.items())
                },
                "would_release": [
                    Money(v, c).to_json() for c, v in sorted(summary.would_release.items())
                ],
                "would_release_unknown": summary.would_unknown,
            },
        }
    )


def _why(error: ErrorInfo | None, payment_id: str) -> str | None:
    if error is None:
        return None
    return error.message.removesuffix(f" (payment {payment_id})")


def _state(payment: Payment) -> dict[str, Any]:
    data = payment.to_json()
    return {k: data[k] for k in STATE_FIELDS}


def _with_digest(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "digest": digest_of(body)}


def write_plan(
    path: Path, document: dict[str, Any], *, config: Config, author: Author
) -> list[str]:
    """Write the plan (atomically) and, with a key, the author's signature in
    ``PLAN.approvals/``.  Signatures of a plan this one replaces are removed (they sign
    another document).  Returns notes for the operator."""
    _require_author([config.account(a["name"]) for a in document["accounts"]], author.principal)
    notes = []
    text = dumps(document).encode()
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(text)
    tmp.replace(path)
    folder = approvals_dir(path)
    stale = sorted(folder.glob("*.sig")) if folder.is_dir() else []
    for old in stale:
        old.unlink()
    if stale:
        notes.append(f"removed {len(stale)} signature(s) of the plan this one replaces")
    if author.key is not None and author.principal is not None:
        signature = sign(author.key, text)
        sig = _write_signature(path, author.principal, signature)
        notes.append(f"signed by its author {author.principal}: {sig}")
    return notes


def _require_author(accounts: Iterable[Account], principal: str | None) -> None:
    needs = sorted(a.name for a in accounts if a.approvals)
    if needs and principal is None:
        raise PlanRefused(
            f"Account {needs[0]} needs approved plans, and an approval counts only from "
            "someone other than the plan's author: make the plan with --key PATH (your SSH "
            "key, listed in allowed_signers) so that it names you. No plan was written; "
            "nothing was sent."
        )


def _write_signature(path: Path, principal: str, signature: bytes) -> Path:
    folder = approvals_dir(path)
    folder.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", principal) or "signer"
    target = folder / f"{safe}.sig"
    tmp = folder / f".{safe}.sig.partial"
    tmp.write_bytes(signature)
    tmp.replace(target)
    return target


# approving


def approve(plan: Plan, config: Config, key: Path) -> tuple[str, Path]:
    """Sign ``plan`` with ``key`` as an approver; refused (nothing written) for an
    altered or expired plan, a key not in allowed_signers, and the plan's author."""
    problems = []
    if not plan.intact:
        problems.append("it was changed after it was made (its digest does not match)")
    if plan.expired():
        problems.append(f"it expired at {plan.data['expires_at']}")
    if problems:
        raise PlanRefused(
            f"The plan {plan.path} ({plan.plan_id}) cannot be approved: {'; '.join(problems)}. "
            "Nothing was written."
        )
    allowed = _require_allowed(config, "plan approve")
    signature = sign(key, plan.raw)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "approval.sig"
        path.write_bytes(signature)
        approval = verify(allowed, path, plan.raw)
    if approval.principal is None or not approval.valid:
        raise PlanRefused(
            f"The key {key} is not in the allowed_signers file {allowed}: only keys listed "
            "there may approve plans. Nothing was written."
        )
    if approval.principal == plan.author.get("principal"):
        raise PlanRefused(
            f"{approval.principal} made this plan: an approval must come from someone else "
            "(four eyes). Ask another person in allowed_signers to run `paycancel plan "
            f"approve {plan.path} --key KEY`. Nothing was written."
        )
    return approval.principal, _write_signature(plan.path, approval.principal, signature)


# applying


# what runs and reports show


def default_plan_user() -> tuple[str, str]:
    from paycancel_cli.core import host, os_user

    return os_user(), host()


__all__ = [
    "FORMAT",
    "NAMESPACE",
    "Approval",
    "Author",
    "Plan",
    "Verdict",
    "approve",
    "author_of",
    "evaluate",
    "parse_expiry",
    "plan_document",
    "read_plan",
    "write_plan",
]
