"""The provider documents in ``specs/``: valid OpenAPI, self-contained, and (for the two
that are copies) the provider's own text apart from the marked change."""

from __future__ import annotations

import hashlib
import re

import pytest

from .oas import SPECS, every, openapi, raw

FILES = sorted(path.name for path in SPECS.glob("*.yml"))


def test_the_four_documents_are_there() -> None:
    assert FILES == [
        "flexportal-cancel.openapi.yml",
        "flexportal-payments.local.yml",
        "vipps-accesstoken.local.yml",
        "vipps-epayment.v1.yml",
    ]


@pytest.mark.parametrize("file", FILES)
def test_document_is_valid_openapi(file: str) -> None:
    """openapi-core checks each document with openapi-spec-validator as it loads it."""
    assert openapi(file).spec is not None


@pytest.mark.parametrize("file", FILES)
def test_document_refers_only_to_itself_or_its_neighbours(file: str) -> None:
    for ref in every(raw(file), "$ref"):
        target = ref.partition("#")[0]
        assert target in ("", *FILES), f"{file}: {ref} leaves the repository"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _recorded(text: str) -> str:
    found = re.search(r"\b[0-9a-f]{64}\b", text.split("\nopenapi:", 1)[0])
    assert found, "the header records the original's sha256"
    return found.group()


def test_vipps_spec_is_vipps_own_but_for_the_receipt_stand_in() -> None:
    text = (SPECS / "vipps-epayment.v1.yml").read_text(encoding="utf-8")
    _header, body = text.split("\nopenapi:", 1)
    body = "openapi:" + body
    stand_in = re.search(r"    # LOCAL STAND-IN.*?additionalProperties: true\n", body, re.S)
    assert stand_in is not None
    body = body.replace(stand_in.group(), "")
    local_ref = (
        "          # Local stand-in for the external Receipt schema (see the top of this file).\n"
        "          $ref: '#/components/schemas/Receipt'\n"
    )
    external = (
        "          $ref: 'https://raw.githubusercontent.com/vippsas/"
        "vipps-order-management-api/2.3.24/docs/swagger.yaml#/components/schemas/Receipt'\n"
    )
    assert body.count(local_ref) == 1
    assert _sha256(body.replace(local_ref, external)) == _recorded(text)


def test_flexportal_excerpt_is_the_cancel_page_text() -> None:
    text = (SPECS / "flexportal-cancel.openapi.yml").read_text(encoding="utf-8")
    excerpt = "openapi:" + text.split("\nopenapi:", 1)[1]
    assert _sha256(excerpt) == _recorded(text)
