"""Metric rollups: each metric's points summarised per bucket at several widths, like the
tiers of a round-robin database, so a chart of a wide range reads at most about eight
rows per bucket it draws, whatever the number of points (services/projector/series.py).

Buckets are fixed slices of the axis (`step // width`, `timestamp // width`), so points
logged late or out of order land in the bucket they belong to, and folding a batch is a
merge with what is stored: counts add, min and max combine, the first and last point
are the smallest and largest in the axis' order (ties: the later event is last). The
merge does not depend on how events are batched, so replaying the log gives the same
rows as projecting it incrementally.

A metric of at most `RAW_UP_TO` points has no rollups: a chart of it reads its points
and summarises them the same way (series.py), so it answers what rollups would. Most
metrics of a bulk log are that short (a final score, a few epochs), and their ~16 rows
each were most of a replay's work. The batch that takes a metric past `RAW_UP_TO` folds
its earlier points in from `metric_points`; from then on batches merge as above.

The projector folds metric points here once per batch (an `EveryEvent` view): one
vectorised pass per axis over the batch's points, one query for which of the batch's
metrics have stored rollups, one read per such metric, one count of the points of those
without, and one upsert for the batch. Metrics of runs started in the batch have no
earlier points, so a bulk load of new runs reads nothing per metric.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Recorded
from ledgerflow.services.projector.handlers import EveryEvent, every_event
from ledgerflow.services.projector.sql import execute_many, fetch_all
from ledgerflow.services.projector.tables import METRIC_ROLLUPS as MR

if TYPE_CHECKING:
    import numpy as np

TIERS: dict[str, tuple[int, ...]] = {
    "step": tuple(64 * 8**k for k in range(6)),  # 64 .. 2,097,152 steps
    "time": tuple(64 * 8**k for k in range(9)),  # 64 ms .. about 12 days
}
"""Bucket widths per axis, finest first. Eight times apart: a range drawn with N buckets
reads fewer than 8 N rows of the widest tier that is not wider than one bucket."""

KEY = ("run_id", "key", "axis", "width", "bucket")
RAW_UP_TO = 32
"""A metric of at most this many points has no rollups (charts summarise its points)."""
SMALL = 256
"""Fewer points of a metric in a batch than this are folded without numpy."""
COLUMNS = tuple(c.name for c in MR.columns)
_UPSERT = (
    f"INSERT INTO {MR.name} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in KEY)
)
"""Written once, the same on SQLite and PostgreSQL; run through the driver's executemany
(the metric hot path)."""

_VALUES = itemgetter(*COLUMNS)
Points = Sequence[tuple[str, float, int, int]]  # (key, value, timestamp, step)
Row = dict[str, Any]


Note = tuple[str, Points] | str
"""A metric batch's (run id, points), or the id of a run started (it has no points yet)."""


def _note(_: Connection, item: Recorded) -> Note | None:
    data = item.event.data
    if isinstance(data, p.RunMetricsLogged) and data.points:
        return data.run_id, data.points
    if isinstance(data, p.RunStarted):
        return data.run_id
    return None


def _known(item: Recorded, _: object) -> Note | None:
    return _note(None, item)  # type: ignore[arg-type]  # reads nothing either way


def _write(conn: Connection, notes: Sequence[Note]) -> None:
    by_metric: dict[tuple[str, str], list[tuple[str, float, int, int]]] = defaultdict(list)
    started: set[str] = set()  # runs whose every point is in this batch
    for note in notes:
        if isinstance(note, str):
            started.add(note)
            continue
        run_id, points = note
        for point in points:
            by_metric[run_id, point[0]].append(point)
    older = [m for m in by_metric if m[0] not in started]
    known = _with_rollups(conn, older)
    counts = _counts(conn, [m for m in older if m not in known])  # this batch's included
    rows: list[Row] = []
    for (run_id, key), pts in by_metric.items():
        if (run_id, key) in known:
            rows += _folded(conn, run_id, key, pts, stored=True)
            continue
        n = len(pts) if run_id in started else counts.get((run_id, key), len(pts))
        if n <= RAW_UP_TO:
            continue  # still short: no rollups
        if n > len(pts):  # past RAW_UP_TO now: its earlier points are folded in too
            pts = points_of(conn, run_id, key)
        rows += summarise(run_id, key, pts)
    _upsert(conn, rows)


