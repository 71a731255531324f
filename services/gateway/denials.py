"""The gateway's refusals as `auth.denied` events (with auth on): a 401 from the
authentication middleware, a 403 from any `PermissionDenied` a route raises, and the
same two from gRPC calls (`grpc_auth`: method `GRPC`, the path `/ledgerflow.v1.Ledgerflow/
Method`, UNAUTHENTICATED recorded as 401 and PERMISSION_DENIED as 403).

Recorded: who (the authenticated actor for a 403; for a 401 `anonymous`, with the user
name a failed password sign-in gave, and the id of a presented token this server
issued), the method, path and route, what was needed, the message, the client's
address. Never a password or a token. Rate limited per (caller, method, route) by
`ledgerflow.services.auth.denials`: the caller is the user for a 403 and the client's
address for a 401, whose identity is not known.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from ledgerflow.events.auth_payloads import AuthDenied, Credential
from ledgerflow.events.errors import LedgerflowError, PermissionDenied
from ledgerflow.services.auth import credentials
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.route_table import route_of

ANONYMOUS = "anonymous"
_NAME_LENGTH = 200


def _client(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def _credential(authorization: str | None) -> tuple[Credential, str | None, str | None]:
    """(kind, the user name a Basic header gives, the bearer token): never the password."""
    if not authorization or not authorization.strip():
        return "none", None, None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return "basic", None, None
        return "basic", user[:_NAME_LENGTH] or None, None
    if scheme.lower() == "bearer" and value:
        if value.startswith(credentials.TOKEN_PREFIX):
            return "token", None, value
        return ("jwt" if value.count(".") == 2 else "other"), None, None
    return "other", None, None


def unauthenticated(request: Request, error: LedgerflowError) -> None:
    """Record a 401 (the middleware refused the request's credentials)."""
    method, path = request.method, request.url.path
    record_unauthenticated(
        request.app.state.backend, error, method=method, path=path,
        route=route_of(request.app, method, path), client=_client(request),
        authorization=request.headers.get("authorization"),
    )  # fmt: skip


def forbidden(request: Request, error: PermissionDenied) -> None:
    """Record a 403 (an authenticated caller without the level the route needs)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # auth off: the local user is an admin, nothing is refused here
        return
    method, path = request.method, request.url.path
    record_forbidden(
        request.app.state.backend, principal, error, method=method, path=path,
        route=route_of(request.app, method, path), client=_client(request),
    )  # fmt: skip


def record_unauthenticated(
    backend: Backend,
    error: LedgerflowError,
    *,
    method: str,
    path: str,
    route: str,
    client: str | None,
    authorization: str | None,
) -> None:
    """Record refused credentials, from REST (401) or gRPC (UNAUTHENTICATED, as 401)."""
    kind, user, token = _credential(authorization)

    def denial(suppressed: int) -> AuthDenied:
        queries = backend.auth.queries
        stored = queries.token_by_hash(credentials.token_hash(token)) if token else None
        return AuthDenied(
            status=401, method=method, path=path, route=route, needs="an identity",
            reason=error.message, token_id=None if stored is None else stored.id,
            claimed_user=user, credential=kind, client=client, suppressed=suppressed,
        )  # fmt: skip

    backend.denials.record((401, client, method, route or "?"), ANONYMOUS, denial)


def record_forbidden(
    backend: Backend,
    principal: Principal,
    error: PermissionDenied,
    *,
    method: str,
    path: str,
    route: str,
    client: str | None,
) -> None:
    """Record a known caller refused for a missing level (403, or PERMISSION_DENIED)."""
    needs = error.needs or "?"
    if error.kind and error.key:
        needs += f" on {error.kind} {error.key!r}"

    def denial(suppressed: int) -> AuthDenied:
        return AuthDenied(
            status=403, method=method, path=path, route=route, needs=needs,
            reason=error.message, token_id=principal.token_id,
            credential="token" if principal.token_id else _method(principal),
            client=client, suppressed=suppressed,
        )  # fmt: skip

    backend.denials.record((403, principal.user, method, route or "?"), principal.actor, denial)


def _method(principal: Principal) -> Credential:
    if principal.method == "password":
        return "basic"
    return "jwt" if principal.method == "oidc" else "other"
