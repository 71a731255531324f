"""MLflow's scoring server routes: /invocations, /ping, /health, /version.

Errors are answered as MLflow answers them, `{"error_code": ..., "message": ...}`: 400
BAD_REQUEST for input the model cannot take (the message names the field), 415 for a content
type other than JSON or CSV, 503 while the model is still loading or warming.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.serving.auth import Resource, ServingAuth, guarded
from ledgerflow.services.serving.http import json_response, request_id, respond, server_version
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.serving.scoring import (
    UnsupportedContentType,
    parse_invocation,
    predictions_body,
)


def _error(code: str, message: str, status: int, rid: str) -> Response:
    return json_response({"error_code": code, "message": message}, status, rid)


def scoring_routes(repository: ModelRepository, auth: ServingAuth | None = None) -> list[Route]:
    """With `auth` requiring it, /invocations needs READ on the served model's resource."""
    version = server_version()

    def served_resource(request: Request) -> Resource | None:
        try:
            return repository.default().resource
        except NotFound:
            return None  # answered 404 by the route

    async def ping(request: Request) -> Response:
        if repository.ready:
            return respond("\n")
        return json_response({"status": "loading"}, 503)

    async def version_route(request: Request) -> Response:
        return respond(version, media_type="text/plain")

    async def invocations(request: Request) -> Response:
        rid = request_id(request)
        try:
            served = repository.default()
        except NotFound as e:
            return _error("RESOURCE_DOES_NOT_EXIST", e.message, 404, rid)
        if not served.ready:
            return _error("TEMPORARILY_UNAVAILABLE", "the model is still loading", 503, rid)
        body = await request.body()
        try:
            parsed = parse_invocation(
                body, request.headers.get("content-type"), served.predictor.input_schema
            )
        except UnsupportedContentType as e:
            served.metrics.observe_rejected("rest")
            return _error("BAD_REQUEST", e.message, 415, rid)
        except InvalidInput as e:
            served.metrics.observe_rejected("rest")
            return _error("BAD_REQUEST", e.message, 400, rid)
        try:
            predictions = await served.predict(parsed, "rest")
            return respond(predictions_body(predictions), 200, rid)
        except InvalidInput as e:
            return _error("BAD_REQUEST", e.message, 400, rid)

    return [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version_route, methods=["GET"]),
        Route(
            "/invocations",
            guarded(auth, invocations, resource=served_resource),
            methods=["POST"],
        ),
    ]
