"""Who may call a model server (docs/security.md), with the gateway's own Authenticator and
Authorizer: the same credentials (HTTP's `Authorization`, gRPC's `authorization`
metadata), verified against the same auth views.

- Inference and model metadata need READ on what is served: a deployment's variants, the
  deployment; a plain model, the registered model (or run) it was loaded from; a model
  from a folder, any identity. Only where inference needs an identity at all:
  `ledgerflow serve --auth`, and the deployments `ledgerflow server` hosts with auth on.
- Feedback needs EDIT on the deployment whenever auth is on (`LEDGERFLOW_AUTH`, or
  `--auth`), and its event carries the caller as its actor.
- Health, readiness, version and `/metrics` answer anyone: probes and scrapers carry no
  credentials.

The fast path stays on the event loop and off the database: a credential verified before
is answered from the Authenticator's cache and the level from the Authorizer's cached
grants, both kept until the auth views change. A model server reads the views' generation
at most once a second (`GENERATION_TTL_S`; the gateway reads it on every request), so a
revocation reaches inference within a second. A credential seen for the first time is
verified off the loop (a password is an argon2 hash: tens of milliseconds).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ledgerflow.events.errors import (
    InvalidInput,
    LedgerflowError,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.authenticate import Authenticator
from ledgerflow.services.auth.authorize import Authorizer
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.serving.http import json_response, request_id

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledgerflow.events.settings import Settings
    from ledgerflow.services.bootstrap import Backend

Resource = tuple[str, str]
Endpoint = Callable[[Request], Awaitable[Response]]
CHALLENGE = 'Basic realm="ledgerflow", Bearer'
AUTH_METADATA = "authorization"
CALLER = "ledgerflow.caller"
"""Where a guarded route finds its caller in the request's scope."""
GENERATION_TTL_S = 1.0
"""How long a model server reuses its read of the auth views' generation: a revocation,
a deleted user or a changed grant reaches its inference path within this much."""


@dataclass(frozen=True)
class ServingAuth:
    authenticator: Authenticator
    authorizer: Authorizer
    inference: bool
    """Whether inference (and model metadata) needs an identity; feedback always does."""

    @classmethod
    def over(
        cls,
        engine: Engine,
        settings: Settings,
        *,
        inference: bool,
        generation_ttl_s: float = GENERATION_TTL_S,
    ) -> ServingAuth:
        """Over the views in `engine`, with caches of its own whose generation is read at
        most every `generation_ttl_s`."""
        from ledgerflow.services.auth.queries import AuthQueries
        from ledgerflow.services.projector.queries import Queries

        queries = AuthQueries(engine, generation_ttl_s=generation_ttl_s)
        runs = Queries(engine)

        def experiment_of_run(run_id: str) -> str | None:
            info = runs.find_run_info(run_id)
            return None if info is None else info.experiment_id

        authorizer = Authorizer(queries, Level[settings.auth_default], experiment_of_run)
        return cls(Authenticator(queries, settings), authorizer, inference)

    @classmethod
    def of(cls, backend: Backend, *, inference: bool, **how: float) -> ServingAuth:
        """Over a backend's auth views (`ledgerflow server`'s own, or the data directory's)."""
        return cls.over(backend.queries.engine, backend.settings, inference=inference, **how)

    @classmethod
    def over_views(cls, settings: Settings, *, inference: bool, **how: float) -> ServingAuth:
        """Over the views database `settings` name, read only: a model server beside a
        gateway (LEDGERFLOW_VIEWS_DB, as the gateway's)."""
        from ledgerflow.services.projector.database import make_engine

        if settings.is_remote and not settings.views_db:
            raise InvalidInput(
                f"a model server with auth checks credentials against the auth views, and "
                f"the tracking URI {settings.tracking_uri!r} is a server: set "
                "LEDGERFLOW_VIEWS_DB to the gateway's views database",
                field="LEDGERFLOW_VIEWS_DB",
            )
        engine = make_engine(settings.views_db_url, writer=False)
        return cls.over(engine, settings, inference=inference, **how)

    async def caller(self, authorization: str | None) -> Principal:
        """Who `authorization` says the caller is, or Unauthenticated."""
        known = self.authenticator.cached(authorization)
        if known is not None:
            return known
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.authenticator.authenticate, authorization)

    def require(self, caller: Principal, resource: Resource | None, level: Level) -> None:
        """PermissionDenied unless `caller` holds `level` on `resource` (None: any identity)."""
        if resource is not None:
            self.authorizer.require(caller, *resource, level)


def refusal(error: LedgerflowError, body: dict[str, object], rid: str | None = None) -> Response:
    """401 (with the challenge), 403, or 429 for too many failed sign-ins (with
    `Retry-After`), with `body`, in the shape the route answers errors."""
    if isinstance(error, RateLimited):
        response = json_response(body, 429, rid)
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
        return response
    unauthenticated = isinstance(error, Unauthenticated)
    response = json_response(body, 401 if unauthenticated else 403, rid)
    if unauthenticated:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def mlflow_body(error: LedgerflowError) -> dict[str, object]:
    return {"error_code": error.code, "message": error.message}


def oip_body(error: LedgerflowError) -> dict[str, object]:
    return {"error": error.message}


def guarded(
    auth: ServingAuth | None,
    endpoint: Endpoint,
    *,
    resource: Callable[[Request], Resource | None],
    level: Level = Level.READ,
    feedback: bool = False,
    body: Callable[[LedgerflowError], dict[str, object]] = mlflow_body,
) -> Endpoint:
    """`endpoint`, answering only callers who hold `level` on `resource(request)` (called
    once the caller is known, so nothing about what is served shows before). Inference
    routes are guarded only when `auth.inference`; `feedback` ones whenever there is
    auth. Unguarded, it is `endpoint` itself: nothing is added to the path."""
    if auth is None or not (feedback or auth.inference):
        return endpoint

    async def checked(request: Request) -> Response:
        try:
            caller = await auth.caller(request.headers.get(AUTH_METADATA))
            auth.require(caller, resource(request), level)
        except (Unauthenticated, PermissionDenied, RateLimited) as e:
            return refusal(e, body(e), request_id(request))
        request.scope[CALLER] = caller
        return await endpoint(request)

    return checked


def caller_of(request: Request) -> Principal | None:
    """The caller a guarded route verified (None where the route is not guarded)."""
    found = request.scope.get(CALLER)
    return found if isinstance(found, Principal) else None
