"""The read side: runs, experiments, metric histories and artifacts from the views."""

from __future__ import annotations

import gc
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, FromClause, and_, select

from ledgerflow.events.entities import (
    Experiment,
    FileInfo,
    Metric,
    MetricSeries,
    PagedList,
    Run,
    RunData,
    RunInfo,
)
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.payloads import DatasetInput
from ledgerflow.services.projector import cursor
from ledgerflow.services.projector import series as metric_series
from ledgerflow.services.projector.filter_fields import EXPERIMENT_FIELDS
from ledgerflow.services.projector.filters import Node, OrderKey, parse_filter, parse_order_by
from ledgerflow.services.projector.readable import Readable
from ledgerflow.services.projector.search import (
    EXPERIMENT_SEARCH,
    RUN_SEARCH,
    compile_filter,
    estimate,
    order_sources,
)
from ledgerflow.services.projector.search_sql import FALSE, Sql, search_page_sql, where_sql
from ledgerflow.services.projector.sql import fetch_all
from ledgerflow.services.projector.tables import (
    ARTIFACTS as A,
)
from ledgerflow.services.projector.tables import (
    EXPERIMENT_TAGS as ET,
)
from ledgerflow.services.projector.tables import (
    EXPERIMENTS as E,
)
from ledgerflow.services.projector.tables import (
    RUNS as R,
)

VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}
MAX_RESULTS = 50_000
CHUNK = 500
"""Run ids bound per statement: under every driver's limit on bound parameters."""
INFO_COLUMNS = (
    R.c.run_id, R.c.experiment_id, R.c.run_name, R.c.user_id, R.c.status, R.c.start_time,
    R.c.end_time, R.c.artifact_uri, R.c.lifecycle_stage,
)  # fmt: skip
"""The runs' columns a RunInfo takes, in the order it takes them."""
_INFO_NAMES = tuple(c.name for c in INFO_COLUMNS)
_RUN_INFO_COLUMNS = ", ".join(_INFO_NAMES)  # the same, for plain SQL


def _stages(view_type: str | int) -> tuple[str, ...]:
    """The lifecycle stages a view type shows: its name, or MLflow's ViewType enum value
    as a number or as digits (ASCII only: str.isdigit() says yes to "²", int() no)."""
    text = str(view_type).strip()
    if text.isascii() and text.isdigit():
        text = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}.get(text.lstrip("0"), "?")
    try:
        return VIEW_TYPES[text.upper()]
    except KeyError:
        raise InvalidInput(
            f"run_view_type must be one of {', '.join(VIEW_TYPES)}, got {view_type!r}",
            field="run_view_type",
        ) from None


def _in(column: str, values: Sequence[str]) -> Sql:
    """``column IN (values)`` as SQL text (never true for no values)."""
    if not values:
        return FALSE
    return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)


@lru_cache(maxsize=256)
def _parsed_filter(text: str) -> Node | None:
    return parse_filter(text)


def _run_filter(text: str | None) -> Node | None:
    """A run filter parsed, once per text for the last few hundred texts (a parsed filter
    is frozen; a refused one is parsed, and refused, every time)."""
    return _parsed_filter(text) if isinstance(text, str) else parse_filter(text)


@lru_cache(maxsize=256)
def _parsed_order(items: tuple[str, ...]) -> tuple[OrderKey, ...]:
    return parse_order_by(list(items))


def _run_order(order_by: Sequence[str] | None) -> tuple[OrderKey, ...]:
    """A run order parsed, as :func:`_run_filter` parses filters."""
    if not order_by:
        return ()
    items = tuple(order_by)
    if all(isinstance(i, str) for i in items):
        return _parsed_order(items)
    return parse_order_by(list(items))


def _experiment_ids(conn: Connection, refs: Sequence[str]) -> list[str]:
    """:meth:`Queries.experiment_ids` on `conn`."""
    refs = [str(r) for r in refs]
    marks = ", ".join("?" * len(refs))
    sql = (
        "SELECT experiment_id, name FROM experiments "
        f"WHERE experiment_id IN ({marks}) OR name IN ({marks})"
    )
    rows = fetch_all(conn, sql, (*refs, *refs)) if refs else []
    ids = {experiment_id for experiment_id, _ in rows}
    by_name = {name: experiment_id for experiment_id, name in rows}
    out = []
    for ref in refs:
        found = ref if ref in ids else by_name.get(ref)
        if found is None:
            raise NotFound(f"no experiment with id or name {ref!r}", kind="experiment", key=ref)
        out.append(found)
    return out


def _value(v: float | None) -> float:
    return math.nan if v is None else v


