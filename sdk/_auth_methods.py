"""Identity and permission methods of `lf.Client`: users, groups, API tokens and grants
(docs/security.md).

Each write builds its typed command (`ledgerflow.events.auth_commands`) and executes it:
on a data directory, on the `AuthService` next to the log, where the local user may do
everything (the records take effect once a server runs with `--auth`); against a gateway
URL, over its `/api/v1/users`, `/groups`, `/tokens` and `/permissions` routes, where the
gateway checks who may. Values people type (a lifetime such as "30d", a level in any case,
a bare user name as a principal) are parsed here, at the edge.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from ledgerflow._client_methods import ClientMethods
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.permissions import KINDS, Kind, Level, LevelName

if TYPE_CHECKING:
    from ledgerflow._ports import AuthPort
    from ledgerflow.events.auth_commands import (
        CreatedToken,
        Group,
        Permission,
        Token,
        User,
        WhoAmI,
    )

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(value: float | int | str | None, field: str = "expires_in") -> float | None:
    """Seconds from a number of seconds, or from text such as "30d", "12h", "1d12h", "90m",
    "2w" or "3600"; None stays None (no expiry)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be seconds or a duration like '30d'", field=field)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                raise InvalidInput(
                    f"{field} {value!r} is not a duration: give seconds, or a number with a "
                    "unit (s, m, h, d, w), e.g. '30d', '12h' or '1d12h'",
                    field=field,
                ) from None
            seconds = sum(float(n) * _UNITS[unit] for n, unit in parts)
    if not seconds > 0:
        raise InvalidInput(f"{field} must be a positive duration, got {value!r}", field=field)
    return seconds


def principal_of(principal: str) -> str:
    """`user:<name>` or `group:<name>` as given; a bare name means the user of that name."""
    text = str(principal).strip()
    return text if ":" in text else f"user:{text}"


def kind_of(kind: str) -> Kind:
    """One of the kinds of resource grants are on, in any case."""
    text = str(kind).strip().lower()
    if text not in KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    return cast(Kind, text)


def level_of(level: str | Level) -> LevelName:
    """READ, EDIT, MANAGE or NO_PERMISSIONS, in any case."""
    return cast(LevelName, Level.parse(level).name)


