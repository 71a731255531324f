"""Metrics of a few points have no rollups (services/projector/rollups.py, RAW_UP_TO), and
a chart of one answers what views holding rollups for every metric answer (views made
before the threshold hold them): below, at and above the threshold, across it, with
points arriving one by one or in batches, on SQLite and PostgreSQL. A metric past the
threshold has the rollups of all its points, as if it had had them from its first."""

from __future__ import annotations

import math
import random
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine

from ledgerflow.events import payloads as p
from ledgerflow.events.entities import MetricSeries
from ledgerflow.events.envelope import Event
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.projector import rollups
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.series import metric_series
from ledgerflow.services.projector.sql import fetch_all

T = rollups.RAW_UP_TO
T0 = 1_700_000_000_000
SIZES = (0, 1, 2, 5, T - 1, T, T + 1, T + 2, 2 * T + 3, 300)
"""Points per metric: none, a few, around the threshold, well past it (300 goes through
the vectorised fold when it arrives at once)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def views_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """PostgreSQL views shared by the examples (each names its own runs), or None: a
    SQLite file per example."""
    yield None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def _point(rng: random.Random, key: str) -> tuple[str, float, int, int]:
    value = rng.choice(
        [rng.uniform(-5, 5), rng.uniform(-5, 5), round(rng.uniform(-2, 2)), math.nan, math.inf]
    )
    return (key, value, T0 + rng.randrange(0, 400_000), rng.randrange(0, 5_000))


def _events(
    prefix: str, sizes: list[int], seed: int, chunk: int
) -> tuple[list[Event], dict[tuple[str, str], list[tuple[str, float, int, int]]]]:
    """Two runs' metrics of `sizes` points, shuffled into batches of 1 to `chunk` points
    (one run each); and each metric's points in log order."""
    rng = random.Random(seed)
    runs = [f"{prefix}-r{i}" for i in range(2)]
    experiment = f"{prefix}-e"
    events = [Event.of(p.ExperimentCreated(experiment_id=experiment, name=experiment,
                                           artifact_location="/a"))]  # fmt: skip
    events += [
        Event.of(p.RunStarted(run_id=r, experiment_id=experiment, run_name=r, start_time=T0,
                              user_id="u", artifact_uri="/a"))
        for r in runs
    ]  # fmt: skip
    todo = [(runs[i % 2], f"m{i}") for i, n in enumerate(sizes) for _ in range(n)]
    rng.shuffle(todo)
    logged: dict[tuple[str, str], list[tuple[str, float, int, int]]] = {}
    while todo:
        run = todo[0][0]
        mine = [t for t in todo if t[0] == run][: rng.randint(1, chunk)]
        for t in mine:
            todo.remove(t)
        points = tuple(_point(rng, key) for _, key in mine)
        for point in points:
            logged.setdefault((run, point[0]), []).append(point)
        events.append(Event.of(p.RunMetricsLogged(run_id=run, points=points)))
    return events, logged


def _requests(rng: random.Random) -> list[tuple[int, str, int | None, int | None]]:
    """Charts of a metric: whole, and ranges wide enough for the rollup tiers."""
    out: list[tuple[int, str, int | None, int | None]] = []
    for points in (2, 3, 7, T // 2, 1_000):
        out += [(points, "step", None, None), (points, "time", None, None)]
        lo = rng.randrange(0, 2_000)
        out.append((points, "step", lo, lo + rng.randrange(0, 4_000)))
        lo = T0 + rng.randrange(0, 100_000)
        out.append((points, "time", lo, lo + rng.randrange(0, 400_000)))
    return out


def _answer(series: MetricSeries) -> tuple[Any, ...]:
    nan = "NaN"
    plain = [
        [nan if isinstance(v, float) and math.isnan(v) else v for v in values]
        for values in (series.values, series.mins, series.maxs)
    ]
    return (series.x, series.count, series.downsampled, series.xs, series.timestamps, *plain)


def _rows(conn: Connection, run_id: str, key: str) -> list[tuple[Any, ...]]:
    cols = [c for c in rollups.COLUMNS if c != "run_id"]
    sql = f"SELECT {', '.join(cols)} FROM metric_rollups WHERE run_id = ? AND key = ?"
    return sorted(fetch_all(conn, sql, (run_id, key)), key=repr)


def _made(key: str, points: list[tuple[str, float, int, int]]) -> list[tuple[Any, ...]]:
    cols = [c for c in rollups.COLUMNS if c != "run_id"]
    return sorted(
        (tuple(r[c] for c in cols) for r in rollups.summarise("r", key, points)), key=repr
    )


@contextmanager
def _views(url: str | None) -> Iterator[tuple[Engine, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite:///{tmp}/views.db", writer=True)
        try:
            yield engine, Path(tmp)
        finally:
            engine.dispose()


def _old_views(conn: Connection, metrics: list[tuple[str, str]]) -> None:
    """Give every metric without rollups the rows views made before the threshold hold."""
    for run_id, key in metrics:
        if not _rows(conn, run_id, key):
            points = rollups.points_of(conn, run_id, key)
            if points:
                rollups.fold(conn, run_id, key, points)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.sampled_from(SIZES), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
    chunk=st.sampled_from([1, 3, T, 400]),
    batch=st.sampled_from([1, 2, 7, 500]),
    cut=st.floats(0, 1),
)
@example(sizes=[T + 1, T, 2], seed=1, chunk=1, batch=1, cut=0.5)  # one point at a time
@example(sizes=[T + 1, 300, 1], seed=2, chunk=400, batch=500, cut=0.0)  # all at once
def test_charts_of_metrics_without_rollups_answer_as_views_holding_rollups(
    views_url, sizes, seed, chunk, batch, cut
):
    with _views(views_url) as (engine, tmp):
        run = uuid.uuid4().hex[:10]  # the examples share PostgreSQL views
        new_log, old_log = SQLiteEventLog(tmp / "new.db"), SQLiteEventLog(tmp / "old.db")
        try:
            events, logged = _events(f"{run}-new", sizes, seed, chunk)
            new_log.append(events)
            Projector(new_log, engine, name=f"{run}-new", batch=batch).catch_up()

            # the same events into views that held rollups for every metric part way
            old_events, old_logged = _events(f"{run}-old", sizes, seed, chunk)
            old = Projector(old_log, engine, name=f"{run}-old", batch=batch)
            split = round(cut * len(old_events))
            old_log.append(old_events[:split])
            old.catch_up()
            with engine.begin() as conn:
                _old_views(conn, sorted(old_logged))
            old_log.append(old_events[split:])
            old.catch_up()
        finally:
            new_log.close()
            old_log.close()

        rng = random.Random(seed)
        with engine.connect() as conn:
            for ((run_id, key), points), (old_id, _) in zip(
                sorted(logged.items()), sorted(old_logged), strict=True
            ):
                made = _made(key, points)
                assert _rows(conn, run_id, key) == (made if len(points) > T else [])
                assert _rows(conn, old_id, key) in (made, [])
                for request in _requests(rng):
                    new = metric_series(conn, run_id, key, *request)
                    before = metric_series(conn, old_id, key, *request)
                    assert _answer(new) == _answer(before), (key, len(points), request)
