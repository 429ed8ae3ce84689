"""The config that ``paycancel sandbox`` prints or writes: its accounts, and a journal of
its own, so that runs against the simulators never mix with the real history."""

from __future__ import annotations

import json
import os
from pathlib import Path


def sandbox_journal() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("paycancel")) / "journal-sandbox.sqlite3"


def config_text(base_url: str, accounts: dict[str, dict[str, str]]) -> str:
    lines = [
        f"# paycancel sandbox on {base_url}; Ctrl-C stops it. Config:",
        "# (saved by hand, make it private: chmod 600 FILE; or use --output FILE)",
        "",
        "[defaults]",
        f"journal = {json.dumps(str(sandbox_journal()))}   # sandbox runs: not the real journal",
        "",
    ]
    for name, fields in accounts.items():
        lines.append(f"[accounts.{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in fields.items())
        lines.append("")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (it holds credentials)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
