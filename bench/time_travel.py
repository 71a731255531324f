"""Time travel: how long folding the views as of a past point of the log takes.

    .venv/bin/python bench/time_travel.py            # 10,000 and 100,000 events (~2 min)
    .venv/bin/python bench/time_travel.py --quick    # 10,000 only
    .venv/bin/python bench/time_travel.py --json out.json

A SQLite event log in a fresh temporary directory is filled with a training-shaped
history (runs with params, metric batches of 10 points, tags; every 50 runs a new
version of a registered model and the `champion` alias moved to it), appended
directly as events. Then, through `ledgerflow.services.timetravel.TimeTravel` (what
`Client(as_of=...)`, `?as_of=` and `--as-of` use):

- fold: the views as of the last event, folded from nothing into a new in-memory
  snapshot;
- extend: the views as of the end when a snapshot 10% earlier is kept (a copy of
  it plus the events in between);
- cached: asking the same point again;
- resolve: finding where the log stood at a time half way (`checkpoint_at`);
- a read: `get_run` and the alias lookup on the snapshot, against the live views;
- for reference, `Projector.rebuild()` of the live views (a file) on the same log.

docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

T0_MS = 1_700_000_000_000


def say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def history(total: int) -> list[Any]:
    """`total` events: runs of 24 events, a model version and an alias move every 50 runs."""
    from ledgerflow.events import model_payloads as m
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event

    events = [Event.of(p.ExperimentCreated(experiment_id="1", name="bench", artifact_location="x"))]
    events.append(Event.of(m.RegisteredModelCreated(name="digits")))
    versions = 0
    run = 0
    while len(events) < total:
        rid = f"{run:032x}"
        at = T0_MS + run * 1000
        events.append(Event.of(p.RunStarted(
            run_id=rid, experiment_id="1", run_name=f"run-{run}", start_time=at, user_id="u",
            artifact_uri="x", tags={"mlflow.runName": f"run-{run}"},
        )))  # fmt: skip
        events.append(Event.of(p.RunParamsLogged(
            run_id=rid, params={f"p{i}": f"v{(run + i) % 10}" for i in range(10)}
        )))  # fmt: skip
        for batch in range(20):
            points = tuple(
                (key, (run % 97 + step) / 200.0, at + step, step)
                for step in range(batch * 5, batch * 5 + 5)
                for key in ("loss", "acc")
            )
            events.append(Event.of(p.RunMetricsLogged(run_id=rid, points=points)))
        events.append(Event.of(p.RunTagsSet(run_id=rid, tags={"team": "cv", "rank": str(run % 4)})))
        events.append(Event.of(p.RunFinished(run_id=rid, status="FINISHED", end_time=at + 900)))
        run += 1
        if run % 50 == 0:
            versions += 1
            events.append(Event.of(m.ModelVersionCreated(
                name="digits", source=f"runs:/{rid}/model", run_id=rid
            )))  # fmt: skip
            events.append(
                Event.of(m.ModelAliasSet(name="digits", alias="champion", version=versions))
            )
    return events[:total]


def median_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(total: int, root: Path) -> dict[str, Any]:
    from ledgerflow.events.as_of import AsOf
    from ledgerflow.events.log import Checkpoint
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap
    from ledgerflow.services.timetravel.snapshots import TimeTravel

    backend = bootstrap(load_settings(tracking_uri=str(root / f"data-{total}")))
    try:
        events = history(total)
        t0 = time.perf_counter()
        for i in range(0, len(events), 5000):
            backend.log.append(events[i : i + 5000])
        say(f"{total:,} events appended in {time.perf_counter() - t0:.1f}s")
        head = backend.log.head()
        earlier = Checkpoint({"": int(total * 0.9)})
        out: dict[str, Any] = {"events": total}

        travel = TimeTravel(backend.log)
        t0 = time.perf_counter()
        snap = travel.snapshot(AsOf(checkpoint=head))
        out["fold_s"] = time.perf_counter() - t0
        out["fold_events_per_s"] = snap.folded / out["fold_s"]
        say(f"fold of {snap.folded:,} events: {out['fold_s']:.2f}s")

        travel = TimeTravel(backend.log)  # a fresh cache: 90% folded, then extended
        travel.snapshot(AsOf(checkpoint=earlier))
        t0 = time.perf_counter()
        extended = travel.snapshot(AsOf(checkpoint=head))
        out["extend_s"] = time.perf_counter() - t0
        out["extend_events"] = extended.folded
        say(f"extend by {extended.folded:,} events: {out['extend_s']:.2f}s")

        out["cached_s"] = median_time(lambda: travel.snapshot(AsOf(checkpoint=head)), 20)
        middle = events[len(events) // 2].time
        out["resolve_s"] = median_time(lambda: backend.log.checkpoint_at(middle))

        past = backend.as_of(head.encode())
        backend.projector.catch_up()
        run = f"{(total // 24) // 2:032x}"
        for name, b in (("snapshot", past), ("live", backend)):
            out[f"get_run_{name}_s"] = median_time(lambda b=b: b.queries.get_run(run), 50)
            out[f"alias_{name}_s"] = median_time(
                lambda b=b: b.registry.queries.get_model_version_by_alias("digits", "champion"), 50
            )
        assert past.queries.get_run(run) == backend.queries.get_run(run)

        t0 = time.perf_counter()
        backend.projector.rebuild()
        out["rebuild_file_s"] = time.perf_counter() - t0
        say(f"rebuild of the live views (a file): {out['rebuild_file_s']:.2f}s")
        return out
    finally:
        backend.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events only")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [10_000, 100_000]
    with tempfile.TemporaryDirectory(prefix="ledgerflow-bench-asof-") as tmp:
        results = [measure(n, Path(tmp)) for n in sizes]
    machine = platform.processor() or platform.machine()
    print(
        f"machine: {machine}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    rows = [
        ("fold from nothing", "s", "fold_s"),
        ("  rate", "events/s", "fold_events_per_s"),
        ("extend a snapshot 10% earlier", "s", "extend_s"),
        ("ask again (cached)", "s", "cached_s"),
        ("resolve a time (checkpoint_at)", "s", "resolve_s"),
        ("get_run, snapshot", "s", "get_run_snapshot_s"),
        ("get_run, live views", "s", "get_run_live_s"),
        ("alias lookup, snapshot", "s", "alias_snapshot_s"),
        ("alias lookup, live views", "s", "alias_live_s"),
        ("reference: rebuild the live views (file)", "s", "rebuild_file_s"),
    ]
    header = "| measure | unit | " + " | ".join(f"{r['events']:,} events" for r in results) + " |"
    print(header)
    print("|---|---|" + "---:|" * len(results))
    for label, unit, key in rows:
        cells = " | ".join(_fmt(r[key]) for r in results)
        print(f"| {label} | {unit} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.2g}"


if __name__ == "__main__":
    sys.exit(main())
