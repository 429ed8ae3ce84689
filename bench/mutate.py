"""Mutation testing of the code where a bug moves money or hides it, run by hand
(``--smoke``: one small module, cheap enough for CI).

A mutant is a small careless change (``>`` for ``>=``, ``and`` for ``or``, a constant
off by one, a ``return None``...).  A test suite that is strong where it matters fails
on each one; a mutant that survives is either a missing test or an equivalent change
(one that cannot change behaviour), listed in ``bench/mutants_equivalent.json`` with
the reason.

Per target (``--module``): the modules mutated and the tests that cover them
(selected, so a run stays bounded on a shared machine; each mutant runs only the
selected tests that reach the mutated function, with mutmut's per-mutant timeout).
mutmut works on a scratch copy of ``src/``, ``tests/`` and ``pyproject.toml`` (never
on the checkout itself), so the checkout stays usable while it runs.

Prints per target: mutants, killed, survived (with their diffs), equivalent, no test,
timeouts, and the score: killed / (mutants - equivalent).  ``--json`` writes the figures.

Usage: ``python bench/mutate.py [--smoke] [--module NAME ...] [--children N]
[--keep DIR [--recheck [--unchecked]]] [--source TREE] [--json PATH] [--min-score P]``.
``--keep`` keeps the scratch copies; ``--recheck`` then tests only the mutants that were
not killed, with the tests as they are now (after new tests: the score after, without
testing again what was killed); ``--unchecked`` adds the mutants that a time-limited run
did not reach.  ``--source`` mutates another tree (``git archive REV`` unpacked: the
score before).  Needs the test extra (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = Path(__file__).with_name("mutants_equivalent.json")


@dataclass(frozen=True)
class Target:
    """What to mutate (paths under the repository) and the tests that cover it."""

    mutate: tuple[str, ...]
    tests: tuple[str, ...]


PKG = "src/paycancel_cli"
TARGETS: dict[str, Target] = {
    # the engine: one payment's cancel, truthfully
    "engine": Target(
        (f"{PKG}/engine.py", f"{PKG}/retries.py"),
        (
            "tests/test_engine.py",
            "tests/test_engine_rules.py",
            "tests/test_cancel_first.py",
            "tests/test_regressions.py",
            "tests/test_provider_corners.py",
            "tests/test_safety_net.py",
            "tests/test_plans.py",  # a reviewed plan's state compared with the read
            "tests/test_breaker.py",  # an open breaker stops the retries
        ),
    ),
    # the journal: in flight before the send, done after, fail closed
    "journal": Target(
        (f"{PKG}/journal.py",),
        (
            "tests/test_journal.py",
            "tests/test_journal_rules.py",
            "tests/test_regressions.py",
            "tests/test_bulk.py",
            "tests/test_safety_net.py",
            # the audit trail, reviewed plans, and the runs' upkeep (unfinished, prune)
            "tests/test_audit.py",
            "tests/test_plans.py",
            "tests/test_cron_runs.py",
        ),
    ),
    # the exit code: verdicts and their precedence (models.verdict / combine and the
    # money helpers beside them)
    "models": Target(
        (f"{PKG}/models.py",),
        (
            "tests/test_models.py",
            "tests/test_exit_codes.py",
            "tests/test_engine.py",
            "tests/test_safety_net.py",
        ),
    ),
    # the adapters' classification of provider answers
    "adapters": Target(
        (
            f"{PKG}/providers/base.py",
            f"{PKG}/providers/vipps.py",
            f"{PKG}/providers/flexportal.py",
            f"{PKG}/providers/hedgepayments.py",
            f"{PKG}/providers/flex.py",
            f"{PKG}/providers/compago.py",
        ),
        (
            "tests/test_providers_unit.py",
            "tests/test_provider_corners.py",
            "tests/test_safety_net.py",
            "tests/test_adapter_answers.py",  # each answer's payment or error, exactly
            "tests/test_optional_fields.py",  # optional fields at their edges (1 s)
        ),
    ),
    # the redactor: no secret in any output
    "redact": Target((f"{PKG}/redact.py",), ("tests/test_redact.py",)),
}
# Not selected: tests/test_crash_resume.py (SIGKILLed child processes, 25 s a round:
# half an hour per hundred survivors); the in-process tests cover the same code.
# Deselected per mutant: the same for a reviewed plan's apply (SIGKILLed mid-run); a
# test that needs the first of two processes to be still
# running when the second starts (on a machine loaded by a mutation run the first may be
# done already: a false kill), and two that start paycancel in a child process to read
# its resume line (10 s a round; in-process tests cover the same code).
TIMING = (
    "tests/test_crash_resume.py::test_second_process_on_the_same_input_gets_exit_4",
    "tests/test_plans.py::test_sigkill_mid_apply_then_resume_cancels_each_once",
    "tests/test_exit_codes.py::test_the_resume_command_is_one_unwrapped_line",
    "tests/test_exit_codes.py::"
    "test_an_interrupted_single_cancel_prints_its_resume_command_on_its_own_line",
)
SMOKE = ("redact",)
DEFAULT = ("engine", "journal", "models", "adapters", "redact")

RESULT = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
UNCHECKED = "not checked"  # a run stopped before it reached them (--limit-s, Ctrl-C)


@dataclass
class Score:
    module: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    survivors: dict[str, str] = field(default_factory=dict)  # name -> diff
    equivalent: dict[str, str] = field(default_factory=dict)  # name -> reason
    seconds: float = 0.0

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.counts.items() if status in KILLED)

    @property
    def unchecked(self) -> int:
        return self.counts.get(UNCHECKED, 0)

    @property
    def scored(self) -> int:
        """Mutants tested and not equivalent: the score's denominator."""
        return self.total - len(self.equivalent) - self.unchecked

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.scored if self.scored else 100.0

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "mutants": self.total,
            "killed": self.killed,
            "equivalent": len(self.equivalent),
            "not_checked": self.unchecked,
            "not_killed": sorted(m for m, d in self.survivors.items() if UNCHECKED not in d),
            "by_status": self.counts,
            "score_percent": round(self.score, 1),
            "seconds": round(self.seconds, 1),
        }


