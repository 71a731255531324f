"""The inference load: `python -m tests.faults.traffic GO JOURNAL (REPLICA_URL DEPLOYMENT)...`.

What users of a deployment do, against `ledgerflow serve --deployment` replicas, taking
the deployments in turn: ask for a prediction (`POST /deployments/<name>/invocations`,
the request id chosen by the caller in `X-Request-Id`) and, for every other answer,
report its outcome (`POST /deployments/<name>/feedback`). Like `load.py` it waits for
the file GO, works until the time written in it, and journals every outcome, with its
deployment: an answer (`answer`, with the variant that gave it) or an accepted feedback
(`feedback`, 202) is an acknowledgement; an error leaves the outcome unknown (`answer?`,
`feedback?`) and is not retried.

Also the models the deployments' variants serve (`Echo`, and `Failing`, which answers
nothing but errors): importable here, so a replica loads them by reference.
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


class Failing(PythonModel):
    """A candidate that raises on every input: the replica answers each request with an
    error (400, the model failed) and records it as one, so its error rate is 1."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        raise RuntimeError("this candidate fails on every input")


def main(argv: list[str]) -> int:
    go, path = Path(argv[0]), argv[1]
    targets = list(zip(argv[2::2], argv[3::2], strict=True))
    with open(path, "a", encoding="utf-8") as out, httpx.Client(timeout=10) as http:
        journal = Journal(out, -1)
        journal.write("ready")
        until = wait_for(go)
        n = 0
        while time.time() < until:
            n += 1
            rid = f"q{n}"  # unique across the deployments
            url, deployment = targets[n % len(targets)]
            base = f"{url}/deployments/{deployment}"
            try:
                r = http.post(f"{base}/invocations", json={"inputs": [[n, 1.0]]},
                              headers={"X-Request-Id": rid})  # fmt: skip
            except httpx.HTTPError as e:
                journal.unknown("answer", e, rid=rid, deployment=deployment)
                time.sleep(DOWN_PAUSE_S)
                continue
            if r.status_code != 200:
                journal.write("answer?", rid=rid, deployment=deployment,
                              error=f"{r.status_code}: {r.text[:200]}")  # fmt: skip
                # a model's failure is an answer of its own; anything else, a replica down
                time.sleep(PAUSE_S if r.status_code == 400 else DOWN_PAUSE_S)
                continue
            journal.write("answer", rid=rid, deployment=deployment,
                          variant=r.headers.get("X-Ledgerflow-Variant"))  # fmt: skip
            if n // len(targets) % 2 == 0:
                value = float(n % 3 == 0)
                try:
                    f = http.post(f"{base}/feedback", json={"request_id": rid, "value": value})
                except httpx.HTTPError as e:
                    journal.unknown("feedback", e, rid=rid, deployment=deployment)
                else:
                    op = "feedback" if f.status_code == 202 else "feedback?"
                    journal.write(op, rid=rid, deployment=deployment, status=f.status_code,
                                  body=f.text[:200])  # fmt: skip
            time.sleep(PAUSE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
