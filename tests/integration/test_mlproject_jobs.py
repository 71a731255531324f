"""MLproject runs: here (a child process, no Ray) and on the suite's local Ray, with
parameters checked against their declared types before anything runs; and the
jobs view rebuilds from the log to the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import ledgerflow as lf
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector.job_tables import JOBS

pytestmark = pytest.mark.slow

MLPROJECT = """
name: tiny
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      lr: {type: float, default: 0.1}
      epochs: {type: int, default: 2}
    command: "python train.py --lr {lr} --epochs {epochs}"
"""

TRAIN = """
import argparse
import sys

import ledgerflow as lf

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
print("python is", sys.executable)
with lf.start_run():
    for epoch in range(args.epochs):
        lf.log_metric("loss", 1.0 / (1 + epoch * args.lr), step=epoch)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "python_env.yaml").write_text("python: '3.11'\n")
    (folder / "train.py").write_text(TRAIN)
    return folder


@pytest.mark.parametrize("on_ray", [False, True], ids=["here", "on-ray"])
def test_an_mlproject_entry_point_runs_with_its_parameters_into_one_run(
    tracking: Path, project: Path, on_ray: bool, request: pytest.FixtureRequest
) -> None:
    if on_ray:
        request.getfixturevalue("ray_runtime")
    job = lf.jobs.run_project(project, "main", {"epochs": 3}, on_ray=on_ray, experiment_name="p")
    info = job.info
    assert info.status == "FINISHED", (info.error, job.logs())
    assert info.runtime == ("local" if on_ray else "inline")
    assert info.project == {"name": "tiny", "entry_point": "main", "python_env": "python_env.yaml"}
    run = job.run
    assert run.data.params == {"lr": "0.1", "epochs": "3"}
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert run.info.status == "FINISHED"
    history = lf.Client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert "python is" in job.logs()


def test_a_badly_typed_parameter_is_refused_before_anything_runs(
    tracking: Path, project: Path
) -> None:
    with pytest.raises(InvalidInput, match="parameter 'epochs' must be an int, got 'three'"):
        lf.jobs.run_project(project, "main", {"epochs": "three"})
    assert lf.jobs.list() == []
    assert lf.search_runs(output_format="list") == []


def test_a_job_killed_by_a_signal_fails_its_run_with_the_reason(tracking: Path) -> None:
    job = lf.jobs.submit("echo started; kill -9 $$", ray_address="inline")
    job.wait(timeout=60)
    assert job.status == "FAILED"
    assert job.error == "killed by SIGKILL: started"
    assert job.run.info.status == "FAILED"


def test_the_jobs_view_rebuilt_from_the_log_has_the_same_rows(tracking: Path) -> None:
    lf.jobs.submit("echo one", ray_address="inline").wait(timeout=60)
    lf.jobs.submit("exit 3", ray_address="inline").wait(timeout=60)
    backend = lf.Client()._backend
    with backend.projector.engine.connect() as conn:
        before = sorted(conn.execute(select(JOBS)).all())
    backend.projector.rebuild()
    with backend.projector.engine.connect() as conn:
        after = sorted(conn.execute(select(JOBS)).all())
    assert len(before) == 2 and after == before
    assert {r.status for r in after} == {"FINISHED", "FAILED"}


SUBMIT_AND_EXIT = """
import os, sys, time
import ledgerflow as lf

lf.set_tracking_uri(sys.argv[1])
job = lf.jobs.submit("echo $$ > pid.part; mv pid.part pid; sleep 600", ray_address="inline")
while not os.path.exists("pid"):  # the job's process is up
    time.sleep(0.01)
print(job.job_id)
"""


def test_an_inline_job_ends_with_the_process_that_ran_it_and_says_why(
    tracking: Path, tmp_path: Path
) -> None:
    import subprocess

    from tests.conftest import PYTHON, python_env

    script = tmp_path / "submit.py"
    script.write_text(SUBMIT_AND_EXIT)
    done = subprocess.run(
        [PYTHON, str(script), str(tracking)], cwd=tmp_path, env=python_env(tracking),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = lf.jobs.get(done.stdout.strip())
    assert job.status == "FAILED"
    assert job.error == "the process that ran it on inline exited"
    assert lf.get_run(job.run_id).info.status == "FAILED"
    pid = int((tmp_path / "pid").read_text())
    assert _gone(pid), f"the job's process {pid} outlived the process that ran it"


def _gone(pid: int, within: float = 10.0) -> bool:
    """Exited (a zombie no init reaped yet counts: it runs no more)."""
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.1)
    return False
