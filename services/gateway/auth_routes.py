"""Identities and grants over HTTP: users, groups, API tokens and permissions, and who
the caller is (`/whoami`).

The commands' routes are made from their classes (`ledgerflow.events.auth_commands`),
each checked against its `NEEDS`; the reads are here. With auth off there is one local
user and these routes manage records that take effect once auth is turned on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, params

from ledgerflow.events import auth_commands as ac
from ledgerflow.events.commands import ADMIN, Need, on, self_or_admin
from ledgerflow.events.errors import NotFound
from ledgerflow.events.permissions import Kind, Level
from ledgerflow.services.gateway.auth import Requires, checked
from ledgerflow.services.gateway.command_registry import AUTH
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import LiveDep, PrincipalDep

reads = APIRouter(tags=["auth"])


def _needs(need: Need) -> list[params.Depends]:
    return [Depends(Requires(need))]


@reads.get(
    "/whoami",
    summary="Who the gateway takes the caller for",
    dependencies=[checked("any identity")],
)
def whoami(backend: LiveDep, principal: PrincipalDep) -> ac.WhoAmI:
    user = principal.user
    if principal.method == "local":  # auth off: the SDK's X-Ledgerflow-Actor, `user:<name>`
        user = user.removeprefix("user:")
    return ac.WhoAmI(
        user=user, admin=principal.admin, groups=list(principal.groups),
        token_id=principal.token_id, method=principal.method, auth=backend.settings.auth,
    )  # fmt: skip


@reads.get("/users", summary="List users (admins only)", dependencies=_needs(ADMIN))
def list_users(backend: LiveDep) -> list[ac.User]:
    return backend.auth.queries.users()


@reads.get(
    "/users/{name}",
    summary="Get a user (themselves, or an admin)",
    dependencies=_needs(self_or_admin("name")),
)
def get_user(name: str, backend: LiveDep) -> ac.User:
    user = backend.auth.queries.user(name)
    if user is None:
        raise NotFound(f"user {name!r} does not exist", kind="user", key=name)
    return user


@reads.get(
    "/groups", summary="List groups with their members (admins only)", dependencies=_needs(ADMIN)
)
def list_groups(backend: LiveDep) -> list[ac.Group]:
    return backend.auth.queries.groups()


@reads.get(
    "/tokens",
    summary="List API tokens (never the tokens themselves): the caller's, or a user's for an admin",
    dependencies=_needs(self_or_admin("user")),
)
def list_tokens(
    backend: LiveDep,
    principal: PrincipalDep,
    user: Annotated[str | None, Query(description="whose tokens (default: the caller's)")] = None,
) -> list[ac.Token]:
    return backend.auth.queries.tokens(user or principal.user)


@reads.get(
    "/permissions",
    summary="The grants on one resource (MANAGE on it, or an admin)",
    dependencies=_needs(on("@kind", "key", Level.MANAGE)),
)
def list_permissions(
    backend: LiveDep,
    kind: Annotated[Kind, Query(description="experiment, model, deployment or webhook")],
    key: Annotated[
        str, Query(description="an experiment id, or a model, deployment or webhook name")
    ],
) -> list[ac.Permission]:
    return backend.auth.queries.permissions(kind, key)


@reads.get(
    "/permissions/mine",
    summary="The caller's own level on one resource (what the UI enables actions by)",
    dependencies=[checked("any identity: it says only what the caller holds")],
)
def my_level(
    backend: LiveDep,
    principal: PrincipalDep,
    kind: Annotated[Kind, Query(description="experiment, model, deployment or webhook")],
    key: Annotated[
        str, Query(description="an experiment id, or a model, deployment or webhook name")
    ],
) -> ac.MyLevel:
    """The same whether or not the resource exists (the default level then), so it tells
    nobody what exists."""
    if not backend.settings.auth or principal.admin:
        level = Level.MANAGE
    else:
        level = backend.authorizer.level(principal, kind, key)
    return ac.MyLevel(kind=kind, key=key, level=level.name)


router = APIRouter()
router.include_router(command_router(AUTH))
router.include_router(reads)
