"""Cron monitoring: a Prometheus textfile and dead-man's-switch pings.

``bulk-cancel --metrics-file PATH [--job-name NAME]`` and ``--ping-url URL``.  The command
makes a ``Monitor`` (its options checked before anything is read or sent) and attaches it
to the ``Invocation`` that the error boundary (``cli.run``) holds; the run tells it when
it starts (``started``: the start ping) and what it summed up (``finish``); the boundary
ends it with the invocation's exit code, whatever stopped it (``Invocation.end``).

Invariants:
- Nothing here changes an exit code or a run: a metrics file that cannot be written and
  a ping that fails are one warning line each on stderr.
- The file is replaced atomically: prometheus_client writes it beside the target, then
  renames it over the target, so the textfile collector reads the old file or the new
  one, never half of one.
- ``paycancel_last_success_timestamp_seconds`` is the time of the last exit-0 run: a
  failing run carries it over from the file it replaces (read with prometheus_client's
  parser, for this job name only); it is absent until a first success.
- Amounts are a monitoring figure (a float, converted here at the edge); the journal and
  the report stay the exact record.
- Each ping is bounded: ``PING_BOUND_S`` in all, its retries (network errors, 5xx)
  included, enforced by a deadline around the whole exchange; it runs on a thread of its
  own, so the start ping costs the run nothing.
- The ping URL is a credential: everything after its host is added to the redactor
  (so the journaled command line, logs and errors show ``https://host/[REDACTED]``), and
  paycancel itself only ever shows that form.
- prometheus_client and httpx are imported only when an option asks for them.
"""

from __future__ import annotations

# Imported by the error boundary at every start-up: standard library only, and cheap.
import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from paycancel_cli.redact import Redactor
    from paycancel_cli.runs.summary import BulkOutcome, Summary

DEFAULT_JOB = "paycancel"
PING_BOUND_S = 10.0
PING_ATTEMPTS = 4
SUCCESS_METRIC = "paycancel_last_success_timestamp_seconds"


# the invocation, as the error boundary holds it


@dataclass
class Invocation:
    """One CLI invocation: when it began, the error that stopped it (as printed), and
    the monitor a command attached, if any."""

    began: float = field(default_factory=time.monotonic)
    error: str | None = None
    monitor: Monitor | None = None

    def end(self, code: int) -> int:
        """Report the invocation's end to its monitor; returns ``code`` unchanged."""
        if self.monitor is not None:
            try:
                self.monitor.end(code, error=self.error, duration_s=time.monotonic() - self.began)
            except Exception as exc:  # monitoring never turns a run's end into a traceback
                _warn(f"monitoring failed ({type(exc).__name__}); the run's exit code stands.")
        return code


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "paycancel_invocation", default=None
)


@contextlib.contextmanager
def invocation() -> Iterator[Invocation]:
    this = Invocation()
    token = _current.set(this)
    try:
        yield this
    finally:
        _current.reset(token)


# the monitor


@dataclass
class Monitor:
    metrics_file: Path | None
    job_name: str
    ping: Ping | None
    run_id: str | None = None
    summary: Summary | None = None
    interrupted: bool = False

    def started(self, run_id: str) -> None:
        self.run_id = run_id
        if self.ping is not None:
            self.ping.send("start", None)

    def finish(self, outcome: BulkOutcome) -> None:
        """What the run summed up (absent when it stopped before a summary)."""
        self.run_id = outcome.run_id or self.run_id
        self.summary = outcome.summary
        self.interrupted = outcome.interrupted

    def end(self, code: int, *, error: str | None, duration_s: float) -> None:
        if self.metrics_file is not None:
            try:
                write_metrics(
                    self.metrics_file,
                    self.job_name,
                    code=code,
                    now=time.time(),
                    duration_s=duration_s,
                    summary=self.summary,
                )
            except OSError as exc:
                _warn(
                    f"the metrics file {self.metrics_file} could not be written "
                    f"({exc.strerror or exc}); the run's exit code stands."
                )
        if self.ping is not None:
            body = ping_body(
                code, self.run_id, self.summary, error=error, interrupted=self.interrupted
            )
            self.ping.send(str(code), body)
            try:
                self.ping.wait()
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting, keep the exit code
                _warn("the end ping was not waited for (interrupted).")


def watch(
    *,
    metrics_file: Path | None,
    job_name: str | None,
    ping_url: str | None,
    redactor: Redactor,
) -> Monitor:
    """Check the monitoring options (exit 2, nothing read or sent, when one is wrong)
    and attach their monitor to this invocation."""
    from paycancel_cli.errors import UsageError

    ping = None
    if ping_url is not None:
        ping = Ping(checked_ping_url(ping_url, redactor), redactor)
    if job_name is not None:
        if metrics_file is None:
            raise UsageError(
                "--job-name labels the metrics of --metrics-file: give --metrics-file PATH "
                "too. Nothing was sent."
            )
        if not job_name.strip():
            raise UsageError("--job-name is empty: give the job's name. Nothing was sent.")
    if metrics_file is not None:
        check_metrics_file(metrics_file)
    monitor = Monitor(metrics_file, (job_name or DEFAULT_JOB).strip(), ping)
    this = _current.get()
    if this is not None:
        this.monitor = monitor
    return monitor


