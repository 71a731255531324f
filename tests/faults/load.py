"""One SDK load process: `python -m tests.faults.load WORKER GO JOURNAL MODEL`.

Through the gateway at LEDGERFLOW_TRACKING_URI: make its experiment, journal `ready`,
wait for the file GO (the driver starts then) and read from it the epoch time until
which to work (and past it until one round completed, `OVERTIME_S`); then, round after
round: start a run, log params, metric points, a tag
and a small artifact (to the S3 store, through a presigned URL), end it, read it back
(which ships the spool and waits until the gateway projected it), register it as a
version of MODEL, and point the alias `w<WORKER>` at that version.

Each outcome goes to the JOURNAL (JSON lines) as the API gave it: an answer is an
acknowledgement (`run`, `logged`, `version`, `alias`); an error (the gateway killed
mid-call, say) leaves the outcome unknown (`run?`, `logged?`, `version?`, `alias?`), and
the round moves on without repeating a call that may have been applied. The invariant
checker holds the stack to what was acknowledged. Only Ledgerflow's own errors are
expected; anything else ends up in the journal as `crash`.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

import ledgerflow as lf
from ledgerflow.entities import Metric, Param, RunTag
from ledgerflow.events.errors import LedgerflowError

STEPS = 12
"""`loss` points per run, logged in one batch."""
SINGLES = 3
"""`acc` points per run, each logged by its own call (its own event)."""


def loss(step: int) -> float:
    return 1.0 / (step + 1)


def acc(step: int) -> float:
    return step / 10


def params(worker: int, round_: int) -> dict[str, str]:
    return {"worker": str(worker), "round": str(round_)}


ARTIFACT = "notes/round.txt"


def artifact(worker: int, round_: int) -> str:
    return f"worker {worker}, round {round_}\n" * 20


class Journal:
    def __init__(self, out: IO[str], worker: int) -> None:
        self.out = out
        self.worker = worker

    def write(self, op: str, **fields: Any) -> None:
        doc = {"op": op, "worker": self.worker, "time": time.time(), **fields}
        self.out.write(json.dumps(doc) + "\n")
        self.out.flush()

    def unknown(self, op: str, error: BaseException, **fields: Any) -> None:
        self.write(op + "?", error=f"{type(error).__name__}: {error}", **fields)


def experiment(client: lf.Client, name: str, journal: Journal) -> str:
    while True:
        try:
            found = client.get_experiment_by_name(name)
            return str(found.experiment_id if found else client.create_experiment(name))
        except LedgerflowError as e:  # created or not: look again
            journal.unknown("experiment", e, name=name)
            time.sleep(0.5)


PAUSE_S = 0.5
"""After an outcome left unknown, as a client backing off would."""


def one_round(client: lf.Client, exp: str, worker: int, r: int, model: str, j: Journal) -> bool:
    """One round; False when a call's outcome was left unknown."""
    try:
        run_id = client.create_run(exp, run_name=f"w{worker}-r{r}").info.run_id
    except LedgerflowError as e:
        j.unknown("run", e, round=r)
        return False
    j.write("run", run_id=run_id, round=r)
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("loss", loss(s), now, s) for s in range(STEPS)],
        params=[Param(k, v) for k, v in params(worker, r).items()],
        tags=[RunTag("round", str(r))],
    )
    for s in range(SINGLES):
        client.log_metric(run_id, "acc", acc(s), step=s)
    try:  # an upload the store refuses is spooled and sent again with the rest
        client.log_text(run_id, artifact(worker, r), ARTIFACT)
    except LedgerflowError as e:
        j.unknown("artifact", e, run_id=run_id, round=r)
    else:
        j.write("artifact", run_id=run_id, round=r)
    client.set_terminated(run_id)
    try:
        back = client.get_run(run_id)  # ships the spool, waits for the projection
    except LedgerflowError as e:
        j.unknown("logged", e, run_id=run_id)
        return False
    j.write("logged", run_id=run_id, status=back.info.status)
    try:
        version = int(client.create_model_version(model, f"runs:/{run_id}/model", run_id).version)
    except LedgerflowError as e:
        j.unknown("version", e, run_id=run_id)
        return False
    j.write("version", model=model, version=version, run_id=run_id)
    alias = f"w{worker}"
    try:
        client.set_registered_model_alias(model, alias, version)
    except LedgerflowError as e:
        j.unknown("alias", e, model=model, alias=alias, version=version)
        return False
    j.write("alias", model=model, alias=alias, version=version)
    return True


OVERTIME_S = 60.0
"""How long a process that has not completed a round by the end of the schedule goes on
trying (the faults are over then): on a busy machine a gateway restart can take most of
the schedule, and a run in which no round completed shows nothing."""


def wait_for(go: Path, timeout_s: float = 300.0) -> float:
    deadline = time.monotonic() + timeout_s
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {go} after {timeout_s:g} s: nobody started the load")
        time.sleep(0.05)
    return float(go.read_text())


def main(argv: list[str]) -> int:
    worker, go, path, model = int(argv[0]), Path(argv[1]), argv[2], argv[3]
    client = lf.Client()
    with open(path, "a", encoding="utf-8") as out:
        journal = Journal(out, worker)
        exp = experiment(client, f"load-{worker}", journal)
        journal.write("ready")
        until = wait_for(go)
        r, completed = 0, False
        while time.time() < until or (not completed and time.time() < until + OVERTIME_S):
            r += 1
            try:
                if one_round(client, exp, worker, r, model, journal):
                    completed = True
                else:
                    time.sleep(PAUSE_S)
            except Exception as e:
                journal.write("crash", round=r, error=traceback.format_exc(), kind=type(e).__name__)
                time.sleep(PAUSE_S)
        ship(client, journal)
    return 0


SHIP_WAIT_S = 50.0
"""How long the last shipment may wait for the gateway: the schedule's last kill may
leave it restarting, which takes a while on a busy machine."""


def ship(client: lf.Client, journal: Journal) -> None:
    """Ship what is left in the spool, waiting out a gateway that is not back yet (a read
    fails at once when it cannot reach the gateway; the spool keeps what it holds)."""
    deadline = time.monotonic() + SHIP_WAIT_S
    while True:
        try:
            client.search_experiments()  # a read: ships what is left in the spool first
        except LedgerflowError as e:
            journal.unknown("shipped", e)
            if time.monotonic() > deadline:
                return
            time.sleep(1.0)
        else:
            journal.write("shipped")
            return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
