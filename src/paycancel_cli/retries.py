"""What paycancel says when something is retried, installed as stamina's one retry hook
for the whole process: every retry (a provider's request, a journal waiting for another
process's lock) goes to the verbose log, and a short notice goes to whoever listens on
``paycancel.retrying`` (the CLI attaches a handler for ``status`` and ``cancel`` when stderr
is a terminal).  stamina's own default hook would log a WARNING per retry through the
root logger; paycancel keeps retries in its own log and reports the outcome instead.
"""

from __future__ import annotations

import logging

import stamina

log = logging.getLogger("paycancel.retry")


# What a person at a terminal is told while something is retried; kept out of the
# verbose log, which has its own line.
notice = logging.getLogger("paycancel.retrying")
notice.propagate = False


def log_retry(details: stamina.instrumentation.RetryDetails) -> None:
    log.debug(
        "retry %s of %s in %.2fs after %s",
        details.retry_num,
        details.name,
        details.wait_for,
        type(details.caused_by).__name__,
    )
    cause = details.caused_by
    why = getattr(cause, "message", None) or f"{type(cause).__name__}: {cause}"
    notice.info("%s Retrying in %.1fs (retry %d)...", why, details.wait_for, details.retry_num)


stamina.instrumentation.set_on_retry_hooks([log_retry])
