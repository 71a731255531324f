"""One model-server process: the REST app under uvicorn and, with a gRPC port, the OIP gRPC
service on the same event loop, both over one ModelRepository.

The server listens at once and loads and warms the model in the background, so readiness
probes answer 503 (not a refused connection) until the model can take traffic. A model that
cannot be loaded stops the server, and `run_server` raises the reason.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib.util
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import LedgerflowError, Unavailable
from ledgerflow.services.serving.app import create_app
from ledgerflow.services.serving.labels import Aliases
from ledgerflow.services.serving.loading import load
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.tls import Tls, scheme
from ledgerflow.services.watchdog import Watchdog, run_watched

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings
    from ledgerflow.services.serving.auth import ServingAuth
    from ledgerflow.services.serving.deployment import Loader
    from ledgerflow.services.serving.labels import Feed
    from ledgerflow.services.serving.loading import ModelSource

log = logging.getLogger("ledgerflow.serving")


@dataclass(frozen=True)
class ServeSettings:
    model_uri: str
    port: int = 8080
    host: str = "127.0.0.1"
    grpc_port: int | None = None
    max_batch_size: int = 1
    max_wait_ms: float = 0.0
    name: str | None = None
    deployment: str | None = None
    """Serve this deployment's variants (a replica) instead of `model_uri`."""
    tls: Tls | None = None
    """Serve REST and gRPC over TLS with this key and certificate."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_server(
    settings: ServeSettings,
    announce: Callable[[str], Any] = print,
    log_settings: Settings | None = None,
    *,
    source: ModelSource | None = None,
    allow_pickle: bool = True,
    auth: ServingAuth | None = None,
    events: Feed | None = None,
) -> None:
    """Serve until interrupted. `announce` is told each event worth a line (listening,
    ready, failures). A deployment replica follows the event log `log_settings` names.
    Registered models, runs and bundles are looked up in `source` (the backend of the
    settings the server was started with); `allow_pickle` is their LEDGERFLOW_ALLOW_PICKLE.
    `auth` says who may call it (`ledgerflow.services.serving.auth`; None: anyone).
    `events` is the log of `source`'s backend: a registered model's TF Serving labels
    follow its aliases there (None: they are its version's aliases when it was loaded)."""
    watchdog = Watchdog()  # a dead background thread: not ready, then exit with status 1
    repository = ModelRepository(
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        aliases=Aliases(events) if events is not None else None,
        watchdog=watchdog,
    )
    if settings.deployment is not None:
        if log_settings is None or source is None:
            raise ValueError("a deployment replica needs the event log's settings and a source")
        from ledgerflow.services.serving.deployment import variant_loader

        loader = variant_loader(source, allow_pickle=allow_pickle)
        _run_replica(settings, repository, watchdog, log_settings, loader, announce, auth)
        return
    load_model = functools.partial(
        load, settings.model_uri, settings.name, source=source, allow_pickle=allow_pickle
    )
    grpc_server: Any = None
    failures: list[BaseException] = []
    server: Any = None

    async def start() -> None:
        nonlocal grpc_server
        loop = asyncio.get_running_loop()
        if repository.aliases is not None:
            await loop.run_in_executor(None, repository.aliases.start)
            watchdog.expect("alias follower", repository.aliases.alive)
        if settings.grpc_port is not None:
            from ledgerflow.services.serving.grpc_service import start_grpc_server

            grpc_server = await start_grpc_server(
                repository, settings.host, settings.grpc_port, auth=auth, tls=settings.tls
            )
            announce(f"gRPC listening on {settings.host}:{settings.grpc_port}")
        try:
            loaded = await loop.run_in_executor(None, load_model)
            served = repository.add(
                loaded.name,
                loaded.predictor,
                version=loaded.version,
                resource=loaded.resource,
                labels=loaded.labels,
                registered=loaded.registered,
            )
            await served.warm()
        except Exception as e:  # the process cannot serve: stop it, and say why
            log.debug("loading %s failed", settings.model_uri, exc_info=True)
            failures.append(e)
            server.should_exit = True
            return
        # Everything loaded so far (the model, its libraries) lives as long as the process:
        # move it out of the collector's sight, so full collections, which would otherwise walk
        # millions of long-lived objects and pause every in-flight request for ~200 ms, stay
        # short.
        gc.collect()
        gc.freeze()
        announce(f"model {served.name} version {served.version} ready")

    async def stop() -> None:
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)
        if repository.aliases is not None:
            await asyncio.get_running_loop().run_in_executor(None, repository.aliases.stop)

    app = create_app(repository, on_startup=start, on_shutdown=stop, auth=auth)
    server = _uvicorn(app, settings)
    announce(f"listening on {scheme(settings.tls)}://{settings.host}:{settings.port}")
    run_watched(server, watchdog)  # a background thread died: exit 1, a supervisor restarts
    if failures:
        e = failures[0]
        if isinstance(e, LedgerflowError):
            raise e
        raise Unavailable(f"could not load {settings.model_uri}: {type(e).__name__}: {e}") from e