EXTRAS = ["examples", "README.md", "config.example.toml"]  # files the tests read
NO_CACHE = shutil.ignore_patterns("__pycache__")


def scratch_copy(target: Target, into: Path, root: Path = ROOT) -> None:
    """The repository's code and tests, with a mutmut section for ``target``."""
    shutil.copytree(root / "src", into / "src", ignore=NO_CACHE)
    shutil.copytree(root / "tests", into / "tests", ignore=NO_CACHE)
    for extra in EXTRAS:
        source = root / extra
        if source.is_dir():
            shutil.copytree(source, into / extra)
        elif source.exists():
            shutil.copy2(source, into / extra)
    write_settings(target, into, root)


def refresh_tests(target: Target, work: Path, root: Path) -> None:
    """A kept scratch copy gets the tests of ``root`` (the code mutated stays)."""
    for tests in (work / "tests", work / "mutants" / "tests"):
        shutil.rmtree(tests, ignore_errors=True)
        shutil.copytree(root / "tests", tests, ignore=NO_CACHE)
    write_settings(target, work, root)
    shutil.copy2(work / "pyproject.toml", work / "mutants" / "pyproject.toml")


def write_settings(target: Target, into: Path, root: Path) -> None:
    tests = [t for t in target.tests if (root / t).exists()]
    section = {
        "source_paths": ["src"],
        "also_copy": EXTRAS,
        "only_mutate": list(target.mutate),
        "pytest_add_cli_args_test_selection": tests,
        # -p no:cacheprovider: nothing written into the scratch copy's tests
        "pytest_add_cli_args": ["-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly"]
        + [f"--deselect={test}" for test in TIMING],
        "use_git_change_detection": False,
        "track_dependencies": False,
    }
    text = (root / "pyproject.toml").read_text()
    text += "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in section.items())
    (into / "pyproject.toml").write_text(text)


