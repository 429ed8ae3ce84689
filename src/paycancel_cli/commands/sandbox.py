"""`paycancel sandbox`: serve the providers' simulators on loopback, print a config."""

import contextlib
import time
from pathlib import Path
from typing import Annotated

import typer

from paycancel_cli.commands.common import Command, JsonOpt
from paycancel_cli.errors import UsageError


def sandbox(
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, metavar="N", help="Port on 127.0.0.1 (0: a free one)."
        ),
    ] = 8765,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, metavar="N", help="Added to every answer.")
    ] = 0,
    fail_rate: Annotated[
        float,
        typer.Option(
            "--fail-rate", metavar="F", help="Share of requests answered with a 5xx, 0 to 1."
        ),
    ] = 0.0,
    requests_per_minute: Annotated[
        int | None,
        typer.Option(
            "--requests-per-minute",
            min=1,
            metavar="N",
            help="Rate limit per credential (429 beyond).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Write the config to PATH (mode 0600) instead of printing it.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Serve the five providers' simulators on loopback and print a config that points at them."""
    from paycancel_cli.sandbox import Faults, Sandbox
    from paycancel_cli.sandboxconfig import config_text, write_private

    if not 0 <= fail_rate <= 1:
        raise UsageError("--fail-rate must be between 0 and 1.")
    faults = Faults(latency_ms=latency_ms, fail_rate=fail_rate)
    server = Sandbox(faults=faults, requests_per_minute=requests_per_minute, port=port)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(
            f"Cannot serve on 127.0.0.1:{port} ({exc.strerror}); choose another --port "
            "(0 picks a free one)."
        ) from None
    with server as sb:
        if output is not None:
            try:
                write_private(output, config_text(sb.base_url, sb.account_config()))
            except OSError as exc:
                raise UsageError(
                    f"--output {output}: cannot be written ({exc.strerror})."
                ) from None
            typer.echo(
                f"paycancel sandbox on {sb.base_url}; config written to {output} (mode 0600). "
                f"Use it with: paycancel --config {output} ...  Ctrl-C stops the sandbox.",
                err=True,
            )
        elif json_:
            import json

            line = {"type": "sandbox", "base_url": sb.base_url, "accounts": sb.account_config()}
            typer.echo(json.dumps(line))
        else:
            typer.echo(config_text(sb.base_url, sb.account_config()), nl=False)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


COMMAND = Command(
    sandbox,
    name=None,
    short_help="Serve the providers' simulators on loopback; print a config.",
    examples=(
        "paycancel sandbox --output sb.toml   (then, in another terminal:)",
        "paycancel --config sb.toml status pay_demopending01 -a hedgepayments",
        "paycancel sandbox --port 0 --latency-ms 50 --requests-per-minute 600",
    ),
)
