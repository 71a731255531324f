"""`ledgerflow ui`: the web UI and the REST API on the tracking URI's data (like `mlflow ui`)."""

from __future__ import annotations

import typer

from ledgerflow.cli.gateway import (
    AuthOption,
    HostOption,
    LogLevel,
    LogLevelOption,
    PortOption,
    SslCertfileOption,
    SslKeyfileOption,
)
from ledgerflow.cli.server import run_all


def ui(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: PortOption = 5000,
    log_level: LogLevelOption = LogLevel.warning,
    auth: AuthOption = False,
    ssl_keyfile: SslKeyfileOption = None,
    ssl_certfile: SslCertfileOption = None,
) -> None:
    """Open the web UI on the tracking URI's data (a data directory by default): experiments,
    runs, metric charts, artifacts, models. Serves the UI at http://HOST:PORT/ and the REST
    API beside it (the same process as `ledgerflow server`); stop it with Ctrl-C. Look at
    what `ledgerflow demo` made with `ledgerflow --tracking-uri DATA_DIR ui`. With
    --ssl-keyfile and --ssl-certfile it speaks HTTPS.
    """
    from ledgerflow.services.tls import Tls

    tls = Tls.of(ssl_keyfile, ssl_certfile)
    run_all(ctx, host, port, grpc_port=None, log_level=log_level, auth=auth, name="ui", tls=tls)
