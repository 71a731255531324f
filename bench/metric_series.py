"""Charting a metric: Ledgerflow's `get_metric_series` against MLflow's reads, same data.

    .venv/bin/python bench/metric_series.py           # 1k, 100k and 1M points (minutes)
    .venv/bin/python bench/metric_series.py --quick   # 1k, 10k, 100k

For each size, one run holds one metric of that many points (steps 0..n-1, a sine with
noise and one spike). Ledgerflow logs it through `Client.log_batch` (the ingest time is
printed, for information); MLflow's rows are inserted with sqlite3 into its `metrics`
table after one API-created run, as bench/tracking.py does for search. Timed, each the
median of `--repeats` calls, in this one process:

- ledgerflow `get_metric_series(points=1000)`: the whole metric in 1,000 buckets with
  min and max (the chart the UI draws), and a zoom on the middle tenth;
- mlflow `get_metric_history`: every point (what MLflow's UI reads below 100k points);
- mlflow `get_metric_history_bulk_interval(max_results=1000)`: the store call behind
  MLflow's `get-history-bulk-interval` route (sampled steps, no min/max), and the same
  for the zoom.

The ratio is "how many times faster Ledgerflow is". docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sqlite3
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

T0_MS = 1_700_000_000_000
POINTS = 1000


def _values(n: int) -> list[float]:
    rnd = random.Random(n)
    out = [math.sin(i / max(1, n / 20)) + rnd.random() * 0.1 for i in range(n)]
    out[n // 3] = 10.0  # a spike a chart must show
    return out


def _median(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm: the first call pays for imports and caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _ledgerflow(root: Path, n: int, values: list[float]) -> tuple[Any, str, float]:
    import ledgerflow as lf
    from ledgerflow.entities import Metric

    client = lf.Client(tracking_uri=str(root / f"lf-{n}"))
    run_id = client.create_run(client.create_experiment("bench")).info.run_id
    t = time.perf_counter()
    for start in range(0, n, 100_000):
        chunk = range(start, min(n, start + 100_000))
        client.log_batch(run_id, metrics=[Metric("m", values[i], T0_MS + i, i) for i in chunk])
    return client, run_id, time.perf_counter() - t


def _mlflow(root: Path, n: int, values: list[float]) -> tuple[Any, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    db = root / f"mlflow-{n}.db"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.create_experiment("bench", artifact_location=(root / "ml-art").as_uri())
    run_id = client.create_run(exp).info.run_id
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES ('m', ?, ?, ?, ?, 0)",
            ((values[i], T0_MS + i, run_id, i) for i in range(n)),
        )
        conn.execute(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
            " VALUES ('m', ?, ?, ?, 0, ?)",
            (values[-1], T0_MS + n - 1, n - 1, run_id),
        )
    conn.close()
    return client, run_id


def _compare(root: Path, n: int, repeats: int) -> list[tuple[str, int, float, float]]:
    values = _values(n)
    lf_client, lf_run, ingest = _ledgerflow(root, n, values)
    print(f"{n:>9,} points: ledgerflow log_batch {ingest:.2f}s ({n / ingest:,.0f}/s)")
    ml_client, ml_run = _mlflow(root, n, values)
    store = ml_client._tracking_client.store
    lo, hi = int(n * 0.45), int(n * 0.55)
    series = lf_client.get_metric_series(lf_run, "m", points=POINTS)
    assert max(series.maxs) == 10.0, "the spike must survive"

    def interval(start: int | None, end: int | None) -> Any:
        return store.get_metric_history_bulk_interval(
            run_ids=[ml_run], metric_key="m", max_results=POINTS, start_step=start, end_step=end
        )

    lf_all = _median(lambda: lf_client.get_metric_series(lf_run, "m", POINTS), repeats)
    lf_zoom = _median(
        lambda: lf_client.get_metric_series(lf_run, "m", POINTS, start=lo, end=hi), repeats
    )
    ml_history = _median(lambda: ml_client.get_metric_history(ml_run, "m"), repeats)
    ml_interval = _median(lambda: interval(None, None), repeats)
    ml_zoom = _median(lambda: interval(lo, hi), repeats)
    return [
        ("whole metric vs get_metric_history", n, lf_all, ml_history),
        ("whole metric vs get-history-bulk-interval", n, lf_all, ml_interval),
        ("zoom on 10% vs get-history-bulk-interval", n, lf_zoom, ml_zoom),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1k, 10k and 100k points")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sizes = (1_000, 10_000, 100_000) if args.quick else (1_000, 100_000, 1_000_000)
    rows: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows += _compare(Path(tmp), n, args.repeats)
    print()
    print("| comparison | points | ledgerflow ms | mlflow ms | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, n, lf_s, ml_s in rows:
        print(f"| {name} | {n:,} | {lf_s * 1000:.1f} | {ml_s * 1000:.1f} | {ml_s / lf_s:.1f}x |")


if __name__ == "__main__":
    main()
