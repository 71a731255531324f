"""TensorFlow Serving's REST API (KServe V1) over the served models:

- `POST /v1/models/NAME[/versions/N|/labels/L]:predict`, rows (`instances`) answered
  `predictions`, columns (`inputs`) answered `outputs`;
- `:classify` and `:regress` answered 400 as TF Serving answers a model with only a
  predict signature (every model here);
- `GET /v1/models/NAME[/versions/N|/labels/L]` (status) and `.../metadata` (signature).

Labels are the registry's aliases as they are now (`ledgerflow.services.serving.labels`):
an alias moved to another version after loading names that version, which this server
does not serve (404). Errors are `{"error": "..."}`: 404 for an unknown model, version or
URL, 400 for bad input or an unknown label (TF Serving's INVALID_ARGUMENT), 503 while the
model is still loading.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.serving import tfserving as tf
from ledgerflow.services.serving.auth import Endpoint, Resource, ServingAuth, guarded, oip_body
from ledgerflow.services.serving.http import json_response, request_id
from ledgerflow.services.serving.repository import ModelRepository, ServedModel

PROTOCOL = "tfserving"


def error(message: str, status: int, rid: str | None = None) -> Response:
    return json_response({"error": message}, status, rid)


def malformed(request: Request) -> Response:
    return error(f"Malformed request: {request.method} {request.url.path}", 404)


def find(repository: ModelRepository, path: tf.ModelPath) -> ServedModel:
    """The served model `path` names; NotFound (or InvalidInput for an unknown label) with
    TF Serving's words and what this server has instead."""
    try:
        served = repository.get(path.model)
    except NotFound:
        names = sorted(m.name for m in repository.models)
        raise NotFound(
            f"Servable not found for request: {path.spec}; this server has {names}",
            kind="model",
            key=path.model,
        ) from None
    if path.version is not None and path.version != served.version:
        raise NotFound(
            f"Servable not found for request: {path.spec}; model {served.name!r} is served "
            f"at version {served.version}",
            kind="model_version",
            key=f"{path.model}/{path.version}",
        )
    if path.label is not None:
        check_label(path, [served])
    return served


def check_label(path: tf.ModelPath, served: list[ServedModel]) -> ServedModel:
    """The one of `served` that `path.label` names now (labels follow the registry's
    aliases); NotFound where the label names a version none of them is, InvalidInput (TF
    Serving's INVALID_ARGUMENT) where no model has the label."""
    label = path.label or ""
    elsewhere: list[str] = []
    for s in served:
        version = s.label_version(label)
        if version == s.version:
            return s
        if version is not None:
            elsewhere.append(f"version {version} of {s.registered or s.name!r}")
    versions = sorted({s.version for s in served})
    if elsewhere:
        raise NotFound(
            f"Servable not found for request: {path.spec}; the label {label!r} now points at "
            f"{' and '.join(sorted(set(elsewhere)))}, which this server does not serve (it "
            f"serves version {', '.join(versions)})",
            kind="model_version",
            key=f"{path.model}@{label}",
        )
    known = sorted({name for s in served for name in s.label_versions()})
    raise InvalidInput(
        f"Unrecognized servable version label: {label}; model {path.model!r} (version "
        f"{', '.join(versions)}) has the labels {known}",
        field="label",
    )


def tfserving_routes(repository: ModelRepository, auth: ServingAuth | None = None) -> list[Route]:
    """With `auth` requiring it, every route (status and metadata too) needs READ on the
    model's resource."""

    def resource(request: Request) -> Resource | None:
        """The served model's, whatever version or label is asked for: what a label points
        at now is the registry's to show only to those who may READ the model."""
        path = tf.parse_path(request.path_params["rest"])
        try:
            return None if path is None else repository.get(path.model).resource
        except NotFound:
            return None  # answered by the route

    async def get(request: Request) -> Response:
        path = tf.parse_path(request.path_params["rest"])
        if path is None or path.verb is not None:
            return malformed(request)
        try:
            served = find(repository, path)
        except NotFound as e:
            return error(e.message, 404)
        except InvalidInput as e:
            return error(e.message, 400)
        if path.metadata:
            p = served.predictor
            return json_response(tf.metadata(served.name, served.version, p.inputs, p.outputs))
        return json_response(tf.status([(served.version, served.ready)]))

    async def post(request: Request) -> Response:
        rid = request_id(request)
        path = tf.parse_path(request.path_params["rest"])
        if path is None or path.metadata or path.verb not in tf.VERBS:
            return malformed(request)
        try:
            served = find(repository, path)
        except NotFound as e:
            return error(e.message, 404, rid)
        except InvalidInput as e:
            return error(e.message, 400, rid)
        body = await request.body()
        if path.verb != "predict":
            return example_verb(path.verb or "", body, rid)
        if not served.ready:
            return error(f"model {served.name!r} is still loading", 503, rid)
        try:
            parsed = tf.parse_predict(body, served.predictor)
        except InvalidInput as e:
            served.metrics.observe_rejected(PROTOCOL)
            return error(e.message, 400, rid)
        try:
            predictions = await served.predict(parsed.request, PROTOCOL)
            answer = tf.predict_answer(
                predictions, [m.name for m in served.predictor.outputs], parsed.row_format
            )
        except InvalidInput as e:
            return error(e.message, 400, rid)
        return json_response(answer, 200, rid)

    def guard(endpoint: Endpoint) -> Endpoint:
        return guarded(auth, endpoint, resource=resource, body=oip_body)

    return [
        Route("/v1/models/{rest:path}", guard(get), methods=["GET"]),
        Route("/v1/models/{rest:path}", guard(post), methods=["POST"]),
    ]


def example_verb(verb: str, body: bytes, rid: str) -> Response:
    """`:classify`/`:regress`: the body checked as TF Serving checks it, then refused as it
    refuses a model whose only signature is a predict one."""
    try:
        doc = tf.parse_body(body)
        tf.check_signature(doc.get("signature_name"))
        if not isinstance(doc.get("examples"), list):
            raise InvalidInput("'examples' must be a list of tf.Example objects", field="examples")
    except InvalidInput as e:
        return error(e.message, 400, rid)
    return error(tf.example_verb_error(verb), 400, rid)
