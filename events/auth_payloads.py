"""Typed payloads for identities and permissions: users, groups, API tokens and grants.

Like every other view, who exists and who may do what is folded from the log, so two
gateways behind one log agree, and the history of every grant is there to audit.

No secret travels in these events: a user's password is stored as its argon2 hash, an
API token as the SHA-256 of the token (tokens are 256 random bits, so the hash cannot
be reversed or guessed); the token itself is shown once, to whoever created it.

Streams: `user:<name>`, `group:<name>`, `token:<id>`, and `permission:<kind>:<key>`
for the grants on one resource (so a resource's grants are ordered among themselves).
"""

from __future__ import annotations

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
)
