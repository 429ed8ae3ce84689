"""``--timestamps``: every line paycancel writes to stderr begins with the UTC time.

A cron log (``2>>errors.log``) collects the messages of many nights; without a time on
each line nobody can tell which night said what.  The stream wraps stderr for the whole
invocation, so every writer (rich's console, the error boundary, warnings, the verbose
log) is stamped alike, and a line written in pieces is stamped once, at its start.
"""

from __future__ import annotations

import io
import time
from typing import TextIO


def stamp() -> str:
    """The time a line begins with: UTC, to the second, RFC 3339."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime())


class Stamped(io.TextIOBase):
    """A text stream that writes to ``inner`` with ``stamp()`` at the start of each line."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.at_start = True

    def write(self, text: str) -> int:
        pieces = []
        for line in text.splitlines(keepends=True):
            if self.at_start:
                pieces.append(stamp())
            pieces.append(line)
            self.at_start = line.endswith(("\n", "\r"))
        self.inner.write("".join(pieces))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", None) or "utf-8"