def _counts(conn: Connection, metrics: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many points `metrics` (run id, key) have stored, a few hundred at a time: each
    an index range of a metric without rollups, so at most `RAW_UP_TO` and a batch."""
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(metrics), 200):
        part = metrics[start : start + 200]
        pairs = ", ".join("(?, ?)" for _ in part)
        found.update(
            ((run_id, key), int(n))
            for run_id, key, n in fetch_all(
                conn,
                f"WITH m (run_id, key) AS (VALUES {pairs}) SELECT m.run_id, m.key, "
                "(SELECT COUNT(*) FROM metric_points p WHERE p.run_id = m.run_id "
                "AND p.key = m.key) FROM m",
                tuple(v for metric in part for v in metric),
            )
        )
    return found


def points_of(conn: Connection, run_id: str, key: str) -> list[tuple[str, float, int, int]]:
    """Every stored point of a metric, in log order, as the log gives them (NaN for NULL)."""
    nan = float("nan")
    sql = "SELECT value, timestamp, step FROM metric_points WHERE run_id = ? AND key = ?"
    rows = fetch_all(conn, sql + " ORDER BY id", (run_id, key))
    return [(key, nan if v is None else v, ts, step) for v, ts, step in rows]


def _with_rollups(conn: Connection, metrics: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of `metrics` (run id, key) have stored rollups: every fold writes a row of the
    widest step tier, so one index probe per metric, asked a few hundred at a time."""
    keys_of: dict[str, set[str]] = defaultdict(set)
    for run_id, key in metrics:
        keys_of[run_id].add(key)
    found: set[tuple[str, str]] = set()
    runs = sorted(keys_of)
    for start in range(0, len(runs), 100):
        part = runs[start : start + 100]
        keys = sorted(set().union(*(keys_of[r] for r in part)))
        for k in range(0, len(keys), 400):
            some = keys[k : k + 400]
            rows = fetch_all(
                conn,
                f"SELECT run_id, key FROM {MR.name} WHERE run_id IN ({_marks(part)}) "
                f"AND key IN ({_marks(some)}) AND axis = 'step' AND width = ?",
                (*part, *some, TIERS["step"][-1]),
            )
            found.update((r, k) for r, k in rows)
    return found


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


ROLLUPS = every_event(EveryEvent(note=_note, write=_write, known=_known))


def fold(conn: Connection, run_id: str, key: str, points: Points) -> None:
    """Merge `points` (key, value, timestamp, step; in log order) of metric `key` into
    its stored rollups."""
    _upsert(conn, _folded(conn, run_id, key, points, stored=True))


def summarise(run_id: str, key: str, points: Points) -> list[Row]:
    """The rows of every tier that `points` (key, value, timestamp, step; in log order) of
    one metric make on their own."""
    if not points:
        return []
    if len(points) < SMALL:
        return _small_buckets(run_id, key, points)
    return _large(run_id, key, points)


def _folded(conn: Connection, run_id: str, key: str, points: Points, stored: bool) -> list[Row]:
    """The rows `points` of one metric make, merged with its stored rows (read only when
    `stored` says the metric has some)."""
    fresh = summarise(run_id, key, points)
    if not stored:
        return fresh
    old = _stored(conn, run_id, key, fresh)
    return [merge(old.get(_key(r)), r) for r in fresh]


def _upsert(conn: Connection, rows: Sequence[Row]) -> None:
    execute_many(conn, _UPSERT, list(map(_VALUES, rows)))


def _large(run_id: str, key: str, points: Points) -> list[Row]:
    import numpy as np

    _, value_col, ts_col, step_col = zip(*points, strict=True)
    values = np.array(value_col, dtype=np.float64)
    ts = np.array(ts_col, dtype=np.int64)
    steps = np.array(step_col, dtype=np.int64)
    fresh: list[Row] = []
    for axis, x, other in (("step", steps, ts), ("time", ts, steps)):
        order = np.lexsort((np.arange(len(x)), other, x))  # by x, then other, then log order
        xs, others, vs = x[order], other[order], values[order]
        for width in TIERS[axis]:
            fresh += _buckets(run_id, key, axis, width, xs, others, vs)
    return fresh


def _buckets(
    run_id: str,
    key: str,
    axis: str,
    width: int,
    xs: np.ndarray[Any, Any],
    others: np.ndarray[Any, Any],
    vs: np.ndarray[Any, Any],
) -> list[Row]:
    import numpy as np

    buckets = xs // width
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(xs)] - 1
    with np.errstate(invalid="ignore"):
        mins = np.fmin.reduceat(vs, starts)
        maxs = np.fmax.reduceat(vs, starts)
    step_first, ts_first = (xs, others) if axis == "step" else (others, xs)
    return [
        {
            "run_id": run_id,
            "key": key,
            "axis": axis,
            "width": width,
            "bucket": int(buckets[a]),
            "n": int(b - a + 1),
            "first_step": int(step_first[a]),
            "first_ts": int(ts_first[a]),
            "last_step": int(step_first[b]),
            "last_ts": int(ts_first[b]),
            "last_value": _stored_float(vs[b]),
            "min_value": _stored_float(lo),
            "max_value": _stored_float(hi),
        }
        for a, b, lo, hi in zip(
            starts.tolist(), ends.tolist(), mins.tolist(), maxs.tolist(), strict=True
        )
    ]


