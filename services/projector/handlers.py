"""How each experiment and run event changes the views.

A handler receives the open transaction and one decoded event. When the event
contradicts what its stream already says (a param changed, a run in a missing
experiment), it raises `Rejected`; the projector then rolls that event's
changes back and dead-letters it with the reason. Decisions depend only on the
order of events within their stream, so every log adapter gives the same views.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.services.projector.sql import bulk_insert, upsert
from ledgerflow.services.projector.tables import (
    ARTIFACTS as A,
)
from ledgerflow.services.projector.tables import (
    DATASET_INPUTS as DI,
)
from ledgerflow.services.projector.tables import (
    EXPERIMENT_TAGS as ET,
)
from ledgerflow.services.projector.tables import (
    EXPERIMENTS as E,
)
from ledgerflow.services.projector.tables import (
    LATEST_METRICS as LM,
)
from ledgerflow.services.projector.tables import (
    METRIC_POINTS as MP,
)
from ledgerflow.services.projector.tables import (
    PARAMS as PA,
)
from ledgerflow.services.projector.tables import (
    RUNS as R,
)
from ledgerflow.services.projector.tables import (
    TAGS as T,
)

Handler = Callable[[Connection, Event], None]
HANDLERS: dict[str, Handler] = {}


P = TypeVar("P", bound=p.Payload)


def _data(ev: Event, cls: type[P]) -> P:
    """The event's payload as the type its handler was registered for."""
    return cast(P, ev.data)


class Rejected(Exception):
    """The event cannot be applied to the current state of its stream."""


def handles(cls: type[p.Payload], *, also: bool = False) -> Callable[[Handler], Handler]:
    """Register the handler of an event type. With `also`, a second view folds the same
    type: its handler runs after the first, in the same savepoint (a rejection by either
    undoes both)."""

    def register(fn: Handler) -> Handler:
        first = HANDLERS.get(cls.TYPE)
        if also:
            if first is None:
                raise TypeError(f"{cls.TYPE} has no handler to add {fn.__name__} to")
            HANDLERS[cls.TYPE] = _both(first, fn)
        elif first is not None:
            raise TypeError(f"{cls.TYPE} already has a handler ({first.__name__})")
        else:
            HANDLERS[cls.TYPE] = fn
        return fn

    return register


class RunFacts(NamedTuple):
    """What a run's row says just before an event: for the views over every event."""

    experiment_id: str
    status: str


@dataclass(frozen=True)
class EveryEvent:
    """A view over every event the views fold, whatever its type (the audit index).

    `note` runs just before the event's own handler, so it sees the views as they were
    before the event (an alias's old version); what it returns is kept only if the event
    is applied, and `write` gets the kept notes once per batch, in log order, inside the
    same transaction: one bulk statement per batch rather than one per event, which
    matters on the metric hot path. A `note` that raises rejects the event like a handler.
    """

    note: Callable[[Connection, Recorded], Any]
    write: Callable[[Connection, Sequence[Any]], None]
    known: Callable[[Recorded, RunFacts | None], Any] | None = None
    """What `note` gives for a run's telemetry event (services/projector/run_batch.py),
    from what the batch knows of the run just before the event instead of from the views
    (which the batch writes at its end); None: this view cannot, so such events are
    applied one by one."""


EVERY_EVENT: list[EveryEvent] = []


def every_event(view: EveryEvent) -> EveryEvent:
    """Register a view over every folded event."""
    EVERY_EVENT.append(view)
    return view


def _both(first: Handler, then: Handler) -> Handler:
    def both(conn: Connection, ev: Event) -> None:
        first(conn, ev)
        then(conn, ev)

    both.__name__ = f"{first.__name__}+{then.__name__}"
    return both


def _experiment(conn: Connection, experiment_id: str) -> Any:
    row = conn.execute(select(E).where(E.c.experiment_id == experiment_id)).first()
    if row is None:
        raise Rejected(f"experiment {experiment_id} does not exist")
    return row


def _run(conn: Connection, run_id: str) -> Any:
    row = conn.execute(select(R).where(R.c.run_id == run_id)).first()
    if row is None:
        raise Rejected(f"run {run_id} does not exist")
    return row


