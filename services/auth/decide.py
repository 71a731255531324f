"""Pure decisions for identity and permission commands: what is valid, and which events a
command becomes.

Nothing here touches a store, a clock or a random source: the service passes in what it
read (the user as the views have it, whether a group exists), the time, and the hashes
it made.
"""

from __future__ import annotations

import re

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import auth_payloads as a
from ledgerflow.events.errors import AlreadyExists, InvalidInput, NotFound
from ledgerflow.events.limits import PRINCIPAL_PATTERN
from ledgerflow.events.permissions import TOKEN_MARK, Level

MAX_NAME = 128
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_DESCRIPTION = 1000
MAX_TOKEN_LIFETIME_S = 10 * 365 * 24 * 3600

_NAME_RE = re.compile(PRINCIPAL_PATTERN)


def check_name(name: str, what: str, field: str) -> str:
    """A user or group name: what authentication, grants and actors carry."""
    if not _NAME_RE.fullmatch(name) or TOKEN_MARK in name:
        raise InvalidInput(
            f"{what} name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '-', '.' and '@'",
            field=field,
        )
    if len(name) > MAX_NAME:
        raise InvalidInput(
            f"{what} name is {len(name)} characters; the limit is {MAX_NAME}", field=field
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long",
            field="password",
        )
    return password


def check_description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description is {len(text)} characters; the limit is {MAX_DESCRIPTION}",
            field="description",
        )
    return text


def create_user(
    command: ac.CreateUser, *, exists: bool, password_hash: str | None
) -> a.UserCreated:
    check_name(command.name, "user", "name")
    if exists:
        raise AlreadyExists(f"user {command.name!r} already exists")
    return a.UserCreated(name=command.name, password_hash=password_hash, admin=command.admin)


def _existing(user: ac.User | None, name: str) -> ac.User:
    if user is None:
        raise NotFound(f"user {name!r} does not exist", kind="user", key=name)
    return user


def set_password(
    command: ac.SetPassword, user: ac.User | None, *, password_hash: str | None
) -> a.UserPasswordChanged:
    return a.UserPasswordChanged(
        name=_existing(user, command.name).name, password_hash=password_hash
    )


def set_admin(command: ac.SetAdmin, user: ac.User | None) -> list[a.UserAdminChanged]:
    found = _existing(user, command.name)
    return (
        []
        if found.admin == command.admin
        else [a.UserAdminChanged(name=found.name, admin=command.admin)]
    )


def delete_user(command: ac.DeleteUser, user: ac.User | None) -> a.UserDeleted:
    return a.UserDeleted(name=_existing(user, command.name).name)


def create_group(command: ac.CreateGroup, *, exists: bool) -> a.GroupCreated:
    check_name(command.group, "group", "group")
    check_description(command.description)
    if exists:
        raise AlreadyExists(f"group {command.group!r} already exists")
    return a.GroupCreated(group=command.group, description=command.description)


def _group(group: ac.Group | None, name: str) -> ac.Group:
    if group is None:
        raise NotFound(f"group {name!r} does not exist", kind="group", key=name)
    return group


def add_member(
    command: ac.AddGroupMember, group: ac.Group | None, user: ac.User | None
) -> list[a.GroupMemberAdded]:
    g = _group(group, command.group)
    if user is None:
        raise NotFound(f"user {command.user!r} does not exist", kind="user", key=command.user)
    if user.name in g.members:
        return []
    return [a.GroupMemberAdded(group=g.name, user=user.name)]


def remove_member(
    command: ac.RemoveGroupMember, group: ac.Group | None
) -> list[a.GroupMemberRemoved]:
    g = _group(group, command.group)
    if command.user not in g.members:
        return []
    return [a.GroupMemberRemoved(group=g.name, user=command.user)]


def delete_group(command: ac.DeleteGroup, group: ac.Group | None) -> a.GroupDeleted:
    return a.GroupDeleted(group=_group(group, command.group).name)


def create_token(
    command: ac.CreateToken,
    user: ac.User | None,
    *,
    user_name: str,
    token_id: str,
    token_hash: str,
    now_ms: int,
) -> a.TokenCreated:
    """`user_name` is whom the token acts as (the command's user, or the caller)."""
    if user is None:
        raise NotFound(
            f"user {user_name!r} does not exist: create it first (a service account is a "
            "user without a password)",
            kind="user",
            key=user_name,
        )
    check_description(command.description)
    expires = None
    if command.expires_in_s is not None:
        if command.expires_in_s > MAX_TOKEN_LIFETIME_S:
            raise InvalidInput(
                "a token may live at most 10 years; leave expires_in_s out for no expiry",
                field="expires_in_s",
            )
        expires = now_ms + round(command.expires_in_s * 1000)
    return a.TokenCreated(
        id=token_id, user=user.name, token_hash=token_hash,
        description=command.description, expires=expires,
    )  # fmt: skip


def revoke_token(command: ac.RevokeToken, token: ac.Token | None) -> list[a.TokenRevoked]:
    if token is None:
        raise NotFound(f"token {command.id!r} does not exist", kind="token", key=command.id)
    return [] if token.revoked else [a.TokenRevoked(id=token.id)]


def check_principal(principal: str) -> tuple[str, str]:
    """`user:alice` -> ("user", "alice")."""
    who, sep, name = principal.partition(":")
    if not sep or who not in ("user", "group") or not name:
        raise InvalidInput(
            f"principal {principal!r} must be user:<name> or group:<name>", field="principal"
        )
    return who, name


def set_permission(command: ac.SetPermission, *, principal_exists: bool) -> a.PermissionSet:
    who, name = check_principal(command.principal)
    if not principal_exists:
        raise NotFound(f"{who} {name!r} does not exist", kind=who, key=name)
    level = Level.parse(command.level)
    return a.PermissionSet(
        kind=command.kind, key=command.key, principal=command.principal, level=level.name
    )


def remove_permission(
    command: ac.RemovePermission, current: ac.Permission | None
) -> list[a.PermissionRemoved]:
    check_principal(command.principal)
    if current is None:
        return []
    return [a.PermissionRemoved(kind=command.kind, key=command.key, principal=command.principal)]
