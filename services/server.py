"""`ledgerflow server`: every service in one process, like `mlflow server`.

The gateway (REST, and gRPC with --grpc-port), the projector (following the log,
so views stay fresh even when a writer died between its append and its
projection), the webhook dispatcher, the bundle policy runner (builds bundles
when a policy alias is set; Ray starts on the first build), the deployer (canary
steps, guardrails) and a replica of every deployment (`/deployments/NAME/...` on
the gateway's port) share one backend.
On the embedded default a small team shares one machine this way, with nothing
else to run; the same settings as the separate services apply, so it also runs
on Kafka and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ledgerflow.events.settings import Settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.deployer.metrics import DeployerMetrics
from ledgerflow.services.gateway import server as gateway
from ledgerflow.services.metrics import exposition
from ledgerflow.services.projector.metrics import ProjectorMetrics
from ledgerflow.services.projector.service import ProjectorService
from ledgerflow.services.tls import Tls
from ledgerflow.services.watchdog import Watchdog
from ledgerflow.services.webhooks.dispatcher import WebhookDispatcher
from ledgerflow.services.webhooks.metrics import WebhookMetrics
from ledgerflow.services.webhooks.worker import MayDeliver

if TYPE_CHECKING:
    from fastapi import FastAPI


def serve_all(
    settings: Settings,
    host: str,
    port: int,
    *,
    log_level: str = "warning",
    ready: Callable[[str], None] | None = None,
    grpc_port: int | None = None,
    grpc_ready: Callable[[str], None] | None = None,
    on_auth: Callable[[gateway.AuthStatus], None] | None = None,
    tls: Tls | None = None,
) -> None:
    """Run the gateway in this thread and the other services beside it until interrupted.
    With auth on, first make sure someone can sign in (`on_auth` is told who), or raise
    InvalidInput saying what to set.

    Raises `ServiceFailed` when a background service died: `/health` answered 503
    meanwhile, and the caller should exit non-zero so that a supervisor restarts it."""
    backend = bootstrap(settings)
    watchdog = Watchdog()
    registry = exposition.registry()  # the gateway's /metrics serves every service's series
    dispatcher = WebhookDispatcher(
        backend.log,
        backend.projector.engine,
        secrets=lambda: backend.secret_box,
        reader=backend.queries.engine,  # the projector beside it keeps the views current
        may_deliver=delivery_filter(backend),
        metrics=WebhookMetrics(registry),
    )
    try:
        backend.refresh()
        status = gateway.open_auth(backend)  # before any thread
        if status is not None and on_auth is not None:
            on_auth(status)
        projector = ProjectorService(
            backend.log, backend.projector, metrics=ProjectorMetrics(registry)
        )
        watchdog.spawn("projector", projector.run)
        watchdog.spawn("webhooks", lambda stop: dispatcher.run())
        watchdog.spawn("bundles", _bundle_policies(backend))
        watchdog.spawn("deployer", _deployer(backend, DeployerMetrics(registry)))
        gateway.serve(
            settings,
            host,
            port,
            log_level=log_level,
            ready=ready,
            backend=backend,
            grpc_port=grpc_port,
            grpc_ready=grpc_ready,
            extend=lambda app: _host_deployments(app, backend, watchdog),
            watchdog=watchdog,
            tls=tls,
            metrics_registry=registry,
        )
    finally:
        watchdog.stop.set()  # first: a thread returning after this is not a failure
        dispatcher.stop()
        watchdog.join(10)
        backend.close()
    watchdog.check()


def delivery_filter(backend: Backend) -> MayDeliver | None:
    """With auth on, a webhook delivers only what its owner may read."""
    if not backend.settings.auth:
        return None
    from ledgerflow.services.auth.visibility import webhook_filter

    return webhook_filter(backend.auth.queries, backend.authorizer)


def _bundle_policies(backend: Backend) -> Callable[[threading.Event], None]:
    """The bundle policy runner's loop (imports Ray's wrapper only when it runs)."""

    def run(stop: threading.Event) -> None:
        from ledgerflow.services.bundles.policy import PolicyRunner

        PolicyRunner(backend.log, backend.bundles, backend.projector.engine).run(stop)

    return run


def _host_deployments(app: FastAPI, backend: Backend, watchdog: Watchdog | None = None) -> None:
    """Serve every deployment's variants at /deployments/NAME/invocations on the gateway;
    with auth on, inference needs READ on the deployment and feedback EDIT."""
    from ledgerflow.services.serving.deployment import variant_loader
    from ledgerflow.services.serving.hosting import host_deployments
    from ledgerflow.services.serving.sources import BackendSource

    loader = variant_loader(BackendSource(backend), allow_pickle=backend.settings.allow_pickle)
    auth = None
    if backend.settings.auth:  # like every route of the server: an identity, and its level
        from ledgerflow.services.serving.auth import ServingAuth

        auth = ServingAuth.of(backend, inference=True)
    app.state.deployment_host = host_deployments(
        app, backend.log, loader=loader, auth=auth, watchdog=watchdog
    )


def _deployer(backend: Backend, metrics: DeployerMetrics) -> Callable[[threading.Event], None]:
    """The deployer loop: guardrails and canary steps from live statistics."""

    def run(stop: threading.Event) -> None:
        from ledgerflow.services.analytics.live import stats_for
        from ledgerflow.services.deployer.loop import Deployer
        from ledgerflow.services.leases import Leases

        stats = stats_for(backend.settings, backend.log)
        leases = Leases(backend.projector.engine, "deployment")
        Deployer(backend.deployments, stats, metrics=metrics, leases=leases).run(stop)

    return run
