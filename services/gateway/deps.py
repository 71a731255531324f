"""What route handlers share: the backend behind the app and who is calling.

Reads of the views take `?as_of=` (docs/time-travel.md) through `FreshDep`: given, the
handler gets the backend as it was at that point (read-only, folded on demand), and the
answer names the position it was read at in the `X-Ledgerflow-As-Of` header. Any other
route given `as_of` refuses it rather than ignore it (a command would change the present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant

from ledgerflow.events.as_of import FORMS, PATTERN, read_only
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import ACTOR_HEADER, ActorDep, PrincipalDep
from ledgerflow.services.gateway.route_table import CATCH_ALL
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.registry_queries import RegistryQueries

if TYPE_CHECKING:
    from ledgerflow.services.gateway.cache import ReadCache

__all__ = [
    "ACTOR_HEADER",
    "AS_OF",
    "ActorDep",
    "BackendDep",
    "FreshDep",
    "LiveDep",
    "PrincipalDep",
    "Reads",
    "ReadsDep",
]

AS_OF = "as_of"
AS_OF_HEADER = "X-Ledgerflow-As-Of"
AS_OF_HELP = (
    f"read the views as they were at this point: {FORMS}; read-only, and permissions "
    "are checked as they are now"
)


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def _backend_dep(request: Request) -> Backend:
    """`async`, as every dependency that does not block: FastAPI runs a plain `def` one
    in the thread pool, a thread hop per dependency per request."""
    return _backend(request)


def _live_backend(request: Request) -> Backend:
    """The backend with its views first brought up to the head of the log, so a read sees
    events ingested without waiting (or appended by another process)."""
    backend = _backend(request)
    backend.refresh()
    return backend


def _views_backend(
    request: Request,
    response: Response,
    as_of: Annotated[
        str | None,
        Query(alias=AS_OF, description=AS_OF_HELP, json_schema_extra={"pattern": PATTERN}),
    ] = None,
) -> Backend:
    if as_of is None:
        return _live_backend(request)
    past = _backend(request).as_of(as_of)
    response.headers[AS_OF_HEADER] = past.checkpoint.encode() or "0"
    return past


@dataclass(frozen=True)
class Reads:
    """Where a read of a run, a model version or an alias comes from: the read cache when
    the app has one and the read is of the present, else the views (as of `as_of`)."""

    queries: Queries
    registry: RegistryQueries


def reads_of(app_state: object, backend: Backend) -> Reads:
    """`backend`'s reads, through the app's cache when `backend` is the live one (a past
    backend, `?as_of=`, is never cached)."""
    cache: ReadCache | None = getattr(app_state, "cache", None)
    if cache is not None and backend is getattr(app_state, "backend", None):
        return Reads(cache.queries(), cache.registry_queries())
    return Reads(backend.queries, backend.registry.queries)


def _reads(request: Request, backend: FreshDep) -> Reads:
    return reads_of(request.app.state, backend)


BackendDep = Annotated[Backend, Depends(_backend_dep)]
"""For commands: they read what they need and wait for their own events."""
FreshDep = Annotated[Backend, Depends(_views_backend)]
"""For reads of the views: up to the head of the log, or as of `?as_of=`."""
LiveDep = Annotated[Backend, Depends(_live_backend)]
ReadsDep = Annotated[Reads, Depends(_reads)]
"""For the hottest reads (a run, a model version, an alias): FreshDep's views, from the
read cache when there is one."""
"""For reads that are about today whatever the views said then: identities and
permissions, live traffic statistics."""


async def refuse_stray_as_of(request: Request) -> None:
    """An app-wide dependency: `as_of` on a route that does not read views at it is an
    error, never silently ignored."""
    if AS_OF not in request.query_params:
        return
    route = request.scope.get("route")
    if getattr(route, "path", None) == CATCH_ALL:  # no API route: the 404 or 405 says so
        return
    dependant = getattr(route, "dependant", None)
    if isinstance(dependant, Dependant) and _takes_as_of(dependant):
        return
    what = f"{request.method} {request.url.path}"
    if request.method in ("GET", "HEAD"):
        raise InvalidInput(f"{what} answers about now and takes no as_of", field=AS_OF)
    raise read_only(what)


def _takes_as_of(dependant: Dependant) -> bool:
    return any(p.alias == AS_OF for p in dependant.query_params) or any(
        _takes_as_of(d) for d in dependant.dependencies
    )
