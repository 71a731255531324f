"""Ledgerflow against MLflow (SQLite backend) on the tracking hot paths, side by side.

    .venv/bin/python bench/tracking.py              # the full run (a few minutes)
    .venv/bin/python bench/tracking.py --quick      # smaller sizes, a smoke run
    .venv/bin/python bench/tracking.py --only search --only import
    .venv/bin/python bench/tracking.py --only shapes --runs 100000   # every filter shape
    .venv/bin/python bench/tracking.py --only shapes --runs 100000 --repeats 1 --largest 5000
    .venv/bin/python bench/tracking.py --only shapes --keep build/shapes --side ledgerflow
    .venv/bin/python bench/tracking.py --only commands   # 1, 8, 64 callers, in process and served

Both systems run in this one process, each in its own fresh temporary directory
(Ledgerflow: a data directory; MLflow: `sqlite:///.../mlflow.db` plus a local
artifact folder). Every number times the operation only, never the setup. The
ratio is always "how many times faster Ledgerflow is": above 1 means ours wins.
docs/benchmarks.md records a full run and explains each measurement.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCHES = ("log_metric", "log_batch", "commands", "history", "search", "shapes", "import")
HEAVY = ("torch", "tensorflow", "ray", "sklearn", "pandas", "kafka", "aiokafka")
INFO_ONLY = ("pydantic", "sqlalchemy", "sqlmodel", "numpy")
FILTER = "metrics.m3 > 0.5 and params.p1 = 'v7'"
ORDER_BY = ["metrics.m5 DESC"]
WIDE_FILTER = "params.p1 = 'v7'"  # about a tenth of the runs
WIDE_RESULTS = 500  # what the UI's runs table loads: hundreds of runs with all their data
T0_MS = 1_700_000_000_000
MLFLOW_BATCH_LIMIT = 1000  # metrics per MLflow log_batch call


@dataclass(frozen=True)
class Sizes:
    loop_lf: int = 100_000  # log_metric calls, Ledgerflow
    loop_ml: int = 500  # log_metric calls, MLflow (about 500 points/s)
    batch: int = 100_000  # points in the log_batch benchmark
    history: int = 100_000  # points in the metric read back
    runs: int = 10_000  # runs searched over
    api_runs: int = 1_000  # of those, created through each system's API (timed)
    repeats: int = 5  # timed repetitions of reads and imports (median reported)
    command_s: float = 6.0  # seconds of create_run + log_batch per caller count and system


FULL = Sizes()
QUICK = Sizes(
    loop_lf=10_000, loop_ml=100, batch=10_000, history=10_000, runs=1_000, api_runs=200, repeats=3,
    command_s=2.0,
)  # fmt: skip


@dataclass
class Row:
    """One line of the table. `lf` and `ml` are rates (higher is better) or seconds."""

    name: str
    unit: str
    lf: float
    ml: float | None = None
    higher_is_better: bool = True
    bar: float | None = None  # least ratio that passes
    max_lf: float | None = None  # most Ledgerflow may take (absolute bar)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ml is None or not self.lf or not self.ml:
            return None
        return self.lf / self.ml if self.higher_is_better else self.ml / self.lf

    @property
    def bar_text(self) -> str:
        if self.bar is not None:
            return f">= {self.bar:g}x"
        if self.max_lf is not None:
            return f"<= {self.max_lf:g} {self.unit}"
        return ""

    @property
    def passed(self) -> bool | None:
        if self.bar is not None:
            return self.ratio is not None and self.ratio >= self.bar
        if self.max_lf is not None:
            return self.lf <= self.max_lf
        return None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # name, passed, detail
    notes: list[str] = field(default_factory=list)


# helpers ----------------------------------------------------------------------------------
def say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    out: list[float] = []
    t0 = time.perf_counter()
    yield out
    out.append(time.perf_counter() - t0)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of `fn` over `repeats` calls after one untimed warm-up call."""
    result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def median_times(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """`median_time` and the median CPU time of this process per call: the work itself,
    whatever else the machine runs (a search runs in the calling thread on both sides)."""
    result = fn()
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), result


def chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Systems:
    """Fresh Ledgerflow and MLflow stores, one temporary directory each per call."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._n = 0

    def _dir(self, kind: str) -> Path:
        self._n += 1
        d = self.root / f"{self._n:02d}-{kind}"
        d.mkdir()
        return d

    def ledgerflow(self, at: Path | None = None) -> tuple[Any, str]:
        """A client on a fresh data directory, or on `at` (its "bench" experiment)."""
        import ledgerflow as lf

        lf.set_tracking_uri(str(self._dir("ledgerflow") if at is None else at))
        client = lf.Client()
        found = client.get_experiment_by_name("bench") if at is not None else None
        exp_id = found.experiment_id if found else client.create_experiment("bench")
        lf.set_experiment(experiment_id=exp_id)
        return client, exp_id

    def mlflow(self, at: Path | None = None) -> tuple[Any, str]:
        """A client on a fresh SQLite store, or on the one in folder `at`."""
        mlflow = import_mlflow()
        d = self._dir("mlflow") if at is None else at
        d.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{d / 'mlflow.db'}")
        client = mlflow.MlflowClient()
        found = client.get_experiment_by_name("bench") if at is not None else None
        exp_id = (
            found.experiment_id
            if found
            else client.create_experiment("bench", artifact_location=(d / "artifacts").as_uri())
        )
        mlflow.set_experiment(experiment_id=exp_id)
        return client, exp_id


def import_mlflow() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


# 1. log_metric loop -----------------------------------------------------------------------
def bench_log_metric(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    import ledgerflow as lf

    sys_.ledgerflow()
    with lf.start_run(), stopwatch() as t:
        for i in range(sz.loop_lf):
            lf.log_metric("loss", i * 0.001, step=i)
        lf.flush()
    lf_rate = sz.loop_lf / t[0]
    say(f"ledgerflow log_metric: {sz.loop_lf:,} points in {t[0]:.2f}s")

    mlflow = import_mlflow()
    sys_.mlflow()
    with mlflow.start_run(), stopwatch() as t:
        for i in range(sz.loop_ml):
            mlflow.log_metric("loss", i * 0.001, step=i)
    ml_rate = sz.loop_ml / t[0]
    say(f"mlflow log_metric: {sz.loop_ml:,} points in {t[0]:.2f}s")
    rep.rows.append(
        Row(
            "log_metric loop + flush",
            "points/s",
            lf_rate,
            ml_rate,
            bar=200,
            note=f"Ledgerflow {sz.loop_lf:,} points, MLflow {sz.loop_ml:,}",
        )
    )


# 2. log_batch -----------------------------------------------------------------------------
def _series(n: int) -> list[tuple[str, float, int, int]]:
    rng = random.Random(1)
    return [("m", rng.random(), T0_MS + i, i) for i in range(n)]


def _lf_log_batch(
    client: Any, exp_id: str, points: Sequence[tuple[str, float, int, int]], per_call: int | None
) -> tuple[str, float]:
    from ledgerflow.entities import Metric

    run_id = client.create_run(exp_id).info.run_id
    metrics = [Metric(*pt) for pt in points]
    with stopwatch() as t:
        for part in chunks(metrics, per_call or len(metrics)):
            client.log_batch(run_id, metrics=part)
    return run_id, t[0]


def _ml_log_batch(
    client: Any, exp_id: str, points: Sequence[tuple[str, float, int, int]]
) -> tuple[str, float]:
    from mlflow.entities import Metric

    run_id = client.create_run(exp_id).info.run_id
    metrics = [Metric(*pt) for pt in points]
    with stopwatch() as t:
        for part in chunks(metrics, MLFLOW_BATCH_LIMIT):
            client.log_batch(run_id, metrics=list(part))
    return run_id, t[0]


def bench_log_batch(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    points = _series(sz.batch)
    lf_client, lf_exp = sys_.ledgerflow()
    lf_run, lf_t = _lf_log_batch(lf_client, lf_exp, points, None)
    _, lf_chunked_t = _lf_log_batch(lf_client, lf_exp, points, MLFLOW_BATCH_LIMIT)
    say(
        f"ledgerflow log_batch: {sz.batch:,} points in {lf_t:.2f}s "
        f"(in calls of {MLFLOW_BATCH_LIMIT}: {lf_chunked_t:.2f}s)"
    )
    ml_client, ml_exp = sys_.mlflow()
    ml_run, ml_t = _ml_log_batch(ml_client, ml_exp, points)
    say(f"mlflow log_batch: {sz.batch:,} points in {ml_t:.2f}s")
    cache["history"] = (sz.batch, lf_client, lf_run, ml_client, ml_run)
    rep.rows.append(
        Row(
            f"log_batch {sz.batch:,} points",
            "points/s",
            sz.batch / lf_t,
            sz.batch / ml_t,
            bar=10,
            note=f"Ledgerflow one call, MLflow calls of {MLFLOW_BATCH_LIMIT}",
        )
    )
    rep.rows.append(
        Row(
            f"  same, both in calls of {MLFLOW_BATCH_LIMIT}",
            "points/s",
            sz.batch / lf_chunked_t,
            sz.batch / ml_t,
            note="information",
        )
    )


# 3. get_metric_history --------------------------------------------------------------------
def bench_history(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    if cache.get("history", (None,))[0] == sz.history:
        _, lf_client, lf_run, ml_client, ml_run = cache["history"]
    else:
        points = _series(sz.history)
        lf_client, lf_exp = sys_.ledgerflow()
        lf_run, _ = _lf_log_batch(lf_client, lf_exp, points, None)
        ml_client, ml_exp = sys_.mlflow()
        ml_run, _ = _ml_log_batch(ml_client, ml_exp, points)
    repeats = min(sz.repeats, 3)

    def lf_read() -> Any:
        return lf_client.get_metric_history(lf_run, "m")

    def ml_read() -> Any:
        return ml_client.get_metric_history(ml_run, "m")

    lf_t, lf_hist = median_time(lf_read, repeats)
    ml_t, ml_hist = median_time(ml_read, repeats)
    say(f"get_metric_history: ledgerflow {lf_t:.3f}s, mlflow {ml_t:.3f}s")
    del lf_hist[:], ml_hist[:]  # keep the live-object count (and so GC cost) the same below
    gc.disable()  # how much of each is the garbage collector walking the heap
    try:
        lf_nogc, lf_hist = median_time(lf_read, repeats)
        ml_nogc, ml_hist = median_time(ml_read, repeats)
    finally:
        gc.enable()
    if len(lf_hist) != sz.history or len(ml_hist) != sz.history:
        rep.notes.append(
            f"history: expected {sz.history:,} points, got Ledgerflow "
            f"{len(lf_hist):,} and MLflow {len(ml_hist):,}"
        )
    rep.rows.append(
        Row(
            f"get_metric_history {sz.history:,} points",
            "s",
            lf_t,
            ml_t,
            higher_is_better=False,
            bar=10,
            note=f"median of {repeats}, read only",
        )
    )
    rep.rows.append(
        Row(
            "  same, garbage collector off",
            "s",
            lf_nogc,
            ml_nogc,
            higher_is_better=False,
            note="information",
        )
    )


# 3b. commands: create_run + log_batch from 1, 8 and 64 callers ------------------------------
CALLERS = (1, 8, 64)
COMMAND_BARS = {1: 10.0, 8: 20.0}  # the bars, in process: sequential and 8 callers


@dataclass
class CommandLoad:
    """What `callers` threads did in a fixed time: runs made (create_run + a log_batch of 10
    params and 10 metrics each), the latency of each such pair, errors."""

    runs: int
    seconds: float
    latencies: list[float]
    errors: list[str]

    @property
    def rate(self) -> float:
        return self.runs / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(one_run: Callable[[int], None], callers: int, seconds: float) -> CommandLoad:
    """`callers` threads calling `one_run(i)` back to back for `seconds` (after each made
    one untimed call); every call's latency and the runs made in the timed window."""
    import threading

    barrier = threading.Barrier(callers + 1)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = [0.0]

    def caller(k: int) -> None:
        i = k * 1_000_000
        try:
            one_run(i)  # warm: connections, caches
        except Exception as e:
            with lock:
                errors.append(f"{type(e).__name__}: {e}")
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            i += 1
            t0 = time.perf_counter()
            try:
                one_run(i)
            except Exception as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                continue
            t1 = time.perf_counter()
            if t1 <= stop_at[0]:
                with lock:
                    latencies.append(t1 - t0)

    threads = [threading.Thread(target=caller, args=(k,), daemon=True) for k in range(callers)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600  # set for real once everyone is warm
    barrier.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join()
    return CommandLoad(len(latencies), seconds, latencies, errors)


def _command_calls(client: Any, exp_id: str, metric: Any, param: Any) -> Callable[[int], None]:
    """create_run + log_batch(10 params, 10 metrics): the same calls on both clients."""
    params = [param(f"p{j}", f"v{j}") for j in range(10)]

    def one_run(i: int) -> None:
        run_id = client.create_run(exp_id, start_time=T0_MS + i, run_name=f"c-{i}").info.run_id
        metrics = [metric(f"m{j}", j * 0.1, T0_MS + i, 0) for j in range(10)]
        client.log_batch(run_id, metrics=metrics, params=params)

    return one_run


def bench_commands(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    """create_run + log_batch from 1, 8 and 64 threads, each system in this process on a
    fresh store, then each through its server (`ledgerflow server`, `mlflow server`) with
    MLflow's own REST client on both, so the client's cost is the same for both."""
    from ledgerflow.entities import Metric as LfMetric
    from ledgerflow.entities import Param as LfParam

    mlflow = import_mlflow()
    from mlflow.entities import Metric as MlMetric
    from mlflow.entities import Param as MlParam

    def row(where: str, callers: int, lf: CommandLoad, ml: CommandLoad) -> None:
        for name, load in (("ledgerflow", lf), ("mlflow", ml)):
            say(
                f"{where} {name} x{callers}: {load.rate:.0f} runs/s, p50 "
                f"{load.percentile(0.5) * 1000:.1f} ms, p99 {load.percentile(0.99) * 1000:.1f} ms"
                + (f", {len(load.errors)} errors ({load.errors[0]})" if load.errors else "")
            )
        rep.rows.append(
            Row(
                f"create_run + log_batch, {where}, {callers} caller{'s' if callers > 1 else ''}",
                "runs/s",
                lf.rate,
                None if ml.errors else ml.rate,  # no ratio against a side that failed calls
                bar=COMMAND_BARS.get(callers) if where == "in process" else None,
                note=(
                    f"p50 {lf.percentile(0.5) * 1000:.1f} vs {ml.percentile(0.5) * 1000:.1f} ms, "
                    f"p99 {lf.percentile(0.99) * 1000:.1f} vs {ml.percentile(0.99) * 1000:.1f} ms"
                    + (f"; errors: ours {len(lf.errors)}, MLflow {len(ml.errors)}"
                       if lf.errors or ml.errors else "")
                ),
            )
        )  # fmt: skip

    for callers in CALLERS:  # a fresh store per point, both systems, one after the other
        lf_client, lf_exp = sys_.ledgerflow()
        lf_load = drive(_command_calls(lf_client, lf_exp, LfMetric, LfParam), callers, sz.command_s)
        ml_client, ml_exp = sys_.mlflow()
        ml_load = drive(_command_calls(ml_client, ml_exp, MlMetric, MlParam), callers, sz.command_s)
        row("in process", callers, lf_load, ml_load)

    sys.path.insert(0, str(REPO / "bench"))
    from mlflow_api import server  # bench/mlflow_api.py's: both servers as it starts them

    for callers in CALLERS:
        loads = {}
        for kind in ("ledgerflow", "mlflow"):
            with server(kind, sys_._dir(f"{kind}-server") / "server") as url:
                client = mlflow.MlflowClient(tracking_uri=url)
                exp_id = client.create_experiment(f"commands-{callers}")
                calls = _command_calls(client, exp_id, MlMetric, MlParam)
                loads[kind] = drive(calls, callers, sz.command_s)
        row("served", callers, loads["ledgerflow"], loads["mlflow"])


# 4. search_runs ---------------------------------------------------------------------------
RunSpec = tuple[str, dict[str, str], dict[str, float]]  # name, params, metrics


def _dataset(n: int) -> list[RunSpec]:
    """The same runs for both systems: 10 params (10 values each) and 10 metrics in [0, 1)."""
    rng = random.Random(42)
    return [
        (
            f"run-{i:05d}",
            {f"p{j}": f"v{rng.randrange(10)}" for j in range(10)},
            {f"m{j}": rng.random() for j in range(10)},
        )
        for i in range(n)
    ]


def _tags(n: int) -> list[dict[str, str]]:
    """Tags of the same runs, drawn apart from their params and metrics (which stay as they
    were): a team of 10 and an owner of 100, independent of each other."""
    rng = random.Random(7)
    return [{"team": f"t{rng.randrange(10)}", "owner": f"u{rng.randrange(100)}"} for _ in range(n)]


def _lf_populate(
    client: Any, exp_id: str, specs: Sequence[RunSpec], api_runs: int
) -> tuple[float, float]:
    """The first `api_runs` through Client.create_run + log_batch, the rest as events appended
    to the log in bulk and projected by one catch_up(): the same events the API appends."""
    from ledgerflow.entities import Metric, Param, RunTag
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event

    tags = _tags(len(specs))
    with stopwatch() as api:
        for i, (name, params, metrics) in enumerate(specs[:api_runs]):
            run_id = client.create_run(exp_id, start_time=T0_MS + i, run_name=name).info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, T0_MS + i, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag(k, v) for k, v in tags[i].items()],
            )
    backend = client._backend
    actor = client._actor
    user = client.get_run(run_id).info.user_id if api_runs else "bench"
    with stopwatch() as bulk:
        events: list[Any] = []
        for i, (name, params, metrics) in enumerate(specs[api_runs:], start=api_runs):
            rid = uuid.uuid4().hex
            events += [
                Event.of(
                    p.RunStarted(
                        run_id=rid,
                        experiment_id=exp_id,
                        run_name=name,
                        start_time=T0_MS + i,
                        user_id=user,
                        artifact_uri=backend.artifacts.uri(f"{exp_id}/{rid}/artifacts"),
                        tags={"mlflow.runName": name, **tags[i]},
                    ),
                    actor=actor,
                ),
                Event.of(p.RunParamsLogged(run_id=rid, params=params), actor=actor),
                Event.of(
                    p.RunMetricsLogged(
                        run_id=rid, points=tuple((k, v, T0_MS + i, 0) for k, v in metrics.items())
                    ),
                    actor=actor,
                ),
            ]
            if len(events) >= 3000:
                backend.log.append(events)
                events = []
        backend.log.append(events)
        backend.projector.catch_up()
    return api[0], bulk[0]


