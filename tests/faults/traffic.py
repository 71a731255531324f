"""The inference load: `python -m tests.faults.traffic GO JOURNAL REPLICA_URL DEPLOYMENT`.

What users of a deployment do, against a `ledgerflow serve --deployment` replica: ask
for a prediction (`POST /deployments/<name>/invocations`, the request id chosen by the
caller in `X-Request-Id`) and, for every other answer, report its outcome
(`POST /deployments/<name>/feedback`). Like `load.py` it waits for the file GO, works
until the time written in it, and journals every outcome: an answer (`answer`, with the
variant that gave it) or an accepted feedback (`feedback`, 202) is an acknowledgement;
an error leaves the outcome unknown (`answer?`, `feedback?`) and is not retried.

Also the model the deployment's variants serve (`Echo`): importable here, so a replica
loads it by reference.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ledgerflow.pyfunc import PythonModel
from tests.faults.load import Journal, wait_for

PAUSE_S = 0.1
"""Between requests: some ten a second, a steady trickle on a small machine."""
DOWN_PAUSE_S = 0.3
"""After a request that got no answer (the replica down, say)."""


class Echo(PythonModel):
    """Each row's sum: the cheapest model a replica can load and warm."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        import numpy as np

        return np.asarray(model_input, dtype=float).reshape(len(model_input), -1).sum(axis=1)


def main(argv: list[str]) -> int:
    go, path, url, deployment = Path(argv[0]), argv[1], argv[2], argv[3]
    base = f"{url}/deployments/{deployment}"
    with open(path, "a", encoding="utf-8") as out, httpx.Client(timeout=10) as http:
        journal = Journal(out, -1)
        journal.write("ready")
        until = wait_for(go)
        n = 0
        while time.time() < until:
            n += 1
            rid = f"q{n}"
            try:
                r = http.post(f"{base}/invocations", json={"inputs": [[n, 1.0]]},
                              headers={"X-Request-Id": rid})  # fmt: skip
            except httpx.HTTPError as e:
                journal.unknown("answer", e, rid=rid)
                time.sleep(DOWN_PAUSE_S)
                continue
            if r.status_code != 200:
                journal.write("answer?", rid=rid, error=f"{r.status_code}: {r.text[:200]}")
                time.sleep(DOWN_PAUSE_S)
                continue
            journal.write("answer", rid=rid, variant=r.headers.get("X-Ledgerflow-Variant"))
            if n % 2 == 0:
                value = float(n % 3 == 0)
                try:
                    f = http.post(f"{base}/feedback", json={"request_id": rid, "value": value})
                except httpx.HTTPError as e:
                    journal.unknown("feedback", e, rid=rid)
                else:
                    op = "feedback" if f.status_code == 202 else "feedback?"
                    journal.write(op, rid=rid, status=f.status_code, body=f.text[:200])
            time.sleep(PAUSE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
