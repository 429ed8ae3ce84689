"""The redactor: plain, JSON-escaped and header forms of a secret are all scrubbed."""

from __future__ import annotations

import io
import json

from paycancel_cli.redact import REDACTED, Redactor
from paycancel_cli.render import Output


def test_secret_is_scrubbed_in_plain_and_json_text() -> None:
    secret = 'pa"ss\\wörd-123'
    redactor = Redactor()
    redactor.add(secret)
    assert redactor(f"key={secret}") == f"key={REDACTED}"
    out = io.StringIO()
    Output(json_mode=True, redact=redactor, stdout=out).json_line({"message": f"bad {secret}"})
    assert secret not in out.getvalue()
    assert json.dumps(secret)[1:-1] not in out.getvalue()
    assert REDACTED in json.loads(out.getvalue())["message"]


def test_secret_headers_are_redacted_by_name() -> None:
    shown = Redactor().headers(
        [("Authorization", "Bearer abc"), ("x-api-key", "k"), ("Tenant-ID", "acme")]
    )
    assert "abc" not in shown and "k;" not in shown and "acme" in shown