def _ml_populate(
    client: Any, exp_id: str, db: Path, specs: Sequence[RunSpec], api_runs: int
) -> tuple[float, float]:
    """The first `api_runs` through MlflowClient.create_run + log_batch; the rest as rows
    inserted with sqlite3 into runs, tags, params, metrics and latest_metrics, every column
    but the run's id, name and start time copied from the last API-created run."""
    from mlflow.entities import Metric, Param, RunTag

    if api_runs < 1:
        raise SystemExit("--api-runs must be at least 1: MLflow's bulk rows copy an API run")
    tags = _tags(len(specs))
    with stopwatch() as api:
        for i, (name, params, metrics) in enumerate(specs[:api_runs]):
            run_id = client.create_run(exp_id, start_time=T0_MS + i, run_name=name).info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, T0_MS + i, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag(k, v) for k, v in tags[i].items()],
            )
    with stopwatch() as bulk:
        conn = sqlite3.connect(db)
        conn.row_factory = sqlite3.Row
        template = dict(conn.execute("SELECT * FROM runs WHERE run_uuid = ?", (run_id,)).fetchone())
        template_tags = dict(
            conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall()
        )
        cols = list(template)
        run_rows, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
        for i, (name, params, metrics) in enumerate(specs[api_runs:], start=api_runs):
            rid = uuid.uuid4().hex
            row = dict(
                template,
                run_uuid=rid,
                name=name,
                start_time=T0_MS + i,
                artifact_uri=template["artifact_uri"].replace(run_id, rid),
            )
            run_rows.append([row[c] for c in cols])
            own = {**template_tags, "mlflow.runName": name, **tags[i]}
            tag_rows += [(k, v, rid) for k, v in own.items()]
            param_rows += [(k, v, rid) for k, v in params.items()]
            metric_rows += [(k, v, T0_MS + i, rid, 0, 0) for k, v in metrics.items()]
            latest_rows += [(k, v, T0_MS + i, 0, 0, rid) for k, v in metrics.items()]
        with conn:
            conn.executemany(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                run_rows,
            )
            conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
            conn.executemany(
                "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows
            )
            conn.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                metric_rows,
            )
            conn.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, "
                "run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                latest_rows,
            )
        conn.close()
    return api[0], bulk[0]


