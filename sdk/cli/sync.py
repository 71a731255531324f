"""`ledgerflow sync`: ship what logging processes left in the spool to the gateway."""

from __future__ import annotations

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state


def sync(ctx: typer.Context) -> None:
    """Ship the events logging processes left in the spool to the gateway.

    A process logging to a gateway keeps events in a local spool (LEDGERFLOW_SPOOL_DIR)
    until the gateway has them. What a process could not ship before it ended, or was
    killed, is shipped by the next process that logs there, or by this command. Spools of
    processes still running are theirs to ship and are left alone.
    """
    from ledgerflow.remote.credentials import credentials_from
    from ledgerflow.remote.http import GatewayHTTP
    from ledgerflow.remote.shipper import Shipper
    from ledgerflow.remote.spool import folder_for
    from ledgerflow.remote.tls import verify_from

    settings = state(ctx).settings()
    if not settings.is_remote:
        output.note(
            f"nothing to sync: {settings.tracking_uri} is a data directory, and events go "
            "straight to its log"
        )
        return
    http = GatewayHTTP(
        settings.tracking_uri,
        credentials=credentials_from(settings),
        verify=verify_from(settings),
    )
    try:
        shipper = Shipper(http, folder_for(settings.spool_root, settings.tracking_uri))
        files, shipped, left = shipper.ship_orphans()
        shipper.flush()
    finally:
        http.close()
    output.line(
        f"shipped {shipped} events from {files} spool files to {settings.tracking_uri}",
        style="green" if not left else "yellow",
    )
    if left:
        output.error(f"{left} events are still in the spool; run `ledgerflow sync` again")
        raise typer.Exit(1)
