"""`paycancel status ID...`: read payments and say whether each can be cancelled."""

from typing import TYPE_CHECKING, Annotated

import typer

from paycancel_cli.commands.common import AccountOpt, Command, JsonOpt, by_shape, globals_of

if TYPE_CHECKING:
    from paycancel_cli.models import ErrorInfo


def status(
    ctx: typer.Context,
    payment_ids: Annotated[
        list[str],
        typer.Argument(metavar="ID...", help="One or more payment ids.", show_default=False),
    ],
    account: AccountOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show payments: normalized and provider status, amounts, and whether each can be
    cancelled now (and if not, why).  Read-only."""
    from paycancel_cli import core
    from paycancel_cli.models import combine
    from paycancel_cli.session import Session

    g = globals_of(ctx)
    config = g.config()
    acc = config.account(account or by_shape(config, payment_ids))
    out = g.output(json_)
    g.tell_retries(ctx)

    async def go() -> list[core.StatusLine]:
        async with Session(config, redactor=g.redactor) as session:
            return await core.status(session, acc.name, payment_ids)

    import asyncio

    lines = asyncio.run(go())
    if json_:
        for line in lines:
            if line.payment is not None:
                out.json_line({"type": "payment", **line.payment.to_json()})
            else:
                out.json_line(
                    {
                        "type": "payment_error",
                        "account": line.account,
                        "payment_id": line.payment_id,
                        "error": line.error.to_json() if line.error else None,
                    }
                )
    else:
        out.table(
            out.status_table(
                (
                    (ln.account, ln.payment_id, ln.payment, ln.error.message if ln.error else None)
                    for ln in lines
                ),
                live=lambda name: config.account(name).is_live,
            )
        )
    # 0 every payment found; 5 the only failures were transient (try again later); else 1
    raise typer.Exit(combine(_verdict(ln.error) for ln in lines if ln.payment is None))


def _verdict(error: "ErrorInfo | None") -> int:
    """A payment status could not show: 5 for a transient cause, else 1."""
    return 5 if error is not None and error.transient else 1


COMMAND = Command(
    status,
    name=None,
    short_help="Show payments and whether each can be cancelled.",
    examples=(
        "paycancel --sandbox status pay_demopending01 --account hedgepayments",
        "paycancel status ID1 ID2 ID3 --account flexportal --json",
        "paycancel --sandbox status fpi_demo_requires_action_01 -a flex",
    ),
)
