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
) -> None:
    """Fold the inference and feedback events of the Kafka log (LEDGERFLOW_EVENT_LOG) into
    per-variant windowed statistics, as a Faust worker, and publish each deployment's
    snapshot to Redis (LEDGERFLOW_REDIS_URL) every second. Run several to share the
    partitions; set LEDGERFLOW_TRAFFIC_STATS=redis for the deployer and gateways to read
    them. On the embedded default no worker is needed: the statistics fold in process."""
    from ledgerflow.services.analytics.faust_app import run_stream_stats

    settings = state(ctx).settings()
    output.note(f"folding traffic of {settings.event_log_url} into {settings.redis_url}")
    run_stream_stats(settings, loglevel=log_level.upper())
