"""Who is calling the gateway, and whether they may (docs/security.md).

With auth off (the default), every caller is the local user: the actor is what
`X-Ledgerflow-Actor` says (or "anonymous"), and nothing is checked, as before.

With auth on (`LEDGERFLOW_AUTH=true`), a middleware authenticates every request under
`/api/` before anything else runs (no credentials: 401, before a body is even read),
and every route declares what the caller needs:

- a command route, its command's `NEEDS` (`ledgerflow.events.commands.Need`);
- a hand-written route, a `Requires(need)` dependency, or `Checked(why)` where the
  handler checks itself because the resource is named in the body or the answer is
  filtered by what the caller may read.

`guard_routes` refuses to build an app in which any `/api/` route declares nothing, so
a route added later without a check cannot ship. The actor recorded on events is the
authenticated principal's, never a header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ledgerflow.events.commands import Need, on
from ledgerflow.events.errors import LedgerflowError, Unauthenticated
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.limits import RateLimited, RateLimiter, Rates
from ledgerflow.services.gateway.route_table import api_routes
from ledgerflow.services.projector.readable import Readable

ACTOR_HEADER = "X-Ledgerflow-Actor"
PROTECTED_PREFIX = "/api/"
PROTECTED_PREFIXES = (PROTECTED_PREFIX, "/ajax-api/")
"""Where every request needs an identity: the API, and MLflow's UI-facing copy of it."""
INGEST_PATH = "/api/v1/events"


def _exists(backend: Backend, kind: str, key: str) -> bool:
    finders: dict[str, Callable[[str], object]] = {
        "experiment": backend.queries.find_experiment,
        "run": backend.queries.find_run_info,
        "model": backend.registry.queries.find_model,
        "deployment": backend.deployments.queries.find,
        "webhook": backend.webhooks.queries.find,
    }
    find = finders.get(kind)
    return find is not None and find(key) is not None


def check(backend: Backend, principal: Principal, need: Need, values: object) -> None:
    """Raise PermissionDenied unless `principal` holds `need`; `values` is the command (or
    the request's parameters) the need reads its resource from."""
    if not backend.settings.auth or principal.admin or need.scope == "anyone":
        return
    z = backend.authorizer
    if need.scope == "admin":
        z.require_admin(principal)
    elif need.scope == "self":
        named = getattr(values, need.field, None)
        if need.kind == "token":
            token = backend.auth.queries.token(str(named)) if named else None
            owner = token.user if token is not None else None
            z.require_self_or_admin(principal, owner or "", "revoke tokens")
        else:
            z.require_self_or_admin(principal, str(named or principal.user), "do this")
    else:
        kind, key = need.resource(values)  # type: ignore[arg-type]
        if need.or_new and not _exists(backend, kind, key):
            return
        z.require(principal, kind, key, need.level)


@dataclass(frozen=True)
class _Views:
    """The `Lookup` the needs of a command read the current state through."""

    backend: Backend

    def variant_model(self, deployment: str, variant: str) -> str | None:
        found = self.backend.deployments.queries.find(deployment)
        arms = () if found is None else found.variants
        return next((v.model for v in arms if v.name == variant), None)


def check_named(backend: Backend, principal: Principal, need: Need, command: object) -> None:
    """Raise PermissionDenied unless `principal` holds the level `need.also` asks on every
    other resource the command names (a deployment's variants' models...)."""
    if not need.also or not backend.settings.auth or principal.admin:
        return
    views = _Views(backend)
    for names in need.also:
        for key in dict.fromkeys(names.keys(command, views)):
            backend.authorizer.require(principal, names.kind, key, names.level)


def check_command(backend: Backend, principal: Principal, need: Need, command: object) -> None:
    """`need` on the command's own resource, then on the others its payload names."""
    check(backend, principal, need, command)
    check_named(backend, principal, need, command)


# the principal ------------------------------------------------------------------------


def local_principal(actor: str | None) -> Principal:
    """With auth off: the local user, acting as `actor` says ("anonymous" without)."""
    return Principal(actor or "anonymous", admin=True, method="local")


async def _principal(  # async: no thread hop for what does not block (deps.py)
    request: Request,
    actor: Annotated[
        str | None,
        Header(
            alias=ACTOR_HEADER,
            description="who is acting, recorded on the events (e.g. user:alice); "
            "ignored when auth is on: events carry the authenticated identity",
        ),
    ] = None,
) -> Principal:
    return principal_of(request, actor)


