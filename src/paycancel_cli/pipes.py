"""A closed standard output: a reader such as ``head -1``, or a monitor, that stopped
reading.

What it means, for every command and both output modes: nobody reads the answer any
more, so nothing more is started for it.  A run sends no new cancel; the cancels in
flight finish and are journaled; the command ends as an interruption (exit 130) with
one line on stderr (and, for a run, the command that resumes it).  Nothing ever blocks
or fails on a write to the closed pipe: once it is known closed, standard output is
pointed at the null device (the convention of Python's own SIGPIPE note), so later
writes, and the interpreter's last flush, go nowhere.

It is known closed when a write fails with ``BrokenPipeError``, or, for a pipe, as soon
as its reader is gone: the kernel reports an error condition on the write end, which
``watch`` hears through the event loop (no write needed, so a run stops even when it
has nothing to print yet) and ``closed`` polls without blocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import stat
import sys
from collections.abc import Callable, Iterator

MESSAGE = "standard output was closed (broken pipe)"

_state = {"closed": False}
_listeners: list[Callable[[], None]] = []


def _stdout_fd() -> int | None:
    try:
        return sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced by a test, or detached
        return None


def _pipe_fd() -> int | None:
    fd = _stdout_fd()
    if fd is None:
        return None
    try:
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except OSError:
        return None


def _reader_gone(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def closed() -> bool:
    """Whether standard output is known closed; checks a pipe's reader now."""
    if not _state["closed"]:
        fd = _pipe_fd()
        if fd is not None and _reader_gone(fd):
            mark_closed()
    return _state["closed"]


def mark_closed() -> None:
    """Standard output is closed: point it at the null device, tell the listeners."""
    if _state["closed"]:
        return
    _state["closed"] = True
    fd = _stdout_fd()
    if fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    for listener in list(_listeners):
        listener()


def write(stream: object, text: str) -> None:
    """Write and flush ``text`` on a stream; a broken pipe marks standard output closed
    instead of raising."""
    try:
        stream.write(text)  # type: ignore[attr-defined]
        stream.flush()  # type: ignore[attr-defined]
    except BrokenPipeError:
        mark_closed()


@contextlib.contextmanager
def watch(loop: asyncio.AbstractEventLoop, on_closed: Callable[[], None]) -> Iterator[None]:
    """Call ``on_closed`` (once) when standard output closes while the block runs, or at
    once if it already has."""
    called = False

    def listener() -> None:
        nonlocal called
        if not called:
            called = True
            on_closed()

    _listeners.append(listener)
    fd = _pipe_fd()
    registered = False

    def check() -> None:
        nonlocal registered
        assert fd is not None
        if _reader_gone(fd):
            loop.remove_reader(fd)
            registered = False
            mark_closed()

    try:
        if closed():
            listener()
        elif fd is not None:
            # A pipe's write end never reads; the selector reports its error condition
            # (the reader gone) as readiness, so this fires exactly then.
            with contextlib.suppress(OSError, ValueError):
                loop.add_reader(fd, check)
                registered = True
        yield
    finally:
        if registered and fd is not None:
            loop.remove_reader(fd)
        _listeners.remove(listener)
