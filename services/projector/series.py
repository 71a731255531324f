"""Metric series for charts: a range of a metric in at most N buckets that keep its shape.

The range [start, end] (steps, or timestamps in ms) is cut into N equal buckets. Each
bucket that holds points answers its first point's x and timestamp, its last value, and
its min and max (NaN left out), so a spike survives any zoom level. A range holding N
points or fewer answers every point.

Wide ranges read the rollups (services/projector/rollups.py): the widest tier whose
buckets are no wider than one chart bucket, so fewer than 8 N rows, plus the raw points
of the two partial tier buckets at the edges (each narrower than one chart bucket). A
tier bucket counts in the chart bucket its first point falls in, so chart buckets snap
to the tier's grid, by less than one chart bucket. Narrow ranges (under 64 N steps or
ms) read the points themselves over the (run, key, x) index.

A metric of a few points has no rollups (rollups.RAW_UP_TO): its tier rows are made
from its points here, as the projector would have stored them, so its answers are those
of views that hold rollups for every metric (views made before the threshold do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from ledgerflow.events.entities import MetricSeries
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector import rollups
from ledgerflow.services.projector.rollups import TIERS
from ledgerflow.services.projector.sql import fetch_all

AXES = ("step", "time")
MAX_POINTS = 10_000
MAX_SERIES = 100
DEFAULT_POINTS = 1_000

_COLUMN = {"step": ("step", "timestamp"), "time": ("timestamp", "step")}
# (first x, first other, last x, last other, last value, min, max, n): a tier row or a point
Part = tuple[int, int, int, int, float | None, float | None, float | None, int]


def check_request(points: Any, x: Any, start: Any, end: Any) -> None:
    """InvalidInput naming the first bad argument of a series request."""
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= MAX_POINTS:
        raise InvalidInput(
            f"points must be an integer from 2 to {MAX_POINTS}, got {points!r}", field="points"
        )
    if x not in AXES:
        raise InvalidInput(f"x must be 'step' or 'time', got {x!r}", field="x")
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput(f"{name} must be an integer or null, got {value!r}", field=name)
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"start ({start}) is after end ({end})", field="start")


def metric_series(
    conn: Connection,
    run_id: str,
    key: str,
    points: int,
    x: str,
    start: int | None,
    end: int | None,
) -> MetricSeries:
    """The series of `key` in run `run_id` (which must exist; check_request first)."""
    col, _ = _COLUMN[x]
    if start is None or end is None:
        # two statements: SQLite answers a lone MIN or MAX from the index, not both at once
        where = "FROM metric_points WHERE run_id = ? AND key = ?"
        lo = fetch_all(conn, f"SELECT MIN({col}) {where}", (run_id, key))[0][0]
        hi = fetch_all(conn, f"SELECT MAX({col}) {where}", (run_id, key))[0][0]
        if lo is None:
            return MetricSeries(run_id, key, x, 0, False)
        start = lo if start is None else start
        end = hi if end is None else end
    if start > end:
        return MetricSeries(run_id, key, x, 0, False)
    span = end - start + 1
    parts = _from_rollups(conn, run_id, key, x, points, start, end)
    if parts is None or sum(part[7] for part in parts) <= points:
        parts = _raw(conn, run_id, key, x, start, end)
        if len(parts) <= points:
            return _every_point(run_id, key, x, parts)
    return _bucketed(run_id, key, x, parts, points, start, span)


def _tier(x: str, points: int, span: int) -> int | None:
    """The widest tier no wider than one chart bucket, if any."""
    fitting = [w for w in TIERS[x] if w * points <= span]
    return fitting[-1] if fitting else None


def _from_rollups(
    conn: Connection, run_id: str, key: str, x: str, points: int, start: int, end: int
) -> list[Part] | None:
    width = _tier(x, points, end - start + 1)
    if width is None:
        return None
    first = -(-start // width)  # the first tier bucket wholly inside the range
    stop = (end + 1) // width  # and the one after the last
    if first >= stop:
        return None
    if x == "step":
        cols = "first_step, first_ts, last_step, last_ts"
    else:
        cols = "first_ts, first_step, last_ts, last_step"
    rows = fetch_all(
        conn,
        f"SELECT {cols}, last_value, min_value, max_value, n FROM metric_rollups "
        "WHERE run_id = ? AND key = ? AND axis = ? AND width = ? AND bucket BETWEEN ? AND ? "
        "ORDER BY bucket",
        (run_id, key, x, width, first, stop - 1),
    )
    if not rows and not _has_rollups(conn, run_id, key):
        rows = _summarised(conn, run_id, key, x, width, first, stop - 1)
    head = _raw(conn, run_id, key, x, start, first * width - 1)
    tail = _raw(conn, run_id, key, x, stop * width, end)
    return head + rows + tail


def _has_rollups(conn: Connection, run_id: str, key: str) -> bool:
    sql = "SELECT 1 FROM metric_rollups WHERE run_id = ? AND key = ? LIMIT 1"
    return bool(fetch_all(conn, sql, (run_id, key)))


def _summarised(
    conn: Connection, run_id: str, key: str, x: str, width: int, first: int, last: int
) -> list[Part]:
    """The rows of tier `width` from `first` to `last` that a metric without rollups would
    have stored: made from its points (at most rollups.RAW_UP_TO of them)."""
    made = rollups.summarise(run_id, key, rollups.points_of(conn, run_id, key))
    fx, fo, lx, lo = ("step", "ts") * 2 if x == "step" else ("ts", "step") * 2
    return [
        (r[f"first_{fx}"], r[f"first_{fo}"], r[f"last_{lx}"], r[f"last_{lo}"],
         r["last_value"], r["min_value"], r["max_value"], r["n"])
        for r in sorted(made, key=itemgetter("bucket"))
        if r["axis"] == x and r["width"] == width and first <= r["bucket"] <= last
    ]  # fmt: skip


def _raw(conn: Connection, run_id: str, key: str, x: str, start: int, end: int) -> list[Part]:
    if start > end:
        return []
    col, other = _COLUMN[x]
    rows = fetch_all(
        conn,
        f"SELECT {col}, {other}, value FROM metric_points "
        f"WHERE run_id = ? AND key = ? AND {col} BETWEEN ? AND ? ORDER BY {col}, {other}, id",
        (run_id, key, start, end),
    )
    return [(a, b, a, b, v, v, v, 1) for a, b, v in rows]


def _float(v: float | None) -> float:
    return math.nan if v is None else v


def _every_point(run_id: str, key: str, x: str, parts: Sequence[Part]) -> MetricSeries:
    xs = [part[0] for part in parts]
    values = [_float(part[4]) for part in parts]
    timestamps = [part[1] for part in parts] if x == "step" else xs
    return MetricSeries(
        run_id, key, x, len(parts), False, xs, values, list(values), list(values), timestamps
    )


def _bucketed(
    run_id: str, key: str, x: str, parts: Sequence[Part], points: int, start: int, span: int
) -> MetricSeries:
    xs: list[int] = []
    others: list[int] = []
    values: list[float] = []
    mins: list[float | None] = []
    maxs: list[float | None] = []
    count = 0
    current = -1
    for fx, fo, _, _, last, lo, hi, n in parts:  # in x order: first and last come for free
        count += n
        bucket = (fx - start) * points // span
        if bucket != current:
            current = bucket
            xs.append(fx)
            others.append(fo)
            values.append(_float(last))
            mins.append(lo)
            maxs.append(hi)
            continue
        values[-1] = _float(last)
        if lo is not None and (mins[-1] is None or lo < mins[-1]):
            mins[-1] = lo
        if hi is not None and (maxs[-1] is None or hi > maxs[-1]):
            maxs[-1] = hi
    return MetricSeries(
        run_id,
        key,
        x,
        count,
        True,
        xs,
        values,
        [_float(v) for v in mins],
        [_float(v) for v in maxs],
        others if x == "step" else xs,
    )
