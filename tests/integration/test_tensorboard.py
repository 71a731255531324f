"""Runs' metrics as TensorBoard event files, read back by TensorBoard itself: its reader,
and a `tensorboard` process that `ledgerflow tensorboard` starts, asked over HTTP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow._tfevents import crc32c
from ledgerflow.events.errors import InvalidInput
from tests.conftest import PYTHON, ROOT, free_port, python_env
from tests.tensorboard_files import scalars
from tests.waiting import wait_until


def two_runs() -> list[str]:
    exp = lf.set_experiment("tb")
    ids = []
    for name, scale in (("first run", 1.0), ("second", 2.0)):
        with lf.start_run(run_name=name, experiment_id=exp.experiment_id) as run:
            for step in range(0, 300, 3):
                lf.log_metric("loss", scale / (step + 1), step=step)
            lf.log_metric("acc", math.nan, step=1)
            lf.log_metric("big_step", 1.5, step=2**40)  # int64 steps, past 32 bits
        ids.append(run.info.run_id)
    return ids


def test_crc32c_is_castagnolis() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C


def test_each_runs_every_point_reads_back_in_tensorboard_with_its_step_and_time(
    tracking: Path, tmp_path: Path
) -> None:
    ids = two_runs()
    folders = lf.tensorboard.export(ids, tmp_path / "logs")
    assert [f.name for f in folders] == [f"first_run-{ids[0][:8]}", f"second-{ids[1][:8]}"]
    for run_id, folder in zip(ids, folders, strict=True):
        for key in ("loss", "acc", "big_step"):
            logged = lf.Client().get_metric_history(run_id, key)
            read = scalars(folder, key)
            assert [s for s, _, _ in read] == [m.step for m in logged]
            assert [t for _, _, t in read] == pytest.approx([m.timestamp / 1000 for m in logged])
            for (_, value, _), m in zip(read, logged, strict=True):
                assert value == pytest.approx(m.value, rel=1e-6, nan_ok=True)
    with pytest.raises(InvalidInput, match="at least one run"):
        lf.tensorboard.export([], tmp_path / "none")


def test_the_cli_exports_an_experiments_runs_and_serves_them_in_tensorboard(
    tracking: Path, tmp_path: Path
) -> None:
    ids = two_runs()
    env = python_env(tracking)
    exported = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "tensorboard", ids[1], "--export-only", "--logdir",
         str(tmp_path / "one")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert [f.name for f in (tmp_path / "one").iterdir()] == [f"second-{ids[1][:8]}"]

    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "ledgerflow.cli", "tensorboard", "-e", "tb", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # TensorBoard is its child: stopped with it, as a group
    )  # fmt: skip
    try:
        run = f"first_run-{ids[0][:8]}"
        query = urllib.parse.urlencode({"run": run, "tag": "loss"})
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"

        points: list[list[float]] = []

        def served() -> bool:  # TensorBoard loads the files in the background: until all are
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    points[:] = json.loads(response.read())
            except OSError:
                return False
            return len(points) == 100

        wait_until(served, 90, lambda: f"TensorBoard to serve 100 points, it has {len(points)}")
        assert [int(step) for _, step, _ in points] == list(range(0, 300, 3))
        assert points[-1][2] == pytest.approx(1.0 / 298)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