def _run_replica(
    settings: ServeSettings,
    repository: ModelRepository,
    watchdog: Watchdog,
    log_settings: Settings,
    loader: Loader,
    announce: Callable[[str], Any],
    auth: ServingAuth | None = None,
) -> None:
    """A replica of one deployment: every variant loaded, requests routed by its events,
    what it served recorded on the log."""
    from ledgerflow.services.analytics.traffic import TrafficRecorder
    from ledgerflow.services.bootstrap import open_event_log
    from ledgerflow.services.serving.deployment import DeploymentHost
    from ledgerflow.services.serving.deployment_routes import deployment_routes

    name = settings.deployment or ""
    event_log = open_event_log(log_settings)
    repository.aliases = aliases = Aliases(event_log)
    replica = f"{socket.gethostname()}:{settings.port}:{os.getpid()}"
    recorder = TrafficRecorder(event_log, replica)
    cache = None
    if log_settings.redis_url:
        from ledgerflow.services.serving.routing_cache import RoutingCache

        cache = RoutingCache.from_url(log_settings.redis_url)
    host = DeploymentHost(
        event_log,
        repository,
        replica=replica,
        recorder=recorder,
        only=name,
        loader=loader,
        cache=cache,
    )

    grpc_server: Any = None

    async def start() -> None:
        nonlocal grpc_server
        recorder.start()
        watchdog.expect("traffic recorder", recorder.alive)
        await asyncio.get_running_loop().run_in_executor(None, aliases.start)
        watchdog.expect("alias follower", aliases.alive)
        await host.start()
        watchdog.expect("deployment follower", host.alive)
        if settings.grpc_port is not None:
            from ledgerflow.services.serving.deployment_grpc import start_deployment_grpc

            grpc_server = await start_deployment_grpc(
                host, settings.host, settings.grpc_port, auth, tls=settings.tls
            )
            announce(f"gRPC listening on {settings.host}:{settings.grpc_port}")
        while not host.ready(name):
            await asyncio.sleep(0.05)
        announce(f"deployment {name} ready: {', '.join(host.deployment(name).serving)}")

    async def stop() -> None:
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)
        await host.stop()
        await asyncio.get_running_loop().run_in_executor(None, aliases.stop)
        await asyncio.get_running_loop().run_in_executor(None, recorder.close)
        event_log.close()

    app = create_app(
        repository,
        extra_routes=deployment_routes(host, auth),
        on_startup=start,
        on_shutdown=stop,
        auth=auth,
    )
    server = _uvicorn(app, settings)
    announce(f"listening on {scheme(settings.tls)}://{settings.host}:{settings.port}")
    run_watched(server, watchdog)


def _uvicorn(app: Any, settings: ServeSettings) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        log_level="warning",
        access_log=False,
        lifespan="on",
        **(settings.tls.uvicorn_options() if settings.tls is not None else {}),
    )
    return uvicorn.Server(config)
