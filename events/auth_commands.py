"""Identity and permission commands (see `ledgerflow.events.commands`), each with the REST
route that carries it, and the records their answers hold.

The records are declared once, as the wire models themselves: the SDK returns the same
frozen objects the gateway writes. Names, levels and lifetimes are checked by
`ledgerflow.services.auth.decide`, so a mistake is refused with the same message in
every mode; who may run each command is the gateway's business (admins manage users and
groups; anyone creates tokens for themselves; MANAGE on a resource grants on it).

A password travels only in the command that sets it, never in an event, a record or a
log line (`repr` hides it); a token is shown once, in the answer to creating it.
"""

from __future__ import annotations

from typing import Any, Generic

from pydantic import ConfigDict, Field, StrictBool

from ledgerflow.events.commands import (
    ADMIN,
    Answer,
    Command,
    Http,
    Need,
    R,
    on,
    self_or_admin,
)
from ledgerflow.events.field_schemas import PASSWORD, PrincipalName, PrincipalRef
from ledgerflow.events.permissions import Kind, Level, LevelName
from ledgerflow.events.wire import Out


class Record(Out):
    model_config = ConfigDict(frozen=True)


class User(Record):
    name: str
    admin: bool
    has_password: bool = Field(description="false: signs in with tokens or OIDC only")
    groups: list[str] = Field(default_factory=list)
    creation_time: int


class Group(Record):
    name: str
    description: str
    members: list[str]
    creation_time: int


class Token(Record):
    """An API token as listed: never the token itself."""

    id: str
    user: str
    description: str
    creation_time: int
    expires: int | None = Field(None, description="epoch ms; None: never")
    revoked: bool = False
    last_used: int | None = Field(None, description="epoch ms of its last use, if recorded")


class CreatedToken(Token):
    token: str = Field(repr=False, description="shown this once: Authorization: Bearer <token>")


class Permission(Record):
    kind: Kind
    key: str
    principal: PrincipalRef = Field(description="user:<name> or group:<name>")
    level: LevelName
    source: str = Field("grant", description="`grant`, or `creator` for the creator's MANAGE")


class MyLevel(Record):
    """The caller's own level on one resource: what a client shows its actions by (the
    gateway checks every action again when it is taken)."""

    kind: Kind
    key: str
    level: LevelName = Field(description="MANAGE for an admin, and for everyone with auth off")


class WhoAmI(Record):
    """Who the caller is taken for: over a gateway, the identity it authenticated; next to
    the log (embedded), the local user, who may do everything (nothing is checked there)."""

    user: str
    admin: bool
    groups: list[str]
    token_id: str | None = Field(description="the API token the call came through, if any")
    method: str = Field(description="password, token, oidc, or local")
    auth: bool = Field(description="whether the server checks identities (LEDGERFLOW_AUTH)")


def _record(cls: type[Record]) -> Answer[Any]:
    return Answer(lambda r: r, cls.model_validate, cls)


_USERS = "/users"
_USER = _USERS + "/{name}"
_GROUPS = "/groups"
_GROUP = _GROUPS + "/{group}"
_MEMBER = _GROUP + "/members/{user}"
_TOKENS = "/tokens"
_PERMISSION = "/permissions/{kind}/{key}/{principal}"

_PASSWORD = Field(
    None,
    repr=False,
    description="at least 8 characters; None: tokens or OIDC only",
    json_schema_extra=PASSWORD,
)


class AuthCommand(Command[R], Generic[R]):
    """A command on identities or grants (what the auth service and port execute)."""


class CreateUser(AuthCommand[User]):
    HTTP = Http("POST", _USERS, "Create a user (admins only)", 201)
    NEEDS = ADMIN
    ANSWER = _record(User)
    name: PrincipalName = Field(description="letters, digits, '_', '-', '.' and '@'")
    password: str | None = _PASSWORD
    admin: StrictBool = False


class SetPassword(AuthCommand[User]):
    HTTP = Http("PUT", _USER + "/password", "Set or remove a user's password", idempotent=True)
    NEEDS = self_or_admin("name")
    ANSWER = _record(User)
    name: str
    password: str | None = Field(
        repr=False,
        description="at least 8 characters; null removes it (tokens or OIDC only)",
        json_schema_extra=PASSWORD,
    )


class SetAdmin(AuthCommand[User]):
    HTTP = Http("PUT", _USER + "/admin", "Make a user an admin, or not", idempotent=True)
    NEEDS = ADMIN
    ANSWER = _record(User)
    name: str
    admin: StrictBool


class DeleteUser(AuthCommand[None]):
    HTTP = Http("DELETE", _USER, "Delete a user: their tokens stop working", 204)
    NEEDS = ADMIN
    name: str


class CreateGroup(AuthCommand[Group]):
    HTTP = Http("POST", _GROUPS, "Create a group of users (admins only)", 201)
    NEEDS = ADMIN
    ANSWER = _record(Group)
    group: PrincipalName
    description: str = ""


class AddGroupMember(AuthCommand[Group]):
    HTTP = Http("PUT", _MEMBER, "Add a user to a group", idempotent=True, optional_body=True)
    NEEDS = ADMIN
    ANSWER = _record(Group)
    group: str
    user: str


class RemoveGroupMember(AuthCommand[Group]):
    HTTP = Http("DELETE", _MEMBER, "Remove a user from a group")
    NEEDS = ADMIN
    ANSWER = _record(Group)
    group: str
    user: str


class DeleteGroup(AuthCommand[None]):
    HTTP = Http("DELETE", _GROUP, "Delete a group and its grants", 204)
    NEEDS = ADMIN
    group: str


class CreateToken(AuthCommand[CreatedToken]):
    HTTP = Http("POST", _TOKENS, "Create an API token; only this answer shows it", 201)
    NEEDS = self_or_admin("user")
    ANSWER = _record(CreatedToken)
    user: str | None = Field(None, description="whom it acts as (admins only); None: the caller")
    description: str = ""
    expires_in_s: float | None = Field(None, gt=0, description="lifetime in seconds; None: never")


class RevokeToken(AuthCommand[None]):
    HTTP = Http("DELETE", _TOKENS + "/{id}", "Revoke an API token", 204)
    NEEDS = Need("self", "token", "id")
    id: str


class SetPermission(AuthCommand[Permission]):
    HTTP = Http("PUT", _PERMISSION, "Grant a user or group a level on a resource", idempotent=True)
    NEEDS = on("@kind", "key", Level.MANAGE)
    ANSWER = _record(Permission)
    kind: Kind
    key: str = Field(description="an experiment id, or a model, deployment or webhook name")
    principal: PrincipalRef = Field(description="user:<name> or group:<name>")
    level: LevelName


class RemovePermission(AuthCommand[None]):
    HTTP = Http("DELETE", _PERMISSION, "Remove a user's or group's grant on a resource", 204)
    NEEDS = on("@kind", "key", Level.MANAGE)
    kind: Kind
    key: str
    principal: PrincipalRef


AUTH_COMMANDS: tuple[type[AuthCommand[Any]], ...] = (
    CreateUser,
    SetPassword,
    SetAdmin,
    DeleteUser,
    CreateGroup,
    AddGroupMember,
    RemoveGroupMember,
    DeleteGroup,
    CreateToken,
    RevokeToken,
    SetPermission,
    RemovePermission,
)
