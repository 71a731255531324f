"""Commands over the gateway: a command model serialised to the REST call its `HTTP`
metadata names, and the answer read back with its `ANSWER` (see
`ledgerflow.events.commands`). The gateway builds its routes from the same classes, so
the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledgerflow.events.commands import Command, R
from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.channel import Channel, seg


@dataclass(frozen=True)
class Call:
    """One REST call: what `Channel.call` is given."""

    method: str
    path: str
    params: dict[str, Any] | None
    json: Any
    idempotent: bool | None


def call_for(command: Command[Any]) -> Call:
    """The REST call that carries `command` (path under /api/v1)."""
    http = type(command).HTTP
    if http is None:
        raise InvalidInput(f"{type(command).__name__} is not offered by the gateway")
    doc = command.model_dump(mode="json")
    path = http.path.format(**{f: seg(doc.pop(f)) for f in http.path_fields})
    params = {q: doc.pop(q) for q in http.query} or None
    if http.body_field is not None:
        body: Any = doc[http.body_field]
    else:
        body = doc or None
    return Call(http.method, path, params, body, http.idempotent)


class RemoteCommands:
    """`execute(command, *, actor)` over the gateway, as the embedded services offer it."""

    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    def execute(self, command: Command[R], *, actor: str) -> R:
        c = call_for(command)
        doc = self._ch.call(
            c.method, c.path, actor=actor, params=c.params, json=c.json, idempotent=c.idempotent
        )
        result: R = type(command).ANSWER.decode(doc)
        return result
