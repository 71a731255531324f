"""`ledgerflow gateway`: serve the REST API over a data directory."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


HostOption = Annotated[str, typer.Option("--host", help="The interface to listen on.")]
PortOption = Annotated[
    int, typer.Option("--port", "-p", min=0, max=65535, help="The REST port (0: any free).")
]
GrpcPortOption = Annotated[
    int | None,
    typer.Option(
        "--grpc-port",
        min=0,
        max=65535,
        help="Also serve gRPC (ingest, queries, Subscribe) on this port (0: any free).",
    ),
]
LogLevelOption = Annotated[
    LogLevel, typer.Option("--log-level", help="The server's log level (info logs requests).")
]


def serving_settings(ctx: typer.Context, service: str) -> Settings:
    """The settings of a serving process, refusing a tracking URI that is itself a server."""
    from ledgerflow.events import tracing
    from ledgerflow.events.errors import InvalidInput

    settings = state(ctx).settings()
    if settings.is_remote:
        raise InvalidInput(
            f"the {service} serves a data directory (or LEDGERFLOW_EVENT_LOG and "
            f"LEDGERFLOW_VIEWS_DB), not another gateway ({settings.tracking_uri})",
            field="LEDGERFLOW_TRACKING_URI",
        )
    tracing.configure(settings.otlp_endpoint, f"ledgerflow-{service}")
    return settings


def gateway(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    grpc_port: GrpcPortOption = None,
    log_level: LogLevelOption = LogLevel.warning,
) -> None:
    """Serve the REST API (OpenAPI at /docs) over the tracking URI's data.

    SDKs elsewhere log to it with LEDGERFLOW_TRACKING_URI=http://HOST:PORT. Prints the URL
    once it accepts requests; GET /health answers from then on. Stop it with Ctrl-C.
    """
    settings = serving_settings(ctx, "gateway")
    from ledgerflow.services.gateway.server import serve

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
