"""The data the pipeline pages' browser tests look at (compare, jobs, events, audit,
operations), in a data directory of their own so the session's other data stays as
tests/ui/fill.py made it: a small sweep of runs to compare (one param the same in all), an
experiment renamed and tagged often enough to page the audit trail, and a finished job.

`python -m tests.ui.pipeline DATA_DIR` fills it and prints a JSON summary; the fixtures
below start `ledgerflow ui` on it and run jobs and bad events against it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, python_env
from tests.ui.conftest import UiServer, start_ui, stop

AUDIT_TAGS = 60
"""Tag changes on one experiment: more than the audit page's first page (50)."""
SWEEP = (("0.1", 0.71), ("0.01", 0.83), ("0.001", 0.78))


def fill(data_dir: Path) -> dict[str, Any]:
    import ledgerflow as lf

    lf.set_tracking_uri(str(data_dir))
    client = lf.Client()
    exp = client.create_experiment("sweep-draft")
    client.rename_experiment(exp, "sweep")
    for i in range(AUDIT_TAGS):
        client.set_experiment_tag(exp, "revision", str(i))
    runs = []
    for lr, acc in SWEEP:
        run = client.create_run(exp, run_name=f"lr-{lr}")
        client.log_param(run.info.run_id, "lr", lr)
        client.log_param(run.info.run_id, "optimizer", "adam")
        for step in range(20):
            client.log_metric(run.info.run_id, "loss", 1 / (1 + step * float(lr) * 10), step=step)
        client.log_metric(run.info.run_id, "accuracy", acc)
        client.set_terminated(run.info.run_id)
        runs.append(run.info.run_id)
    lf.flush()
    return {"experiment": exp, "runs": runs}


def train(data_dir: Path, command: str, name: str) -> subprocess.Popen[str]:
    """`ledgerflow train COMMAND` as a job run inline (a child process, no Ray)."""
    env = python_env(data_dir)
    env["LEDGERFLOW_RAY_ADDRESS"] = "inline"
    return subprocess.Popen(
        [sys.executable, "-m", "ledgerflow.cli", "train", command, "--name", name],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("pipeline")
    data_dir = root / "data"
    out = subprocess.run(
        [sys.executable, "-m", "tests.ui.pipeline", str(data_dir)],
        cwd=ROOT, env=python_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    done = train(data_dir, "echo warming up; echo trained", "finished-job")
    assert done.wait(120) == 0, done.stdout.read() if done.stdout else ""
    server = start_ui(data_dir, root / "ui.log")
    yield server, summary
    stop(server)


if __name__ == "__main__":
    print(json.dumps(fill(Path(sys.argv[1]))))
