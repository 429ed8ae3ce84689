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


def test_json_escaped_secret_leaves_no_fragment() -> None:
    secret = 'pa"ss\\wörd-123'
    redactor = Redactor()
    redactor.add(secret)
    assert redactor(json.dumps({"k": secret})) == json.dumps({"k": REDACTED})


def test_a_secret_inside_a_longer_one_never_leaves_the_rest_showing() -> None:
    # Longest first: the short secret (which sorts last by text) must not eat a piece of
    # the long one and leave its tail readable.
    redactor = Redactor()
    redactor.add("wxyz")
    redactor.add("awxyz-long-secret")
    assert redactor("a=awxyz-long-secret b=wxyz") == f"a={REDACTED} b={REDACTED}"


def test_four_characters_is_a_secret_three_is_too_short_to_scrub() -> None:
    redactor = Redactor()
    redactor.add("abcd")
    redactor.add("xyz")  # would blank every "xyz" in every message
    assert redactor("abcd xyz") == f"{REDACTED} xyz"


def test_headers_are_shown_one_after_another() -> None:
    shown = Redactor().headers([("Authorization", "Bearer abc"), ("Accept", "application/json")])
    assert shown == f"Authorization: {REDACTED}; Accept: application/json"
