"""`ledgerflow server`: the gateway, the projector and the webhook dispatcher in one process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ledgerflow.cli import output
from ledgerflow.cli.gateway import (
    AuthOption,
    GrpcPortOption,
    HostOption,
    LogLevel,
    LogLevelOption,
    PortOption,
    SslCertfileOption,
    SslKeyfileOption,
    announce_auth,
    serving_settings,
)

if TYPE_CHECKING:
    from ledgerflow.services.tls import Tls


def server(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: PortOption = 5000,
    grpc_port: GrpcPortOption = None,
    log_level: LogLevelOption = LogLevel.warning,
    auth: AuthOption = False,
    ssl_keyfile: SslKeyfileOption = None,
    ssl_certfile: SslCertfileOption = None,
) -> None:
    """Serve everything in one process on the tracking URI's data (like `mlflow server`).

    The web UI at /, the REST API (OpenAPI at /docs), the projector and the webhook
    dispatcher share the
    data directory (or LEDGERFLOW_EVENT_LOG and LEDGERFLOW_VIEWS_DB). Clients log to it
    with LEDGERFLOW_TRACKING_URI=http://HOST:PORT. Stop it with Ctrl-C. If a background
    service dies, /health answers 503 naming it and the process exits with status 1, so a
    supervisor can restart it. With --auth every API call needs a user's password, an API
    token or an OIDC token; the first start creates the admin LEDGERFLOW_ADMIN_USER and
    LEDGERFLOW_ADMIN_PASSWORD name. With --ssl-keyfile and --ssl-certfile it speaks TLS.
    """
    from ledgerflow.services.tls import Tls

    tls = Tls.of(ssl_keyfile, ssl_certfile)
    run_all(ctx, host, port, grpc_port=grpc_port, log_level=log_level, auth=auth, tls=tls)


def run_all(
    ctx: typer.Context,
    host: str,
    port: int,
    *,
    grpc_port: int | None,
    log_level: LogLevel,
    auth: bool,
    name: str = "server",
    tls: Tls | None = None,
) -> None:
    """Everything in one process, announced as `ledgerflow NAME`; shared by `server` and
    `ui`, which differ only in what they say and which options they offer."""
    settings = serving_settings(ctx, name, auth=auth)
    import ledgerflow
    from ledgerflow.services.server import serve_all
    from ledgerflow.services.watchdog import ServiceFailed

    # the deployments' replicas load their models through the SDK, from this data
    ledgerflow.set_tracking_uri(settings.tracking_uri)

    def ready(url: str) -> None:
        output.line(f"ledgerflow {name} listening on {url}", style="green")
        output.note(f"the web UI: {url}/ ; log to it with LEDGERFLOW_TRACKING_URI={url}")

    def grpc_ready(address: str) -> None:
        output.line(f"ledgerflow {name} gRPC on {address}", style="green")

    try:
        serve_all(
            settings,
            host,
            port,
            log_level=log_level.value,
            ready=ready,
            grpc_port=grpc_port,
            grpc_ready=grpc_ready,
            on_auth=announce_auth,
            tls=tls,
        )
    except ServiceFailed as e:  # a supervisor restarts the process on a non-zero exit
        output.error(str(e))
        raise typer.Exit(1) from None
