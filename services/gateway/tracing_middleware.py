"""A span per HTTP request when tracing is on (docs/observability.md), continuing the
caller's W3C `traceparent`.

A plain ASGI middleware: with tracing off (the default) a request passes straight through,
with no task, stream or body copy per request as Starlette's `BaseHTTPMiddleware` makes."""

from __future__ import annotations

from typing import Any

from ledgerflow.events import tracing


class Traced:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"), None
        )
        attributes = {"http.method": method, "http.target": scope["path"]}
        with tracing.span(f"ledgerflow.gateway {method}", attributes, parent=parent) as current:

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    current.set_attribute("http.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, sending)
