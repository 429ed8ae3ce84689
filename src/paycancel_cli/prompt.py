"""Asking the operator a question on the terminal, so that Ctrl-C and end of input
always end the prompt at once.

Invariants:
- The question goes to stderr; the answer is one line read from stdin.
- Ctrl-C or end of input raises ``typer.Abort`` (the error boundary turns it into exit
  130, "nothing was sent"); nothing else is ever read from stdin.
- Prompts are called outside the event loop (see ``session.running``): inside it,
  asyncio's SIGINT handler only cancels the task and the prompt would keep waiting.

Why not ``input()``: CPython runs a Python signal handler between bytecodes; a SIGINT
that arrives after the last check but before the blocking read starts is recorded but
never wakes the read (no EINTR), so the prompt would wait for a line that never comes.
Waiting for the line with ``select`` in short slices leaves no such window: a signal
that came in between is handled when the slice ends.
"""

from __future__ import annotations

import os
import select
import sys
from typing import IO

POLL_S = 0.1


def ask(question: str, *, stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> str:
    """Show ``question`` and return the answer line without its line end."""
    import typer

    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    stderr.write(question)
    stderr.flush()
    try:
        line = _read_line(stdin)
    except KeyboardInterrupt:
        line = None
    if line is None:  # Ctrl-C, or end of input (Ctrl-D on a terminal)
        stderr.write("\n")
        stderr.flush()
        raise typer.Abort()
    return line.rstrip("\r\n")


def confirm(question: str, **streams: IO[str]) -> bool:
    """A yes/no question whose default is no."""
    return ask(f"{question} [y/N]: ", **streams).strip().lower() in ("y", "yes")


def _read_line(stream: IO[str]) -> str | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's text stream)
        return stream.readline() or None
    data = b""
    while not data.endswith(b"\n"):
        while not select.select([fd], [], [], POLL_S)[0]:
            pass
        # Read the descriptor itself: a buffered stream could hold typed-ahead text
        # that ``select`` cannot see.
        chunk = os.read(fd, 4096)
        if not chunk:
            return data.decode(errors="replace") or None
        data += chunk
    return data.decode(errors="replace")
