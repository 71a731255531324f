"""The Open Inference Protocol `inference.GRPCInferenceService` over a ModelRepository, served
by `grpc_front` on the server's event loop (grpcio's own server before; the servicer keeps
grpc's method signatures and status codes).

Status codes: INVALID_ARGUMENT for input the model cannot take (the message names the tensor),
NOT_FOUND for a model or version not served here, UNAVAILABLE for one still warming. Where
inference needs an identity (`ledgerflow serve --auth`), `ModelInfer` and `ModelMetadata`
need `authorization` metadata (UNAUTHENTICATED without) and READ on what is served
(PERMISSION_DENIED); liveness and readiness answer anyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from ledgerflow.events.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.serving.auth import AUTH_METADATA, Resource, ServingAuth
from ledgerflow.services.serving.grpc_codec import decode_inputs, encode_response, parameters
from ledgerflow.services.serving.http import server_version
from ledgerflow.services.serving.oip import output_tensors
from ledgerflow.services.serving.oip_routes import SERVER_NAME, model_metadata
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.repository import ModelRepository, ServedModel
from ledgerflow.services.serving.request_ids import new_request_id
from ledgerflow.services.serving.scoring import ModelRequest
from ledgerflow.services.tls import Tls

if TYPE_CHECKING:
    from ledgerflow.services.serving.grpc_front import GrpcFront


class InferenceServicer:
    """Implements the six OIP RPCs, with grpc.aio's servicer signatures (`grpc_front` serves them;
    `add_GRPCInferenceServiceServicer_to_server` would register them with grpcio's server)."""

    def __init__(self, repository: ModelRepository, auth: ServingAuth | None = None) -> None:
        self.repository = repository
        self.version = server_version()
        self.auth = auth if auth is not None and auth.inference else None

    async def _caller(self, context: Any) -> Principal | None:
        """Who is calling, where inference needs an identity (None where it does not)."""
        if self.auth is None:
            return None
        metadata = context.invocation_metadata() or ()
        given = next((str(v) for k, v in metadata if k == AUTH_METADATA), None)
        try:
            return await self.auth.caller(given)
        except Unauthenticated as e:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, e.message)
            raise  # unreachable: abort raises
        except RateLimited as e:  # too many failed sign-ins from this name
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, e.message)
            raise

    async def _require(
        self, caller: Principal | None, resource: Resource | None, context: Any
    ) -> None:
        if self.auth is None or caller is None:
            return
        try:
            self.auth.require(caller, resource, Level.READ)
        except PermissionDenied as e:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, e.message)

    async def _served(self, name: str, version: str, context: Any) -> ServedModel:
        try:
            return self.repository.get(name, version or None)
        except NotFound as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, e.message)
            raise  # unreachable: abort raises

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.repository.ready)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        served = await self._served(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=served.ready)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=self.version, extensions=[])

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        caller = await self._caller(context)
        served = await self._served(request.name, request.version, context)
        await self._require(caller, served.resource, context)
        meta = model_metadata(served)
        response = pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"]
        )
        for field in ("inputs", "outputs"):
            for t in meta[field]:
                getattr(response, field).add(
                    name=t["name"], datatype=t["datatype"], shape=t["shape"]
                )
        return response

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        caller = await self._caller(context)
        served = await self._served(request.model_name, request.model_version, context)
        await self._require(caller, served.resource, context)
        if not served.ready:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"model {served.name!r} is still loading"
            )
        rid = request.id or new_request_id()
        try:
            tensors = decode_inputs(request)
            params = served.predictor.model_params(parameters(request.parameters))
        except InvalidInput as e:
            served.metrics.observe_rejected("grpc")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
        data = served.predictor.assemble({t.name: t.array for t in tensors})
        wanted = [o.name for o in request.outputs] or None
        try:
            predictions = await served.predict(ModelRequest(data, params), "grpc")
            outputs = output_tensors(
                predictions, [m.name for m in served.predictor.outputs], wanted
            )
        except InvalidInput as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
        return encode_response(
            served.name, served.version, rid, outputs, raw=bool(request.raw_input_contents)
        )


async def start_grpc_server(
    repository: ModelRepository,
    host: str,
    port: int,
    *,
    servicer: InferenceServicer | None = None,
    auth: ServingAuth | None = None,
    tls: Tls | None = None,
) -> GrpcFront:
    """A listening gRPC front on `host:port` (0: any free port; read `.port`; `stop(grace)` it),
    on this event loop; `servicer` replaces the plain one (a deployment replica's routes
    deployments)."""
    from ledgerflow.services.serving.grpc_front import start_front

    return await start_front(servicer or InferenceServicer(repository, auth), host, port, tls=tls)
