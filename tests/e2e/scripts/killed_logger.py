"""Starts a run, waits for a line on stdin (the test stops the gateway meanwhile), logs
into the spool, says so, and waits to be SIGKILLed before it can ship anything."""

import sys
import time

import ledgerflow as lf

lf.set_experiment("killed")
run = lf.start_run()
print(run.info.run_id, flush=True)
sys.stdin.readline()
lf.log_params({"a": 1, "b": 2})
for i in range(500):
    lf.log_metric("m", float(i), step=i)
lf.set_tag("t", "v")
lf.flush()  # the buffered points into the spool; the gateway is down, so there they stay
print("spooled", flush=True)
time.sleep(600)
