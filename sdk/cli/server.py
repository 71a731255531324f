"""`ledgerflow server`: the gateway, the projector and the webhook dispatcher in one process."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.gateway import LogLevel


def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="The interface to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="The REST port (0: any free).")
    ] = 5000,
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
    """Serve everything in one process on the tracking URI's data (like `mlflow server`).

    The REST API (OpenAPI at /docs), the projector and the webhook dispatcher share the
    data directory (or LEDGERFLOW_EVENT_LOG and LEDGERFLOW_VIEWS_DB). Clients log to it
    with LEDGERFLOW_TRACKING_URI=http://HOST:PORT. Stop it with Ctrl-C.
    """
    from ledgerflow.events import tracing
    from ledgerflow.events.errors import InvalidInput

    settings = state(ctx).settings()
    if settings.is_remote:
        raise InvalidInput(
            f"the server serves a data directory (or LEDGERFLOW_EVENT_LOG and "
            f"LEDGERFLOW_VIEWS_DB), not another gateway ({settings.tracking_uri})",
            field="LEDGERFLOW_TRACKING_URI",
        )
    tracing.configure(settings.otlp_endpoint, "ledgerflow-server")
    from ledgerflow.services.server import serve_all

    def ready(url: str) -> None:
        output.line(f"ledgerflow server listening on {url}", style="green")
        output.note(f"log to it with LEDGERFLOW_TRACKING_URI={url}")

    def grpc_ready(address: str) -> None:
        output.line(f"ledgerflow server gRPC on {address}", style="green")

    serve_all(
        settings,
        host,
        port,
        log_level=log_level.value,
        ready=ready,
        grpc_port=grpc_port,
        grpc_ready=grpc_ready,
    )
