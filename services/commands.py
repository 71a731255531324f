"""Appending commands' events and waiting until they are projected (read-your-writes)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ledgerflow.events import payloads as p
from ledgerflow.events import tracing
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import AlreadyExists, Conflict
from ledgerflow.events.log import Checkpoint, EventLog
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.tables import DEAD_LETTERS as DL


class Committer:
    def __init__(self, log: EventLog, projector: Projector, timeout: float) -> None:
        self.log = log
        self.projector = projector
        self.timeout = timeout

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
        ids = [e.id for e in events]
        with self.projector.engine.connect() as conn:
            row = conn.execute(
                select(DL.c.type, DL.c.reason).where(DL.c.event_id.in_(ids)).limit(1)
            ).first()
        if row is not None:
            cls = AlreadyExists if "already exists" in row.reason else Conflict
            raise cls(f"{row.type} was rejected: {row.reason}")
        return events
