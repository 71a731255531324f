"""Identities and grants over the gateway, offering what the embedded `AuthService` offers:
commands travel as their typed models (`RemoteCommands.execute`), reads as GETs.

The gateway checks who may do each (admins manage users and groups; anyone their own
tokens; MANAGE on a resource grants on it) and answers a refusal with 403, which comes
back as `PermissionDenied`. Reads need no spool flush: logging never changes them.
"""

from __future__ import annotations

from typing import Any

from ledgerflow.events.auth_commands import Group, Permission, Token, User, WhoAmI
from ledgerflow.events.errors import NotFound
from ledgerflow.remote.channel import Channel, seg
from ledgerflow.remote.commands import RemoteCommands


class RemoteAuthQueries:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._ch.call("GET", path, params=params, flush=False)

    def users(self) -> list[User]:
        return [User.model_validate(d) for d in self._get("/users")]

    def user(self, name: str) -> User | None:
        try:
            return User.model_validate(self._get(f"/users/{seg(name)}"))
        except NotFound:
            return None

    def groups(self) -> list[Group]:
        return [Group.model_validate(d) for d in self._get("/groups")]

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups() if g.name == name), None)

    def tokens(self, user: str | None = None) -> list[Token]:
        """A user's tokens (the caller's when None; another's for an admin)."""
        return [Token.model_validate(d) for d in self._get("/tokens", {"user": user})]

    def permissions(self, kind: str, key: str) -> list[Permission]:
        docs = self._get("/permissions", {"kind": kind, "key": key})
        return [Permission.model_validate(d) for d in docs]


class RemoteAuth(RemoteCommands):
    """Identity and grant commands (`execute`), reads (`queries`) and `whoami`."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.queries = RemoteAuthQueries(channel)

    def whoami(self, actor: str) -> WhoAmI:
        """Who the gateway takes this process for (with auth off: `actor`, the local user)."""
        doc = self._ch.call("GET", "/whoami", actor=actor, flush=False)
        return WhoAmI.model_validate(doc)
