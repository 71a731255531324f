"""Open Inference Protocol v2 over REST: health, server and model metadata, readiness, infer.

Errors are `{"error": "..."}`: 400 naming the tensor or field, 404 for a model or version
this server does not have, 503 for a model not ready yet.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.serving.auth import Resource, ServingAuth, guarded, oip_body
from ledgerflow.services.serving.http import json_response, request_id
from ledgerflow.services.serving.oip import output_tensors, parse_rest_inputs
from ledgerflow.services.serving.oip_binary import HEADER_LENGTH, infer_request, infer_response
from ledgerflow.services.serving.repository import ModelRepository, ServedModel
from ledgerflow.services.serving.scoring import ModelRequest

SERVER_NAME = "ledgerflow"
PROTOCOL_VERSION = "2"
EXTENSIONS: list[str] = ["binary_tensor_data"]


def model_metadata(served: ServedModel) -> dict[str, Any]:
    p = served.predictor
    return {
        "name": served.name,
        "versions": [served.version],
        "platform": p.platform,
        "inputs": [m.to_dict() for m in p.inputs],
        "outputs": [m.to_dict() for m in p.outputs],
    }


def _error(message: str, status: int, rid: str | None = None) -> Response:
    return json_response({"error": message}, status, rid)


def oip_routes(
    repository: ModelRepository, server_version: str, auth: ServingAuth | None = None
) -> list[Route]:
    """With `auth` requiring it, a model's metadata and inference need READ on its
    resource; health and readiness answer anyone."""

    def lookup(request: Request) -> ServedModel:
        return repository.get(request.path_params["model"], request.path_params.get("version"))

    def resource(request: Request) -> Resource | None:
        try:
            return lookup(request).resource
        except NotFound:
            return None  # answered 404 by the route

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        ok = repository.ready
        return json_response({"ready": ok}, 200 if ok else 503)

    async def server_metadata(request: Request) -> Response:
        return json_response(
            {"name": SERVER_NAME, "version": server_version, "extensions": EXTENSIONS}
        )

    async def metadata(request: Request) -> Response:
        try:
            return json_response(model_metadata(lookup(request)))
        except NotFound as e:
            return _error(e.message, 404)

    async def model_ready(request: Request) -> Response:
        try:
            served = lookup(request)
        except NotFound as e:
            return _error(e.message, 404)
        return json_response(
            {"name": served.name, "ready": served.ready}, 200 if served.ready else 503
        )

    async def infer(request: Request) -> Response:
        rid = request_id(request)
        try:
            served = lookup(request)
        except NotFound as e:
            return _error(e.message, 404, rid)
        if not served.ready:
            return _error(f"model {served.name!r} is still loading", 503, rid)
        try:
            doc = infer_request(await request.body(), request.headers.get(HEADER_LENGTH))
            tensors, params, wanted = parse_rest_inputs(doc)
            rid = str(doc.get("id") or rid)
        except InvalidInput as e:
            served.metrics.observe_rejected("oip_rest")
            return _error(e.message, 400, rid)
        data = served.predictor.assemble({t.name: t.array for t in tensors})
        try:
            predictions = await served.predict(
                ModelRequest(data, served.predictor.model_params(params)), "oip_rest"
            )
            outputs = output_tensors(
                predictions, [m.name for m in served.predictor.outputs], wanted
            )
        except InvalidInput as e:
            return _error(e.message, 400, rid)
        head = {
            "model_name": served.name,
            "model_version": served.version,
            "id": rid,
            "parameters": {},
        }
        return infer_response(head, outputs, doc, rid)

    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
    ]
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [
            Route(
                prefix,
                guarded(auth, metadata, resource=resource, body=oip_body),
                methods=["GET"],
            ),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(
                prefix + "/infer",
                guarded(auth, infer, resource=resource, body=oip_body),
                methods=["POST"],
            ),
        ]
    return routes
