"""What the audit index costs the projector: CPU per event with it and without it.

    .venv/bin/python bench/projection.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/projection.py --quick    # a smoke run

Each scenario appends its events to a fresh embedded data directory, then times one
`Projector.catch_up()` over them in CPU seconds (the machine's other load counts less
than in wall time), best of `--repeats`, with the audit index and without it (the
projector's views over every event left empty for that run). Scenarios:

- `bulk runs`: run.started, 10 params, 10 metric points per run (the search benchmark's
  bulk load in bench/tracking.py);
- `metrics R runs, K pts`: 5,000 metric batches of K points (5 keys) over R runs. With
  500 runs each projector batch touches every run once and each batch after a run's
  first grows an existing rollup (steady logging); with 5,000 runs each batch starts a
  new rollup (the worst case); with 50 runs most batches fold in memory (catch-up).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.projector import handlers

Events = Callable[[str, str], list[Event]]
ACTOR = "alice#token:0193"


def bulk_runs(n: int) -> Events:
    def make(experiment: str, folder: str) -> list[Event]:
        rng = random.Random(42)
        out: list[Event] = []
        for i in range(n):
            run = uuid.uuid4().hex
            out += [
                Event.of(p.RunStarted(run_id=run, experiment_id=experiment, run_name=f"r{i}",
                         start_time=i, user_id="u", artifact_uri=f"{folder}/{run}",
                         tags={"mlflow.runName": f"r{i}"}), actor=ACTOR),
                Event.of(p.RunParamsLogged(run_id=run, params={f"p{j}": f"v{rng.randrange(10)}"
                                                               for j in range(10)}), actor=ACTOR),
                Event.of(p.RunMetricsLogged(run_id=run, points=tuple(
                    (f"m{j}", rng.random(), i, 0) for j in range(10))), actor=ACTOR),
            ]  # fmt: skip
        return out

    return make


def metric_batches(runs: int, points: int, batches: int) -> Events:
    def make(experiment: str, folder: str) -> list[Event]:
        ids = [uuid.uuid4().hex for _ in range(runs)]
        out = [
            Event.of(p.RunStarted(run_id=r, experiment_id=experiment, run_name=r, start_time=0,
                     user_id="u", artifact_uri=folder), actor=ACTOR)
            for r in ids
        ]  # fmt: skip
        out += [
            Event.of(p.RunMetricsLogged(run_id=ids[i % runs], points=tuple(
                (f"m{j % 5}", 0.5, 1000 + i, i * 1000 + j) for j in range(points))), actor=ACTOR)
            for i in range(batches)
        ]  # fmt: skip
        return out

    return make


def project(make: Events, audit: bool, skip: int) -> tuple[float, int]:
    """CPU seconds of catching up on the events `make` gives (after the first `skip`,
    projected beforehand), and how many were timed."""
    kept = list(handlers.EVERY_EVENT)
    if not audit:
        handlers.EVERY_EVENT.clear()
    try:
        with tempfile.TemporaryDirectory(prefix="ledgerflow-bench-") as tmp:
            b = bootstrap(load_settings(tracking_uri=tmp))
            created = p.ExperimentCreated(experiment_id="0", name="e", artifact_location=tmp)
            events = [Event.of(created, actor=ACTOR), *make("0", tmp)]
            b.log.append(events[: skip + 1])
            b.projector.catch_up()
            for start in range(skip + 1, len(events), 5000):
                b.log.append(events[start : start + 5000])
            began = time.process_time()
            b.projector.catch_up()
            spent = time.process_time() - began
            b.close()
            return spent, len(events) - skip - 1
    finally:
        handlers.EVERY_EVENT[:] = kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, a smoke run")
    ap.add_argument("--repeats", type=int, default=None, help="best of this many (default 5)")
    args = ap.parse_args(argv)
    n = 1_000 if args.quick else 3_000
    batches = 1_000 if args.quick else 5_000
    repeats = args.repeats or (2 if args.quick else 5)
    scenarios: list[tuple[str, Events, int]] = [("bulk runs", bulk_runs(n), 0)]
    for runs in (50, 500, 5_000):
        for points in (1, 10, 100):
            if args.quick and runs == 50 and points != 10:
                continue
            make = metric_batches(min(runs, batches), points, batches)
            scenarios.append((f"metrics {runs:,} runs, {points} pts", make, min(runs, batches)))
    print(f"{'scenario':28} {'events':>7} {'off us/ev':>10} {'on us/ev':>9} {'audit':>7}")
    for name, make, skip in scenarios:
        best = {True: float("inf"), False: float("inf")}
        count = 0
        for _ in range(repeats):
            for audit in (False, True):  # interleaved, so drifting load hits both alike
                spent, count = project(make, audit, skip)
                best[audit] = min(best[audit], spent)
        off, on = best[False] / count * 1e6, best[True] / count * 1e6
        print(f"{name:28} {count:>7,} {off:>10.0f} {on:>9.0f} {100 * (on - off) / off:>+6.1f}%",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