def _upsert_kv(conn: Connection, table: Any, id_col: str, id_: str, items: dict[str, str]) -> None:
    upsert(
        conn,
        table,
        (id_col, "key"),
        [{id_col: id_, "key": k, "value": v} for k, v in items.items()],
    )


@handles(p.ExperimentCreated)
def experiment_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.ExperimentCreated)
    if conn.execute(select(E.c.experiment_id).where(E.c.experiment_id == d.experiment_id)).first():
        raise Rejected(f"experiment id {d.experiment_id} already exists")
    taken = conn.execute(select(E.c.experiment_id).where(E.c.name == d.name)).first()
    if taken:
        raise Rejected(f"an experiment named {d.name!r} already exists (id {taken[0]})")
    conn.execute(
        insert(E).values(
            experiment_id=d.experiment_id,
            name=d.name,
            artifact_location=d.artifact_location,
            lifecycle_stage="active",
            creation_time=ev.time,
            last_update_time=ev.time,
        )
    )
    _upsert_kv(conn, ET, "experiment_id", d.experiment_id, d.tags)


@handles(p.ExperimentRenamed)
def experiment_renamed(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.ExperimentRenamed)
    _experiment(conn, d.experiment_id)
    taken = conn.execute(select(E.c.experiment_id).where(E.c.name == d.name)).first()
    if taken and taken[0] != d.experiment_id:
        raise Rejected(f"an experiment named {d.name!r} already exists (id {taken[0]})")
    conn.execute(
        update(E)
        .where(E.c.experiment_id == d.experiment_id)
        .values(name=d.name, last_update_time=ev.time)
    )


def _set_experiment_stage(conn: Connection, ev: Event, stage: str) -> None:
    experiment_id: str = ev.data.experiment_id  # type: ignore[attr-defined]
    _experiment(conn, experiment_id)
    conn.execute(
        update(E)
        .where(E.c.experiment_id == experiment_id)
        .values(lifecycle_stage=stage, last_update_time=ev.time)
    )
    # As in MLflow, an experiment's runs follow it into (and out of) deletion.
    conn.execute(update(R).where(R.c.experiment_id == experiment_id).values(lifecycle_stage=stage))


@handles(p.ExperimentDeleted)
def experiment_deleted(conn: Connection, ev: Event) -> None:
    _set_experiment_stage(conn, ev, "deleted")


@handles(p.ExperimentRestored)
def experiment_restored(conn: Connection, ev: Event) -> None:
    _set_experiment_stage(conn, ev, "active")


@handles(p.ExperimentTagSet)
def experiment_tag_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.ExperimentTagSet)
    _experiment(conn, d.experiment_id)
    _upsert_kv(conn, ET, "experiment_id", d.experiment_id, {d.key: d.value})


@handles(p.ExperimentTagDeleted)
def experiment_tag_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.ExperimentTagDeleted)
    conn.execute(delete(ET).where(and_(ET.c.experiment_id == d.experiment_id, ET.c.key == d.key)))


@handles(p.RunStarted)
def run_started(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunStarted)
    # The command checked the experiment; on a partitioned log its creation may be
    # projected after this (another partition), so only a known, deleted one rejects.
    exp = conn.execute(select(E).where(E.c.experiment_id == d.experiment_id)).first()
    if exp is not None and exp.lifecycle_stage != "active":
        raise Rejected(f"experiment {d.experiment_id} is deleted; restore it to start runs in it")
    if conn.execute(select(R.c.run_id).where(R.c.run_id == d.run_id)).first():
        raise Rejected(f"run {d.run_id} already exists")
    conn.execute(
        insert(R).values(
            run_id=d.run_id,
            experiment_id=d.experiment_id,
            run_name=d.run_name,
            user_id=d.user_id,
            status="RUNNING",
            start_time=d.start_time,
            end_time=None,
            lifecycle_stage="active",
            artifact_uri=d.artifact_uri,
            parent_run_id=d.parent_run_id,
        )
    )
    _upsert_kv(conn, T, "run_id", d.run_id, d.tags)


