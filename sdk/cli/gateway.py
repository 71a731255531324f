"""`ledgerflow gateway`: serve the REST API over a data directory."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def gateway(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="The interface to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="The REST port (0: any free).")
    ] = 8080,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            min=0,
            max=65535,
            help="Also serve gRPC (ingest, queries, Subscribe) on this port (0: any free).",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", help="The server's log level (info logs requests).")
    ] = LogLevel.warning,
) -> None:
    """Serve the REST API (OpenAPI at /docs) over the tracking URI's data.

    SDKs elsewhere log to it with LEDGERFLOW_TRACKING_URI=http://HOST:PORT. Prints the URL
    once it accepts requests; GET /health answers from then on. Stop it with Ctrl-C.
    """
    from ledgerflow.events.errors import InvalidInput

    settings = state(ctx).settings()
    if settings.is_remote:
        raise InvalidInput(
            f"the gateway serves a data directory (or LEDGERFLOW_EVENT_LOG and "
            f"LEDGERFLOW_VIEWS_DB), not another gateway ({settings.tracking_uri})",
            field="LEDGERFLOW_TRACKING_URI",
        )
    from ledgerflow.events import tracing
    from ledgerflow.services.gateway.server import serve

    tracing.configure(settings.otlp_endpoint, "ledgerflow-gateway")

    def ready(url: str) -> None:
        output.line(f"ledgerflow gateway listening on {url}", style="green")

    def grpc_ready(address: str) -> None:
        output.line(f"ledgerflow gateway gRPC on {address}", style="green")

    serve(
        settings,
        host,
        port,
        log_level=log_level.value,
        ready=ready,
        grpc_port=grpc_port,
        grpc_ready=grpc_ready,
    )
