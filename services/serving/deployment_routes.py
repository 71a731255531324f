"""REST routes of a deployment replica.

- `POST /deployments/{name}/invocations`: MLflow's scoring protocol, routed to a variant.
  The sticky key comes from the deployment's key header (or its key field of a JSON
  body); `X-Ledgerflow-Variant` forces a variant for debugging. The answer says who
  served it in the `X-Ledgerflow-Variant` header and carries `X-Request-Id`, the id that
  feedback refers to.
- `POST /deployments/{name}/infer`: the same routing with an Open Inference Protocol v2
  request body (JSON, or with the binary tensor data extension); the answer's
  `model_version` is the variant's model version and its `parameters.variant` the variant.
- `POST /deployments/{name}/feedback`: `{"request_id", "value" | "converted", "metric",
  "kind"}` joined here to the variant that served the request when this replica did.
- `POST /deployments/{name}/v1/models/{name}:predict`: the same routing with a TensorFlow
  Serving REST body (`instances` or `inputs`), answered as TF Serving answers it
  (`ledgerflow.services.serving.tfserving`); no `/versions/` or `/labels/`, since the
  deployment's traffic picks the version.
- `GET /deployments/{name}/v1/models/{name}[/versions/N|/labels/L]` and `.../metadata`: TF
  Serving's status and metadata, as a model server answers them for its models, over the
  deployment's variants: the status of every variant's version (or of the one asked for),
  the metadata of the highest version asked for (TF Serving's latest). A label is the
  variants' registered model's alias as it is now.
- `GET /deployments/{name}/ready`: 200 once every variant with traffic is warmed, else 503.

With auth (`ledgerflow.services.serving.auth`): invocations, infer and the TF Serving
routes need READ on the deployment where inference needs an identity, feedback always
needs EDIT on it and is recorded as the caller's; readiness answers anyone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound, Unavailable
from ledgerflow.events.permissions import Level
from ledgerflow.services.deployer.routing import FORCE_HEADER
from ledgerflow.services.deployments import checks
from ledgerflow.services.deployments.state import Deployment
from ledgerflow.services.serving import _json
from ledgerflow.services.serving import tfserving as tf
from ledgerflow.services.serving.auth import (
    Resource,
    ServingAuth,
    caller_of,
    guarded,
    mlflow_body,
    oip_body,
)
from ledgerflow.services.serving.deployment import Answer, DeploymentHost, served_name
from ledgerflow.services.serving.http import REQUEST_ID, json_response, request_id
from ledgerflow.services.serving.oip import output_tensors, parse_rest_inputs
from ledgerflow.services.serving.oip_binary import HEADER_LENGTH, infer_request, infer_response
from ledgerflow.services.serving.repository import ServedModel
from ledgerflow.services.serving.scoring import (
    ModelRequest,
    UnsupportedContentType,
    parse_invocation,
    predictions_body,
)
from ledgerflow.services.serving.tfserving_routes import (
    check_label,
    error,
    example_verb,
    malformed,
)

VARIANT_HEADER = FORCE_HEADER
MLFLOW, OIP, TFSERVING = "rest", "oip_rest", "tfserving"
"""The protocols a deployment answers, as its metrics label them."""


def _error(e: LedgerflowError, rid: str, protocol: str) -> Response:
    status = 404 if isinstance(e, NotFound) else 503 if isinstance(e, Unavailable) else 400
    if isinstance(e, UnsupportedContentType):
        status = 415
    if protocol != MLFLOW:
        return json_response({"error": e.message}, status, rid)
    codes = {404: "RESOURCE_DOES_NOT_EXIST", 503: "TEMPORARILY_UNAVAILABLE"}
    return json_response(
        {"error_code": codes.get(status, "BAD_REQUEST"), "message": e.message}, status, rid
    )


def _key(
    request: Request, header: str, field: str | None, body: bytes, doc: Any = None
) -> str | None:
    """The sticky key: the header, else `field` of the JSON body (`doc` when the caller has
    already read it, as an OIP request with binary tensors must be)."""
    key = request.headers.get(header)
    if key or field is None:
        return key or None
    if doc is None:
        if "json" not in (request.headers.get("content-type") or ""):
            return None
        try:
            doc = _json.loads(body)
        except (_json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return None  # the parser names the problem
    value = doc.get(field) if isinstance(doc, dict) else None
    return None if value is None else str(value)


def _deployment(request: Request) -> Resource:
    return "deployment", request.path_params["name"]


def deployment_routes(host: DeploymentHost, auth: ServingAuth | None = None) -> list[Route]:
    async def route_and_answer(
        request: Request, protocol: str
    ) -> tuple[Answer, Any, str] | Response:
        rid = request_id(request)
        name = request.path_params["name"]
        body = await request.body()
        try:
            dep = host.deployment(name)
            doc = None
            if protocol == OIP:  # JSON, or a JSON header and binary tensors
                doc = infer_request(body, request.headers.get(HEADER_LENGTH))
            key = _key(request, dep.key_header, dep.key_field, body, doc)
            chosen = host.choose(
                name, key=key, request_id=rid, forced=request.headers.get(FORCE_HEADER)
            )
            schema = host.schema_of(name, chosen.variant)
            if protocol == TFSERVING:
                served = host.repository.get(served_name(name, chosen.variant))
                predict = tf.parse_predict(body, served.predictor)
                parsed = predict.request
                extra: Any = (served, predict.row_format)
            elif protocol == OIP:
                tensors, params, wanted = parse_rest_inputs(doc)
                served = host.repository.get(served_name(name, chosen.variant))
                data = served.predictor.assemble({t.name: t.array for t in tensors})
                parsed = ModelRequest(data, served.predictor.model_params(params))
                extra = (served, wanted, doc)
            else:
                parsed = parse_invocation(body, request.headers.get("content-type"), schema)
                extra = None
            answer = await host.invoke(name, chosen, parsed, rid, protocol)
        except (_json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
            message = f"the body is not valid JSON: {e}"
            return _error(InvalidInput(message, field="body"), rid, protocol)
        except LedgerflowError as e:
            return _error(e, rid, protocol)
        return answer, extra, rid

    async def invocations(request: Request) -> Response:
        got = await route_and_answer(request, MLFLOW)
        if isinstance(got, Response):
            return got
        answer, _, rid = got
        response = Response(predictions_body(answer.predictions), media_type="application/json")
        response.headers[REQUEST_ID] = rid
        response.headers[VARIANT_HEADER] = answer.variant
        return response

    async def infer(request: Request) -> Response:
        got = await route_and_answer(request, OIP)
        if isinstance(got, Response):
            return got
        answer, (served, wanted, doc), rid = got
        try:
            outputs = output_tensors(
                answer.predictions, [m.name for m in served.predictor.outputs], wanted
            )
        except InvalidInput as e:
            return _error(e, rid, OIP)
        head = {
            "model_name": request.path_params["name"],
            "model_version": served.version,
            "id": rid,
            "parameters": {"variant": answer.variant},
        }
        response = infer_response(head, outputs, doc, rid)
        response.headers[VARIANT_HEADER] = answer.variant
        return response

    async def feedback(request: Request) -> Response:
        name = request.path_params["name"]
        rid = request_id(request)
        try:
            state = host.deployment(name)
            payload = parse_feedback(state, _json.loads(await request.body()), host.served_by)
            caller = caller_of(request)
            event = Event.of(payload, actor=caller.actor if caller else "model-server")
            await asyncio.get_running_loop().run_in_executor(None, host.log.append, [event])
        except (_json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
            return _error(
                InvalidInput(f"the body is not valid JSON: {e}", field="body"), rid, MLFLOW
            )
        except LedgerflowError as e:
            return _error(e, rid, MLFLOW)
        return json_response(
            {"request_id": payload.request_id, "variant": payload.variant, "recorded": True}, 202
        )

    async def tf_predict(request: Request) -> Response:
        name = request.path_params["name"]
        path = tf.parse_path(request.path_params["rest"])
        if path is None or path.metadata or path.verb not in tf.VERBS:
            return malformed(request)
        if path.model != name:
            return error(
                f"Servable not found for request: {path.spec}; this is deployment {name!r}: "
                f"POST /deployments/{name}/v1/models/{name}:predict",
                404,
            )
        if path.version is not None or path.label is not None:
            return error(
                f"deployment {name!r} picks the version by its traffic split; "
                f"POST /deployments/{name}/v1/models/{name}:predict without "
                f"/{'versions' if path.version is not None else 'labels'}/",
                400,
            )
        if path.verb != "predict":
            return example_verb(path.verb or "", await request.body(), request_id(request))
        got = await route_and_answer(request, TFSERVING)
        if isinstance(got, Response):
            return got
        answer, (served, row_format), rid = got
        try:
            body = tf.predict_answer(
                answer.predictions, [m.name for m in served.predictor.outputs], row_format
            )
        except InvalidInput as e:
            return _error(e, rid, TFSERVING)
        response = json_response(body, 200, rid)
        response.headers[VARIANT_HEADER] = answer.variant
        return response

    async def tf_model(request: Request) -> Response:
        name = request.path_params["name"]
        path = tf.parse_path(request.path_params["rest"])
        if path is None or path.verb is not None:
            return malformed(request)
        if path.model != name:
            return error(
                f"Servable not found for request: {path.spec}; this is deployment {name!r}: "
                f"GET /deployments/{name}/v1/models/{name}",
                404,
            )
        try:
            variants = tf_variants(host, name, path)
        except LedgerflowError as e:
            return _error(e, request_id(request), TFSERVING)
        if not path.metadata:
            versions: dict[str, bool] = {}
            for spec, served in variants:
                ready = served is not None and served.ready
                versions[str(spec.version)] = versions.get(str(spec.version), False) or ready
            return json_response(tf.status(versions.items()))
        loaded = [s for _, s in variants if s is not None]
        if not loaded:
            return error(f"deployment {name!r}: {path.spec} is still loading", 503)
        served = max(loaded, key=lambda s: int(s.version) if s.version.isdigit() else 0)
        p = served.predictor
        return json_response(tf.metadata(name, served.version, p.inputs, p.outputs))

    async def ready(request: Request) -> Response:
        name = request.path_params["name"]
        ok = host.ready(name)
        return json_response({"name": name, "ready": ok}, 200 if ok else 503)

    def guard(endpoint: Any, **how: Any) -> Any:
        return guarded(auth, endpoint, resource=_deployment, **how)

    return [
        Route(
            "/deployments/{name}/invocations",
            guard(invocations, body=mlflow_body),
            methods=["POST"],
        ),
        Route("/deployments/{name}/infer", guard(infer, body=oip_body), methods=["POST"]),
        Route(
            "/deployments/{name}/v1/models/{rest:path}",
            guard(tf_predict, body=oip_body),
            methods=["POST"],
        ),
        Route(
            "/deployments/{name}/v1/models/{rest:path}",
            guard(tf_model, body=oip_body),
            methods=["GET"],
        ),
        Route(
            "/deployments/{name}/feedback",
            guard(feedback, level=Level.EDIT, feedback=True),
            methods=["POST"],
        ),
        Route("/deployments/{name}/ready", ready, methods=["GET"]),
    ]


def tf_variants(
    host: DeploymentHost, name: str, path: tf.ModelPath
) -> list[tuple[d.VariantSpec, ServedModel | None]]:
    """The variants of deployment `name` that a TF Serving model path names: all of them,
    those at its version, or those at the version its label (an alias of their registered
    model) points at now; errors as a model server's for its models."""
    variants = host.variant_models(name)
    if path.version is not None:
        chosen = [(s, m) for s, m in variants if str(s.version) == path.version]
        if not chosen:
            versions = sorted({str(s.version) for s, _ in variants})
            raise NotFound(
                f"Servable not found for request: {path.spec}; deployment {name!r} serves "
                f"version {', '.join(versions)}",
                kind="model_version",
                key=f"{name}/{path.version}",
            )
        return chosen
    if path.label is not None:
        loaded = [m for _, m in variants if m is not None]
        if not loaded:
            raise Unavailable(f"deployment {name!r}: its variants are still loading")
        labelled = check_label(path, loaded)
        return [(s, m) for s, m in variants if m is not None and m.version == labelled.version
                and m.registered == labelled.registered]  # fmt: skip
    return variants


def parse_feedback(state: Deployment, doc: Any, served_by: Any) -> d.FeedbackRecorded:
    """A feedback body as a `feedback.recorded` payload, joined to the variant that served
    the request when this replica remembers it; errors name the field."""
    if not isinstance(doc, dict):
        raise InvalidInput("the feedback body must be a JSON object", field="body")
    if ("value" in doc) == ("converted" in doc):
        raise InvalidInput("give the outcome as value or as converted (one of them)", field="value")
    value = doc["converted"] if "converted" in doc else doc["value"]
    rid = doc.get("request_id")
    variant = doc.get("variant")
    if variant is None and isinstance(rid, str):
        variant = served_by(state.name, rid)
    return checks.feedback(
        state,
        rid,
        value,
        doc.get("metric", "conversion"),
        doc.get("kind") or "conversion",
        variant,
    )