def mutmut(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mutmut", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as late:
        # The time limit: what was tested so far is kept; the rest is "not checked".
        out = late.stdout
        return (out.decode(errors="replace") if isinstance(out, bytes) else out or "") + (
            f"\n(stopped after {timeout:g} s)"
        )
    if proc.returncode not in (0, 1) or "failed to collect stats" in proc.stdout:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"mutmut {' '.join(args)} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


def run_target(
    name: str,
    target: Target,
    *,
    children: int,
    keep: Path | None,
    limit_s: float,
    root: Path,
    recheck: bool = False,
    unchecked: bool = False,
) -> Score:
    started = time.monotonic()
    work = keep / name if keep else Path(tempfile.mkdtemp(prefix=f"mutate-{name}-"))
    env = dict(os.environ)
    # Tests that start paycancel in a child process run the mutated code too.
    # (Only the mutants: mutmut must find the code it mutated first on the path.)
    env["PYTHONPATH"] = str(work / "mutants" / "src")
    env.pop("PYTEST_ADDOPTS", None)
    names: list[str] = []
    earlier: dict[str, str] = {}
    if recheck:
        # Only the mutants not killed last time, against the tests as they are now
        # (more tests never revive a killed mutant).
        if not (work / "mutants").is_dir():
            raise SystemExit(f"--recheck: no kept run of {name} in {work}")
        refresh_tests(target, work, root)
        earlier = load_merged(work) or statuses(
            mutmut(["results", "--all", "true"], work, env, 600)
        )
        skip = KILLED if unchecked else KILLED | {UNCHECKED}
        names = [m for m, status in earlier.items() if status not in skip]
    else:
        if work.exists() and keep:
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        scratch_copy(target, work, root)
        # It must exist when Python starts, or the import system caches it as missing.
        (work / "mutants" / "src").mkdir(parents=True)
    try:
        ran = ""
        if names or not recheck:
            ran = mutmut(["run", "--max-children", str(children), *names], work, env, limit_s)
        if "Stopping early" in ran or "failed to collect stats" in ran:
            raise SystemExit(
                f"{name}: mutmut could not start (the tests must pass):\n{ran[-3000:]}"
            )
        now = statuses(mutmut(["results", "--all", "true"], work, env, 600))
        # mutmut forgets earlier verdicts when the tests change: a mutant killed before
        # stays killed (more tests never revive one), one not rechecked keeps its verdict.
        # A recheck stopped by its time limit keeps the earlier verdict of what it missed.
        merged = {
            m: earlier[m] if m in earlier and (m not in names or st == UNCHECKED) else st
            for m, st in now.items()
        }
        (work / MERGED).write_text(json.dumps(merged, indent=1, ensure_ascii=False))
        score = Score(name)
        equivalent = load_equivalent().get(name, {})
        for mutant, status in merged.items():
            score.total += 1
            score.counts[status] = score.counts.get(status, 0) + 1
            if status in KILLED or status == UNCHECKED:
                continue
            diff = mutmut(["show", mutant], work, env, 120)
            known = equivalent.get(mutant)
            if known is not None and known["changed"] in diff:
                score.equivalent[mutant] = known["reason"]
            else:
                score.survivors[mutant] = f"[{status}]\n{diff}"
        if score.unchecked:
            # mutmut stopped before the end (a time limit, a crash): said, and left out
            # of the score rather than counted either way.
            print(f"   {name}: {score.unchecked} mutants not checked; mutmut said:\n{ran[-2000:]}")
        score.seconds = time.monotonic() - started
        return score
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


MERGED = "verdicts.json"  # per mutant, the verdict of the latest run that tested it


def statuses(listing: str) -> dict[str, str]:
    return {m["name"]: m["status"] for m in map(RESULT.match, listing.splitlines()) if m}


def load_merged(work: Path) -> dict[str, str]:
    path = work / MERGED
    return json.loads(path.read_text()) if path.exists() else {}


def load_equivalent() -> dict[str, dict[str, dict[str, str]]]:
    """Per target, mutant name -> {"changed": a line of its diff, "reason": why it is
    equivalent}.  A mutant whose diff no longer holds that line (the code moved) counts
    as a survivor again until it is looked at."""
    if not EQUIVALENT_FILE.exists():
        return {}
    data: dict[str, dict[str, dict[str, str]]] = json.loads(EQUIVALENT_FILE.read_text())
    return data


def report(score: Score) -> None:
    print(f"\n== {score.module}: {score.score:.1f}% of non-equivalent mutants killed", flush=True)
    print(
        f"   mutants {score.total}, killed {score.killed}, equivalent {len(score.equivalent)}, "
        f"not killed {score.scored - score.killed}, not checked {score.unchecked}; "
        f"by status {score.counts}; {score.seconds:.0f} s"
    )
    for mutant, reason in sorted(score.equivalent.items()):
        print(f"   equivalent {mutant}: {reason}")
    for mutant, diff in sorted(score.survivors.items()):
        print(f"\n-- survivor {mutant} {diff.rstrip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one small module (CI)")
    parser.add_argument("--module", action="append", choices=sorted(TARGETS), default=None)
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--keep", type=Path, default=None, help="keep scratch copies here")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="with --keep: test the survivors of the kept run again, with today's tests",
    )
    parser.add_argument(
        "--unchecked",
        action="store_true",
        help="with --recheck: also test the mutants the kept run did not reach (its time limit)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="the tree to copy (e.g. `git archive REV` unpacked: another revision's tests)",
    )
    parser.add_argument(
        "--limit-s", type=float, default=3600.0, help="give up on a module after this long"
    )
    parser.add_argument(
        "--min-score", type=float, default=None, help="exit 1 if a module scores below this"
    )
    args = parser.parse_args()
    if args.recheck and args.keep is None:
        parser.error("--recheck needs --keep DIR (the run whose survivors to test again)")
    if args.unchecked and not args.recheck:
        parser.error("--unchecked goes with --recheck")
    names = args.module or (SMOKE if args.smoke else DEFAULT)
    scores = []
    for name in names:
        score = run_target(
            name,
            TARGETS[name],
            children=args.children,
            keep=args.keep,
            limit_s=args.limit_s,
            root=args.source,
            recheck=args.recheck,
            unchecked=args.unchecked,
        )
        report(score)
        scores.append(score)
    if args.json:
        args.json.write_text(json.dumps([s.to_json() for s in scores], indent=2) + "\n")
    print("\n== summary")
    for s in scores:
        left = f", {s.unchecked} not checked" if s.unchecked else ""
        print(f"   {s.module:<9} {s.score:5.1f}%  ({s.killed}/{s.scored}{left})")
    if args.min_score is not None and any(s.score < args.min_score for s in scores):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
