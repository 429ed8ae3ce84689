"""Validate recorded HTTP exchanges against the providers' OpenAPI documents.

The documents live in ``specs/`` beside this module (Vipps' official ePayment spec, the
OpenAPI excerpt of FlexPortal's cancel page, and two minimal local descriptions that say
so), so nothing here needs anything outside the repository.

Validation is openapi-core's (requests: path, query, headers, security, body; answers:
status, media type, headers, body).  Two checks it does not make are added, because a
strict server enforces them and Prism reports them:

- a request carries no body (and no ``Content-Type``) where the operation declares no
  ``requestBody``;
- the request's ``Accept`` header admits every media type the operation may answer in
  (werkzeug's ``MIMEAccept``, as a server negotiates it).

An answer whose status the operation does not list (a platform-wide 401, 423, 429, 5xx,
or Vipps' 404 to a get) cannot be matched by openapi-core; its body is checked against
the document's own error schema instead and counted apart (``undocumented``).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator, OAS31Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict, MIMEAccept
from werkzeug.http import parse_accept_header

SPECS = Path(__file__).with_name("specs")


@dataclass(frozen=True)
class Document:
    """One OpenAPI document and the error schema of its undocumented statuses."""

    file: str
    server: str
    error_schema: str  # a JSON pointer into the document


VIPPS_EPAYMENT = Document(
    "vipps-epayment.v1.yml", "https://apitest.vipps.no", "/components/schemas/Problem"
)
VIPPS_TOKEN = Document(
    "vipps-accesstoken.local.yml",
    "https://apitest.vipps.no",
    "/components/responses/TokenError/content/application~1json/schema",
)
FLEXPORTAL_CANCEL = Document(
    "flexportal-cancel.openapi.yml", "https://api-eu.flexportal.io", "/components/schemas/Error"
)
FLEXPORTAL_READ = Document(
    "flexportal-payments.local.yml",
    "https://api-eu.flexportal.io",
    "/components/schemas/Error",
)


def document_for(provider: str, path: str) -> Document | None:
    """The document describing ``path`` (below the account's base URL) at ``provider``."""
    if provider == "vipps":
        return VIPPS_TOKEN if path == "/accesstoken/get" else VIPPS_EPAYMENT
    if provider == "flexportal":
        return FLEXPORTAL_CANCEL if path.endswith("/cancel") else FLEXPORTAL_READ
    return None


@functools.cache
def raw(file: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((SPECS / file).read_text(encoding="utf-8"))
    return loaded


@functools.cache
def openapi(file: str) -> OpenAPI:
    """The document, checked by openapi-spec-validator as openapi-core loads it.
    ``application/problem+json`` (RFC 7807) is JSON; openapi-core reads only
    ``application/json`` unless told."""
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_file_path(str(SPECS / file), config=config)


def every(node: Any, key: str) -> list[str]:
    """Every string value of ``key`` anywhere in a document (its ``$ref``s, patterns...)."""
    if isinstance(node, dict):
        own = [node[key]] if isinstance(node.get(key), str) else []
        return own + [found for value in node.values() for found in every(value, key)]
    if isinstance(node, list):
        return [found for value in node for found in every(value, key)]
    return []


def pointer(document: dict[str, Any], where: str) -> Any:
    node: Any = document
    for part in where.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def resolve(file: str, node: Any) -> Any:
    """``node`` with its local and relative ``$ref``s replaced, for schema validation."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target_file, _, where = ref.partition("#")
            target_file = target_file or file
            where = where.replace("%7B", "{").replace("%7D", "}")
            return resolve(target_file, pointer(raw(target_file), where))
        return {key: resolve(file, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(file, item) for item in node]
    return node


def schema_errors(file: str, instance: Any, where: str) -> list[str]:
    """Errors of ``instance`` against the schema at ``where`` in ``file``."""
    schema = resolve(file, pointer(raw(file), where))
    version = str(raw(file)["openapi"])
    validator = (OAS31Validator if version.startswith("3.1") else OAS30Validator)(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in
            validator.iter_errors(instance)]  # fmt: skip


@functools.cache
def _templates(file: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    out = []
    for template in raw(file)["paths"]:
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(regex), template))
    return tuple(out)


def operation(file: str, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """``(operationId, operation object)`` of ``method path`` in ``file``."""
    for regex, template in _templates(file):
        if regex.fullmatch(path):
            op = raw(file)["paths"][template].get(method.lower())
            if op is not None:
                return str(op.get("operationId", f"{method} {template}")), op
    raise LookupError(f"{method} {path} is not in {file}")


def media_types(file: str, op: dict[str, Any]) -> set[str]:
    """Every media type the operation may answer in."""
    types: set[str] = set()
    for answer in op.get("responses", {}).values():
        answer = resolve(file, answer)
        types.update(answer.get("content", {}))
    return types


@dataclass
class Exchange:
    """One request an adapter sent and the answer it got, as they were on the wire."""

    provider: str
    base_url: str
    request: httpx.Request
    request_body: bytes
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def path(self) -> str:
        """The path below the account's base URL (the sandbox mounts each provider under
        a prefix; the documents describe the provider's own paths)."""
        prefix = httpx.URL(self.base_url).path.rstrip("/")
        path = self.request.url.path
        return path[len(prefix) :] if prefix and path.startswith(prefix) else path


class _Request:
    """openapi-core's Request protocol over a recorded ``httpx.Request``, moved onto the
    document's server (the documents name the providers' hosts, not the sandbox)."""

    def __init__(self, exchange: Exchange, server: str) -> None:
        request = exchange.request
        self.host_url = server
        self.path = exchange.path
        self.method = request.method.lower()
        self.body = exchange.request_body or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, exchange: Exchange) -> None:
        self.status_code = exchange.status
        self.content_type = exchange.headers.get("content-type", "")
        self.headers = Headers(list(exchange.headers.items()))
        self.data = exchange.body


@dataclass
class Report:
    """Counts per operation and every violation found, for the assertions and the note."""

    requests: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    undocumented: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def check(self, exchange: Exchange) -> None:
        document = document_for(exchange.provider, exchange.path)
        if document is None:
            return
        method = exchange.request.method
        where = f"{exchange.provider} {method} {exchange.path} -> {exchange.status}"
        try:
            op_id, op = operation(document.file, method, exchange.path)
        except LookupError as exc:
            self.violations.append(f"{where}: {exc}")
            return
        name = f"{exchange.provider}.{op_id}"
        api = openapi(document.file)
        request = _Request(exchange, document.server)
        problems = [f"request: {e}" for e in api.iter_request_errors(request)]
        problems += self._request_extras(exchange, document, op)
        self.requests[name] += 1
        if str(exchange.status) in op.get("responses", {}) or "default" in op.get("responses", {}):
            problems += [
                f"answer: {e}" for e in api.iter_response_errors(request, _Response(exchange))
            ]
            self.answers[name] += 1
        else:
            problems += self._undocumented(exchange, document)
            self.undocumented[f"{name} {exchange.status}"] += 1
        self.violations += [f"{where}: {p}" for p in problems]

    @staticmethod
    def _request_extras(exchange: Exchange, document: Document, op: dict[str, Any]) -> list[str]:
        out = []
        if "requestBody" not in op:
            if exchange.request_body:
                out.append(f"request: a body ({exchange.request_body[:40]!r}) where the "
                           "operation takes none")  # fmt: skip
            if "content-type" in exchange.request.headers:
                out.append("request: a Content-Type header where the operation takes no body")
        accept: MIMEAccept = parse_accept_header(
            exchange.request.headers.get("accept", "*/*"), MIMEAccept
        )
        for media in sorted(media_types(document.file, op)):
            if accept.best_match([media]) is None:
                out.append(f"request: Accept {accept} refuses {media}, which the operation "
                           "may answer in")  # fmt: skip
        return out

    @staticmethod
    def _undocumented(exchange: Exchange, document: Document) -> list[str]:
        try:
            body = json.loads(exchange.body)
        except ValueError:
            return [f"answer: an undocumented status with a body that is not JSON: "
                    f"{exchange.body[:60]!r}"]  # fmt: skip
        return [f"answer: {e}" for e in schema_errors(document.file, body, document.error_schema)]

    def summary(self) -> str:
        lines = []
        for name in sorted(set(self.requests) | set(self.answers)):
            lines.append(f"{name}: {self.requests[name]} requests, {self.answers[name]} answers")
        for name, count in sorted(self.undocumented.items()):
            lines.append(f"{name} (status not listed; error schema checked): {count}")
        lines.append(f"violations: {len(self.violations)}")
        return "\n".join(lines)
