"""Serving a `CollectorRegistry`: the Prometheus client library writes the text (or
OpenMetrics, when the scraper asks for it); nothing here writes the format by hand.

`registry()` makes a fresh registry per app (a process that hosts several apps, as tests
do, keeps their series apart); `endpoint(registry)` is a Starlette/FastAPI handler for
`GET /metrics`; `serve(host, port, registry)` is a standalone `/metrics` + `/health` HTTP
endpoint in a daemon thread for processes that have no web server of their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:  # the web frameworks come with the `server` extra; the projector needs none
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("ledgerflow.metrics")

# `*_created` series double every counter's cardinality and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """A registry of its own for one app or process (never the library's global one)."""
    return CollectorRegistry(auto_describe=True)


def render(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The exposition of `registry` in the format `accept` asks for, and its content type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def endpoint(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    """A `GET /metrics` handler for a Starlette or FastAPI app."""
    from starlette.responses import Response

    async def metrics(request: Request) -> Response:
        body, content_type = render(registry, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    return metrics


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry,
    *,
    name: str = "metrics",
    health: Callable[[], bool] | None = None,
) -> ThreadingHTTPServer:
    """`/metrics` and `/health` on `host:port` (0: a free port) in a daemon thread; the
    caller shuts it down. `health()` False answers 503 (a stopped loop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            status = 200
            if path == "/metrics":
                body, kind = render(registry, self.headers.get("Accept", ""))
            elif path == "/health":
                ok = health is None or health()
                status = 200 if ok else 503
                body = b'{"status": "ok"}' if ok else b'{"status": "failing"}'
                kind = "application/json"
            else:
                self.send_error(404, "try /metrics or /health")
                return
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(f"{name} endpoint: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"{name}-http", daemon=True).start()
    return server


def url(server: ThreadingHTTPServer, host: str) -> str:
    """Where `serve` listens, for the operator."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{server.server_address[1]}/metrics"
