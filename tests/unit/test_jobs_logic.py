"""Job decisions, MLproject parsing and parameter checks, without Ray or a log."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerflow import fluent
from ledgerflow.events import job_payloads as j
from ledgerflow.events.errors import Conflict, InvalidInput, NotFound
from ledgerflow.services.jobs.decide import decide_cancel, decide_end, tail
from ledgerflow.services.jobs.queries import Job
from ledgerflow.workers.job_task import failure_reason, settings_env
from ledgerflow.workers.mlproject import load_project, parse_assignments


def job(status: str) -> Job:
    return Job("j1", "n", "command", "echo", status, "r1", "0", "inline")


def test_a_running_job_ends_finished_or_failed_and_an_ended_job_stays_as_it_was() -> None:
    assert isinstance(decide_end(job("RUNNING"), None, "ok"), j.JobFinished)
    failed = decide_end(job("RUNNING"), "exit status 1: boom", "x" * 10_000)
    assert isinstance(failed, j.JobFailed) and failed.error == "exit status 1: boom"
    assert len(failed.log_tail) <= 4001 and failed.log_tail.startswith("…")
    assert decide_end(job("CANCELLED"), None, "") is None


def test_cancelling_an_ended_job_is_a_conflict_that_says_how_it_ended() -> None:
    assert decide_cancel(job("SUBMITTED"), "why").reason == "why"
    with pytest.raises(Conflict, match="already ended as FINISHED"):
        decide_cancel(job("FINISHED"), "")


def test_a_failure_reason_names_the_exit_and_the_last_line_printed() -> None:
    log = "step 1\nTraceback (most recent call last):\n  ...\nValueError: bad data\n\n"
    assert failure_reason(1, log) == "exit status 1: ValueError: bad data"
    assert failure_reason(-9, "") == "killed by SIGKILL"
    assert failure_reason(2, "\x1b[36m(pid=1)\x1b[0m oops") == "exit status 2: (pid=1) oops"
    assert tail("short") == "short"


def test_settings_travel_to_a_job_as_ledgerflow_variables() -> None:
    env = settings_env({"tracking_uri": "/data", "allow_pickle": False, "views_db": None})
    assert env == {"LEDGERFLOW_TRACKING_URI": "/data", "LEDGERFLOW_ALLOW_PICKLE": "false"}


def test_rank_zero_logs_plain_and_ranked_keys_and_other_ranks_only_ranked_ones() -> None:
    points = [("loss", 0.5, 1, 0)]
    assert fluent._ranked(points, 0) == [("loss", 0.5, 1, 0), ("loss/rank0", 0.5, 1, 0)]
    assert fluent._ranked(points, 3) == [("loss/rank3", 0.5, 1, 0)]


MLPROJECT = """
name: tutorial
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: {type: int, default: 2}
      data: path
      out: {type: uri, default: "s3://bucket/out"}
      label: {type: string, default: "a b"}
    command: "python train.py --alpha {alpha} --epochs {epochs} --data {data} --label {label}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "data.csv").write_text("x\n1\n")
    (tmp_path / "check.py").write_text("print('ok')\n")
    return tmp_path


def test_an_mlproject_command_gets_checked_values_defaults_and_extra_parameters(
    project: Path,
) -> None:
    p = load_project(project)
    assert p.name == "tutorial" and p.environment == {"python_env": "python_env.yaml"}
    command, values = p.command("main", {"data": "data.csv", "alpha": "0.1", "seed": "7"})
    data = str((project / "data.csv").resolve())
    assert command == (
        f"python train.py --alpha 0.1 --epochs 2 --data {data} --label 'a b' --seed 7"
    )
    assert values == {
        "alpha": "0.1", "epochs": "2", "data": data, "out": "s3://bucket/out",
        "label": "a b", "seed": "7",
    }  # fmt: skip
    assert p.command("check.py", {})[0] == "python check.py"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"data": "data.csv", "alpha": "fast"}, "parameter 'alpha' must be a float, got 'fast'"),
        ({"data": "data.csv", "epochs": "2.5"}, "parameter 'epochs' must be an int, got '2.5'"),
        ({"data": "nope.csv"}, "parameter 'data' is a path, but 'nope.csv' does not exist"),
        ({"alpha": "0.1"}, "needs parameter\\(s\\) data: pass them as -P data=VALUE"),
        ({"data": "data.csv", "alpha": "nan"}, "parameter 'alpha' must be finite"),
    ],
)
def test_bad_mlproject_parameters_are_errors_that_name_the_parameter(
    project: Path, params: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_project(project).command("main", params)


def test_unknown_entry_points_types_and_missing_files_are_clear_errors(project: Path) -> None:
    tmp_path = project
    with pytest.raises(NotFound, match="no entry point 'eval' \\(declared: main"):
        load_project(project).entry_point("eval")
    (project / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {x: decimal}\n    command: echo {x}\n"
    )
    with pytest.raises(InvalidInput, match="parameter 'x' has unknown type 'decimal'"):
        load_project(project)
    (project / "MLproject").write_text("entry_points:\n  main: {parameters: {}}\n")
    with pytest.raises(InvalidInput, match="entry point 'main' needs a command"):
        load_project(project)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="has no MLproject file"):
        load_project(tmp_path / "empty")
    with pytest.raises(InvalidInput, match="'lr' must look like NAME=VALUE"):
        parse_assignments(["lr"])
    assert parse_assignments(["lr=0.1", "name=a=b"]) == {"lr": "0.1", "name": "a=b"}


def test_a_job_target_is_a_function_by_module_path_or_else_a_command(tmp_path: Path) -> None:
    from ledgerflow.jobs import command_line, resolve

    assert resolve("json:dumps") is __import__("json").dumps
    assert resolve("echo a:b") == "echo a:b"
    with pytest.raises(InvalidInput, match="cannot load 'json:nothing_here'"):
        resolve("json:nothing_here")
    script = tmp_path / "train.py"
    script.write_text("")
    assert command_line(str(script), {"lr": 0.1, "name": "a b"}) == (
        f"python {script.resolve()} --lr 0.1 --name 'a b'"
    )
    assert command_line("make train", {}) == "make train"
    with pytest.raises(InvalidInput, match="script 'missing.py' does not exist"):
        command_line("missing.py", {})
