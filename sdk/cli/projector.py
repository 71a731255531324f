"""`ledgerflow projector`: the process that keeps the views up to date."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state


def projector(
    ctx: typer.Context,
    group: Annotated[
        str,
        typer.Option(
            "--group", help="Kafka consumer group: processes in one group share the partitions."
        ),
    ] = "ledgerflow-projector",
    host: Annotated[str, typer.Option("--host", help="Address of the metrics endpoint.")] = (
        "127.0.0.1"
    ),
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics (Prometheus: lag per partition, events applied, dead letters) "
            "and /health on this port.",
        ),
    ] = None,
    session_timeout: Annotated[
        float,
        typer.Option(
            "--session-timeout",
            min=1.0,
            help="Kafka: seconds after which a projector that stopped answering loses its "
            "partitions to the others in its group (heartbeats every tenth of it).",
        ),
    ] = 10.0,
    from_snapshot: Annotated[
        Path | None,
        typer.Option(
            "--from-snapshot",
            dir_okay=False,
            help="When the views (SQLite) hold no event yet, start them from this snapshot "
            "(ledgerflow views snapshot) and catch up from its position instead of from "
            "the start of the log; views that already hold events are kept as they are.",
        ),
    ] = None,
) -> None:
    """Keep the views up to date until stopped (Ctrl-C or SIGTERM).

    On Kafka (LEDGERFLOW_EVENT_LOG=kafka://...) it joins a consumer group: start several to
    share the partitions; each stores its offsets in the views database (LEDGERFLOW_VIEWS_DB)
    in the same transaction as the rows, so a killed process resumes without losing or
    doubling anything. On the SQLite log it follows the log and projects what writers append.
    """
    from ledgerflow.events import tracing
    from ledgerflow.services.metrics import exposition
    from ledgerflow.services.projector.service import ProjectorService

    settings = state(ctx).settings()
    tracing.configure(settings.otlp_endpoint, "ledgerflow-projector")
    if from_snapshot is not None:
        from ledgerflow.cli.views import restore_snapshot
        from ledgerflow.services.projector import view_snapshots

        held = view_snapshots.applied(settings.views_db_url)
        if held:
            output.note(f"the views already hold events (up to {held.encode()}); "
                        f"{from_snapshot} not used")  # fmt: skip
        else:
            position = restore_snapshot(settings, from_snapshot)
            output.note(f"views started from {from_snapshot} at log position {position}")
    backend = state(ctx).embedded()
    service = ProjectorService(
        backend.log, backend.projector, group=group, session_timeout_s=session_timeout
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = None
    if metrics_port is not None:
        server = exposition.serve(
            host, metrics_port, service.stats.metrics.registry, name="projector-metrics"
        )
        output.note(f"metrics on {exposition.url(server, host)}")
    from sqlalchemy.engine import make_url

    views = make_url(backend.settings.views_db_url).render_as_string(hide_password=True)
    output.note(f"projecting {backend.settings.event_log_url} into {views} (group {group})")
    try:
        service.run(stop)
    finally:
        if server is not None:
            server.shutdown()
    output.note(f"stopped after applying {service.stats.applied} events")