class Queries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # experiments -----------------------------------------------------------------
    def _experiments(
        self,
        where: Any,
        order: Sequence[Any] = (),
        limit: int | None = None,
        source: FromClause = E,
    ) -> list[Experiment]:
        with self.engine.connect() as conn:
            stmt = select(E).select_from(source).where(where).order_by(*order).limit(limit)
            rows = conn.execute(stmt).all()
            ids = [r.experiment_id for r in rows]
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            for t in conn.execute(select(ET).where(ET.c.experiment_id.in_(ids))):
                tags[t.experiment_id][t.key] = t.value
        return [
            Experiment(
                r.experiment_id,
                r.name,
                r.artifact_location,
                r.lifecycle_stage,
                dict(tags[r.experiment_id]),
                r.creation_time,
                r.last_update_time,
            )
            for r in rows
        ]

    def find_experiment(self, experiment_id: str) -> Experiment | None:
        """One experiment by id, in two plain statements: every command that starts a run
        asks (SQLAlchemy's statement building costs more than these queries)."""
        key = (str(experiment_id),)
        with self.engine.connect() as conn:
            sql = f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = ?"
            rows = fetch_all(conn, sql, key)
            if not rows:
                return None
            sql = "SELECT key, value FROM experiment_tags WHERE experiment_id = ?"
            tags = dict(fetch_all(conn, sql, key))
        eid, name, location, stage, created, updated = rows[0]
        return Experiment(eid, name, location, stage, tags, created, updated)

    def get_experiment(self, experiment_id: str) -> Experiment:
        exp = self.find_experiment(experiment_id)
        if exp is None:
            raise NotFound(
                f"no experiment with id {experiment_id!r}",
                kind="experiment",
                key=str(experiment_id),
            )
        return exp

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        found = self._experiments(E.c.name == name)
        return found[0] if found else None

    def experiment_ids(self, refs: Sequence[str]) -> list[str]:
        """The ids of the experiments `refs` name, each by id or else by name, in one
        statement; NotFound for the first that names none."""
        with self.engine.connect() as conn:
            return _experiment_ids(conn, refs)

    def search_experiments(
        self,
        view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        *,
        readable: Readable | None = None,
    ) -> list[Experiment]:
        """Experiments matching `filter_string` (the runs' filter language on name,
        tags.<key> and the other attributes), newest first unless `order_by` says; with
        `readable`, only those a reader may see (in the query, so `max_results` counts
        only them)."""
        node = parse_filter(filter_string, EXPERIMENT_FIELDS)
        keys = parse_order_by(list(order_by) if order_by else None, EXPERIMENT_FIELDS)
        where = and_(
            E.c.lifecycle_stage.in_(_stages(view_type)), compile_filter(node, EXPERIMENT_SEARCH)
        )
        if readable is not None:
            where = and_(where, readable.where(E.c.experiment_id))
        sort, source = order_sources(keys, EXPERIMENT_SEARCH)
        return self._experiments(where, cursor.order(sort), max_results, source)

    # runs ------------------------------------------------------------------------
    def find_run_info(self, run_id: str) -> RunInfo | None:
        """A run's info in one plain statement: every command logging to a run asks."""
        with self.engine.connect() as conn:
            sql = f"SELECT {_RUN_INFO_COLUMNS} FROM runs WHERE run_id = ?"
            rows = fetch_all(conn, sql, (run_id,))
        return RunInfo(*rows[0]) if rows else None

    def get_run_info(self, run_id: str) -> RunInfo:
        info = self.find_run_info(run_id)
        if info is None:
            raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
        return info

    def get_run(self, run_id: str) -> Run:
        runs = self._load_runs([run_id])
        if not runs:
            raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
        return runs[0]

    def run_params(self, run_id: str) -> dict[str, str]:
        """A run's params alone: what a command logging params checks its own against."""
        sql = "SELECT run_id, key, value FROM params"
        return {k: v for _, k, v in self._per_run(sql, [run_id], "key")}

    def _load_runs(self, run_ids: list[str]) -> list[Run]:
        """Runs with their params, tags and latest metrics, in the order of `run_ids`."""
        with self.engine.connect() as conn:
            rows: dict[str, tuple[Any, ...]] = {}
            for start in range(0, len(run_ids), CHUNK):
                chunk = run_ids[start : start + CHUNK]
                stmt = select(*INFO_COLUMNS).where(R.c.run_id.in_(chunk))
                rows.update((r[0], tuple(r)) for r in conn.execute(stmt))
            return _runs([rows[rid] for rid in run_ids if rid in rows], conn)

    def _per_run(self, select_from: str, run_ids: Sequence[str], order: str) -> Iterator[Any]:
        """The rows of `SELECT <columns> FROM <table>` (given without its WHERE) for these
        runs, a chunk of ids at a time (under the drivers' bound-parameter limits)."""
        ids = list(run_ids)
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                sql = f"{select_from} WHERE run_id IN ({marks}) ORDER BY {order}"
                yield from fetch_all(conn, sql, tuple(chunk))

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """Each run's latest point per metric key, with its step and timestamp (what
        MLflow's `runs/get` answers), keyed by run id."""
        out: dict[str, list[Metric]] = defaultdict(list)
        sql = "SELECT run_id, key, value, timestamp, step FROM latest_metrics"
        for rid, k, v, ts, step in self._per_run(sql, run_ids, "run_id, key"):
            out[rid].append(Metric(k, _value(v), ts, step))
        return out

    def dataset_inputs(self, run_ids: Sequence[str]) -> dict[str, list[DatasetInput]]:
        """The datasets each run logged as inputs, keyed by run id."""
        out: dict[str, list[DatasetInput]] = defaultdict(list)
        sql = (
            "SELECT run_id, name, digest, source_type, source, dataset_schema, profile, tags "
            "FROM dataset_inputs"
        )
        for rid, name, digest, kind, source, schema, profile, tags in self._per_run(
            sql, run_ids, "run_id, name"
        ):
            out[rid].append(
                DatasetInput(
                    name=name,
                    digest=digest,
                    source_type=kind,
                    source=source,
                    dataset_schema=schema,
                    profile=profile,
                    tags=json.loads(tags),
                )
            )
        return out

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        by_name: bool = False,
    ) -> PagedList[Run]:
        """A page of the runs of `experiment_ids` matching the filter, in `order_by` (then
        the latest start first). With `by_name`, each of `experiment_ids` may name its
        experiment by id or by name, as :meth:`experiment_ids` resolves them (in the same
        connection)."""
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not 0 < max_results <= MAX_RESULTS
        ):
            raise InvalidInput(
                f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}",
                field="max_results",
            )
        node = _run_filter(filter_string)
        keys = _run_order(order_by)
        stages = _stages(run_view_type)
        with self.engine.connect() as conn, conn.begin():  # one snapshot: page and data
            exp_ids = (
                _experiment_ids(conn, experiment_ids)
                if by_name
                else [str(e) for e in experiment_ids]
            )
            query = (exp_ids, filter_string, keys, str(run_view_type))
            conditions = [_in("runs.experiment_id", exp_ids), _in("runs.lifecycle_stage", stages)]
            found = where_sql(
                node, RUN_SEARCH, estimate(conn, node, RUN_SEARCH),
                native_ilike=conn.dialect.name == "postgresql",
            )  # fmt: skip
            if found is not None:
                conditions.append(found)
            page = search_page_sql(
                conn, RUN_SEARCH, conditions, keys, limit=max_results, page_token=page_token,
                query=query, columns=_INFO_NAMES,
            )  # fmt: skip
            return PagedList(_runs(page.rows, conn), page.token)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_points: int | None = None,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[Metric]:
        """A run's points of `key` in order of step and time; with `limit`, only that many
        from the `start`-th on (a page), else all of them (downsampled to `max_points`)."""
        if max_points is not None and (not isinstance(max_points, int) or max_points < 2):
            raise InvalidInput(
                f"max_points must be an integer of at least 2, got {max_points!r}",
                field="max_points",
            )
        with self.engine.connect() as conn:
            if conn.execute(select(R.c.run_id).where(R.c.run_id == run_id)).first() is None:
                raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
            sql = (
                "SELECT step, timestamp, value FROM metric_points "
                "WHERE run_id = ? AND key = ? ORDER BY step, timestamp, id"
            )
            page: tuple[int, ...] = ()
            if limit is not None:
                sql, page = sql + " LIMIT ? OFFSET ?", (limit, start)
            rows = fetch_all(conn, sql, (run_id, key, *page))
        if max_points is not None and len(rows) > max_points:
            rows = downsample(rows, max_points)
        nan = math.nan
        # Hundreds of thousands of small tuples would set off several full collections.
        paused = gc.isenabled()
        gc.disable()
        try:
            return [Metric(key, nan if v is None else v, ts, step) for step, ts, v in rows]
        finally:
            if paused:
                gc.enable()

    def get_metric_series(
        self,
        series: Sequence[tuple[str, str]],
        points: int = metric_series.DEFAULT_POINTS,
        x: str = "step",
        start: int | None = None,
        end: int | None = None,
    ) -> list[MetricSeries]:
        """Each (run_id, key) of `series` in at most `points` buckets of [start, end] that
        keep its shape (services/projector/series.py), for charts."""
        metric_series.check_request(points, x, start, end)
        if not 1 <= len(series) <= metric_series.MAX_SERIES:
            raise InvalidInput(
                f"series must name 1 to {metric_series.MAX_SERIES} (run_id, key) pairs, "
                f"got {len(series)}",
                field="series",
            )
        with self.engine.connect() as conn:
            runs = {run_id for run_id, _ in series}
            found = set(conn.execute(select(R.c.run_id).where(R.c.run_id.in_(runs))).scalars())
            for run_id in runs - found:
                raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
            return [
                metric_series.metric_series(conn, run_id, key, points, x, start, end)
                for run_id, key in series
            ]

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(A.c.path, A.c.size).where(A.c.run_id == run_id)).all()
        return directory(((p, size) for p, size in rows), path)

    def artifact_entries(self, run_id: str) -> dict[str, tuple[int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(A.c.path, A.c.size, A.c.sha256).where(A.c.run_id == run_id)
            ).all()
        return {p: (s, h) for p, s, h in rows}


def downsample(rows: Sequence[Any], max_points: int) -> list[Any]:
    """At most `max_points` rows: the first and the last, and per bucket the lowest and
    highest value, so a chart drawn from the result shows the same spikes and dips as the
    full series. Rows are (step, timestamp, value) with value None for NaN."""
    n = len(rows)
    if n <= max_points:
        return list(rows)
    inner = n - 2
    budget = max_points - 2
    keep = {0, n - 1}
    if budget <= 0:
        return [rows[0], rows[-1]]
    buckets = max(1, budget // 2)
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        if lo >= hi:
            continue
        idx = range(lo, hi)
        finite = [i for i in idx if rows[i][2] is not None]
        if not finite:
            keep.add(lo)
            continue
        lowest = min(finite, key=lambda i: rows[i][2])
        highest = max(finite, key=lambda i: rows[i][2])
        keep.add(lowest)
        if budget >= 2 * buckets:
            keep.add(highest)
        elif rows[highest][2] - rows[finite[0]][2] > rows[finite[0]][2] - rows[lowest][2]:
            keep.discard(lowest)
            keep.add(highest)
    return [rows[i] for i in sorted(keep)]


_EXPERIMENT_COLUMNS = (
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time"
)


_JSON = json.JSONDecoder()
_OBJECT_AGG = {"postgresql": "json_object_agg"}
"""The aggregate that makes a JSON object of (key, value) rows, where it is not SQLite's."""


def _runs(infos: Sequence[tuple[Any, ...]], conn: Connection) -> list[Run]:
    """Runs from their INFO_COLUMNS values, with their params, tags and latest metrics
    read in one statement per chunk of runs. A run's params and its tags come as one JSON
    object each (a quarter less CPU than a row per value for pages of thousands of runs);
    metrics stay rows, as SQLite writes numbers in JSON with 15 digits."""
    ids = [info[0] for info in infos]
    params: dict[str, dict[str, str]] = {}
    tags: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, float]] = {rid: {} for rid in ids}
    texts = (params, tags)
    nan, decode = math.nan, _JSON.raw_decode  # no whitespace around the objects to skip
    agg = _OBJECT_AGG.get(conn.dialect.name, "json_group_object")
    number = "CAST(NULL AS DOUBLE PRECISION)"  # typed, for PostgreSQL
    for start in range(0, len(ids), CHUNK):
        chunk = tuple(ids[start : start + CHUNK])
        marks = ", ".join("?" * len(chunk))
        sql = " UNION ALL ".join(
            [
                *(
                    f"SELECT {kind}, run_id, CAST({agg}(key, value) AS TEXT), {number} "
                    f"FROM {table} WHERE run_id IN ({marks}) GROUP BY run_id"
                    for kind, table in enumerate(("params", "tags"))
                ),
                f"SELECT 2, run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})",
            ]
        )
        for kind, rid, text, value in fetch_all(conn, sql, chunk * 3):
            if kind == 2:
                metrics[rid][text] = nan if value is None else value
            else:
                texts[kind][rid] = decode(text)[0]
    return [
        Run(
            RunInfo(*info),
            RunData(metrics[info[0]], params.get(info[0], {}), tags.get(info[0], {})),
        )
        for info in infos
    ]


def _info(row: Any) -> RunInfo:
    return RunInfo(
        row.run_id,
        row.experiment_id,
        row.run_name,
        row.user_id,
        row.status,
        row.start_time,
        row.end_time,
        row.artifact_uri,
        row.lifecycle_stage,
    )


def directory(files: Iterable[tuple[str, int]], path: str | None) -> list[FileInfo]:
    """The entries directly under folder `path` of `files` ((path, size) from one root):
    its files and subfolders, named from the root; `[file]` when `path` is a file."""
    prefix = (path or "").strip("/")
    base = prefix + "/" if prefix else ""
    out: dict[str, FileInfo] = {}
    for p, size in files:
        if prefix and p == prefix:
            return [FileInfo(p, False, size)]
        if not p.startswith(base):
            continue
        head, sep, _ = p[len(base) :].partition("/")
        full = base + head
        out[full] = FileInfo(full, True, None) if sep else FileInfo(full, False, size)
    return sorted(out.values(), key=lambda f: f.path)
