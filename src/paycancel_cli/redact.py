"""Secret scrubbing for every line paycancel writes (no third-party imports: it is
loaded by the error boundary at start-up).

The redactor learns every configured secret and every access token obtained at run
time, and replaces them wherever they occur; header values of the secret headers are
replaced by name as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "client_secret", "ocp-apim-subscription-key", "cookie"}
)
REDACTED = "[REDACTED]"


@dataclass
class Redactor:
    """Knows every secret of the run; scrubs them from any text."""

    secrets: set[str] = field(default_factory=set)

    def add(self, secret: str) -> None:
        if len(secret) >= 4:
            self.secrets.add(secret)
            # as it appears inside JSON text (quotes, backslashes, non-ASCII escaped)
            self.secrets.add(json.dumps(secret)[1:-1])

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def headers(self, headers: Iterable[tuple[str, str]]) -> str:
        shown = (f"{k}: {REDACTED if k.lower() in SECRET_HEADERS else v}" for k, v in headers)
        return self("; ".join(shown))
