"""Who is asking: the identity a request was authenticated as."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledgerflow.events.permissions import actor_of

Method = Literal["password", "token", "oidc", "local"]


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    admin: bool = False
    groups: tuple[str, ...] = ()
    token_id: str | None = None
    method: Method = "local"

    @property
    def actor(self) -> str:
        """What the events this principal causes carry: the user, and the token if any.
        Taken from here, never from the caller."""
        return actor_of(self.user, self.token_id)

    @property
    def names(self) -> tuple[str, ...]:
        """The grant principals that apply: the user's, then each group's."""
        return (f"user:{self.user}", *(f"group:{g}" for g in self.groups))
