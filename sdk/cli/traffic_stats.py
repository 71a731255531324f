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
    session_timeout: Annotated[
        float,
        typer.Option(
            "--session-timeout",
            min=1.0,
            help="Seconds after which a worker that stopped answering loses its partitions "
            "to the others (and that a group takes to settle).",
        ),
    ] = 10.0,
    changelog_batch_bytes: Annotated[
        int,
        typer.Option(
            "--changelog-batch-bytes",
            min=1,
            help="Bytes per batch of the table's changelog records. 1 sends each alone, "
            "which Tansu needs (it misreports a batch's end offset, so Faust would recover "
            "the table short of it); on Apache Kafka 16384 writes faster.",
        ),
    ] = 1,
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
    run_stream_stats(
        settings,
        loglevel=log_level.upper(),
        metrics=metrics,
        session_timeout_s=session_timeout,
        producer_max_batch_size=changelog_batch_bytes,
    )