def bench_search(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    specs = _dataset(sz.runs)
    api_runs = min(sz.api_runs, sz.runs)
    lf_client, lf_exp = sys_.ledgerflow()
    lf_api, lf_bulk = _lf_populate(lf_client, lf_exp, specs, api_runs)
    say(
        f"ledgerflow populate: {api_runs:,} runs by API in {lf_api:.1f}s, "
        f"{sz.runs - api_runs:,} in bulk in {lf_bulk:.1f}s"
    )
    ml_client, ml_exp = sys_.mlflow()
    ml_db = Path(ml_client.tracking_uri.removeprefix("sqlite:///"))
    ml_api, ml_bulk = _ml_populate(ml_client, ml_exp, ml_db, specs, api_runs)
    say(
        f"mlflow populate: {api_runs:,} runs by API in {ml_api:.1f}s, "
        f"{sz.runs - api_runs:,} in bulk in {ml_bulk:.1f}s"
    )

    cache["searched"] = (lf_client, lf_exp, ml_client, ml_exp)

    def lf_search() -> Any:
        return lf_client.search_runs([lf_exp], FILTER, max_results=100, order_by=ORDER_BY)

    def ml_search() -> Any:
        return ml_client.search_runs([ml_exp], FILTER, max_results=100, order_by=ORDER_BY)

    lf_t, lf_res = median_time(lf_search, sz.repeats)
    ml_t, ml_res = median_time(ml_search, sz.repeats)
    say(f"search_runs: ledgerflow {lf_t:.4f}s, mlflow {ml_t:.4f}s")
    lf_names = [r.info.run_name for r in lf_res]
    ml_names = [r.info.run_name for r in ml_res]
    same = bool(lf_names) and lf_names == ml_names
    rep.checks.append(
        (
            "search_runs: both return the same runs in the same order",
            same,
            f"Ledgerflow {len(lf_names)}, MLflow {len(ml_names)} runs",
        )
    )
    _search_wide(lf_client, lf_exp, ml_client, ml_exp, sz, rep)
    if api_runs:
        rep.rows.append(
            Row(
                "create_run + log_batch(10 params, 10 metrics)",
                "runs/s",
                api_runs / lf_api,
                api_runs / ml_api,
                note=f"information: first {api_runs:,} runs, through each API",
            )
        )
    rep.rows.append(
        Row(
            f"search_runs filter + order_by, {sz.runs:,} runs",
            "s",
            lf_t,
            ml_t,
            higher_is_better=False,
            bar=10,
            note=f"max_results=100, median of {sz.repeats}",
        )
    )


def _search_wide(
    lf_client: Any, lf_exp: str, ml_client: Any, ml_exp: str, sz: Sizes, rep: Report
) -> None:
    """A search returning hundreds of runs, each with all its params, metrics and tags
    (what a runs table loads), on the data bench_search filled."""

    def lf_search() -> Any:
        return lf_client.search_runs([lf_exp], WIDE_FILTER, max_results=WIDE_RESULTS)

    def ml_search() -> Any:
        return ml_client.search_runs([ml_exp], WIDE_FILTER, max_results=WIDE_RESULTS)

    lf_t, lf_res = median_time(lf_search, sz.repeats)
    ml_t, ml_res = median_time(ml_search, sz.repeats)
    say(f"search_runs ({len(lf_res)} runs, all data): ledgerflow {lf_t:.4f}s, mlflow {ml_t:.4f}s")

    def data(runs: Any) -> list[tuple[Any, ...]]:
        return sorted(
            (r.info.run_name, sorted(r.data.params.items()), sorted(r.data.metrics.items()))
            for r in runs
        )

    same = bool(lf_res) and data(lf_res) == data(ml_res)
    rep.checks.append(
        (
            "search_runs (hundreds): both return the same runs with the same params and metrics",
            same,
            f"Ledgerflow {len(lf_res)}, MLflow {len(ml_res)} runs",
        )
    )
    rep.rows.append(
        Row(
            f"search_runs returning {len(lf_res):,} runs with all their data, {sz.runs:,} runs",
            "s",
            lf_t,
            ml_t,
            higher_is_better=False,
            bar=20,
            note=f"{WIDE_FILTER}, max_results={WIDE_RESULTS}, median of {sz.repeats}",
        )
    )


# 4b. search shapes ------------------------------------------------------------------------
# (name, filter, expected share of the runs): results of about 10, 500 and 5,000 of 10,000
# runs for each shape users write. Where MLflow's filter language cannot say it (OR, IN on
# params), MLflow's time is left out.
SHAPES: list[tuple[str, str, float]] = [
    ("equality", "params.p1 = 'v7' and params.p2 = 'v3' and params.p3 = 'v1'", 0.001),
    ("equality", "params.p1 = 'v7' and params.p2 = 'v3'", 0.01),
    ("equality", "params.p1 = 'v7'", 0.1),
    ("equality", "params.p1 != 'v7'", 0.9),
    ("equality, IN", "params.p1 IN ('v0', 'v1', 'v2', 'v3', 'v4')", 0.5),
    ("range", "metrics.m0 < 0.001", 0.001),
    ("range", "metrics.m0 < 0.05", 0.05),
    ("range", "metrics.m0 >= 0.25 and metrics.m0 < 0.75", 0.5),
    ("param = and metric range", "params.p1 = 'v7' and metrics.m3 > 0.99", 0.001),
    ("param = and metric range", "params.p1 = 'v7' and metrics.m3 > 0.5", 0.05),
    ("param = and metric range", "params.p1 != 'v7' and metrics.m3 > 0.45", 0.5),
    ("OR", "metrics.m0 < 0.0005 or metrics.m1 < 0.0005", 0.001),
    ("OR", "metrics.m0 < 0.025 or params.p4 = 'v9' and metrics.m1 < 0.25", 0.05),
    ("OR", "metrics.m0 < 0.3 or metrics.m1 < 0.3", 0.5),
    ("LIKE", "attributes.run_name LIKE 'run-0000%'", 0.001),
    ("LIKE", "params.p5 LIKE 'v3%' and metrics.m2 < 0.5", 0.05),
    ("LIKE", "attributes.run_name LIKE 'run-%' and metrics.m2 < 0.5", 0.5),
    ("attribute", "attributes.status = 'RUNNING' and metrics.m4 > 0.999", 0.001),
    ("attribute", "attributes.status = 'RUNNING' and metrics.m4 > 0.5", 0.5),
    ("tags", "tags.owner = 'u17' and tags.team = 't3'", 0.001),
    ("tags", "tags.team = 't3' and metrics.m1 < 0.5", 0.05),
    ("tags", "tags.team != 't3' and metrics.m1 < 0.55", 0.5),
]
SHAPE_ORDER = ["metrics.m5 DESC"]


def _shape_stores(
    sz: Sizes, sys_: Systems, keep: Path | None, sides: Sequence[str]
) -> tuple[Any, str, Any, str]:
    """Each system's store of `sz.runs` runs for the shapes (None for a side left out):
    filled now in a fresh folder, or with `keep`, filled there by the first run that
    needs it and opened again by the next ones (a build of Ledgerflow from another commit
    may search the same store)."""
    specs: list[RunSpec] = []
    out: list[Any] = []
    for side in ("ledgerflow", "mlflow"):
        if side not in sides:
            out += [None, ""]
            continue
        at = None if keep is None else keep / f"{side}-{sz.runs}"
        marks = (
            [] if keep is None else [keep / f"filled-{sz.runs}", keep / f"filled-{sz.runs}-{side}"]
        )
        filled = any(m.exists() for m in marks)
        client, exp = sys_.ledgerflow(at) if side == "ledgerflow" else sys_.mlflow(at)
        if filled and side == "ledgerflow":
            client._backend.projector.catch_up()  # as the process that filled it: up to date
        elif not filled:
            specs = specs or _dataset(sz.runs)
            if side == "ledgerflow":
                _lf_populate(client, exp, specs, 10)  # bulk, bar a few through the API
            else:
                db = Path(client.tracking_uri.removeprefix("sqlite:///"))
                _ml_populate(client, exp, db, specs, 10)
            if marks:
                marks[1].touch()
        out += [client, exp]
    return out[0], out[1], out[2], out[3]


def bench_shapes(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    """Searches of every shape returning about 10, 500 and 5,000 runs (with all their
    data), ordered by a metric: the time of each, and whether both answer the same.
    `cache["sides"]` may leave one system out; `cache["keep"]` keeps the stores."""
    sides = cache.get("sides", ("ledgerflow", "mlflow"))
    if "searched" not in cache:
        cache["searched"] = _shape_stores(sz, sys_, cache.get("keep"), sides)
    lf_client, lf_exp, ml_client, ml_exp = cache["searched"]
    for shape, flt, share in SHAPES:
        want = max(1, round(share * sz.runs))
        if cache.get("largest") and want > cache["largest"]:
            continue
        limit = min(50_000, max(10, 2 * want))  # both systems answer at most 50,000 a page

        def lf_search(f: str = flt, n: int = limit) -> Any:
            return lf_client.search_runs([lf_exp], f, max_results=n, order_by=SHAPE_ORDER)

        def ml_search(f: str = flt, n: int = limit) -> Any:
            return ml_client.search_runs([ml_exp], f, max_results=n, order_by=SHAPE_ORDER)

        lf_t = lf_cpu = 0.0
        lf_res: Any = []
        if "ledgerflow" in sides:
            lf_t, lf_cpu, lf_res = median_times(lf_search, sz.repeats)
        ml_t: float | None = None
        ml_cpu: float | None = None
        try:
            if "mlflow" in sides:
                ml_t, ml_cpu, ml_res = median_times(ml_search, sz.repeats)
        except Exception as e:  # MLflow's filter language has no OR, no IN on params, ...
            say(f"  mlflow refuses {flt!r}: {str(e).splitlines()[0][:120]}")
        else:
            if ml_t is not None and "ledgerflow" in sides:
                same = [r.info.run_name for r in lf_res] == [r.info.run_name for r in ml_res]
                rep.checks.append(
                    (f"search {shape} ({len(lf_res)} runs): the same runs in the same order",
                     same, f"Ledgerflow {len(lf_res)}, MLflow {len(ml_res)} runs: {flt}")
                )  # fmt: skip
        refused = ml_t is None and "mlflow" in sides
        found = len(lf_res) if "ledgerflow" in sides else len(ml_res) if ml_t is not None else 0
        say(f"search {shape}, {found} runs: ledgerflow {lf_t:.4f}s, mlflow {ml_t}")
        name = f"search {shape} -> {found:,} runs, {sz.runs:,} runs"
        note = f"{flt}; order_by {SHAPE_ORDER[0]}, median of {sz.repeats}"
        note += "; MLflow's filters cannot say this" if refused else ""
        both = ml_t is not None and "ledgerflow" in sides
        rep.rows.append(Row(name, "s", lf_t, ml_t, False, 20 if both else None, note=note))
        rep.rows.append(Row(name, "CPU s", lf_cpu, ml_cpu, False, note=note + "; CPU time"))


# 5. import ------------------------------------------------------------------------------
def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )


def _import_time(module: str, repeats: int) -> float:
    _python(f"import {module}")  # warm the file cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _python(f"import {module}")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_import(sz: Sizes, sys_: Systems, rep: Report, cache: dict[str, Any]) -> None:
    bare = _import_time("sys", sz.repeats)
    lf_t = _import_time("ledgerflow", sz.repeats)
    ml_t = _import_time("mlflow", sz.repeats)
    say(f"import: ledgerflow {lf_t:.3f}s, mlflow {ml_t:.3f}s, bare python {bare:.3f}s")
    rep.rows.append(
        Row(
            'python -c "import X" (wall)',
            "s",
            lf_t,
            ml_t,
            higher_is_better=False,
            max_lf=0.15,
            note=f"median of {sz.repeats}; bare python {bare:.3f}s",
        )
    )
    out = _python("import json, sys, ledgerflow; print(json.dumps(sorted(sys.modules)))")
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    heavy = [m for m in HEAVY if m in loaded]
    rep.checks.append(
        (
            f"import ledgerflow loads none of {', '.join(HEAVY)}",
            not heavy,
            f"loaded: {', '.join(heavy)}" if heavy else "none loaded",
        )
    )
    info = [f"{m}: {'loaded' if m in loaded else 'not loaded'}" for m in INFO_ONLY]
    rep.notes.append("after import ledgerflow: " + "; ".join(info))


# report ------------------------------------------------------------------------------------
def machine_info() -> list[tuple[str, str]]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    mem = next(
        (
            line.split()[1]
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal")
        ),
        None,
    )
    git = (
        subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "?"
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.strip()
    return [
        ("cpus", f"{os.cpu_count()} x {cpu}"),
        ("memory", f"{int(mem) / 2**20:.1f} GiB" if mem else "?"),
        ("os", platform.platform()),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        (
            "ledgerflow",
            f"{version('ledgerflow')} at {git}" + (" with uncommitted changes" if dirty else ""),
        ),
        ("mlflow", version("mlflow")),
        (
            "sqlalchemy / pydantic / sqlmodel",
            f"{version('sqlalchemy')} / {version('pydantic')} / {version('sqlmodel')}",
        ),
        ("sqlite", sqlite3.sqlite_version),
    ]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit in ("s", "CPU s"):
        return f"{v:.4f}" if v < 1 else f"{v:.2f}"
    return f"{v:,.0f}"


def print_report(rep: Report) -> None:
    head = ("benchmark", "unit", "Ledgerflow", "MLflow", "ratio", "bar", "result")
    lines = [
        (
            r.name,
            r.unit,
            _fmt(r.lf, r.unit),
            _fmt(r.ml, r.unit),
            f"{r.ratio:,.1f}x" if r.ratio is not None else "-",
            r.bar_text,
            {True: "PASS", False: "MISS", None: ""}[r.passed],
        )
        for r in rep.rows
    ]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    print("\n" + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(
            "  ".join(
                c.rjust(w) if 1 < i < 5 else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    print("\nratio = how many times faster Ledgerflow is (above 1: Ledgerflow wins)")
    for r in rep.rows:
        if r.note:
            print(f"  {r.name.strip()}: {r.note}")
    for name, ok, detail in rep.checks:
        print(f"{'PASS' if ok else 'MISS'}  {name} ({detail})")
    for note in rep.notes:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument(
        "--only",
        action="append",
        choices=BENCHES,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHES)}",
    )
    ap.add_argument(
        "--api-runs",
        type=int,
        default=None,
        help="runs of the search benchmark created through each API (the rest in "
        f"bulk); default {FULL.api_runs} ({QUICK.api_runs} with --quick)",
    )
    ap.add_argument(
        "--runs", type=int, default=None, help=f"runs searched over (default {FULL.runs:,})"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed repetitions of each read, median reported (default {FULL.repeats}); "
        "1 for MLflow's searches of 100,000 runs, which take minutes each",
    )
    ap.add_argument(
        "--largest",
        type=int,
        default=None,
        help="shapes: leave out those answering more runs than this (on 100,000 runs, "
        "5000 keeps the answers of ~100 and ~5,000 runs; MLflow takes minutes for each "
        "of ~50,000)",
    )
    ap.add_argument(
        "--keep",
        type=Path,
        help="shapes: fill the stores in this folder once and search them there on later "
        "runs (before/after comparisons of two builds on one store)",
    )
    ap.add_argument(
        "--side",
        choices=("both", "ledgerflow", "mlflow"),
        default="both",
        help="shapes: time both systems (default) or one",
    )
    ap.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = ap.parse_args(argv)
    sz = QUICK if args.quick else FULL
    if args.api_runs is not None:
        sz = Sizes(**{**asdict(sz), "api_runs": args.api_runs})
    if args.runs is not None:
        sz = Sizes(**{**asdict(sz), "runs": args.runs})
    if args.repeats is not None:
        sz = Sizes(**{**asdict(sz), "repeats": args.repeats})
    chosen = [b for b in BENCHES if not args.only or b in args.only]

    print(
        "Ledgerflow vs MLflow (sqlite), tracking benchmarks" + (" [--quick]" if args.quick else "")
    )
    for k, v in machine_info():
        print(f"  {k:34} {v}")
    print(f"  {'sizes':34} {asdict(sz)}")
    rep = Report()
    benches = {
        "log_metric": bench_log_metric,
        "log_batch": bench_log_batch,
        "commands": bench_commands,
        "history": bench_history,
        "search": bench_search,
        "shapes": bench_shapes,
        "import": bench_import,
    }
    cache: dict[str, Any] = {
        "keep": args.keep,
        "largest": args.largest,
        "sides": ("ledgerflow", "mlflow") if args.side == "both" else (args.side,),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ledgerflow-bench-") as tmp:
        systems = Systems(Path(tmp))
        for name in chosen:
            say(f"{name} ...")
            benches[name](sz, systems, rep, cache)
        import ledgerflow as lf

        lf.set_tracking_uri(tmp)  # write any buffered points before the folder goes
    print_report(rep)
    if args.quick:
        print("note: --quick sizes are smaller than the bars assume; PASS/MISS is indicative")
    print(f"total benchmark time: {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": dict(machine_info()),
                    "sizes": asdict(sz),
                    "rows": [dict(asdict(r), ratio=r.ratio, passed=r.passed) for r in rep.rows],
                    "checks": rep.checks,
                    "notes": rep.notes,
                },
                indent=2,
            )
        )
    missed = [r for r in rep.rows if r.passed is False] + [c for c in rep.checks if not c[1]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
