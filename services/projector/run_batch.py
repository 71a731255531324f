"""A run's telemetry folded a batch at a time: run.started, params, metrics, tags and
run.finished, the events a bulk log is made of.

The per-event handlers (services/projector/handlers.py) build and run a few SQLAlchemy
statements per event; at tens of thousands of events a second that is most of the
projector's work. Here a stretch of consecutive telemetry events is folded in memory,
in log order, over what the views hold of its runs (read with one query per table), and
written with one `executemany` per table: new runs inserted with their final state,
params, tags, points and latest metrics in bulk.

The fold makes the same decisions as the handlers, and gives the same rows. It does not
dead-letter: an event the handlers would reject raises `Rejected` here, and the projector
then applies its batch again one event at a time (`Projector.apply_all`), so only that
event is dead-lettered, by its handler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Recorded
from ledgerflow.services.projector import handlers
from ledgerflow.services.projector.handlers import EveryEvent, Handler, Rejected, RunFacts
from ledgerflow.services.projector.sql import execute_many, fetch_in

_STANDS_IN_FOR: dict[str, Handler] = {
    p.RunStarted.TYPE: handlers.run_started,
    p.RunParamsLogged.TYPE: handlers.params_logged,
    p.RunMetricsLogged.TYPE: handlers.metrics_logged,
    p.RunTagsSet.TYPE: handlers.tags_set,
    p.RunFinished.TYPE: handlers.run_finished,
}
TYPES = frozenset(_STANDS_IN_FOR)
"""The event types folded here; any other type ends a stretch."""

_INSERT_RUN = (
    "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, "
    "end_time, lifecycle_stage, artifact_uri, parent_run_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)"
)
_UPDATE_RUN = "UPDATE runs SET run_name = ?, status = ?, end_time = ? WHERE run_id = ?"
_INSERT_PARAM = "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)"
_UPSERT_TAG = (
    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
_INSERT_POINT = (
    "INSERT INTO metric_points (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?)"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, "
    "timestamp = excluded.timestamp, value = excluded.value "
    "WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
    "AND excluded.timestamp >= latest_metrics.timestamp)"
)
_RUNS = "SELECT run_id, experiment_id, run_name, status, end_time FROM runs WHERE run_id IN ({})"
_STAGES = "SELECT experiment_id, lifecycle_stage FROM experiments WHERE experiment_id IN ({})"
_PARAMS = "SELECT run_id, key, value FROM params WHERE run_id IN ({})"


@dataclass
class _Run:
    """A run as the stretch has folded it so far."""

    experiment_id: str
    run_name: str
    status: str
    end_time: int | None
    new: p.RunStarted | None = None
    """The run.started of a run this stretch creates (its row is inserted at the end)."""
    changed: bool = False
    params: dict[str, str] = field(default_factory=dict)
    facts: RunFacts = field(init=False)
    """What the views over every event are told of the run: made again when its status
    changes (its experiment never does)."""

    def __post_init__(self) -> None:
        self.facts = RunFacts(self.experiment_id, self.status)


def foldable_types(
    registered: Mapping[str, Handler], views: Sequence[EveryEvent]
) -> frozenset[str]:
    """The types `apply_stretch` may fold: TYPES whose registered handler is still the one
    it stands in for, when every view over every event can note without the views."""
    if not all(v.known is not None for v in views):
        return frozenset()
    return frozenset(t for t in TYPES if registered.get(t) is _STANDS_IN_FOR[t])


def apply_stretch(
    conn: Connection, items: Sequence[Recorded], views: Sequence[EveryEvent]
) -> list[list[Any]]:
    """Fold `items` (every one of a type in TYPES, in log order) into the views; return
    what each view over every event noted for each item, as `note` would have. Raises
    Rejected where a handler would reject an event."""
    run_ids = sorted({item.event.data.run_id for item in items})  # type: ignore[attr-defined]
    runs: dict[str, _Run] = {
        r: _Run(e, name, status, end) for r, e, name, status, end in fetch_in(conn, _RUNS, run_ids)
    }
    for run_id, key, value in fetch_in(conn, _PARAMS, sorted(runs)):
        runs[run_id].params[key] = value
    started = sorted(
        {d.experiment_id for i in items if isinstance(d := i.event.data, p.RunStarted)}
    )
    stages = dict(fetch_in(conn, _STAGES, started)) if started else {}

    notes: list[list[Any]] = [[] for _ in views]
    params: list[tuple[str, str, str]] = []
    tags: dict[tuple[str, str], str] = {}
    points: list[tuple[str, str, int, int, float | None]] = []
    latest: dict[tuple[str, str], tuple[int, int, float | None]] = {}
    isnan = math.isnan
    noting = [(kept.append, view.known) for kept, view in zip(notes, views, strict=True)]
    for item in items:
        d = item.event.data
        run = runs.get(d.run_id)  # type: ignore[attr-defined]
        facts = None if run is None else run.facts
        for keep, known in noting:
            note = known(item, facts)  # type: ignore[misc]
            if note is not None:
                keep(note)
        if isinstance(d, p.RunStarted):
            if stages.get(d.experiment_id, "active") != "active":
                raise Rejected(
                    f"experiment {d.experiment_id} is deleted; restore it to start runs in it"
                )
            if run is not None:
                raise Rejected(f"run {d.run_id} already exists")
            runs[d.run_id] = _Run(d.experiment_id, d.run_name, "RUNNING", None, new=d)
            for k, v in d.tags.items():
                tags[d.run_id, k] = v
            continue
        if run is None:
            raise Rejected(f"run {d.run_id} does not exist")  # type: ignore[attr-defined]
        if isinstance(d, p.RunParamsLogged):
            run_id, had = d.run_id, run.params
            for key, value in d.params.items():
                old = had.get(key)
                if old is None:
                    had[key] = value
                    params.append((run_id, key, value))
                elif old != value:
                    raise Rejected(
                        f"param {key!r} of run {d.run_id} is already {old!r}; "
                        f"params cannot change (tried {value!r})"
                    )
        elif isinstance(d, p.RunMetricsLogged):
            run_id = d.run_id
            for key, number, ts, step in d.points:
                stored = None if isnan(number) else number
                points.append((run_id, key, step, ts, stored))
                cur = latest.get((run_id, key))
                if cur is None or step > cur[0] or (step == cur[0] and ts >= cur[1]):
                    latest[run_id, key] = (step, ts, stored)
        elif isinstance(d, p.RunTagsSet):
            for k, v in d.tags.items():
                tags[d.run_id, k] = v
            if "mlflow.runName" in d.tags:
                run.run_name = d.tags["mlflow.runName"]
                run.changed = True
        elif isinstance(d, p.RunFinished):
            run.status, run.end_time, run.changed = d.status, d.end_time, True
            run.facts = RunFacts(run.experiment_id, d.status)
        else:  # pragma: no cover - TYPES and these branches are kept together
            raise TypeError(f"{item.event.type} is not run telemetry")
    _write(conn, runs, params, tags, points, latest)
    return notes


def _write(
    conn: Connection,
    runs: dict[str, _Run],
    params: list[tuple[str, str, str]],
    tags: dict[tuple[str, str], str],
    points: list[tuple[str, str, int, int, float | None]],
    latest: dict[tuple[str, str], tuple[int, int, float | None]],
) -> None:
    """Write what the stretch folded: runs before the rows that name them."""
    inserted = [
        (r, s.experiment_id, run.run_name, s.user_id, run.status, s.start_time, run.end_time,
         s.artifact_uri, s.parent_run_id)
        for r, run in runs.items() if (s := run.new) is not None
    ]  # fmt: skip
    execute_many(conn, _INSERT_RUN, inserted)
    changed = [
        (run.run_name, run.status, run.end_time, r)
        for r, run in runs.items()
        if run.new is None and run.changed
    ]
    execute_many(conn, _UPDATE_RUN, changed)
    execute_many(conn, _INSERT_PARAM, params)
    execute_many(conn, _UPSERT_TAG, [(r, k, v) for (r, k), v in tags.items()])
    execute_many(conn, _INSERT_POINT, points)
    execute_many(conn, _UPSERT_LATEST, [(r, k, *v) for (r, k), v in latest.items()])