def check_metrics_file(path: Path) -> None:
    import os

    from paycancel_cli.errors import UsageError

    if path.suffix != ".prom":
        raise UsageError(
            f"--metrics-file {path}: name it *.prom (node_exporter's textfile collector reads "
            "only those files). Nothing was sent."
        )
    if path.is_dir() or not (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
        raise UsageError(
            f"--metrics-file {path}: the directory does not exist or cannot be written (the "
            "file is written beside itself, then renamed). Nothing was sent."
        )


# the metrics file


def write_metrics(
    path: Path,
    job_name: str,
    *,
    code: int,
    now: float,
    duration_s: float,
    summary: Summary | None,
) -> None:
    """Replace ``path`` atomically with this invocation's metrics."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    from paycancel_cli.models import Outcome

    last_success = now if code == 0 else previous_success(path, job_name)
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(name, doc, ["job_name", *labels], registry=registry)

    gauge(
        "paycancel_last_run_timestamp_seconds",
        "When the last bulk-cancel run ended (Unix time), whatever its exit code.",
    ).labels(job_name).set(now)
    success = gauge(
        SUCCESS_METRIC,
        "When the last bulk-cancel run that exited 0 ended (Unix time); absent until one has.",
    )
    if last_success is not None:
        success.labels(job_name).set(last_success)
    gauge(
        "paycancel_last_run_exit_code",
        "The last run's exit code: 0 ok, 1 needs a person, 2 usage/input, 3 credentials "
        "rejected, 4 locked, 5 transient, 130 interrupted.",
    ).labels(job_name).set(code)
    gauge("paycancel_last_run_duration_seconds", "How long the last run's invocation took.").labels(
        job_name
    ).set(duration_s)
    payments = gauge(
        "paycancel_last_run_payments", "Payments of the last run per outcome.", "outcome"
    )
    counts = summary.outcomes if summary is not None else {}
    for outcome in Outcome:
        payments.labels(job_name, outcome.value).set(counts.get(outcome.value, 0))
    released = gauge(
        "paycancel_last_run_released",
        "Amount the last run released per currency, in major units (a monitoring figure: "
        "the journal and the report are the exact record).",
        "currency",
    )
    for currency, value in sorted((summary.cancelled_amounts if summary else {}).items()):
        released.labels(job_name, currency).set(float(value))
    gauge(
        "paycancel_last_run_requests",
        "Requests the last run sent to the providers (0 when it stopped before its summary).",
    ).labels(job_name).set(summary.requests if summary is not None else 0)
    write_to_textfile(str(path), registry)


def previous_success(path: Path, job_name: str) -> float | None:
    """The last success time the file at ``path`` holds for ``job_name``, if any."""
    import math

    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        _warn(f"the previous metrics file {path} could not be read ({exc}); {_LOST}")
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == SUCCESS_METRIC and sample.labels.get("job_name") == job_name:
                    value = float(sample.value)
                    return value if math.isfinite(value) else None
    except ValueError as exc:
        _warn(f"the previous metrics file {path} is not Prometheus text ({exc}); {_LOST}")
    return None


_LOST = "its last success time is not carried over."


# pings


def checked_ping_url(url: str, redactor: Redactor) -> str:
    """The ping URL, its secret part taught to ``redactor`` first (so that no message,
    this one's included, shows it); exit 2 when it is not a usable check URL."""
    from urllib.parse import urlsplit

    from paycancel_cli.errors import UsageError
    from paycancel_cli.providers.accounts import is_loopback as _is_loopback

    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced [IPv6] host: nothing to show but its shape
        redactor.add(url)
        raise UsageError(
            "--ping-url: not a URL; give the check's absolute https:// URL, such as "
            "https://hc-ping.com/UUID. Nothing was sent."
        ) from None
    secret = url.strip().split(parts.netloc, 1)[-1].strip("/") if parts.netloc else url
    redactor.add(secret)
    if len(secret) < 4:  # too short to scrub on its own: scrub the whole URL
        redactor.add(url)
    if parts.password:
        redactor.add(parts.password)
    shown = shown_url(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or not _port_ok(url):
        raise UsageError(
            f"--ping-url {shown}: give the check's absolute https:// URL, such as "
            "https://hc-ping.com/UUID. Nothing was sent."
        )
    if not parts.path.strip("/"):
        raise UsageError(
            f"--ping-url {shown}: the URL names no check; give the check's whole ping URL, "
            "such as https://hc-ping.com/UUID. Nothing was sent."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"--ping-url {shown}: plain http:// is only allowed on loopback addresses (the URL "
            "is a credential); use https://. Nothing was sent."
        )
    return url.strip().rstrip("/")


def shown_url(url: str) -> str:
    """The form of a ping URL paycancel shows: scheme and host only."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "[REDACTED]"
    host = parts.hostname or "?"
    port = f":{parts.port}" if _port(url) else ""
    return f"{parts.scheme or '?'}://{host}{port}/[REDACTED]"


def _port(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url.strip()).port
    except ValueError:
        return None


def _port_ok(url: str) -> bool:
    """False for a port that is not a number from 0 to 65535."""
    from urllib.parse import urlsplit

    try:
        port = urlsplit(url.strip()).port
    except ValueError:
        return False
    return port is None or 0 <= port <= 65535


class Ping:
    """Pings to one check: each on a thread of its own, bounded by ``PING_BOUND_S``."""

    def __init__(self, url: str, redactor: Redactor) -> None:
        self.url = url
        self.redactor = redactor
        self.threads: list[tuple[str, threading.Thread, list[str]]] = []

    def send(self, suffix: str, body: str | None) -> None:
        import threading

        problems: list[str] = []
        earlier = [sent for _, sent, _ in self.threads]  # the start ping reaches it first
        thread = threading.Thread(
            target=self._run,
            args=(suffix, body, problems, earlier),
            name=f"ping-{suffix}",
            daemon=True,
        )
        thread.start()
        self.threads.append((suffix, thread, problems))

    def wait(self) -> None:
        """Wait for every ping sent (each ends within its bound); warn once for each
        that failed."""
        for suffix, thread, problems in self.threads:
            thread.join(PING_BOUND_S + 5)  # the deadline inside ends it first
            if thread.is_alive():
                problems.append(f"no answer within {PING_BOUND_S:g} s")
            for problem in problems:
                shown = shown_url(self.url).replace("/[REDACTED]", f"/[REDACTED]/{suffix}")
                _warn(
                    self.redactor(
                        f"the ping to {shown} failed ({problem}); the run and its exit code "
                        "are not affected."
                    )
                )
        self.threads.clear()

    def _run(
        self,
        suffix: str,
        body: str | None,
        problems: list[str],
        earlier: list[threading.Thread],
    ) -> None:
        import asyncio

        for sent in earlier:  # in order: a slow start ping never lands after the end ping
            sent.join(PING_BOUND_S + 5)

        try:
            asyncio.run(self._ping(f"{self.url}/{suffix}", body))
        except TimeoutError:
            problems.append(f"no answer within {PING_BOUND_S:g} s")
        except _PingFailed as exc:
            problems.append(str(exc))
        except Exception as exc:  # network errors after the retries, anything else
            problems.append(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    async def _ping(self, url: str, body: str | None) -> None:
        import asyncio

        import httpx
        import stamina

        import paycancel_cli.engine  # noqa: F401  (installs the quiet retry hook)

        async with asyncio.timeout(PING_BOUND_S):
            async with httpx.AsyncClient(
                timeout=PING_BOUND_S,
                trust_env=False,
                headers={"User-Agent": "paycancel"},
            ) as client:
                async for attempt in stamina.retry_context(
                    on=(httpx.TransportError, _ServerError),
                    attempts=PING_ATTEMPTS,
                    timeout=PING_BOUND_S,
                    wait_initial=0.5,
                    wait_max=2.0,
                ):
                    with attempt:
                        if body is None:
                            response = await client.get(url)
                        else:
                            response = await client.post(
                                url,
                                content=body.encode("utf-8"),
                                headers={"Content-Type": "text/plain; charset=utf-8"},
                            )
                        if response.status_code >= 500:
                            raise _ServerError(f"answered {response.status_code}")
                if not response.is_success:
                    raise _PingFailed(f"answered {response.status_code}")


class _PingFailed(Exception):
    """A ping answered with something other than success."""


class _ServerError(_PingFailed):
    """A 5xx answer: retried within the bound."""


def ping_body(
    code: int,
    run_id: str | None,
    summary: Summary | None,
    *,
    error: str | None,
    interrupted: bool,
) -> str:
    """The end ping's body: a short plain-text summary of the invocation."""
    from paycancel_cli.models import Money

    lines = [f"paycancel bulk-cancel: exit {code}", f"run: {run_id or 'none started'}"]
    if summary is not None:
        counts = ", ".join(f"{o} {n}" for o, n in sorted(summary.outcomes.items()) if n)
        lines.append(f"payments: {summary.total}" + (f" ({counts})" if counts else ""))
        released = ", ".join(str(Money(v, c)) for c, v in sorted(summary.cancelled_amounts.items()))
        lines.append(f"released: {released or 'nothing'}")
        if summary.unknown_amounts:
            lines.append(f"released, amount unknown: {summary.unknown_amounts} payment(s)")
        lines.append(f"requests: {summary.requests}")
        if summary.remaining:
            lines.append(f"not processed: {summary.remaining}")
    if interrupted and run_id is not None:
        lines.append(
            f"stopped early: interrupted; resume with paycancel bulk-cancel --resume {run_id}"
        )
    if error:
        lines.append(f"stopped early: {error}")
    return "\n".join(lines) + "\n"


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr)