def _small_buckets(run_id: str, key: str, points: Points) -> list[Row]:
    """What `fold`'s vectorised pass gives, in plain Python: for the many batches that hold
    a few points of a metric, where numpy's fixed cost per call dominates."""
    if len(points) == 1:
        return _one_point(run_id, key, points[0])
    out: list[Row] = []
    for axis in ("step", "time"):
        if axis == "step":
            ordered = sorted((st, ts, i, v) for i, (_, v, ts, st) in enumerate(points))
        else:
            ordered = sorted((ts, st, i, v) for i, (_, v, ts, st) in enumerate(points))
        whole = _summary(ordered)  # from some width on, one bucket holds every point
        first, final = ordered[0][0], ordered[-1][0]
        for width in TIERS[axis]:
            if first // width == final // width:
                groups = {first // width: ordered}
            else:
                groups = {}
                for point in ordered:
                    groups.setdefault(point[0] // width, []).append(point)
            for bucket, group in groups.items():
                summary = whole if group is ordered else _summary(group)
                fx, fo, lx, lo_, last, least, most = summary
                steps_ts = ((fx, fo), (lx, lo_)) if axis == "step" else ((fo, fx), (lo_, lx))
                out.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "axis": axis,
                        "width": width,
                        "bucket": bucket,
                        "n": len(group),
                        "first_step": steps_ts[0][0],
                        "first_ts": steps_ts[0][1],
                        "last_step": steps_ts[1][0],
                        "last_ts": steps_ts[1][1],
                        "last_value": last,
                        "min_value": least,
                        "max_value": most,
                    }
                )
    return out


def _summary(
    group: Sequence[tuple[int, int, int, float]],
) -> tuple[int, int, int, int, float | None, float | None, float | None]:
    """A bucket's first and last point (x, other), its last value, min and max."""
    (fx, fo, _, _), (lx, lo, _, last) = group[0], group[-1]
    finite = [g[3] for g in group if g[3] == g[3]]
    least = float(min(finite)) if finite else None
    most = float(max(finite)) if finite else None
    return fx, fo, lx, lo, _stored_float(last), least, most


