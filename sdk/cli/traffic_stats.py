"""`ledgerflow traffic-stats`: the Faust worker folding deployments' traffic on Kafka."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state


def traffic_stats(
    ctx: typer.Context,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Faust's log level (WARNING, INFO, DEBUG).")
    ] = "WARNING",
    host: Annotated[str, typer.Option("--host", help="Address of the metrics endpoint.")] = (
        "127.0.0.1"
    ),
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics (Prometheus: traffic events folded, snapshots published) "
            "and /health on this port.",
        ),
    ] = None,
) -> None:
    """Fold the inference and feedback events of the Kafka log (LEDGERFLOW_EVENT_LOG) into
    per-variant windowed statistics, as a Faust worker, and publish each deployment's
    snapshot to Redis (LEDGERFLOW_REDIS_URL) every second. Run several to share the
    partitions; set LEDGERFLOW_TRAFFIC_STATS=redis for the deployer and gateways to read
    them. On the embedded default no worker is needed: the statistics fold in process."""
    from ledgerflow.services.analytics.faust_app import run_stream_stats
    from ledgerflow.services.analytics.metrics import TrafficStatsMetrics
    from ledgerflow.services.metrics import exposition

    settings = state(ctx).settings()
    metrics = TrafficStatsMetrics()
    if metrics_port is not None:
        server = exposition.serve(host, metrics_port, metrics.registry, name="traffic-stats")
        output.note(f"metrics on {exposition.url(server, host)}")
    output.note(f"folding traffic of {settings.event_log_url} into {settings.redis_url}")
    run_stream_stats(settings, loglevel=log_level.upper(), metrics=metrics)
