"""`ledgerflow gateway`: serve the REST API over a data directory."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings
    from ledgerflow.services.gateway.server import AuthStatus


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
AuthOption = Annotated[
    bool,
    typer.Option(
        "--auth",
        help="Require an identity on every API call, stream and webhook (as "
        "LEDGERFLOW_AUTH=true does). The first start needs LEDGERFLOW_ADMIN_USER and "
        "LEDGERFLOW_ADMIN_PASSWORD. See docs/security.md.",
    ),
]

SslKeyfileOption = Annotated[
    str | None,
    typer.Option(
        "--ssl-keyfile",
        help="Serve over TLS (REST and gRPC) with this PEM private key; needs --ssl-certfile.",
    ),
]
SslCertfileOption = Annotated[
    str | None,
    typer.Option(
        "--ssl-certfile",
        help="The PEM certificate (chain) that goes with --ssl-keyfile. Clients trusting a "
        "private CA set LEDGERFLOW_TRACKING_SERVER_CERT_PATH.",
    ),
]


def serving_settings(ctx: typer.Context, service: str, *, auth: bool = False) -> Settings:
    """The settings of a serving process, refusing a tracking URI that is itself a server;
    `auth` turns auth on (LEDGERFLOW_AUTH may have already)."""
    from ledgerflow.events import tracing
    from ledgerflow.events.errors import InvalidInput

    settings = state(ctx).settings()
    if auth and not settings.auth:
        settings = settings.model_copy(update={"auth": True})
    if settings.is_remote:
        raise InvalidInput(
            f"the {service} serves a data directory (or LEDGERFLOW_EVENT_LOG and "
            f"LEDGERFLOW_VIEWS_DB), not another gateway ({settings.tracking_uri})",
            field="LEDGERFLOW_TRACKING_URI",
        )
    tracing.configure(settings.otlp_endpoint, f"ledgerflow-{service}")
    return settings


def announce_auth(status: AuthStatus) -> None:
    """Tell the operator that auth is on and who can sign in (never a password)."""
    admins = ", ".join(status.admins)
    made = (
        f" ({status.created} made admin now, from LEDGERFLOW_ADMIN_USER)"
        if status.created is not None
        else ""
    )
    output.line(f"auth is on: every API call needs an identity; admins: {admins}{made}")
    output.note(
        f"where no grant names a caller they get {status.default} (LEDGERFLOW_AUTH_DEFAULT); "
        "clients sign in with LEDGERFLOW_TRACKING_TOKEN (ledgerflow tokens create) or "
        "LEDGERFLOW_TRACKING_USERNAME / _PASSWORD"
    )


def gateway(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    grpc_port: GrpcPortOption = None,
    log_level: LogLevelOption = LogLevel.warning,
    auth: AuthOption = False,
    ssl_keyfile: SslKeyfileOption = None,
    ssl_certfile: SslCertfileOption = None,
) -> None:
    """Serve the REST API (OpenAPI at /docs) over the tracking URI's data.

    SDKs elsewhere log to it with LEDGERFLOW_TRACKING_URI=http://HOST:PORT. Prints the URL
    once it accepts requests; GET /health answers from then on. Stop it with Ctrl-C.
    With --auth every API call needs a user's password, an API token or an OIDC token.
    With --ssl-keyfile and --ssl-certfile both ports speak TLS (https://, gRPC over TLS).
    """
    settings = serving_settings(ctx, "gateway", auth=auth)
    from ledgerflow.services.gateway.server import serve
    from ledgerflow.services.tls import Tls
    from ledgerflow.services.watchdog import ServiceFailed

    tls = Tls.of(ssl_keyfile, ssl_certfile)

    def ready(url: str) -> None:
        output.line(f"ledgerflow gateway listening on {url}", style="green")

    def grpc_ready(address: str) -> None:
        output.line(f"ledgerflow gateway gRPC on {address}", style="green")

    try:
        serve(
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
