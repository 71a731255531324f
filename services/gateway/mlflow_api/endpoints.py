"""How an MLflow endpoint is declared and served.

MLflow's clients send a GET's fields as query parameters (a list as repeated keys) and
every other method's, DELETE included, as a JSON body; they read `{"error_code",
"message"}` errors with MLflow's status for each code. An endpoint here is a plain
function of a `Call` (who asks, the backend, the fields) answering a JSON-able dict; it
is served under `/api/2.0/mlflow/...` and `/ajax-api/2.0/mlflow/...` (the prefixes
MLflow's server and UI use), and runs off the event loop.

Every endpoint says what the caller needs (`needs`, shown by the route walk of the auth
tests) and checks it itself with `Call.check` / `Call.execute`, because MLflow names the
resource in the body."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TypeVar, get_args, get_origin

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool

from ledgerflow.events.commands import Command, Need
from ledgerflow.events.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway import denials
from ledgerflow.services.gateway.auth import check, check_command, principal_of
from ledgerflow.services.gateway.command_registry import Executor
from ledgerflow.services.gateway.deps import Reads, reads_of
from ledgerflow.services.gateway.limits import TooLarge
from ledgerflow.services.gateway.route_table import Fixed, FixedPaths, Gated

log = logging.getLogger("ledgerflow.gateway.mlflow")

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[["Call"], Mapping[str, Any] | Response]


class NotImplementedHere(LedgerflowError):
    """An MLflow call Ledgerflow does not serve: answered 501, which MLflow's client
    reports as such (and for some calls falls back from), never a wrong answer."""

    code = "NOT_IMPLEMENTED"


class Message(BaseModel):
    """An MLflow request message: unknown fields are ignored (clients send both `run_id`
    and `run_uuid`, and newer clients add fields)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# errors ---------------------------------------------------------------------------------

_STATUS: tuple[tuple[type[LedgerflowError], str | None, int], ...] = (
    (InvalidInput, None, 400),
    (AlreadyExists, None, 400),  # MLflow answers RESOURCE_ALREADY_EXISTS with 400
    # a changed param, logging to a deleted run: MLflow's server names these
    # INVALID_PARAMETER_VALUE (its INVALID_STATE means a 500, which its client retries)
    (Conflict, "INVALID_PARAMETER_VALUE", 400),
    (Unauthenticated, None, 401),
    (PermissionDenied, None, 403),
    (NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (TooLarge, None, 413),
    (RateLimited, None, 429),
    (NotImplementedHere, None, 501),
    (Timeout, None, 504),
    (Unavailable, None, 503),
)


def error_response(error: LedgerflowError) -> Response:
    """`error` as MLflow's server answers: its code, message and status."""
    code, status = error.code, 500
    for cls, named, http in _STATUS:
        if isinstance(error, cls):
            code, status = named or error.code, http
            break
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return json_response({"error_code": code, "message": error.message}, status, headers)


def json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """JSON with NaN and infinities as protobuf's JSON writes them ("NaN", "Infinity")."""
    try:  # most answers hold none: encoded without walking them first
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(body), separators=(",", ":"), allow_nan=False)
    return Response(text, status, headers=dict(headers or {}), media_type="application/json")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# fields ---------------------------------------------------------------------------------


async def read_fields(request: Request) -> dict[str, Any]:
    """A GET's query parameters (repeated keys as lists), else the JSON body ({} if none)."""
    if request.method in ("GET", "HEAD"):
        fields: dict[str, Any] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            fields[key] = values if len(values) > 1 else values[0]
        return fields
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise InvalidInput(f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) in (list, tuple, Sequence):
        return True
    return any(_is_list(a) for a in get_args(annotation) if a is not type(None))


def parse(model: type[M], fields: Mapping[str, Any], *, from_query: bool = False) -> M:
    """`fields` as `model`; a missing or bad field is INVALID_PARAMETER_VALUE naming it."""
    data = dict(fields)
    if from_query:  # one value of a repeated key arrives as a string
        for name, info in model.model_fields.items():
            key = info.alias or name
            if key in data and isinstance(data[key], str) and _is_list(info.annotation):
                data[key] = [data[key]]
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise invalid(e) from None


def invalid(error: ValidationError) -> InvalidInput:
    """A pydantic error as MLflow words it, naming the first bad field."""
    first = error.errors()[0]
    where = ".".join(str(x) for x in first.get("loc", ()))
    if first.get("type") == "missing":
        message = f"Missing value for required parameter '{where}'"
    else:
        message = f"Invalid value for parameter '{where}': {first.get('msg', 'invalid')}"
    return InvalidInput(message, field=where or None)


