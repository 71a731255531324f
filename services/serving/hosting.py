"""Deployments served inside another ASGI app (the gateway of `ledgerflow server`).

`host_deployments(app, log, loader=...)` adds the deployment routes
(`/deployments/{name}/...`) to `app` and runs a `DeploymentHost` for every deployment
beside it: variants load (through `loader`, from the app's own backend) when the app
starts and follow the log's deployment events while it runs, and what is served is
recorded on the log. The variants' metrics (requests, errors, latencies) go into the app's
metrics registry (`app.state.metrics_registry`, as the gateway has), else onto a `/metrics`
route of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from ledgerflow.events.log import EventLog
from ledgerflow.services.analytics.traffic import TrafficRecorder
from ledgerflow.services.metrics import exposition
from ledgerflow.services.serving.auth import ServingAuth
from ledgerflow.services.serving.deployment import DeploymentHost, Loader
from ledgerflow.services.serving.deployment_routes import deployment_routes
from ledgerflow.services.serving.labels import Aliases
from ledgerflow.services.serving.metrics import ServingMetrics
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.watchdog import Watchdog


def host_deployments(
    app: Starlette,
    log: EventLog,
    *,
    loader: Loader,
    replica: str | None = None,
    auth: ServingAuth | None = None,
    watchdog: Watchdog | None = None,
) -> DeploymentHost:
    """`loader` builds each variant's predictor (`variant_loader` over the app's backend);
    `auth` guards the routes (`ledgerflow server` with auth on passes its backend's);
    `watchdog`, the process's, watches the threads hosting starts."""
    shared = getattr(app.state, "metrics_registry", None)
    aliases = Aliases(log)  # TF Serving's labels: the registry's aliases, as they move
    repository = ModelRepository(metrics=ServingMetrics(shared), aliases=aliases, watchdog=watchdog)
    name = replica or f"{socket.gethostname()}:server:{os.getpid()}"
    recorder = TrafficRecorder(log, name)
    host = DeploymentHost(log, repository, replica=name, recorder=recorder, loader=loader)
    app.router.routes.extend(deployment_routes(host, auth))

    if shared is None:
        metrics = exposition.endpoint(repository.metrics.registry)
        app.router.routes.append(Route("/metrics", metrics, methods=["GET"]))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            recorder.start()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, aliases.start)
            await host.start()
            if watchdog is not None:
                watchdog.expect("traffic recorder", recorder.alive)
                watchdog.expect("alias follower", aliases.alive)
                watchdog.expect("deployment follower", host.alive)
            try:
                yield state
            finally:
                await host.stop()
                await loop.run_in_executor(None, aliases.stop)
                await repository.close()
                await asyncio.get_running_loop().run_in_executor(None, recorder.close)

    app.router.lifespan_context = lifespan
    return host
