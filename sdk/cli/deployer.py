"""`ledgerflow deployer`: the process that acts on deployments' live traffic."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state


def deployer(
    ctx: typer.Context,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.05, help="Seconds between looks at every deployment."),
    ] = 1.0,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            min=0.1,
            help="Seconds a deployment stays with this deployer without renewal (renewed "
            "every look): how soon another deployer takes over when this one dies.",
        ),
    ] = 5.0,
    host: Annotated[str, typer.Option("--host", help="Address of the metrics endpoint.")] = (
        "127.0.0.1"
    ),
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics (Prometheus: decisions, guardrail trips, ticks) "
            "and /health on this port.",
        ),
    ] = None,
) -> None:
    """Watch every active deployment's live statistics until stopped (Ctrl-C or SIGTERM):
    a guardrail breach rolls traffic back to the baseline at once, and canary plans advance
    a step when the current one has lasted and served enough. Every decision is an event
    (`ledgerflow deployments show NAME` says why). `ledgerflow server` runs one inside."""
    from ledgerflow.services.analytics.live import stats_for
    from ledgerflow.services.deployer.loop import Deployer
    from ledgerflow.services.deployer.metrics import DeployerMetrics
    from ledgerflow.services.leases import Leases
    from ledgerflow.services.metrics import exposition

    backend = state(ctx).embedded()
    stats = stats_for(backend.settings, backend.log)
    loop = Deployer(
        backend.deployments,
        stats,
        interval_s=interval,
        before_tick=backend.catch_up_with_log,  # never decide from views behind the log
        metrics=DeployerMetrics(),
        leases=Leases(backend.projector.engine, "deployment"),
        lease_s=lease,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = None
    if metrics_port is not None:
        server = exposition.serve(host, metrics_port, loop.metrics.registry, name="deployer")
        output.note(f"metrics on {exposition.url(server, host)}")
    output.note(f"deploying from {backend.settings.event_log_url} every {interval:g} s")
    try:
        loop.run(stop)
    finally:
        if server is not None:
            server.shutdown()
    output.note("deployer stopped")