def offset_of(page_token: str | None) -> int:
    """Where a page starts, from a token `token_of` made (0 without one)."""
    if not page_token:
        return 0
    try:
        text = base64.urlsafe_b64decode(page_token.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    if not (text.isascii() and text.isdigit() and len(text) <= 18):  # int() takes "-1", "1_0"
        raise InvalidInput(f"invalid page_token {page_token[:40]!r}", field="page_token")
    return int(text)


def token_of(offset: int) -> str:
    """The page token of a page starting at `offset`, for answers paged in memory."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


# a call ---------------------------------------------------------------------------------


@dataclass
class Call:
    """One request to an MLflow endpoint: who asks, the backend, the request's fields."""

    request: Request
    backend: Backend
    principal: Principal
    fields: Mapping[str, Any]
    _refreshed: bool = field(default=False, init=False, repr=False)

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def auth(self) -> bool:
        return self.backend.settings.auth

    def parse(self, model: type[M]) -> M:
        return parse(model, self.fields, from_query=self.request.method in ("GET", "HEAD"))

    def fresh(self) -> Backend:
        """The backend with its views brought up to the head of the log, for reads: once
        a call (a command the call commits waits until its own events are projected)."""
        if not self._refreshed:
            self.backend.refresh()
            self._refreshed = True
        return self.backend

    def reads(self) -> Reads:
        """`fresh()`'s reads of runs, model versions and aliases, through the gateway's
        read cache when it has one."""
        return reads_of(self.request.app.state, self.fresh())

    def check(self, need: Need, values: object = None, **fields: str) -> None:
        """PermissionDenied unless the caller holds `need` on the resource named in
        `values` (a message or command) or in `fields`."""
        given = SimpleNamespace(**fields) if values is None else values
        check(self.backend, self.principal, need, given)

    def execute(self, command: Command[Any], service: Executor) -> Any:
        """`command` checked against the caller as the native route checks it, then run."""
        need = command.NEEDS
        if need is None:
            raise TypeError(f"{type(command).__name__} declares no NEEDS")
        check_command(self.backend, self.principal, need, command)
        return service.execute(command, actor=self.actor)


# declaring endpoints --------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    needs: str


@dataclass
class Endpoints:
    """The endpoints of one family, to be served under MLflow's prefixes."""

    tag: str
    declared: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, *, needs: str) -> Callable[[Handler], Handler]:
        """Declare `handler` for `method path` (path under the prefix, e.g. /runs/get);
        `needs` says what the caller needs when auth is on."""

        def declare(handler: Handler) -> Handler:
            self.declared.append(Endpoint(method, path, handler, needs))
            return handler

        return declare

    def get(self, path: str, *, needs: str) -> Callable[[Handler], Handler]:
        return self.route("GET", path, needs=needs)

    def post(self, path: str, *, needs: str) -> Callable[[Handler], Handler]:
        return self.route("POST", path, needs=needs)

    def serve_on(self, fixed: FixedPaths, prefixes: Sequence[str] = PREFIXES) -> APIRouter:
        """The family's endpoints under each prefix: those at fixed paths (most of
        MLflow's API) into the `fixed` table, the others (with path parameters) as the
        routes of the router returned, each prefix's behind a gate of the paths' first
        segments (`/api/2.0/mlflow/logged-models`...): a request for another family's
        path is turned away at once instead of tried route by route."""
        router = APIRouter(tags=[self.tag])
        routed = [e for e in self.declared if "{" in e.path]
        for prefix in prefixes:
            for e in self.declared:
                if "{" not in e.path:
                    fixed.add(Fixed(e.method, prefix + e.path, serve(e.handler, e.needs)))
            if not routed:
                continue
            heads = {f"{prefix}/{e.path.strip('/').split('/')[0]}" for e in routed}
            gated = Gated(tuple(sorted(heads)), tags=[self.tag])
            for e in routed:
                gated.add_api_route(
                    prefix + e.path,
                    serve(e.handler, e.needs),
                    methods=[e.method],
                    name=f"mlflow{prefix.split('/')[1]}:{e.method} {e.path}",
                    include_in_schema=False,
                )
            router.include_router(gated)
        return router


def serve(handler: Handler, needs: str) -> Callable[..., Any]:
    """A FastAPI endpoint running `handler` off the event loop, answering MLflow's JSON.
    It takes the request alone and finds the backend and the caller itself, so FastAPI
    solves no dependencies per call (with the table lookup of `FixedPaths`, a call's
    framework cost fell from ~0.4 to ~0.2 ms of CPU). `needs` says how the handler checks
    the caller (the route guard reads it, as it reads a `checked(...)` dependency)."""

    async def endpoint(request: Request) -> Response:
        backend: Backend = request.app.state.backend
        principal = principal_of(request)
        try:
            fields = await read_fields(request)
            answer = await run_in_threadpool(handler, Call(request, backend, principal, fields))
        except ValidationError as e:  # a record built from the fields refused them
            return error_response(invalid(e))
        except LedgerflowError as e:
            if isinstance(e, PermissionDenied) and backend.settings.auth:
                await run_in_threadpool(denials.forbidden, request, e)
            if isinstance(e, Unavailable | Timeout):
                log.warning("mlflow api: %s: %s", type(e).__name__, e.message)
            return error_response(e)
        if isinstance(answer, Response):
            return answer
        return json_response(answer)

    endpoint.__name__ = getattr(handler, "__name__", "mlflow_endpoint")
    endpoint.__ledgerflow_needs__ = needs  # type: ignore[attr-defined]
    return endpoint
