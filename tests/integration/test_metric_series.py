"""Metric series for charts (services/projector/series.py) on SQLite and PostgreSQL views:
answers from the rollups equal a brute-force downsampling of every point, whatever order
the points were logged in; spikes, NaN and infinities survive; zooming returns the points;
views made before rollups existed are backfilled; bad requests name what is wrong."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import ledgerflow as lf
from ledgerflow.entities import Metric, MetricSeries
from ledgerflow.events.settings import load_settings
from ledgerflow.exceptions import InvalidInput, NotFound
from ledgerflow.services.bootstrap import Backend, bootstrap

N = 64_000  # steps 0..N-1: wide ranges go through the rollups (tiers from 64 steps)
T0 = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def views_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/views.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def backend(data_dir: Path, views_db: str) -> Iterator[Backend]:
    b = bootstrap(load_settings(tracking_uri=str(data_dir), views_db=views_db))
    yield b
    b.close()


def _value(step: int) -> float:
    if step == 12_345:
        return 50.0  # a spike that must survive downsampling
    if step % 9_999 == 0:
        return math.nan
    if step == 40_000:
        return -math.inf
    return math.sin(step / 700) + (step % 7) / 10


def _points() -> list[Metric]:
    return [Metric("loss", _value(s), T0 + 3 * s, s) for s in range(N)]


def _logged(backend: Backend, points: list[Metric], batches: int = 7) -> tuple[lf.Client, str]:
    """Log `points` shuffled over several batches: late and out-of-order points."""
    client = lf.Client(backend=backend)
    run_id = client.create_run(client.create_experiment("series")).info.run_id
    shuffled = list(points)
    random.Random(7).shuffle(shuffled)
    size = len(shuffled) // batches + 1
    for start in range(0, len(shuffled), size):
        client.log_batch(run_id, metrics=shuffled[start : start + size])
    return client, run_id


def _brute(points: list[Metric], n: int, start: int, end: int, x: str = "step") -> dict:
    """Every point of [start, end] cut into n equal buckets, by the contract's definition."""
    of = (lambda m: m.step) if x == "step" else (lambda m: m.timestamp)
    inside = sorted(
        (m for m in points if start <= of(m) <= end),
        key=lambda m: (m.step, m.timestamp) if x == "step" else (m.timestamp, m.step),
    )
    span = end - start + 1
    buckets: dict[int, list[Metric]] = {}
    for m in inside:
        buckets.setdefault((of(m) - start) * n // span, []).append(m)
    out: dict[str, list] = {"xs": [], "values": [], "mins": [], "maxs": [], "timestamps": []}
    for group in buckets.values():
        finite = [m.value for m in group if not math.isnan(m.value)]
        out["xs"].append(of(group[0]))
        out["timestamps"].append(group[0].timestamp)
        out["values"].append(group[-1].value)
        out["mins"].append(min(finite) if finite else math.nan)
        out["maxs"].append(max(finite) if finite else math.nan)
    out["count"] = len(inside)
    return out


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def _check(series: MetricSeries, expected: dict) -> None:
    assert series.count == expected["count"]
    assert series.xs == expected["xs"]
    assert series.timestamps == expected["timestamps"]
    for name in ("values", "mins", "maxs"):
        assert _same(getattr(series, name), expected[name]), name


def test_a_wide_range_from_the_rollups_equals_downsampling_every_point(backend):
    points = _points()
    client, run_id = _logged(backend, points)
    # 125 buckets of 512 steps: the chart's buckets fall on the rollup tier's grid
    series = client.get_metric_series(run_id, "loss", points=125)
    assert series.downsampled and len(series.xs) == 125 and series.x == "step"
    _check(series, _brute(points, 125, 0, N - 1))
    assert max(series.maxs) == 50.0 and min(series.mins) == -math.inf
    # a part of the metric, again on the grid (chart buckets of 1024 steps from step 1024)
    series = client.get_metric_series(run_id, "loss", points=50, start=1_024, end=52_223)
    _check(series, _brute(points, 50, 1_024, 52_223))


def test_any_range_keeps_the_count_the_extremes_and_at_most_the_buckets_asked_for(backend):
    points = _points()
    client, run_id = _logged(backend, points)
    for n, start, end in ((1000, None, None), (333, 777, 60_001), (7, 12_000, 13_000)):
        s = client.get_metric_series(run_id, "loss", points=n, start=start, end=end)
        lo, hi = start or 0, N - 1 if end is None else end
        exact = _brute(points, n, lo, hi)
        assert s.downsampled and s.count == exact["count"] and len(s.xs) <= n
        assert s.xs == sorted(s.xs) and lo <= s.xs[0] and s.xs[-1] <= hi
        finite = [v for v in exact["maxs"] if not math.isnan(v)]
        assert max(v for v in s.maxs if not math.isnan(v)) == max(finite)
        assert min(v for v in s.mins if not math.isnan(v)) == min(
            v for v in exact["mins"] if not math.isnan(v)
        )


def test_zooming_in_returns_every_point_of_the_range(backend):
    points = _points()
    client, run_id = _logged(backend, points)
    s = client.get_metric_series(run_id, "loss", points=1000, start=12_300, end=12_400)
    assert not s.downsampled and s.count == 101
    assert s.xs == list(range(12_300, 12_401))
    assert _same(s.values, [_value(i) for i in range(12_300, 12_401)])
    assert s.mins == s.values or _same(s.mins, s.values)
    assert _same(s.maxs, s.values) and s.timestamps == [T0 + 3 * i for i in s.xs]


def test_time_on_the_x_axis_buckets_the_timestamps(backend):
    points = _points()
    client, run_id = _logged(backend, points)
    start = T0 // 4096 * 4096  # 50 chart buckets of 4096 ms, on the rollup tier's grid
    end = start + 50 * 4096 - 1
    s = client.get_metric_series(run_id, "loss", points=50, x="time", start=start, end=end)
    assert s.x == "time" and s.xs == s.timestamps and s.downsampled
    _check(s, _brute(points, 50, start, end, x="time"))
    s = client.get_metric_series(run_id, "loss", points=200, x="time")
    assert s.count == N and s.xs[0] == T0 and len(s.xs) <= 200
    zoom = client.get_metric_series(run_id, "loss", points=200, x="time", start=T0, end=T0 + 30)
    assert not zoom.downsampled and zoom.xs == [T0 + 3 * i for i in range(11)]


def test_several_series_come_back_in_the_order_asked(backend):
    client = lf.Client(backend=backend)
    exp = client.create_experiment("several")
    runs = [client.create_run(exp).info.run_id for _ in range(2)]
    for i, run_id in enumerate(runs):
        client.log_batch(run_id, metrics=[Metric("a", i + s, T0 + s, s) for s in range(10)])
    got = client.get_metric_series_bulk([(runs[1], "a"), (runs[0], "a"), (runs[0], "none")])
    assert [(s.run_id, s.key) for s in got] == [(runs[1], "a"), (runs[0], "a"), (runs[0], "none")]
    assert got[0].values == [1.0 + s for s in range(10)] and got[0].count == 10
    assert got[2] == MetricSeries(runs[0], "none", "step", 0, False)


def test_bad_requests_name_what_is_wrong(backend):
    client = lf.Client(backend=backend)
    run_id = client.create_run(client.create_experiment("bad")).info.run_id
    for kwargs, field in (
        ({"points": 1}, "points"),
        ({"points": 10_001}, "points"),
        ({"x": "wall"}, "x"),
        ({"start": 5, "end": 4}, "start"),
    ):
        with pytest.raises(InvalidInput) as e:
            client.get_metric_series(run_id, "m", **kwargs)
        assert e.value.field == field
    with pytest.raises(InvalidInput) as e:
        client.get_metric_series_bulk([(run_id, "m")] * 101)
    assert e.value.field == "series"
    with pytest.raises(NotFound):
        client.get_metric_series("no-such-run", "m")


def test_views_made_before_rollups_existed_are_backfilled(data_dir, views_db):
    settings = load_settings(tracking_uri=str(data_dir), views_db=views_db)
    backend = bootstrap(settings)
    few = [Metric("few", float(s % 3), T0 + 100 * s, 50 * s) for s in range(5)]
    try:
        client, run_id = _logged(backend, _points()[:5_000] + few, batches=3)
        before = client.get_metric_series(run_id, "loss", points=10)
        before_few = client.get_metric_series(run_id, "few", points=2)
        with backend.queries.engine.begin() as conn:
            conn.execute(text("DROP TABLE metric_rollups"))
    finally:
        backend.close()
    backend = bootstrap(settings)
    try:
        client = lf.Client(backend=backend)
        after = client.get_metric_series(run_id, "loss", points=10)
        after_few = client.get_metric_series(run_id, "few", points=2)
        with backend.queries.engine.connect() as conn:
            sql = "SELECT DISTINCT key FROM metric_rollups WHERE run_id = :r"
            keys = conn.execute(text(sql), {"r": run_id}).scalars().all()
    finally:
        backend.close()
    assert after.xs == before.xs and _same(after.maxs, before.maxs)
    assert _same(after.values, before.values) and after.count == before.count == 5_000
    assert keys == ["loss"]  # a metric of a few points has none: charts summarise its points
    assert after_few == before_few and after_few.downsampled and after_few.count == 5
