"""Running the gateway: bootstrap the backend, serve the app with uvicorn, close at exit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ledgerflow.events.settings import Settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.gateway.app import create_app


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    log_level: str = "warning",
    ready: Callable[[str], None] | None = None,
    backend: Backend | None = None,
) -> None:
    """Serve until interrupted; `ready(url)` is called once the socket accepts requests.
    A `backend` given is used (and left open); otherwise one is made from `settings`."""
    import uvicorn

    owned = backend is None
    backend = backend or bootstrap(settings)
    try:
        backend.refresh()  # project what a previous process appended but never projected
        config = uvicorn.Config(
            create_app(backend),
            host=host,
            port=port,
            log_level=log_level,
            access_log=log_level in ("info", "debug"),
        )
        server = uvicorn.Server(config)
        if ready is not None:
            threading.Thread(
                target=_announce, args=(server, host, ready), name="gateway-ready", daemon=True
            ).start()
        server.run()
    finally:
        if owned:
            backend.close()


def _announce(server: object, host: str, ready: Callable[[str], None]) -> None:
    while not getattr(server, "started", False):
        if getattr(server, "should_exit", False):
            return
        time.sleep(0.02)
    sockets = [s for srv in getattr(server, "servers", []) for s in srv.sockets]
    port = sockets[0].getsockname()[1] if sockets else 0
    shown = f"[{host}]" if ":" in host else host
    ready(f"http://{shown}:{port}")
