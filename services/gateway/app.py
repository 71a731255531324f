"""The gateway's FastAPI application, assembled from one router per concern.

`create_app(backend)` serves any backend `bootstrap(settings)` built: embedded
SQLite in tests and on one machine, Kafka and Postgres in a distributed
deployment. Errors leave as JSON `{"error_code", "message", "field"}` with the
HTTP status their kind implies, so a client can raise the same exception the
embedded mode would have raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from ledgerflow.events.errors import InvalidInput, LedgerflowError, PermissionDenied
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway import (
    artifact_routes,
    audit_routes,
    auth,
    auth_routes,
    bundle_routes,
    denials,
    deployment_routes,
    experiment_routes,
    ingest_routes,
    job_routes,
    operations_routes,
    registry_routes,
    run_routes,
    series_routes,
    sse,
    webhook_routes,
)
from ledgerflow.services.gateway.deps import refuse_stray_as_of
from ledgerflow.services.gateway.errors import (
    ERROR_RESPONSES,
    error_response,
    protocol_error,
    status_of,
    unrouted,
)
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.limits import BodyLimit, MiB, Rates, body_limit
from ledgerflow.services.gateway.metrics import GatewayMetrics, RequestMetrics
from ledgerflow.services.gateway.mlflow_api import routes as mlflow_routes
from ledgerflow.services.gateway.route_table import Gated
from ledgerflow.services.gateway.schemas import Health
from ledgerflow.services.gateway.tracing_middleware import Traced
from ledgerflow.services.metrics import exposition
from ledgerflow.services.projector.database import unavailable

if TYPE_CHECKING:
    from ledgerflow.services.gateway.cache import ReadCache

log = logging.getLogger("ledgerflow.gateway")

API_PREFIX = "/api/v1"


def _validation_field(loc: tuple[int | str, ...]) -> str:
    """('body', 'params', 'lr') -> 'params.lr'; ('query', 'max_points') -> 'max_points'."""
    parts = [str(x) for x in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def create_app(
    backend: Backend,
    hub: Hub | None = None,
    *,
    failures: Callable[[], Mapping[str, str]] | None = None,
    rates: Rates | None = None,
    metrics_registry: CollectorRegistry | None = None,
    cache: ReadCache | None = None,
) -> FastAPI:
    """The REST API over `backend`, with event streams (SSE) when a started `hub` is given,
    and reads of runs, model versions and aliases through a started `cache` if given; the
    caller owns them and closes them. `failures` names the process's background
    services that died (`/health` then answers 503 with them). With auth on, `rates` are
    the per-user buckets (shared with the process's gRPC service; made here if None).
    `GET /metrics` serves `metrics_registry` (one of the app's own if None), where the
    gateway's series go and `ledgerflow server`'s other services put theirs."""
    try:
        release = version("ledgerflow")
    except PackageNotFoundError:  # running from a source tree that is not installed
        release = "0+unknown"
    app = FastAPI(
        title="Ledgerflow gateway",
        version=release,
        description="Event-sourced experiment tracking and model registry over HTTP. "
        "Every write is an event on the log; reads come from views folded from it.",
        responses=ERROR_RESPONSES,
        dependencies=[Depends(refuse_stray_as_of)],
    )
    app.state.backend = backend
    app.state.cache = cache

    @app.exception_handler(LedgerflowError)
    def _ledgerflow_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LedgerflowError)
        if isinstance(exc, PermissionDenied) and backend.settings.auth:
            denials.forbidden(request, exc)  # on the log as auth.denied, rate limited
        if status_of(exc) >= 500:
            log.warning("gateway: %s: %s", type(exc).__name__, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":  # ('body', offset): not a field
            where = first.get("loc", ("body", 0))[-1]
            why = first.get("ctx", {}).get("error", "JSON decode error")
            return protocol_error(
                400, f"the body is not valid JSON: {why} at offset {where}", "body"
            )
        field = _validation_field(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg', 'invalid')}" if field else first.get("msg", "")
        more = len(exc.errors()) - 1
        if more > 0:
            message += f" (and {more} more)"
        body = {"error_code": InvalidInput.code, "message": message, "field": field or None}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(HTTPException)
    def _http_error(request: Request, exc: Exception) -> JSONResponse:
        """What Starlette and FastAPI refuse themselves, in the body every error has."""
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):  # no route, or not with this method
            return unrouted(app, request)
        field = "body" if exc.status_code == 400 else None  # a body that is not JSON
        response = protocol_error(exc.status_code, str(exc.detail), field)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(OperationalError)
    def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OperationalError)
        error = unavailable(exc)
        log.warning("gateway: %s", error.message)
        return error_response(error)

    @app.exception_handler(Exception)
    def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("gateway: unexpected error")
        body = {
            "error_code": LedgerflowError.code,
            "message": f"internal error ({type(exc).__name__}); see the gateway's log",
            "field": None,
        }
        return JSONResponse(body, status_code=500)

    @app.get(
        "/health",
        tags=["service"],
        summary="Ready to serve",
        response_model=Health,
        response_model_exclude_none=True,
        responses={503: {"model": Health, "description": "A background service stopped"}},
    )
    def health() -> Any:
        failed = dict(failures()) if failures is not None else {}
        if failed:
            body = Health(status="failing", version=release, failed=failed)
            return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
        return Health(version=release)

    native = Gated((API_PREFIX,))
    for module in (
        experiment_routes,
        run_routes,
        series_routes,
        artifact_routes,
        registry_routes,
        bundle_routes,
        ingest_routes,
        webhook_routes,
        deployment_routes,
        auth_routes,
        audit_routes,
        operations_routes,
        job_routes,
    ):
        native.include_router(module.router)
    app.include_router(native, prefix=API_PREFIX)
    mlflow_routes.install(app)  # MLflow's clients: docs/mlflow-compat.md
    if hub is not None:
        app.state.hub = hub
        app.include_router(sse.make_router(lambda: backend, lambda: hub))
    app.add_middleware(Traced)  # innermost: the span covers the routes, as before
    auth.install(app, backend, rates)
    auth.guard_routes(app)
    settings = backend.settings
    app.add_middleware(
        BodyLimit,
        limit_for=partial(
            body_limit,
            default=int(settings.max_request_mb * MiB),
            ingest=int(settings.max_ingest_mb * MiB),
        ),
    )
    _instrument(app, hub, metrics_registry)  # outermost: refused bodies are counted too
    return app


def _instrument(app: FastAPI, hub: Hub | None, registry: CollectorRegistry | None) -> None:
    """`GET /metrics` (open like `/health`: scrapers carry no credentials) and the request
    metrics middleware; `app.state.gateway_metrics` takes the ingest route's counts."""
    registry = registry if registry is not None else exposition.registry()
    metrics = GatewayMetrics(registry)
    if hub is not None:
        metrics.count_subscribers(lambda: hub.subscribers)
    app.state.metrics_registry = registry
    app.state.gateway_metrics = metrics
    app.add_route(
        "/metrics", exposition.endpoint(registry), methods=["GET"], include_in_schema=False
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
