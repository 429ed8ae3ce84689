"""The sandbox: one loopback HTTP server that mounts the five provider simulators.

Each simulator lives under its provider key: ``/flexportal/v1/...``,
``/hedgepayments/v1/...``, ``/flex/v1/...``, ``/vipps/accesstoken/get`` and
``/vipps/epayment/v1/...``, ``/compago/api/...``.

Every request goes through the same pipeline, in this order:

1. record it in ``request_log`` and ``counts`` and draw its faults (one seeded
   ``random.Random`` makes the draws deterministic for a given request sequence);
2. sleep ``latency_ms``;
3. rate limit (when ``requests_per_minute`` is set): a sliding window (60 s, or
   ``rate_window_s`` with the limit scaled to it) per
   credential, answered with the provider's own 429;
4. timeout fault: sleep ``hang_s``, then carry on (nothing changed before the sleep);
5. fail fault: a 500/502/503 in the provider's shape, before any state change;
6. authentication, then the simulator's handler;
7. drop fault (cancels only): the handled cancel stays committed, the connection is shut
   down without a response byte, and the log records status 0.

Per-payment faults (``Faults.payments``, ``add_fault``) replace step 6's answer for the
requests they name, deterministically: the hostile answer of a ``PaymentFault`` (an
HTML page, a truncated, empty, mistyped, oversized or stalling body, or a simulator's
own refusal), with the cancel applied first or not as the fault says.

Invariants:
- All state (simulators, counters, log, limiter, fault RNG) is guarded by one
  ``threading.Lock``; every sleep and every socket write happens outside it, and the
  handlers under it are short dictionary work.
- Only loopback addresses are served. Nothing is ever printed: the stdlib access log is
  silenced, and no credential reaches a log, an error message or ``repr``.
- Bugs in a handler never kill the server: they answer 500 and are kept, as traceback
  text, in ``handler_errors`` for tests to assert on.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import random
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import parse_qs, unquote, urlsplit

from paycancel_cli.sandbox.base import ProviderSim
from paycancel_cli.sandbox.flexportal import FlexPortalSim
from paycancel_cli.sandbox.seed import SANDBOX_CREDENTIALS, SIMULATORS
from paycancel_cli.sandbox.state import (
    GENERIC_FAULTS,
    OVERSIZED_BYTES,
    BodyError,
    Faults,
    PaymentFault,
    RateDecision,
    RecordedRequest,
    Request,
    Response,
    SimContext,
    SlidingWindowLimiter,
    dumps,
    parse_json,
)
from paycancel_cli.sandbox.vipps import VippsSim

FAIL_STATUSES: Final = (500, 502, 503)
MAX_BODY_BYTES: Final = 1 << 20
UNKNOWN_PROVIDER: Final = "unknown"


@dataclass(frozen=True)
class _Draw:
    """What the faults drew for one request (``hang_s`` None: no hang)."""

    hang_s: float | None
    fail: int | None
    drop: bool
    latency_ms: int
    commit_delay_ms: int
    hostile: PaymentFault | None


class _BadRequest(Exception):
    """The request could not be read as HTTP (bad length or chunking, body too large)."""


class Sandbox:
    """The five provider simulators behind one loopback HTTP server.

    >>> with Sandbox(faults=Faults(latency_ms=20), requests_per_minute=100) as sb:
    ...     accounts = sb.account_config()  # one account per provider, named after it
    ...     ref = sb.add_payment("vipps", state="AUTHORIZED", amount=1000, authorized=1000)

    ``faults`` and ``requests_per_minute`` may be reassigned while serving (assigning
    ``faults`` re-seeds the fault RNG). ``record_requests=False`` keeps ``counts`` and
    ``cancel_commits`` but not ``request_log`` (for long benchmark runs).
    """

    def __init__(
        self,
        faults: Faults | None = None,
        requests_per_minute: int | None = None,
        credentials: dict[str, dict[str, str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl_s: int = 3600,
        seed_demo: bool = True,
        record_requests: bool = True,
        rate_window_s: float = 60.0,
    ) -> None:
        _require_loopback(host)
        if rate_window_s <= 0:
            raise ValueError("rate_window_s must be positive")
        self.rate_window_s = rate_window_s
        self.host = host
        self.port = port
        self.requests_per_minute = requests_per_minute
        self.record_requests = record_requests
        self._lock = threading.Lock()
        self._faults = faults if faults is not None else Faults()
        self._rng = random.Random(self._faults.seed)
        self._limiter = SlidingWindowLimiter(rate_window_s)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._commits: Counter[tuple[str, str]] = Counter()
        self._log: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        creds = _merge_credentials(credentials)
        self._sims: dict[str, ProviderSim] = {}
        for sim_class in SIMULATORS:
            ctx = SimContext(
                credentials=creds[sim_class.key],
                commit_cancel=self._committer(sim_class.key),
                token_ttl_s=token_ttl_s,
            )
            self._sims[sim_class.key] = sim_class(ctx)
        if seed_demo:
            for sim in self._sims.values():
                sim.seed_demo()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "not started"
        return f"<Sandbox {where}>"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, self.port), self, family)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"paycancel-sandbox-{server.server_port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        # shutdown() waits for serve_forever's next poll; poke the listener to wake it.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        address = server.server_address[:2]
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection((str(address[0]), int(address[1])), timeout=0.5).close()
            stopper.join(0.005)
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and accounts ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._server.server_port}"

    def provider_url(self, provider: str) -> str:
        self._sim(provider)
        return f"{self.base_url}/{provider}"

    def account_config(self) -> dict[str, dict[str, str]]:
        """One account per provider, named after it, pointing at this sandbox."""
        return {key: sim.account(self.provider_url(key)) for key, sim in self._sims.items()}

    # -- faults and observation ---------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """Requests that reached the sandbox by (provider, op), whatever the answer."""
        with self._lock:
            return Counter(self._counts)

    @property
    def cancel_commits(self) -> Counter[tuple[str, str]]:
        """Cancels actually applied, by (provider, payment id)."""
        with self._lock:
            return Counter(self._commits)

    @property
    def request_log(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def handler_errors(self) -> list[str]:
        """Tracebacks of unexpected exceptions in handlers (empty unless there is a bug)."""
        with self._lock:
            return list(self._errors)

    def reset_counters(self) -> None:
        """Clear ``counts``, ``cancel_commits`` and ``request_log``."""
        with self._lock:
            self._counts.clear()
            self._commits.clear()
            self._log.clear()

    # -- data ---------------------------------------------------------------------------

    def add_payment(self, provider: str, **fields: Any) -> str:
        """Store a payment in any state; returns its id (see each simulator's fields)."""
        sim = self._sim(provider)
        with self._lock:
            return sim.add_payment(fields)

    def payment(self, provider: str, payment_id: str) -> dict[str, Any]:
        """A copy of the stored native record."""
        sim = self._sim(provider)
        with self._lock:
            return sim.payment(payment_id)

    def update_payment(self, provider: str, payment_id: str, **fields: Any) -> None:
        """Change a stored payment's native fields, as if someone else had acted on it
        (paid, re-priced) between two requests of a client."""
        sim = self._sim(provider)
        with self._lock:
            sim.payment(payment_id)  # KeyError naming the payment when there is none
            sim.records[payment_id].update(fields)

    def seed_subscription(
        self, rental_id: str, counts: dict[str, int], **options: Any
    ) -> list[str]:
        """FlexPortal: ``counts[status]`` payments of one rental; deterministic ids
        (``options``: ``currency``, ``tenant_id``, as ``FlexPortalSim.seed_subscription``)."""
        sim = self._sim("flexportal")
        assert isinstance(sim, FlexPortalSim)
        with self._lock:
            return sim.seed_subscription(rental_id, counts, **options)

    def add_fault(self, provider: str, payment_id: str, kind: str, **options: Any) -> None:
        """Answer requests about one payment with a hostile answer (see ``PaymentFault``
        for ``kind`` and the options ``op``, ``times``, ``apply``, ``status``,
        ``stall_s``)."""
        sim = self._sim(provider)
        if kind not in GENERIC_FAULTS | sim.special_faults:
            known = ", ".join(sorted(GENERIC_FAULTS | sim.special_faults))
            raise ValueError(f"{provider}: unknown fault {kind!r}; use one of {known}")
        fault = PaymentFault(kind, **options)
        with self._lock:
            self._faults.payments.setdefault((provider, payment_id), []).append(fault)

    def expire_tokens(self) -> None:
        """Vipps: invalidate every access token issued so far."""
        sim = self._sim("vipps")
        assert isinstance(sim, VippsSim)
        with self._lock:
            sim.expire_tokens()

    def _sim(self, provider: str) -> ProviderSim:
        try:
            return self._sims[provider]
        except KeyError:
            known = ", ".join(self._sims)
            raise ValueError(f"unknown provider {provider!r}; use one of {known}") from None

    def _committer(self, provider: str) -> Callable[[str], None]:
        def commit(payment_id: str) -> None:
            self._commits[(provider, payment_id)] += 1

        return commit

    # -- the request pipeline -----------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        try:
            body = handler.read_body()
        except _BadRequest as exc:
            handler.write(_plain_error(400, str(exc)), close=True)
            return
        split = urlsplit(handler.path)
        raw_segments = split.path.split("/")[1:]
        sim = self._sims.get(raw_segments[0]) if raw_segments else None
        headers = handler.header_dict()
        if sim is None:
            self._serve_unknown(handler, headers, body)
            return
        request = Request(
            method=handler.command,
            path="/" + "/".join(raw_segments[1:]),
            segments=tuple(unquote(segment) for segment in raw_segments[1:]),
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        try:
            self._pipeline(handler, sim, request)
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            handler.write(_plain_error(500, "sandbox handler error"), close=True)

    def _serve_unknown(self, handler: _Handler, headers: dict[str, str], body: bytes) -> None:
        known = ", ".join(f"/{key}" for key in self._sims)
        response = _plain_error(404, f"No simulator at this path; use one of {known}.")
        with self._lock:
            self._counts[(UNKNOWN_PROVIDER, "other")] += 1
            if self.record_requests:
                self._log.append(
                    RecordedRequest(
                        UNKNOWN_PROVIDER, "other", handler.command, handler.path, headers, body, 404
                    )
                )
        handler.write(response)

    def _pipeline(self, handler: _Handler, sim: ProviderSim, request: Request) -> None:
        op = sim.classify(request.method, request.segments)
        entry = RecordedRequest(
            sim.key, op, request.method, handler.path, dict(request.headers), request.body
        )
        draw = self._draw(sim, request, op, entry)
        if draw.latency_ms > 0:
            time.sleep(draw.latency_ms / 1000)
        response, decision = self._rate_limit(sim, request, op)
        handled = dropped_by_fault = False
        if response is None:
            response, handled, dropped_by_fault = self._answer(sim, request, op, draw)
        dropped = (draw.drop and handled) or dropped_by_fault
        if handled and op == "cancel" and draw.commit_delay_ms > 0 and response.status < 300:
            time.sleep(draw.commit_delay_ms / 1000)  # committed; the answer is late
        with self._lock:
            if decision is not None:
                sim.decorate(response, decision)
            entry.status = 0 if dropped else response.status
        if dropped:
            handler.drop()
        elif draw.hostile is not None and draw.hostile.kind == "stall":
            handler.trickle(response, draw.hostile.stall_s)
        else:
            handler.write(response)

    def _draw(self, sim: ProviderSim, request: Request, op: str, entry: RecordedRequest) -> _Draw:
        """Record the request and draw its faults (under the lock)."""
        with self._lock:
            if self.record_requests:
                self._log.append(entry)
            self._counts[(sim.key, op)] += 1
            faults, rng = self._faults, self._rng
            hang = faults.timeout_rate > 0 and rng.random() < faults.timeout_rate
            fail: int | None = None
            if faults.fail_rate > 0 and rng.random() < faults.fail_rate:
                fail = rng.choice(FAIL_STATUSES)
            drop = op == "cancel" and faults.drop_rate > 0 and rng.random() < faults.drop_rate
            sim.ctx.token_max_age_s = faults.token_max_age_s
            return _Draw(
                hang_s=faults.hang_s if hang else None,
                fail=fail,
                drop=drop,
                latency_ms=faults.latency_ms,
                commit_delay_ms=faults.commit_delay_ms,
                hostile=_take_fault(faults, sim, request, op),
            )

    def _rate_limit(
        self, sim: ProviderSim, request: Request, op: str
    ) -> tuple[Response | None, RateDecision | None]:
        """The provider's 429 when the request is over the limit, and the decision."""
        limit = self.requests_per_minute
        if limit is None:
            return None, None
        with self._lock:
            rate_key = sim.rate_key(request, op)
            if rate_key is None:
                return None, None
            per_window = max(1, round(limit * self.rate_window_s / 60))
            decision = self._limiter.hit((sim.key, rate_key), per_window)
            if not decision.allowed:
                return sim.too_many_requests(request, decision), decision
            return None, decision

    def _answer(
        self, sim: ProviderSim, request: Request, op: str, draw: _Draw
    ) -> tuple[Response, bool, bool]:
        """The answer past the rate limit: (response, handled, dropped by a fault)."""
        if draw.hang_s is not None:
            time.sleep(draw.hang_s)
        with self._lock:
            if draw.fail is not None:
                return sim.server_error(request, draw.fail), False, False
            response = sim.authenticate(request, op)
            if response is not None:
                return response, False, False
            if draw.hostile is not None:
                response, dropped = self._hostile(sim, draw.hostile, request, op)
                return response, False, dropped
            return sim.handle(request, op), True, False

    def _hostile(
        self, sim: ProviderSim, fault: PaymentFault, request: Request, op: str
    ) -> tuple[Response, bool]:
        """The answer a per-payment fault gives (under the lock), and whether to drop."""
        if fault.kind in sim.special_faults:
            return sim.special_fault(fault, request, op)
        real: Response | None = None
        if op != "cancel" or fault.applies:
            real = sim.handle(request, op)
        if fault.kind == "html_502":
            status = fault.status or 502
            page = (
                f"<!DOCTYPE html><html><head><title>{status} Bad Gateway</title></head>"
                f"<body><center><h1>{status} Bad Gateway</h1></center><hr>"
                "<center>nginx</center></body></html>"
            )
            return Response(status, page.encode(), content_type="text/html; charset=utf-8"), False
        assert real is not None
        body = real.body
        if fault.kind == "truncated":
            body = body[: max(1, len(body) // 2)]
        elif fault.kind == "empty":
            return Response(200, b"", dict(real.headers), real.content_type), False
        elif fault.kind == "wrong_types":
            try:
                body = dumps(sim.mistype(parse_json(body)))
            except (BodyError, TypeError, ValueError):
                body = b'"abc"'
        elif fault.kind == "oversized":
            padding = b"x" * OVERSIZED_BYTES
            if body.rstrip().endswith(b"}") and body.strip() != b"{}":
                body = body.rstrip()[:-1] + b',"padding":"' + padding + b'"}'
            else:
                body = b'{"padding":"' + padding + b'"}'
        return Response(real.status, body, dict(real.headers), real.content_type), False

    def _record_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], sandbox: Sandbox, family: socket.AddressFamily
    ) -> None:
        self.address_family = family
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away
        self.sandbox._record_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "paycancel-sandbox/1"
    sys_version = ""
    disable_nagle_algorithm = True

    @property
    def _sandbox_server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        self._sandbox_server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._sandbox_server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the sandbox never prints (requests carry credentials)."""

    def _dispatch(self) -> None:
        self._sandbox_server.sandbox._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def header_dict(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadRequest("invalid or too large Content-Length")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest("request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def write(self, response: Response, *, close: bool = False) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    def trickle(self, response: Response, stall_s: float) -> None:
        """Headers and half the body, then a byte every 0.2 s until ``stall_s`` has
        passed, then close: an answer that stops half-way (no per-read timeout fires)."""
        deadline = time.monotonic() + stall_s
        body = response.body
        half = len(body) // 2
        self.close_connection = True
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:half])
            self.wfile.flush()
            for index in range(half, len(body) - 1):
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
        except OSError:
            return
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Close the connection without writing a single response byte."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _take_fault(faults: Faults, sim: ProviderSim, request: Request, op: str) -> PaymentFault | None:
    """The next per-payment fault for this request, counted down (under the lock)."""
    if not faults.payments:
        return None
    payment_id = sim.payment_id_of(request, op)
    if payment_id is None:
        return None
    queue = faults.payments.get((sim.key, payment_id)) or faults.payments.get(
        (sim.key, payment_id.lower())
    )
    for fault in queue or []:
        if not fault.hits(op):
            continue
        if fault.times is not None:
            fault.times -= 1
            if fault.times == 0:
                queue.remove(fault)  # type: ignore[union-attr]
        return fault
    return None


def _plain_error(status: int, message: str) -> Response:
    return Response.json(status, {"error": {"code": "sandbox_error", "message": message}})


def _require_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the sandbox only serves on loopback addresses, not {host!r}")


def _merge_credentials(
    overrides: dict[str, dict[str, str]] | None,
) -> dict[str, dict[str, str]]:
    """The default credentials with ``overrides`` applied field by field."""
    merged = copy.deepcopy(SANDBOX_CREDENTIALS)
    for provider, fields in (overrides or {}).items():
        if provider not in merged:
            raise ValueError(f"unknown provider {provider!r} in sandbox credentials")
        unknown = sorted(set(fields) - set(merged[provider]))
        if unknown:
            raise ValueError(f"unknown credential field(s) for {provider}: {', '.join(unknown)}")
        merged[provider].update(fields)
    for sim in SIMULATORS:
        sim.check_credentials(merged[sim.key])
    return merged
