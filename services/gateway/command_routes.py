"""REST routes made from command classes (see `ledgerflow.events.commands`), for the
domains the gateway offers (`ledgerflow.services.gateway.command_registry`).

For each command class with `HTTP` metadata, one route: its path parameters and query
fields come from the command's fields of the same names, and its JSON body is a model
derived from the command's remaining fields (same types, defaults and descriptions,
unknown fields refused), so a bad body is a 400 naming the field exactly as a
hand-written route's would be. The handler merges path, query and body into the
command, has the domain's service execute it as the calling actor, and answers with
the command's `ANSWER` and status.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Body as BodyParam
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from pydantic.fields import FieldInfo

from ledgerflow.events.commands import Command, Http
from ledgerflow.events.field_schemas import StrictNumbers
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import PrincipalDep, Requires, check_command, check_named
from ledgerflow.services.gateway.command_registry import Domain, Executor
from ledgerflow.services.gateway.deps import BackendDep

_RESERVED = frozenset({"body", "backend", "caller"})


class _BodyBase(StrictNumbers):
    """A command's body: an unknown field is an error naming it, not ignored; a number is
    not `true` or `false`."""

    model_config = ConfigDict(extra="forbid")


def operation_name(command: type[Command[Any]]) -> str:
    """`CreateDeployment` -> `create_deployment` (the route's name and operation id)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", command.__name__).lower()


def body_model(command: type[Command[Any]], fields: Iterable[str]) -> type[BaseModel]:
    """The command's body fields as a request model of their own."""
    defs: dict[str, Any] = {
        f: (command.model_fields[f].annotation, copy.copy(command.model_fields[f])) for f in fields
    }
    made: type[BaseModel] = create_model(
        f"{command.__name__}Body", __base__=_BodyBase, __doc__=command.__doc__, **defs
    )
    return made


_TEXT_KEYWORDS = ("enum", "pattern", "maxLength", "minLength")


def _path_schema(info: FieldInfo) -> dict[str, Any]:
    """What the command's field says of its text, for the path segment that carries it:
    a Literal's values, a name's pattern and length."""
    schema = TypeAdapter(Any if info.annotation is None else info.annotation).json_schema()
    if isinstance(info.json_schema_extra, dict):
        schema |= info.json_schema_extra
    return {k: schema[k] for k in _TEXT_KEYWORDS if k in schema}


def _parameters(command: type[Command[Any]], http: Http) -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    params = []
    for p in http.path_fields:
        info = command.model_fields[p]
        segment = PathParam(description=info.description, json_schema_extra=_path_schema(info))
        params.append(inspect.Parameter(p, kw, annotation=Annotated[str, segment]))
    for q in http.query:
        info = command.model_fields[q]
        default = inspect.Parameter.empty if info.is_required() else info.get_default()
        query = QueryParam(description=info.description)
        annotation = Annotated[info.annotation, query]  # type: ignore[name-defined]
        params.append(inspect.Parameter(q, kw, annotation=annotation, default=default))
    fields = http.body_fields(list(command.model_fields))
    if http.body_field is not None:
        info = command.model_fields[http.body_field]
        whole = Annotated[info.annotation, BodyParam()]  # type: ignore[name-defined]
        params.append(inspect.Parameter("body", kw, annotation=whole))
    elif fields:
        model = body_model(command, fields)
        if http.optional_body:
            params.append(inspect.Parameter("body", kw, annotation=model | None, default=None))
        else:
            params.append(inspect.Parameter("body", kw, annotation=model))
    params.append(inspect.Parameter("backend", kw, annotation=BackendDep))
    params.append(inspect.Parameter("caller", kw, annotation=PrincipalDep))
    return params


def add_command_route(
    router: APIRouter,
    command: type[Command[Any]],
    service: Callable[[Backend], Executor],
    *,
    tags: list[str],
) -> None:
    http = command.HTTP
    if http is None:
        return
    taken = _RESERVED & set(command.model_fields)
    if taken:
        raise TypeError(f"{command.__name__} has fields the gateway uses itself: {taken}")
    answer = command.ANSWER
    need = command.NEEDS
    if need is None:
        raise TypeError(f"{command.__name__} has a route but no NEEDS (docs/security.md)")
    read = {f for f in (need.field, need.kind[1:] if need.kind.startswith("@") else "") if f}
    in_path = read <= set(http.path_fields)
    """Checked before the body is read when the path names the resource; else after."""

    def endpoint(*, body: Any = None, backend: Backend, caller: Principal, **given: Any) -> Any:
        fields = dict(given)
        if http.body_field is not None:
            fields[http.body_field] = body
        elif isinstance(body, BaseModel):
            fields.update((k, getattr(body, k)) for k in type(body).model_fields)
        made = command.model_validate(fields)
        if in_path:  # its own resource was checked before the body was read
            check_named(backend, caller, need, made)
        else:
            check_command(backend, caller, need, made)
        result = service(backend).execute(made, actor=caller.actor)
        return answer.encode(result)

    endpoint.__ledgerflow_needs__ = need  # type: ignore[attr-defined]

    endpoint.__signature__ = inspect.Signature(_parameters(command, http))  # type: ignore[attr-defined]
    endpoint.__name__ = operation_name(command)
    router.add_api_route(
        http.path,
        endpoint,
        methods=[http.method],
        status_code=http.status,
        summary=http.summary,
        tags=list(tags),
        name=operation_name(command),
        response_model=answer.schema,
        dependencies=[Depends(Requires(need))] if in_path else None,
        description=f"Needs {need.describe()} when auth is on.",
    )


def command_router(domain: Domain) -> APIRouter:
    """One route per command of `domain` that has `HTTP` metadata."""
    router = APIRouter()
    for command in domain.offered():
        add_command_route(router, command, domain.service, tags=[domain.tag])
    return router
