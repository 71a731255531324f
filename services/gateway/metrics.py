"""The gateway's metrics (one place defines them all): requests by route template, method
and status, their latency, gRPC calls by method and status code, events ingested and spool
batches, and live subscribers (SSE and gRPC streams share the hub).

`RequestMetrics` is a plain ASGI middleware (no per-request task or body copy): it labels a
request with the route template that matched (`/api/v1/runs/{run_id}`, never the raw path,
so the series stay few), and resolves each label child once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledgerflow.services.gateway.route_table import api_routes
from ledgerflow.services.metrics import exposition

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"


class GatewayMetrics:
    """The gateway's metric families in `registry` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        r = self.registry
        self.requests = Counter(
            "ledgerflow_gateway_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "ledgerflow_gateway_request_duration_seconds",
            "Time from a request's arrival to its response's start (streams: to their first byte).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ingested = Counter(
            "ledgerflow_gateway_ingest_events",
            "Events accepted by the ingest endpoint (the SDK's remote spool).",
            registry=r,
        )
        self.batches = Counter(
            "ledgerflow_gateway_ingest_batches",
            "Batches accepted by the ingest endpoint (one per spool shipment).",
            registry=r,
        )
        self.subscribers = Gauge(
            "ledgerflow_gateway_subscribers",
            "Live event subscriptions (SSE and gRPC streams) attached to the hub.",
            registry=r,
        )
        self.grpc_requests = Counter(
            "ledgerflow_gateway_grpc_requests",
            "gRPC calls answered, by service, method and status code (streams: when they end).",
            ["service", "method", "code"],
            registry=r,
        )
        self.grpc_latency = Histogram(
            "ledgerflow_gateway_grpc_request_duration_seconds",
            "Time to answer a unary gRPC call.",
            ["service", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def count_subscribers(self, count: Callable[[], int]) -> None:
        self.subscribers.set_function(lambda: float(count()))

    def note_ingest(self, events: int) -> None:
        self.batches.inc()
        if events:
            self.ingested.inc(events)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_grpc(self, full_method: str, code: str, seconds: float | None) -> None:
        """One gRPC call (`/package.Service/Method`) ended with `code`; `seconds` for a
        unary call, None for a stream (how long a subscription lived says nothing)."""
        service, _, method = full_method.lstrip("/").rpartition("/")
        self.grpc_requests.labels(service, method, code).inc()
        if seconds is not None:
            self.grpc_latency.labels(service, method).observe(seconds)

    def request_counts(self) -> list[tuple[str, str, str, int]]:
        """(route, method, status, requests so far) of every series of the request counter,
        read from the client library's own samples (what `/metrics` exposes)."""
        return [
            (s.labels["route"], s.labels["method"], s.labels["status"], int(s.value))
            for family in self.requests.collect()
            for s in family.samples
            if s.name.endswith("_total")
        ]


class RequestMetrics:
    """ASGI middleware recording every HTTP request in `metrics`."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._full_paths: dict[int, str] | None = None

    def route_of(self, scope: Scope) -> str:
        """The full template of the route that matched (prefixes of included routers too),
        or UNMATCHED (a 404). Looked up by the route object: no path matching per request."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self._full_paths is None:
            self._full_paths = {id(r): path for path, r in api_routes(scope["app"])}
        full = self._full_paths.get(id(route))
        if full is not None:
            return full
        path = getattr(route, "path", None)  # a plain Starlette route: its own full path
        return path if isinstance(path, str) else UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = False

        async def send_and_note(message: Message) -> None:
            nonlocal seen
            if message["type"] == "http.response.start" and not seen:
                seen = True
                self.metrics.observe(
                    self.route_of(scope),
                    scope["method"],
                    message["status"],
                    time.perf_counter() - start,
                )
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            if not seen:  # nothing was answered: the server answers 500
                self.metrics.observe(
                    self.route_of(scope), scope["method"], 500, time.perf_counter() - start
                )
            raise