def principal_of(request: Request, actor: str | None = None) -> Principal:
    """Who is asking: the authentication middleware's finding, else (auth off) the local
    user acting as `actor` (by default the request's `X-Ledgerflow-Actor`)."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is not None:
        return found
    return local_principal(actor if actor is not None else request.headers.get(ACTOR_HEADER))


PrincipalDep = Annotated[Principal, Depends(_principal)]


async def _actor(principal: PrincipalDep) -> str:
    return principal.actor


ActorDep = Annotated[str, Depends(_actor)]


def install(app: FastAPI, backend: Backend, rates: Rates | None = None) -> None:
    """With auth on, authenticate every `/api/` request first (401 without a valid
    identity); the principal is then what `PrincipalDep` gives the routes. `rates`: the
    per-user buckets to count against (shared with the gRPC service of the process)."""
    if not backend.settings.auth:
        return
    rates = rates or Rates.of(backend.settings)
    app.state.ingest_limiter = rates.ingest
    app.add_middleware(Authenticate, backend=backend, writes=rates.writes)


class Authenticate:
    """ASGI middleware: the caller's identity for every request under a protected prefix
    (a plain middleware: no task or stream per request, as `BaseHTTPMiddleware` makes)."""

    def __init__(self, app: Any, backend: Backend, writes: RateLimiter) -> None:
        self.app = app
        self.backend = backend
        self.writes = writes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        from ledgerflow.services.gateway import denials
        from ledgerflow.services.gateway.errors import error_response

        request = Request(scope)
        try:
            principal = await run_in_threadpool(
                identify,
                self.backend,
                request.headers.get("authorization"),
                request.client.host if request.client is not None else None,
            )
        except Unauthenticated as e:
            await run_in_threadpool(denials.unauthenticated, request, e)  # auth.denied
            response: JSONResponse = error_response(e)
            response.headers["WWW-Authenticate"] = 'Basic realm="ledgerflow", Bearer'
            await response(scope, receive, send)
            return
        except LedgerflowError as e:  # the views could not be read: not a refusal
            await error_response(e)(scope, receive, send)
            return
        request.state.principal = principal
        if request.method not in ("GET", "HEAD") and scope["path"] != INGEST_PATH:
            try:
                self.writes.take(principal.user, what="writes")
            except RateLimited as e:
                await error_response(e)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def identify(backend: Backend, authorization: str | None, client: str | None = None) -> Principal:
    """Who the credentials say (off the event loop: a password check is an argon2 hash).
    Identities and grants are views: they are first brought up to the log, so a token or
    grant made through another gateway counts here at once (nothing to do where a
    projector service keeps the views, as on Kafka)."""
    backend.refresh()
    return backend.authenticator.authenticate(authorization, client)


def take_ingest(request: Request, principal: Principal, events: int) -> None:
    """With auth on, count `events` against the caller's ingest rate (429 beyond it)."""
    limiter: RateLimiter | None = getattr(request.app.state, "ingest_limiter", None)
    if limiter is not None and events:
        limiter.take(principal.user, events, what="ingested events")


# what a route needs -------------------------------------------------------------------


@dataclass(frozen=True)
class Requires:
    """A route dependency: the caller must hold `need`, read from the path and query
    parameters."""

    need: Need

    def __call__(self, request: Request, principal: PrincipalDep) -> Principal:
        values = {**request.query_params, **request.path_params}
        check(request.app.state.backend, principal, self.need, SimpleNamespace(**values))
        return principal


@dataclass(frozen=True)
class Checked:
    """A route dependency saying the handler checks the caller itself (the resource is in
    the body, or the answer is filtered to what the caller may read), and how."""

    how: str

    async def __call__(self, principal: PrincipalDep) -> Principal:
        return principal


def requires(kind: str, field: str, level: Level) -> Any:
    return Depends(Requires(on(kind, field, level)))


def checked(how: str) -> Any:
    return Depends(Checked(how))


def _declared(dependant: Dependant) -> bool:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Requires | Checked) or _declared(sub):
            return True
    return getattr(dependant.call, "__ledgerflow_needs__", None) is not None


def unguarded(app: FastAPI) -> list[str]:
    """`METHOD path` of every `/api/` route that declares no need."""
    return [
        f"{method} {path}"
        for path, route in api_routes(app)
        if path.startswith(PROTECTED_PREFIXES) and not _declared(route.dependant)
        for method in sorted(route.methods or ())
    ]


def guard_routes(app: FastAPI) -> None:
    missing = unguarded(app)
    if missing:
        raise TypeError(
            "these routes declare no permission check (Requires, Checked, or a command's "
            "NEEDS): " + ", ".join(missing)
        )


def readable(backend: Backend, principal: Principal, kind: str) -> Readable | None:
    """The keys of `kind` the caller may READ, for the list query's WHERE clause (None:
    all of them: auth is off, or the caller is an admin)."""
    if not backend.settings.auth or principal.admin:
        return None
    return backend.authorizer.readable(principal, kind)
