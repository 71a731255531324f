"""A training loop for the outage test: logs a metric every ~10 ms until the file STOP
exists (or MAX_DURATION seconds passed), timing every logging call, then reads the history
back and prints a JSON report."""

import json
import sys
import time
from pathlib import Path

import ledgerflow as lf

stop, duration = Path(sys.argv[1]), float(sys.argv[2])
lf.set_experiment("outage")
calls: list[float] = []
with lf.start_run() as run:
    lf.log_param("lr", 0.1)
    print(json.dumps({"run_id": run.info.run_id}), flush=True)
    step = 0
    end = time.monotonic() + duration
    while time.monotonic() < end and not stop.exists():
        started = time.perf_counter()
        lf.log_metric("loss", 1.0 / (step + 1), step=step)
        if step % 200 == 0:
            lf.set_tag("progress", step)
        calls.append(time.perf_counter() - started)
        step += 1
        time.sleep(0.01)
history = lf.Client().get_metric_history(run.info.run_id, "loss")
print(
    json.dumps(
        {
            "logged": step,
            "max_call_s": max(calls),
            "steps": [m.step for m in history],
            "tags": lf.get_run(run.info.run_id).data.tags,
        }
    ),
    flush=True,
)
