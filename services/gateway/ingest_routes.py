"""Ingest: append batches of events a client built itself.

This is how the SDK's remote mode ships its write-ahead spool: events carry
their ids, so a batch sent twice (the answer was lost, the process restarted)
is stored once; the log ignores ids it already has. Every payload is decoded
and validated here, so a bad event is refused with a 400 naming it and its
field instead of reaching the log as a dead letter.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import Field, StrictBool, ValidationError
from sqlalchemy import select

from ledgerflow.events import codec
from ledgerflow.events import payloads as p
from ledgerflow.events.commands import on
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import CorruptEvent, InvalidInput, PermissionDenied
from ledgerflow.events.log import Checkpoint
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import check, checked, take_ingest
from ledgerflow.services.gateway.deps import BackendDep, PrincipalDep
from ledgerflow.services.gateway.schemas import Body, Out
from ledgerflow.services.projector.tables import DEAD_LETTERS as DL

router = APIRouter(tags=["events"])
_EDIT_RUN = on("run", "run_id", Level.EDIT)
MAX_BATCH = 10_000


class EventIn(Body):
    """One event on the wire: the envelope (docs/events.md) and its payload."""

    id: str = Field(min_length=1, max_length=64, description="UUIDv7; the idempotency key")
    type: str = Field(description="e.g. run.metrics_logged")
    stream: str = Field(description="e.g. run:<id>; must match the payload")
    time: int = Field(ge=0, description="epoch milliseconds")
    v: int = Field(ge=1, description="payload schema version")
    actor: str
    trace: str | None = None
    data: dict[str, Any]


class EventBatch(Body):
    events: list[EventIn] = Field(max_length=MAX_BATCH)
    wait: StrictBool = Field(
        False,
        description="answer once the events are projected (read-your-writes); with no "
        "events, once everything appended before this request is projected",
    )


class RejectedOut(Out):
    id: str
    type: str
    reason: str


class IngestOut(Out):
    accepted: int = Field(description="events in the batch, new or already on the log")
    projected: bool = Field(description="whether the views include them (wait=true)")
    rejected: list[RejectedOut] = Field(
        default_factory=list,
        description="with wait=true: events the projector refused (dead-lettered)",
    )


def _bad_field(raw: EventIn) -> str:
    """Which part of an undecodable event is wrong, for the error's `field`."""
    if raw.type not in codec.REGISTRY.types():
        return "type"
    cls = codec.REGISTRY.payload_class(raw.type)
    if raw.v > cls.VERSION:
        return "v"
    try:
        cls.model_validate(codec.REGISTRY.upcast(raw.type, raw.v, raw.data))
    except ValidationError as e:
        loc = e.errors()[0]["loc"]
        return ".".join(["data", *(str(x) for x in loc)])
    except CorruptEvent:
        return "v"
    return "data"


def decode(index: int, raw: EventIn) -> Event:
    """The event, validated; InvalidInput naming `events[index]` and the field otherwise."""
    where = f"events[{index}]"
    try:
        event = codec.decode_row(
            id=raw.id,
            type=raw.type,
            stream=raw.stream,
            time=raw.time,
            v=raw.v,
            actor=raw.actor,
            trace=raw.trace,
            data=raw.data,
        )
    except CorruptEvent as e:
        raise InvalidInput(
            f"{where} (id {raw.id}): {e.message}", field=f"{where}.{_bad_field(raw)}"
        ) from None
    expected = event.data.stream()
    if event.stream != expected:
        raise InvalidInput(
            f"{where} (id {raw.id}): stream {raw.stream!r} does not match its payload, "
            f"which belongs on {expected!r}",
            field=f"{where}.stream",
        )
    return event


_catching_up = threading.Lock()


def _catch_up(backend: Backend) -> None:
    """Project what was just ingested, unless a catch-up is already under way (reads
    catch up too, so nothing waits on this)."""
    if _catching_up.acquire(blocking=False):
        try:
            backend.refresh()  # nothing where a projector service keeps the views (Kafka)
        finally:
            _catching_up.release()


TELEMETRY = frozenset(
    cls.TYPE
    for cls in (
        p.RunResumed, p.RunParamsLogged, p.RunMetricsLogged, p.RunTagsSet, p.RunTagDeleted,
        p.RunArtifactLogged, p.RunFinished,
    )
)  # fmt: skip
"""With auth on, what ingest accepts: what a run's logging spool ships. Everything else
(experiments, the registry, deployments, webhooks, identities) goes through commands."""


def authorize(backend: Backend, principal: Principal, events: list[Event]) -> list[Event]:
    """With auth on: only telemetry, only on runs the caller may EDIT, and stamped with the
    caller (whatever actor the client wrote). PermissionDenied names the first offender;
    then nothing of the batch is appended."""
    if not backend.settings.auth:
        return events
    stamped = []
    runs: set[object] = set()  # each run checked once: a batch is mostly one run's points
    for i, ev in enumerate(events):
        if ev.type not in TELEMETRY:
            raise PermissionDenied(
                f"events[{i}] is a {ev.type}: ingest takes only run telemetry "
                f"({', '.join(sorted(TELEMETRY))}); use the command's route for the rest",
                kind="event",
                key=ev.type,
                needs="a command",
            )
        run_id = getattr(ev.data, "run_id", None)  # every telemetry payload names its run
        if run_id not in runs:
            check(backend, principal, _EDIT_RUN, ev.data)
            runs.add(run_id)
        stamped.append(replace(ev, actor=principal.actor))
    return stamped


@router.post(
    "/events",
    summary="Append a batch of events (idempotent by event id)",
    responses={400: {"description": "an event is invalid; `field` names it: events[i].data..."}},
    dependencies=[checked("only run telemetry, on runs the caller may EDIT")],
)
def ingest(
    body: EventBatch,
    backend: BackendDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    request: Request,
) -> IngestOut:
    take_ingest(request, principal, len(body.events))
    events = authorize(backend, principal, [decode(i, raw) for i, raw in enumerate(body.events)])
    recorded = list(backend.log.append(events)) if events else []
    request.app.state.gateway_metrics.note_ingest(len(events))
    if not body.wait:
        if events:
            background.add_task(_catch_up, backend)
        return IngestOut(accepted=len(events), projected=False)
    # No events: a barrier (the SDK's flush after shipping without waiting), so wait for
    # everything on the log before this request, not for nothing.
    target = Checkpoint.of(recorded) if recorded else backend.log.head()
    backend.projector.wait_for(target, backend.settings.projection_timeout_s)
    rejected: list[RejectedOut] = []
    ids = [e.id for e in events]
    with backend.projector.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(DL.c.event_id, DL.c.type, DL.c.reason).where(
                    DL.c.event_id.in_(ids[start : start + 500])
                )
            )
            rejected.extend(RejectedOut(id=r.event_id, type=r.type, reason=r.reason) for r in rows)
    return IngestOut(accepted=len(events), projected=True, rejected=rejected)
