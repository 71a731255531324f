"""`ledgerflow run`, `ledgerflow train` and `ledgerflow jobs …` as real processes.

They run jobs `inline` (a child process of the command, no Ray) to stay quick; the
Ray paths are covered in tests/integration/test_jobs.py on the suite's Ray.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYTHON
from tests.e2e.test_cli import cli_env

pytestmark = pytest.mark.slow

MLPROJECT = """
name: tiny
conda_env: conda.yaml
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 1}
    command: "python -c 'import ledgerflow as lf; lf.log_metric(\\"loss\\", {epochs}); print(\\"did {epochs}\\")'"
"""


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(data_dir)
    env["LEDGERFLOW_RAY_ADDRESS"] = "inline"
    return subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_running_a_project_and_inspecting_its_job_from_the_command_line(
    data_dir: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(MLPROJECT)

    bad = cli(data_dir, "run", str(project), "-P", "epochs=many")
    assert bad.returncode == 1
    assert "parameter 'epochs' must be an int, got 'many'" in bad.stderr
    assert "Traceback" not in bad.stderr

    ran = cli(data_dir, "run", str(project), "-e", "main", "-P", "epochs=3")
    assert ran.returncode == 0, ran.stderr
    assert "conda_env: conda.yaml is recorded" in ran.stderr
    assert " FINISHED; run " in ran.stdout

    failed = cli(data_dir, "train", "echo going; exit 4", "--name", "doomed")
    assert failed.returncode == 1
    assert "exit status 4: going" in failed.stderr

    listed = json.loads(cli(data_dir, "jobs", "list", "--json").stdout)
    assert [(j["name"], j["status"]) for j in listed] == [
        ("doomed", "FAILED"),
        ("tiny:main", "FINISHED"),
    ]
    project_job = listed[1]["job_id"]
    assert listed[1]["params"] == {"epochs": "3"}
    assert listed[1]["project"]["conda_env"] == "conda.yaml"

    logs = cli(data_dir, "jobs", "logs", project_job)
    assert logs.stdout == "did 3\n"
    shown = cli(data_dir, "jobs", "show", listed[0]["job_id"])
    assert "FAILED" in shown.stdout and "going" in shown.stdout

    cancelled = cli(data_dir, "jobs", "cancel", project_job)
    assert cancelled.returncode == 1
    assert "already ended as FINISHED" in cancelled.stderr
    missing = cli(data_dir, "jobs", "show", "no-such-job")
    assert missing.returncode == 1 and "no job 'no-such-job'" in missing.stderr
