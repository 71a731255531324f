"""Deployments over the Open Inference Protocol's gRPC service.

A replica's gRPC service answers `ModelInfer` for a deployment's name by routing it as
the REST routes do: the sticky key comes from the call's metadata (the deployment's key
header, lower-cased, as gRPC metadata keys are), `x-ledgerflow-variant` forces a
variant, and the answer names the variant in `parameters["variant"]` and in the
trailing metadata. Other model names fall through to the plain repository. Where
inference needs an identity, a deployment's `ModelInfer` needs READ on the deployment.
"""

from __future__ import annotations

from typing import Any

import grpc

from ledgerflow.events.errors import LedgerflowError, NotFound, Unavailable
from ledgerflow.services.deployer.routing import FORCE_HEADER
from ledgerflow.services.serving.auth import ServingAuth
from ledgerflow.services.serving.deployment import DeploymentHost, served_name
from ledgerflow.services.serving.grpc_codec import decode_inputs, encode_response, parameters
from ledgerflow.services.serving.grpc_service import InferenceServicer
from ledgerflow.services.serving.oip import output_tensors
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.request_ids import new_request_id
from ledgerflow.services.serving.scoring import ModelRequest
from ledgerflow.services.tls import Tls


def _status(e: LedgerflowError) -> grpc.StatusCode:
    if isinstance(e, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(e, Unavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INVALID_ARGUMENT


class DeploymentServicer(InferenceServicer):
    def __init__(self, host: DeploymentHost, auth: ServingAuth | None = None) -> None:
        super().__init__(host.repository, auth)
        self.host = host

    def _hosts(self, name: str) -> bool:
        return name in self.host.deployments and self.host.deployments[name].status != "deleted"

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.host.ready())

    async def ModelReady(self, request: Any, context: Any) -> Any:
        if self._hosts(request.name):
            return pb.ModelReadyResponse(ready=self.host.ready(request.name))
        return await super().ModelReady(request, context)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        if self._hosts(request.name):  # the baseline's, under the deployment's name
            dep = self.host.deployments[request.name]
            request = pb.ModelMetadataRequest(name=served_name(dep.name, dep.baseline))
            response = await super().ModelMetadata(request, context)
            response.name = dep.name
            return response
        return await super().ModelMetadata(request, context)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        name = request.model_name
        if not self._hosts(name):
            return await super().ModelInfer(request, context)
        caller = await self._caller(context)
        await self._require(caller, ("deployment", name), context)
        rid = request.id or new_request_id()
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        try:
            dep = self.host.deployment(name)
            route = self.host.choose(
                name,
                key=metadata.get(dep.key_header.lower()) or None,
                request_id=rid,
                forced=metadata.get(FORCE_HEADER.lower()),
            )
            served = self.host.repository.get(served_name(name, route.variant))
            tensors = decode_inputs(request)
            params = served.predictor.model_params(parameters(request.parameters))
            data = served.predictor.assemble({t.name: t.array for t in tensors})
            answer = await self.host.invoke(name, route, ModelRequest(data, params), rid, "grpc")
            outputs = output_tensors(
                answer.predictions,
                [m.name for m in served.predictor.outputs],
                [o.name for o in request.outputs] or None,
            )
        except LedgerflowError as e:
            await context.abort(_status(e), e.message)
            raise  # unreachable: abort raises
        response = encode_response(
            name, served.version, rid, outputs, raw=bool(request.raw_input_contents)
        )
        response.parameters["variant"].string_param = answer.variant
        context.set_trailing_metadata(((FORCE_HEADER.lower(), answer.variant),))
        return response


async def start_deployment_grpc(
    host: DeploymentHost,
    bind: str,
    port: int,
    auth: ServingAuth | None = None,
    *,
    tls: Tls | None = None,
) -> Any:
    """A listening gRPC front routing deployments (0: any free port; read `.port`)."""
    from ledgerflow.services.serving.grpc_service import start_grpc_server

    servicer = DeploymentServicer(host, auth)
    return await start_grpc_server(host.repository, bind, port, servicer=servicer, tls=tls)
