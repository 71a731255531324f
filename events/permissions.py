"""Permission levels, the kinds of resource they are granted on, and how an actor names
the identity that acted.

Levels are ordered: each includes the ones below it (MANAGE can do what EDIT can, EDIT
what READ can); NO_PERMISSIONS grants nothing, and, set on a user, hides a resource the
default level would have shown. They are MLflow's four, with the same meaning:

- READ: see it (and, for an experiment, its runs and their events);
- EDIT: change it (log to an experiment's runs, add model versions, tags);
- MANAGE: everything, including deleting it, granting permissions on it, moving a
  model's aliases and stages, and promoting or rolling back a deployment.

Resources are named by their key: an experiment by its id, a registered model, a
deployment and a webhook by name.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal, get_args

from ledgerflow.events.errors import InvalidInput


class Level(IntEnum):
    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3

    @classmethod
    def parse(cls, value: object, *, field: str = "level") -> Level:
        if isinstance(value, Level):
            return value
        text = str(value).strip().upper()
        try:
            return cls[text]
        except KeyError:
            raise InvalidInput(
                f"permission level {value!r} is not one of {', '.join(LEVEL_NAMES)}", field=field
            ) from None


LevelName = Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]
LEVEL_NAMES: tuple[str, ...] = get_args(LevelName)

Kind = Literal["experiment", "model", "deployment", "webhook"]
KINDS: tuple[str, ...] = get_args(Kind)

TOKEN_MARK = "#token:"  # noqa: S105 - a separator, not a secret
"""Separates the user from the token in an actor: `alice#token:0193…`."""


def actor_of(user: str, token_id: str | None = None) -> str:
    """The actor an authenticated call's events carry: the user, and the token it came
    through when it came through one."""
    return f"{user}{TOKEN_MARK}{token_id}" if token_id else user


LOCAL_MARK = "user:"
"""Prefixes the actor of a caller nobody authenticated: the SDK records `user:<name>`
(LEDGERFLOW_USER or the OS user) next to the log and on a gateway without auth."""


def user_of(actor: str) -> str:
    """The user an actor names (`alice#token:…` -> `alice`, the SDK's `user:alice` ->
    `alice`; user names hold no ':', so the two cannot be confused)."""
    return actor.split(TOKEN_MARK, 1)[0].removeprefix(LOCAL_MARK)


def token_of(actor: str) -> str | None:
    """The token an actor acted through, if any."""
    _, mark, token = actor.partition(TOKEN_MARK)
    return token if mark else None