@handles(p.RunResumed)
def run_resumed(conn: Connection, ev: Event) -> None:
    run_id = _data(ev, p.RunResumed).run_id
    _run(conn, run_id)
    conn.execute(update(R).where(R.c.run_id == run_id).values(status="RUNNING", end_time=None))


@handles(p.RunParamsLogged)
def params_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunParamsLogged)
    _run(conn, d.run_id)
    existing: dict[str, str] = dict(
        conn.execute(
            select(PA.c.key, PA.c.value).where(
                and_(PA.c.run_id == d.run_id, PA.c.key.in_(list(d.params)))
            )
        ).all()
    )
    for key, value in d.params.items():
        if key in existing and existing[key] != value:
            raise Rejected(
                f"param {key!r} of run {d.run_id} is already {existing[key]!r}; "
                f"params cannot change (tried {value!r})"
            )
    new = [
        {"run_id": d.run_id, "key": k, "value": v} for k, v in d.params.items() if k not in existing
    ]
    if new:
        conn.execute(insert(PA), new)


@handles(p.RunMetricsLogged)
def metrics_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunMetricsLogged)
    _run(conn, d.run_id)
    run_id = d.run_id
    rows = []
    latest: dict[str, tuple[int, int, float | None]] = {}
    isnan = math.isnan
    for key, value, ts, step in d.points:
        v = None if isnan(value) else value
        rows.append((run_id, key, step, ts, v))
        cur = latest.get(key)
        if cur is None or step > cur[0] or (step == cur[0] and ts >= cur[1]):
            latest[key] = (step, ts, v)
    if rows:
        bulk_insert(conn, MP, ("run_id", "key", "step", "timestamp", "value"), rows)
    upsert(
        conn,
        LM,
        ("run_id", "key"),
        [
            {"run_id": run_id, "key": k, "step": st, "timestamp": ts, "value": v}
            for k, (st, ts, v) in latest.items()
        ],
        newer_only=True,
    )


@handles(p.RunTagsSet)
def tags_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunTagsSet)
    _run(conn, d.run_id)
    _upsert_kv(conn, T, "run_id", d.run_id, d.tags)
    if "mlflow.runName" in d.tags:
        conn.execute(
            update(R).where(R.c.run_id == d.run_id).values(run_name=d.tags["mlflow.runName"])
        )


@handles(p.RunTagDeleted)
def tag_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunTagDeleted)
    _run(conn, d.run_id)
    gone = conn.execute(delete(T).where(and_(T.c.run_id == d.run_id, T.c.key == d.key)))
    if gone.rowcount == 0:
        raise Rejected(f"run {d.run_id} has no tag {d.key!r}")


@handles(p.RunArtifactLogged)
def artifact_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunArtifactLogged)
    _run(conn, d.run_id)
    upsert(
        conn,
        A,
        ("run_id", "path"),
        [{"run_id": d.run_id, "path": d.path, "size": d.size, "sha256": d.sha256, "time": ev.time}],
    )


@handles(p.RunInputsLogged)
def inputs_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunInputsLogged)
    _run(conn, d.run_id)
    rows = {
        (x.name, x.digest): {
            "run_id": d.run_id,
            **x.model_dump(exclude={"tags"}),
            "tags": json.dumps(x.tags, sort_keys=True),
        }
        for x in d.datasets
    }
    upsert(conn, DI, ("run_id", "name", "digest"), list(rows.values()))


@handles(p.RunFinished)
def run_finished(conn: Connection, ev: Event) -> None:
    d = _data(ev, p.RunFinished)
    _run(conn, d.run_id)
    conn.execute(
        update(R).where(R.c.run_id == d.run_id).values(status=d.status, end_time=d.end_time)
    )


def _set_run_stage(conn: Connection, run_id: str, stage: str) -> None:
    _run(conn, run_id)
    conn.execute(update(R).where(R.c.run_id == run_id).values(lifecycle_stage=stage))


@handles(p.RunDeleted)
def run_deleted(conn: Connection, ev: Event) -> None:
    _set_run_stage(conn, _data(ev, p.RunDeleted).run_id, "deleted")


@handles(p.RunRestored)
def run_restored(conn: Connection, ev: Event) -> None:
    _set_run_stage(conn, _data(ev, p.RunRestored).run_id, "active")


def count_rows(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
