"""Locks on a journal's runs and subscriptions: ``fcntl`` locks on files in a
directory beside the journal (``<journal>.locks/<key>.lock``).

The kernel drops a lock when its holder dies, so a SIGKILLed run never leaves a stale
lock.  A holder writes ``process <pid>`` into its lock file (what a refused or waiting
caller is told) and removes the file when it releases the lock.  No SQL here: the
journal's tables are ``journal``'s alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from paycancel_cli.errors import LockError

Waiter = Callable[[str], None]


class Lock:
    """An exclusive lock named by ``key``: refused at once, or waited for.

    ``wait`` is None (refuse at once), a number of seconds, or ``math.inf``.  A waiting
    caller is told once, through ``on_wait``, what it waits for; the lock is polled
    rather than blocked on, so the limit holds and Ctrl-C ends the wait at once.
    """

    POLL_S = 0.2

    def __init__(self, journal_path: Path, key: str) -> None:
        directory = journal_path.with_name(journal_path.name + ".locks")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / f"{key}.lock"
        self._file: IO[str] | None = None

    def held(self) -> bool:
        """Whether another process holds the lock now (asked without taking it)."""
        try:
            handle = open(self.path)  # noqa: SIM115
        except FileNotFoundError:
            return False
        with handle:
            if not _try_lock(handle):
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def acquire(
        self,
        *,
        what: str,
        wait: float | None = None,
        on_wait: Waiter | None = None,
        limit: float | None = None,
    ) -> None:
        """``limit``: the whole wait the operator asked for, when ``wait`` is what is
        left of it (several locks share one ``--wait SECONDS``).

        The holder removes the lock file when it releases it; a lock taken on a file
        that was removed meanwhile is no lock, so it is taken again on the new file."""
        began = time.monotonic()
        while True:
            left = None if wait is None else max(0.0, wait - (time.monotonic() - began))
            asked = wait if limit is None else limit  # what the messages name, not what is left
            handle = self._acquire(what=what, wait=left, on_wait=on_wait, limit=asked)
            if _same_file(handle, self.path):
                break
            handle.close()
            on_wait = None  # said once
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        self._file = handle

    def _acquire(
        self,
        *,
        what: str,
        wait: float | None,
        on_wait: Waiter | None,
        limit: float | None,
    ) -> IO[str]:
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        try:
            if not _try_lock(handle):
                holder = _holder(handle)
                if wait is None:
                    raise LockError(
                        f"{what} is being worked on by {holder}. Wait for it to finish (or "
                        "pass --wait [SECONDS] to queue behind it); nothing was sent."
                    )
                asked = wait if limit is None else limit
                most = "" if asked == math.inf else f" (at most {asked:g} s)"
                if on_wait is not None:
                    on_wait(
                        f"Waiting for {holder} to finish with {what[0].lower()}{what[1:]}"
                        f"{most}; Ctrl-C stops waiting."
                    )
                deadline = time.monotonic() + wait
                while not _try_lock(handle):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LockError(
                            f"{what} is still being worked on by {holder} after waiting "
                            f"{asked:g} s; nothing was sent. Try again later, or wait longer "
                            "(--wait SECONDS, or --wait alone for no limit)."
                        )
                    time.sleep(min(self.POLL_S, left))
        except BaseException:
            handle.close()
            raise
        return handle

    def release(self) -> None:
        """Remove the lock file, then unlock: the lock directory does not grow with every
        run and subscription (see ``acquire`` for a waiter that got the removed file)."""
        if self._file is not None:
            if _same_file(self._file, self.path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


class Locks:
    """Several locks taken in order and released together."""

    def __init__(
        self, journal_path: Path, *, wait: float | None, on_wait: Waiter | None = None
    ) -> None:
        self.journal_path = journal_path
        self.wait = wait
        self.on_wait = on_wait
        self.held: list[Lock] = []
        # One --wait SECONDS covers every lock taken here, not each of them.
        self.deadline = None if wait is None else time.monotonic() + wait

    def take(self, key: str, what: str) -> None:
        lock = Lock(self.journal_path, key)
        left = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        try:
            lock.acquire(what=what, wait=left, on_wait=self.on_wait, limit=self.wait)
        except LockError:
            self.release()
            raise
        self.held.append(lock)

    def release(self) -> None:
        while self.held:
            self.held.pop().release()
