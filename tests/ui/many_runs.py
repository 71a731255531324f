"""An experiment with many runs (each with params, metrics and a few tags), appended to a
data directory's log as events in large batches and projected once: how the runs-table
test and bench/ui.py get 10,000 runs in seconds instead of minutes of SDK calls."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap

ACTOR = "user:bench"
BATCH = 5_000


def log_many_runs(
    data_dir: Path, runs: int, *, params: int = 10, metrics: int = 10, name: str = "many-runs"
) -> str:
    """Log `runs` finished runs into experiment `name`; returns its id. Run i has params
    p0..p{params-1} = i % 7 ... and metrics m0.. = i / runs + j."""
    backend = bootstrap(load_settings(tracking_uri=str(data_dir)))
    try:
        experiment_id = backend.tracking.get_or_create_experiment(name, actor=ACTOR).experiment_id
        t0 = 1_700_000_000_000
        events: list[Event] = []
        for i in range(runs):
            run_id = uuid.uuid4().hex
            start = t0 + i * 1000
            events += [
                Event.of(p.RunStarted(
                    run_id=run_id, experiment_id=experiment_id, run_name=f"run-{i:05d}",
                    start_time=start, user_id="bench", artifact_uri=f"{data_dir}/artifacts/{run_id}",
                    tags={"mlflow.runName": f"run-{i:05d}", "shard": str(i % 4)},
                ), actor=ACTOR),
                Event.of(p.RunParamsLogged(
                    run_id=run_id, params={f"p{j}": str((i + j) % 7) for j in range(params)}
                ), actor=ACTOR),
                Event.of(p.RunMetricsLogged(
                    run_id=run_id,
                    points=tuple((f"m{j}", i / runs + j, start + 500, 0) for j in range(metrics)),
                ), actor=ACTOR),
                Event.of(p.RunFinished(run_id=run_id, status="FINISHED", end_time=start + 900), actor=ACTOR),
            ]  # fmt: skip
            if len(events) >= BATCH:
                backend.log.append(events)
                events = []
        if events:
            backend.log.append(events)
        backend.refresh()
        return experiment_id
    finally:
        backend.close()


if __name__ == "__main__":
    print(log_many_runs(Path(sys.argv[1]), int(sys.argv[2])))
