"""Typed payloads for identities and permissions: users, groups, API tokens and grants.

Like every other view, who exists and who may do what is folded from the log, so two
gateways behind one log agree, and the history of every grant is there to audit.

No secret travels in these events: a user's password is stored as its argon2 hash, an
API token as the SHA-256 of the token (tokens are 256 random bits, so the hash cannot
be reversed or guessed); the token itself is shown once, to whoever created it.

Streams: `user:<name>`, `group:<name>`, `token:<id>`, and `permission:<kind>:<key>`
for the grants on one resource (so a resource's grants are ordered among themselves);
`audit:denied` for the requests the gateway refused (`auth.denied`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerflow.events.payloads import Payload
from ledgerflow.events.permissions import Kind, LevelName


class _UserPayload(Payload):
    name: str = Field(min_length=1)

    def stream(self) -> str:
        return f"user:{self.name}"


class UserCreated(_UserPayload):
    TYPE = "user.created"
    password_hash: str | None = None
    """argon2id; None for a user who signs in only with tokens or OIDC."""
    admin: bool = False


class UserPasswordChanged(_UserPayload):
    TYPE = "user.password_changed"
    password_hash: str | None = None
    """None removes the password (tokens and OIDC only from then on)."""


class UserAdminChanged(_UserPayload):
    TYPE = "user.admin_changed"
    admin: bool


class UserDeleted(_UserPayload):
    """The user's tokens stop working and their grants and group memberships go."""

    TYPE = "user.deleted"


class _GroupPayload(Payload):
    group: str = Field(min_length=1)

    def stream(self) -> str:
        return f"group:{self.group}"


class GroupCreated(_GroupPayload):
    TYPE = "group.created"
    description: str = ""


class GroupMemberAdded(_GroupPayload):
    TYPE = "group.member_added"
    user: str = Field(min_length=1)


class GroupMemberRemoved(_GroupPayload):
    TYPE = "group.member_removed"
    user: str = Field(min_length=1)


class GroupDeleted(_GroupPayload):
    """Its members leave it and its grants go."""

    TYPE = "group.deleted"


class _TokenPayload(Payload):
    id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"token:{self.id}"


class TokenCreated(_TokenPayload):
    TYPE = "token.created"
    user: str = Field(min_length=1)
    """Whom the token acts as: a person, or a service account (a user without password)."""
    token_hash: str = Field(min_length=64, max_length=64)
    """Hex SHA-256 of the token."""
    description: str = ""
    expires: int | None = None
    """Epoch milliseconds after which the token is refused; None: never."""


class TokenRevoked(_TokenPayload):
    TYPE = "token.revoked"


class _PermissionPayload(Payload):
    kind: Kind
    key: str = Field(min_length=1)
    """The resource: an experiment id, or a model, deployment or webhook name."""
    principal: str = Field(pattern=r"^(user|group):.+")
    """`user:<name>` or `group:<name>`."""

    def stream(self) -> str:
        return f"permission:{self.kind}:{self.key}"


class PermissionSet(_PermissionPayload):
    TYPE = "permission.set"
    level: LevelName


class PermissionRemoved(_PermissionPayload):
    TYPE = "permission.removed"


DENIED_STREAM = "audit:denied"
Credential = Literal["none", "basic", "token", "jwt", "other"]


class AuthDenied(Payload):
    """A request the gateway refused: 401 (no identity, or one that could not be
    verified) or 403 (an identity without the level it needed). Recorded so a security
    review sees who tried; never the credentials themselves.

    The event's actor is the authenticated identity for a 403 and `anonymous` for a
    401: a name typed into a failed sign-in is a claim, kept as `claimed_user`, not an
    actor. Rate limited per (caller, route): `suppressed` counts the refusals of the
    same caller on the same route that were not recorded since the previous one.
    """

    TYPE = "auth.denied"
    status: Literal[401, 403]
    method: str = Field(min_length=1)
    path: str = Field(min_length=1)
    """The path asked for, without its query string."""
    route: str = ""
    """The route's template (`/api/v1/registered-models/{name}`), when one matched."""
    needs: str = ""
    """What was missing: `MANAGE on model 'm'`, `ADMIN`, or `an identity`."""
    reason: str = ""
    """The message the caller got."""
    token_id: str | None = None
    """The API token presented, when it is one this server issued (even revoked)."""
    claimed_user: str | None = None
    """For a failed sign-in with a password: the user name given (unverified)."""
    credential: Credential = "none"
    client: str | None = None
    """The client's address as the gateway saw it."""
    suppressed: int = Field(default=0, ge=0)

    def stream(self) -> str:
        return DENIED_STREAM


AUTH_PAYLOADS: tuple[type[Payload], ...] = (
    UserCreated,
    UserPasswordChanged,
    UserAdminChanged,
    UserDeleted,
    GroupCreated,
    GroupMemberAdded,
    GroupMemberRemoved,
    GroupDeleted,
    TokenCreated,
    TokenRevoked,
    PermissionSet,
    PermissionRemoved,
    AuthDenied,
)