class AuthMethods(ClientMethods):
    """Mixed into Client, which provides the backend and the actor."""

    def _auth(self, *, refresh: bool = False) -> AuthPort:
        """Where identities are managed: the service next to the log, or the gateway; with
        `refresh`, after the views caught up."""
        backend = self._backend
        if refresh:
            backend.refresh()
        return backend.auth

    # who -------------------------------------------------------------------------------
    def whoami(self) -> WhoAmI:
        """Who this client acts as: over a gateway, the identity it authenticated (from
        LEDGERFLOW_TRACKING_TOKEN, or _USERNAME and _PASSWORD); on a data directory, the
        local user (LEDGERFLOW_USER or the OS user), who may do everything there."""
        return self._auth().whoami(self._actor)

    # users -----------------------------------------------------------------------------
    def create_user(self, name: str, password: str | None = None, admin: bool = False) -> User:
        """A user who signs in with `password` (at least 8 characters), or, without one, only
        with API tokens or OIDC (a service account). Admins only, over a gateway."""
        from ledgerflow.events import auth_commands as ac

        command = ac.CreateUser(name=name, password=password, admin=admin)
        return self._auth().execute(command, actor=self._actor)

    def set_password(self, name: str, password: str | None) -> User:
        """Set a user's password (None removes it: tokens or OIDC only from then on). A user
        may set their own; an admin anyone's."""
        from ledgerflow.events import auth_commands as ac

        command = ac.SetPassword(name=name, password=password)
        return self._auth().execute(command, actor=self._actor)

    def set_admin(self, name: str, admin: bool = True) -> User:
        from ledgerflow.events import auth_commands as ac

        return self._auth().execute(ac.SetAdmin(name=name, admin=admin), actor=self._actor)

    def delete_user(self, name: str) -> None:
        """Delete a user: their tokens stop working, their grants and memberships go."""
        from ledgerflow.events import auth_commands as ac

        self._auth().execute(ac.DeleteUser(name=name), actor=self._actor)

    def list_users(self) -> list[User]:
        return self._auth(refresh=True).queries.users()

    def get_user(self, name: str) -> User:
        found = self._auth(refresh=True).queries.user(name)
        if found is None:
            raise NotFound(f"user {name!r} does not exist", kind="user", key=name)
        return found

    # groups ----------------------------------------------------------------------------
    def create_group(self, name: str, description: str = "") -> Group:
        from ledgerflow.events import auth_commands as ac

        command = ac.CreateGroup(group=name, description=description)
        return self._auth().execute(command, actor=self._actor)

    def add_group_member(self, group: str, user: str) -> Group:
        from ledgerflow.events import auth_commands as ac

        command = ac.AddGroupMember(group=group, user=user)
        return self._auth().execute(command, actor=self._actor)

    def remove_group_member(self, group: str, user: str) -> Group:
        from ledgerflow.events import auth_commands as ac

        command = ac.RemoveGroupMember(group=group, user=user)
        return self._auth().execute(command, actor=self._actor)

    def delete_group(self, name: str) -> None:
        """Delete a group: its members leave it and its grants go."""
        from ledgerflow.events import auth_commands as ac

        self._auth().execute(ac.DeleteGroup(group=name), actor=self._actor)

    def list_groups(self) -> list[Group]:
        return self._auth(refresh=True).queries.groups()

    def get_group(self, name: str) -> Group:
        found = self._auth(refresh=True).queries.group(name)
        if found is None:
            raise NotFound(f"group {name!r} does not exist", kind="group", key=name)
        return found

    # tokens ----------------------------------------------------------------------------
    def create_token(
        self,
        user: str | None = None,
        description: str = "",
        expires_in: float | int | str | None = None,
    ) -> CreatedToken:
        """An API token acting as `user` (default: the caller; another user's, admins only).
        `expires_in` is seconds or text like "30d" or "12h" (None: never). The answer's
        `token` is shown this once: send it as `Authorization: Bearer <token>`, e.g. with
        LEDGERFLOW_TRACKING_TOKEN."""
        from ledgerflow.events import auth_commands as ac

        command = ac.CreateToken(
            user=user, description=description, expires_in_s=parse_duration(expires_in)
        )
        return self._auth().execute(command, actor=self._actor)

    def revoke_token(self, token_id: str) -> None:
        """Revoke an API token by its id: the next request with it is refused."""
        from ledgerflow.events import auth_commands as ac

        self._auth().execute(ac.RevokeToken(id=token_id), actor=self._actor)

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """API tokens, never the tokens themselves: a user's, or with None the caller's over
        a gateway, and every user's on a data directory."""
        return self._auth(refresh=True).queries.tokens(user)

    # permissions -----------------------------------------------------------------------
    def set_permission(
        self, kind: str, key: str | int, principal: str, level: str | Level
    ) -> Permission:
        """Grant `principal` (`user:<name>`, `group:<name>`, or a bare user name) `level`
        (READ, EDIT, MANAGE or NO_PERMISSIONS) on a resource: an experiment by id, or a
        model, deployment or webhook by name. Needs MANAGE on it (or an admin)."""
        from ledgerflow.events import auth_commands as ac

        command = ac.SetPermission(
            kind=kind_of(kind), key=str(key), principal=principal_of(principal),
            level=level_of(level),
        )  # fmt: skip
        return self._auth().execute(command, actor=self._actor)

    def remove_permission(self, kind: str, key: str | int, principal: str) -> None:
        from ledgerflow.events import auth_commands as ac

        command = ac.RemovePermission(
            kind=kind_of(kind), key=str(key), principal=principal_of(principal)
        )
        self._auth().execute(command, actor=self._actor)

    def list_permissions(self, kind: str, key: str | int) -> list[Permission]:
        """The grants on one resource, the creator's MANAGE included."""
        return self._auth(refresh=True).queries.permissions(kind_of(kind), str(key))