def _one_point(run_id: str, key: str, point: tuple[str, float, int, int]) -> list[Row]:
    """The rows of a lone point (a final score, each run of a sweep): one bucket per tier."""
    _, value, ts, step = point
    v = _stored_float(value)
    same = {
        "run_id": run_id,
        "key": key,
        "n": 1,
        "first_step": step,
        "first_ts": ts,
        "last_step": step,
        "last_ts": ts,
        "last_value": v,
        "min_value": v,
        "max_value": v,
    }
    return [
        {**same, "axis": axis, "width": width, "bucket": x // width}
        for axis, x in (("step", step), ("time", ts))
        for width in TIERS[axis]
    ]


def _stored_float(v: float) -> float | None:
    return None if v != v else float(v)  # NaN is stored as NULL, as in metric_points


def _key(row: Any) -> tuple[str, int, int]:
    return (row["axis"], row["width"], row["bucket"])


def _stored(conn: Connection, run_id: str, key: str, fresh: Sequence[Row]) -> dict[Any, Row]:
    """The stored rows `fresh` will merge into, in one query."""
    spans: dict[tuple[str, int], list[int]] = {}
    for r in fresh:
        lo_hi = spans.setdefault((r["axis"], r["width"]), [r["bucket"], r["bucket"]])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], r["bucket"]), max(lo_hi[1], r["bucket"])
    if not spans:
        return {}
    where = " OR ".join("(axis = ? AND width = ? AND bucket BETWEEN ? AND ?)" for _ in spans)
    args = [v for (axis, width), (lo, hi) in spans.items() for v in (axis, width, lo, hi)]
    rows = fetch_all(
        conn,
        f"SELECT {', '.join(COLUMNS)} FROM {MR.name} WHERE run_id = ? AND key = ? AND ({where})",
        (run_id, key, *args),
    )
    stored = (dict(zip(COLUMNS, row, strict=True)) for row in rows)
    return {_key(r): r for r in stored}


def merge(old: Row | None, new: Row) -> Row:
    """`new` (points folded later) merged into `old` (the stored row of the same bucket)."""
    if old is None:
        return new
    out = dict(new)
    out["n"] = old["n"] + new["n"]
    axis_order = _step_order if new["axis"] == "step" else _time_order
    if axis_order(old, "first") <= axis_order(new, "first"):
        out["first_step"], out["first_ts"] = old["first_step"], old["first_ts"]
    if axis_order(old, "last") > axis_order(new, "last"):
        out["last_step"], out["last_ts"] = old["last_step"], old["last_ts"]
        out["last_value"] = old["last_value"]
    out["min_value"] = _either(min, old["min_value"], new["min_value"])
    out["max_value"] = _either(max, old["max_value"], new["max_value"])
    return out


def _step_order(row: Row, end: str) -> tuple[int, int]:
    return (row[f"{end}_step"], row[f"{end}_ts"])


def _time_order(row: Row, end: str) -> tuple[int, int]:
    return (row[f"{end}_ts"], row[f"{end}_step"])


def _either(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(pick(a, b))


def backfill(conn: Connection, chunk: int = 200_000) -> int:
    """Fold the points of every metric of more than `RAW_UP_TO` points into empty rollups
    (views made before rollups existed); return how many points. Reads the points in log
    order, a chunk at a time."""
    from ledgerflow.services.projector.tables import METRIC_POINTS as MP

    if conn.execute(select(MR.c.n).limit(1)).first() is not None:
        return 0
    sql = "SELECT run_id, key FROM metric_points GROUP BY run_id, key HAVING COUNT(*) > ?"
    longer = {(run_id, key) for run_id, key in fetch_all(conn, sql, (RAW_UP_TO,))}
    done, after = 0, -1
    while longer:
        rows = conn.execute(
            select(MP.c.id, MP.c.run_id, MP.c.key, MP.c.value, MP.c.timestamp, MP.c.step)
            .where(MP.c.id > after)
            .order_by(MP.c.id)
            .limit(chunk)
        ).all()
        if not rows:
            break
        by_metric: dict[tuple[str, str], list[tuple[str, float, int, int]]] = defaultdict(list)
        nan = float("nan")
        for _, run_id, key, value, ts, step in rows:
            if (run_id, key) in longer:
                by_metric[run_id, key].append((key, nan if value is None else value, ts, step))
        for (run_id, key), pts in by_metric.items():
            fold(conn, run_id, key, pts)
            done += len(pts)
        after = rows[-1][0]
    return done
