"""Running the gateway: bootstrap the backend, make sure someone can sign in when auth is
on, serve the app with uvicorn, close at exit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgerflow.events.settings import Settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.gateway.app import create_app
from ledgerflow.services.gateway.cache import ReadCache
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.limits import Rates
from ledgerflow.services.tls import Tls, scheme
from ledgerflow.services.ui import site
from ledgerflow.services.watchdog import Watchdog, stop_soon

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry


SERVICE_ACTOR = "service:ledgerflow-server"
"""The actor of what a server does at its own start (creating the configured admin)."""


@dataclass(frozen=True)
class AuthStatus:
    """What a server with auth on starts with, to be told to the operator (never a
    password)."""

    admins: list[str]
    created: str | None
    """The admin created (or promoted) from LEDGERFLOW_ADMIN_USER at this start, if any."""
    default: str
    """The level where no grant names the caller (LEDGERFLOW_AUTH_DEFAULT)."""


def open_auth(backend: Backend) -> AuthStatus | None:
    """With auth on, make sure an admin can sign in: one in the views already, or the one
    LEDGERFLOW_ADMIN_USER and LEDGERFLOW_ADMIN_PASSWORD name (created, or promoted with
    that password). InvalidInput, saying what to set, when there is neither: a server that
    nobody could sign in to must not start. None with auth off."""
    settings = backend.settings
    if not settings.auth:
        return None
    created = backend.auth.ensure_admin(
        settings.admin_user, settings.admin_password, actor=SERVICE_ACTOR
    )
    admins = [u.name for u in backend.auth.queries.users() if u.admin]
    return AuthStatus(admins, created, settings.auth_default)


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    log_level: str = "warning",
    ready: Callable[[str], None] | None = None,
    backend: Backend | None = None,
    grpc_port: int | None = None,
    grpc_ready: Callable[[str], None] | None = None,
    extend: Callable[[FastAPI], None] | None = None,
    watchdog: Watchdog | None = None,
    on_auth: Callable[[AuthStatus], None] | None = None,
    tls: Tls | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> None:
    """Serve until interrupted (over TLS on both ports with `tls`); `ready(url)` is called
    once the socket accepts requests.
    A `backend` given is used (and left open; its owner has made sure of an admin with
    `open_auth`); otherwise one is made from `settings`, and with auth on `on_auth` is told
    who can sign in (InvalidInput when nobody could).
    With `grpc_port`, the gRPC service listens there too (0: any free port). `extend`
    may add routes to the app before it starts (`ledgerflow server` hosts deployments); the
    web UI is served at `/` after them (`ledgerflow.services.ui.site`).
    `/health` reports the process's dead background threads (those of `watchdog`, the
    caller's, and the event hub's and read cache's), and the server shuts down
    `FAILURE_GRACE_S` after one dies (health checks see the 503 first); without a
    `watchdog` of the caller's, `serve` then raises `ServiceFailed`. `/metrics` serves
    `metrics_registry` (`ledgerflow server`'s services share it), else one of the app's own."""
    import uvicorn

    owned = backend is None
    backend = backend or bootstrap(settings)
    own_watchdog = watchdog is None
    watchdog = watchdog or Watchdog()
    hub: Hub | None = None
    cache: ReadCache | None = None
    grpc_server: Any = None
    rates = Rates.of(backend.settings)  # one caller's rate over REST and gRPC together
    try:
        backend.refresh()  # project what a previous process appended but never projected
        if owned:
            status = open_auth(backend)
            if status is not None and on_auth is not None:
                on_auth(status)
        namespace = backend.settings.redis_namespace  # this log's keys in a shared Redis
        hub = Hub(backend.log, redis_url=backend.settings.redis_url, prefix=namespace).start()
        watchdog.expect("event hub", hub.alive)  # SSE and gRPC streams, the read cache
        # REST and gRPC reads of runs, model versions and aliases
        cache = ReadCache(backend, hub, prefix=namespace).start()
        watchdog.expect("read cache", cache.alive)
        app = create_app(
            backend,
            hub,
            failures=lambda: watchdog.failures,
            rates=rates,
            metrics_registry=metrics_registry,
            cache=cache,
        )
        if grpc_port is not None:
            from ledgerflow.services.gateway import grpc_server as grpc_service

            grpc_server = grpc_service.serve(
                backend, hub, host, grpc_port, cache=cache, rates=rates, tls=tls,
                metrics=app.state.gateway_metrics,
            )  # fmt: skip
            if grpc_ready is not None:
                grpc_ready(f"{host}:{grpc_server.bound_port}")
        if extend is not None:
            extend(app)
        site.mount(app, backend)  # last: its catch-all answers what no route above does
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=log_level in ("info", "debug"),
            **(tls.uvicorn_options() if tls is not None else {}),
        )
        server = uvicorn.Server(config)
        watchdog.on_failure(lambda *_: stop_soon(server))
        if ready is not None:
            threading.Thread(
                target=_announce,
                args=(server, host, ready, scheme(tls)),
                name="gateway-ready",
                daemon=True,
            ).start()
        server.run()
        if own_watchdog:
            watchdog.check()  # a thread died: exit non-zero, so a supervisor restarts us
    finally:
        if own_watchdog:
            watchdog.stop.set()
        if grpc_server is not None:
            grpc_server.stop(2).wait()
        if cache is not None:
            cache.close()
        if hub is not None:
            hub.close()
        if owned:
            backend.close()


def _announce(
    server: object, host: str, ready: Callable[[str], None], url_scheme: str = "http"
) -> None:
    while not getattr(server, "started", False):
        if getattr(server, "should_exit", False):
            return
        time.sleep(0.02)
    sockets = [s for srv in getattr(server, "servers", []) for s in srv.sockets]
    port = sockets[0].getsockname()[1] if sockets else 0
    shown = f"[{host}]" if ":" in host else host
    ready(f"{url_scheme}://{shown}:{port}")
