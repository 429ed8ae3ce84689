"""Subscription ids from a file, standard input or a command: one id per line.

What a cron line needs, done by paycancel rather than by shell care: blank lines and
CRLF line endings are tolerated, surrounding spaces trimmed, a UTF-8 byte-order mark
dropped; an id holding spaces or control characters is refused with its line number.
A command (``--subscriptions-command``) runs without a shell, stdin closed, its stderr
passed through, for at most ``COMMAND_TIMEOUT_S``; if it cannot be found, fails or
times out, no run is started and the error says so (exit 2, code ``id_source_failed``),
so the id source's failure can never pass for a quiet night.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from paycancel_cli.errors import IdSourceError, InputError

COMMAND_TIMEOUT_S = 300
MAX_BYTES = 16 << 20


def parse(data: bytes, label: str) -> list[str]:
    """The ids in ``data``, in order, each once."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"{label} is not UTF-8 text: give one subscription id per line. Nothing was sent."
        ) from None
    ids: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        value = line.strip()
        if not value:
            continue
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            problems.append(f"line {number}: {value!r} is not one id")
        else:
            ids.append(value)
    if problems:
        shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        raise InputError(
            f"{label}: {shown}. Give one subscription id per line. Nothing was sent."
        )
    return list(dict.fromkeys(ids))


def from_file(path: str) -> list[str]:
    """``path``'s ids; ``-`` reads standard input."""
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read(MAX_BYTES) if stream is not None else sys.stdin.read().encode()
        return parse(data, "standard input")
    try:
        with open(path, "rb") as handle:
            return parse(handle.read(MAX_BYTES), path)
    except OSError as exc:
        raise InputError(
            f"--subscriptions-from {path}: cannot read it ({exc.strerror}). Nothing was sent."
        ) from None


def from_command(command: str) -> list[str]:
    """The ids the command prints; its failure is an ``IdSourceError``."""
    argv = shlex.split(command)
    if not argv:
        raise InputError("--subscriptions-command is empty. Nothing was sent.")
    # Named by its program only: the rest of a command line may hold what a log must not.
    label = f"The id source {argv[0]}"
    after = "No run was started; nothing was sent."
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own command, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise IdSourceError(
            f"{label} was not found (PATH is {os.environ.get('PATH', '')!r}; cron's is "
            f"short): give the command's absolute path. {after}"
        ) from None
    except PermissionError:
        raise IdSourceError(f"{label} cannot be run (permission denied). {after}") from None
    except subprocess.TimeoutExpired:
        raise IdSourceError(
            f"{label} did not finish within {COMMAND_TIMEOUT_S} s and was stopped. {after}"
        ) from None
    if done.returncode < 0:
        raise IdSourceError(f"{label} was killed by signal {-done.returncode}. {after}")
    if done.returncode:
        raise IdSourceError(
            f"{label} failed with exit status {done.returncode} (its own messages, if any, "
            f"are on stderr above). {after}"
        )
    return parse(done.stdout, f"The output of {argv[0]}")
