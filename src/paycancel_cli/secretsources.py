"""Secrets from outside the config file: a command's output or the OS keyring.

Invariants:
- A secret command runs without a shell, with stdin closed and a time limit; its
  stdout minus one trailing newline is the secret.
- Nothing a command printed (stdout or stderr) ever reaches a message: a failure is
  described by the account, the field, the program's name and the exit status only.
- ``keyring`` is an optional dependency, imported only when a ``keyring:`` value is
  read; without it the message says how to install it.  Whatever its backend raises is
  a ``ConfigError`` of that one account, named by the exception's type only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from typing import Any

from paycancel_cli.errors import ConfigError

COMMAND_SUFFIX = "_command"
KEYRING_PREFIX = "keyring:"
COMMAND_TIMEOUT_S = 30.0


def command_argv(value: Any, *, account: str, field: str, origin: str) -> list[str]:
    """The argv of ``<field>_command``: a non-empty list of non-empty strings.

    A value from an environment variable arrives as text and is read as a JSON list.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(arg, str) and arg for arg in value)
    ):
        raise ConfigError(
            f"Config {origin}: account {account!r}, field '{field}{COMMAND_SUFFIX}' must be a "
            'list of program and arguments, e.g. ["op", "read", "op://vault/item/field"] '
            "(it runs without a shell)."
        )
    return list(value)


def run_command(argv: list[str], *, account: str, field: str) -> str:
    """Run a secret command and return its output as the secret."""
    where = f"account {account!r}, field '{field}{COMMAND_SUFFIX}'"
    program = argv[0]
    try:
        # Its own process group, so a timeout also ends what it started (a helper
        # holding the pipe open would otherwise keep us waiting).
        proc = subprocess.Popen(  # noqa: S603 (an argv list from the operator's own config)
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"Config: {where}: the program {program!r} was not found. Install it or give its "
            "full path."
        ) from None
    except PermissionError:
        raise ConfigError(
            f"Config: {where}: the program {program!r} cannot be run (permission denied)."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Config: {where}: {program!r} could not start ({exc.strerror})."
        ) from None
    try:
        stdout, _stderr = proc.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ConfigError(
            f"Config: {where}: {program!r} did not finish within {COMMAND_TIMEOUT_S:g} s. "
            f"Check that it runs without a prompt (stdin is closed)."
        ) from None
    if proc.returncode != 0:
        raise ConfigError(
            f"Config: {where}: {program!r} exited with status {proc.returncode} (its output "
            "is not shown, as it may hold the secret). Run it by hand to see why."
        )
    try:
        text = stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"Config: {where}: {program!r} printed something that is not UTF-8."
        ) from None
    if text.endswith("\n"):
        text = text[:-1]
        text = text.removesuffix("\r")
    if not text:
        raise ConfigError(f"Config: {where}: {program!r} printed nothing; a secret was expected.")
    return text


def keyring_ref(value: Any) -> tuple[str, str] | None:
    """``(service, username)`` when ``value`` is ``keyring:SERVICE/USERNAME``."""
    if not isinstance(value, str) or not value.startswith(KEYRING_PREFIX):
        return None
    service, _, user = value.removeprefix(KEYRING_PREFIX).partition("/")
    return service, user


def read_keyring(service: str, user: str, *, account: str, field: str) -> str:
    where = f"account {account!r}, field '{field}'"
    if not service or not user:
        raise ConfigError(
            f"Config: {where}: a keyring value is written keyring:SERVICE/USERNAME, e.g. "
            '"keyring:paycancel/hedge".'
        )
    try:
        import keyring
        import keyring.errors
    except ImportError:
        raise ConfigError(
            f"Config: {where} is read from the OS keyring, which needs the optional keyring "
            "support: pip install 'paycancel[keyring]'."
        ) from None
    try:
        secret = keyring.get_password(service, user)
    except Exception as exc:  # backends raise their platform's errors (D-Bus, OS), not
        # only KeyringError: one account's problem, named by type (its text may be long)
        raise ConfigError(
            f"Config: {where}: the OS keyring could not be read ({type(exc).__name__}). "
            "Check that a keyring backend is available and unlocked."
        ) from None
    if not secret:
        raise ConfigError(
            f"Config: {where}: the keyring has no password for service {service!r}, user "
            f"{user!r}. Store it with: keyring set {service} {user}"
        )
    return secret
