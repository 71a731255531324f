"""Executing commands: which handler takes a command (`Handlers`), and appending its
events and waiting until they are projected (read-your-writes, `Committer`).

The commands themselves are typed models (see `ledgerflow.events.commands`); a service
declares one handler per command class and one `execute(command, *, actor)` that
dispatches through its `Handlers`, so a new command needs no new port method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from ledgerflow.events import payloads as p
from ledgerflow.events import tracing
from ledgerflow.events.commands import Command
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import AlreadyExists, Conflict
from ledgerflow.events.log import Checkpoint, EventLog
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.sql import fetch_all


class Committer:
    def __init__(
        self,
        log: EventLog,
        projector: Projector,
        timeout: float,
        *,
        on_committed: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        """`on_committed` hears of every command's events once they are projected (a
        cache of the views this process keeps drops what they change)."""
        self.log = log
        self.projector = projector
        self.timeout = timeout
        self.on_committed = on_committed

    def commit(self, payloads: Sequence[p.Payload], actor: str) -> list[Event]:
        """Append, wait until projected, and surface a rejection as the error it would
        have been had the caller seen the conflicting write coming."""
        if not payloads:
            return []
        types = sorted({pl.TYPE for pl in payloads})
        with tracing.span("ledgerflow.commit", {"event.types": types}):
            trace = tracing.traceparent()
            events = [Event.of(pl, actor=actor, trace=trace) for pl in payloads]
            with tracing.span("ledgerflow.append", {"events": len(events)}):
                recorded = self.log.append(events)
            with tracing.span("ledgerflow.wait_for_projection"):
                self.projector.wait_for(Checkpoint.of(recorded), self.timeout)
        if self.on_committed is not None:
            self.on_committed(events)
        ids = tuple(e.id for e in events)
        known = self.projector.outcomes(ids)  # this process projected them: no read
        if known is not None:
            rows = [outcome for outcome in known if outcome is not None][:1]
        else:
            marks = ", ".join("?" * len(ids))
            sql = f"SELECT type, reason FROM dead_letters WHERE event_id IN ({marks}) LIMIT 1"
            with self.projector.reader.connect() as conn:
                rows = fetch_all(conn, sql, ids)  # a plain statement: every command asks
        if rows:
            type_, reason = rows[0]
            cls = AlreadyExists if "already exists" in reason else Conflict
            raise cls(f"{type_} was rejected: {reason}")
        return events


S = TypeVar("S")
C = TypeVar("C", bound=Command[Any])
R = TypeVar("R")
Handler = Callable[[S, C, str], R]


class Handlers(Generic[S]):
    """The handlers of one service's commands, by command class:

    class DeploymentService:
        handlers = Handlers["DeploymentService"]()

        @handlers.on(dc.Pause)
        def _pause(self, command: dc.Pause, actor: str) -> Deployment: ...

        def execute(self, command, *, actor):
            return self.handlers.run(self, command, actor)
    """

    def __init__(self) -> None:
        self._table: dict[type[Command[Any]], Callable[[S, Any, str], Any]] = {}

    def on(self, command: type[C]) -> Callable[[Handler[S, C, R]], Handler[S, C, R]]:
        def register(handler: Handler[S, C, R]) -> Handler[S, C, R]:
            if command in self._table:
                raise TypeError(f"{command.__name__} already has a handler")
            self._table[command] = handler
            return handler

        return register

    def run(self, service: S, command: Command[R], actor: str) -> R:
        handler = self._table.get(type(command))
        if handler is None:
            raise TypeError(f"{type(service).__name__} has no handler for {type(command).__name__}")
        result: R = handler(service, command, actor)
        return result

    def handled(self) -> Iterable[type[Command[Any]]]:
        return tuple(self._table)
