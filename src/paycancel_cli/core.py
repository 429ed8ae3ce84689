"""``status`` as a plain async function (no terminal, no typer, no rich), and the run
ids and who/where every run records.  ``cancel ID`` is a run: see ``runs.single``.
"""

from __future__ import annotations

import getpass
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from paycancel_cli.engine import Canceller
from paycancel_cli.errors import ProviderError
from paycancel_cli.models import ErrorInfo, Payment

if TYPE_CHECKING:
    from paycancel_cli.session import Session


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class StatusLine:
    account: str
    payment_id: str
    payment: Payment | None
    error: ErrorInfo | None


async def status(session: Session, account: str, payment_ids: list[str]) -> list[StatusLine]:
    provider = session.provider(account)
    for pid in payment_ids:
        provider.validate_id(pid)
    canceller = Canceller(provider, run_id=None)
    out = []
    for pid in payment_ids:
        try:
            out.append(StatusLine(account, pid, await canceller.read(pid), None))
        except ProviderError as exc:
            # Not found, or an answer that cannot be understood: that id's line says so,
            # the other ids are still shown.
            out.append(
                StatusLine(
                    account,
                    pid,
                    None,
                    ErrorInfo(exc.code, exc.message, exc.http_status, transient=exc.retryable),
                )
            )
    return out
