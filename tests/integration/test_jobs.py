"""Training jobs on a real local Ray (one cluster for the suite): a job logs into its
run, a failing job fails with its error and log tail, a cancelled job stops, and a
distributed job's workers all log into one run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow.events.errors import Conflict, InvalidInput, Timeout
from ledgerflow.workers.runtime import RayRuntime

pytestmark = pytest.mark.slow


def fit(lr: float, steps: int) -> None:
    print(f"training with lr={lr}")
    for step in range(steps):
        lf.log_metric("loss", 1.0 / (1 + step * lr), step=step)
    lf.set_tag("trained", "yes")


def crash(reason: str) -> None:
    print("about to fail")
    raise ValueError(reason)


def sleep_forever() -> None:
    lf.log_metric("alive", 1.0)
    lf.flush()
    print("sleeping", flush=True)
    time.sleep(600)


def test_a_function_job_on_ray_logs_into_the_run_it_produced(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(fit, params={"lr": 0.5, "steps": 3}, experiment_name="jobs", cpus=1)
    job.wait(timeout=120)
    info = job.info
    assert info.status == "FINISHED", info.error
    assert info.kind == "function" and info.params == {"lr": "0.5", "steps": "3"}
    run = job.run
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.5", "steps": "3"}
    assert run.data.tags["trained"] == "yes"
    assert run.data.tags["ledgerflow.job_id"] == job.job_id
    history = lf.Client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert "training with lr=0.5" in job.logs()
    assert [j.job_id for j in lf.jobs.list()] == [job.job_id]


def test_a_failing_job_fails_with_its_error_and_log_tail_and_fails_its_run(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(crash, params={"reason": "the data is bad"})
    job.wait(timeout=120)
    info = job.info
    assert info.status == "FAILED"
    assert info.error is not None and "ValueError: the data is bad" in info.error
    assert "exit status 1" in info.error
    assert "about to fail" in info.log_tail and "Traceback" in info.log_tail
    assert job.run.info.status == "FAILED"
    events = [r.event for r in lf.subscribe(types=["job.*"], follow=False)]
    assert [e.type for e in events] == ["job.submitted", "job.started", "job.failed"]
    assert {e.stream for e in events} == {f"job:{job.job_id}"}
    assert "ValueError: the data is bad" in events[-1].data.error


def wait_for_the_supervisor(job: lf.jobs.Job) -> None:
    """The job's supervisor keeps the log as an artifact once it stopped the job."""
    deadline = time.monotonic() + 30
    while not lf.Client().list_artifacts(job.run_id, "job"):
        assert time.monotonic() < deadline, "the supervisor did not stop the job and keep its log"
        time.sleep(0.2)
    assert [f.path for f in lf.Client().list_artifacts(job.run_id, "job")] == ["job/output.log"]


def test_cancelling_a_running_job_stops_it_and_kills_its_run(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(sleep_forever)
    deadline = time.monotonic() + 120
    while "sleeping" not in job.logs():
        assert time.monotonic() < deadline, job.logs()
        time.sleep(0.2)
    job.cancel("no longer needed")
    assert job.status == "CANCELLED"
    assert job.run.info.status == "KILLED"
    with pytest.raises(Conflict, match="already ended as CANCELLED"):
        job.cancel()
    wait_for_the_supervisor(job)
    assert job.info.error == "no longer needed"


def test_waiting_for_a_job_that_does_not_end_in_time_is_a_timeout(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(sleep_forever)
    deadline = time.monotonic() + 120
    while job.status != "RUNNING":
        assert time.monotonic() < deadline, job.status
        time.sleep(0.2)
    with pytest.raises(Timeout, match=f"job {job.job_id} is still RUNNING after 1 s"):
        job.wait(timeout=1)
    job.cancel()
    wait_for_the_supervisor(job)


def test_a_distributed_job_needs_ray_and_a_function(tracking: Path) -> None:
    with pytest.raises(InvalidInput, match="a distributed job runs on Ray"):
        lf.jobs.submit(fit, config={"lr": 1}, num_workers=2, ray_address="inline")
    with pytest.raises(InvalidInput, match="distributed job runs a function"):
        lf.jobs.submit("echo hi", num_workers=2, ray_address="inline")
    assert lf.jobs.list() == []


def train_loop(config: dict[str, int]) -> None:
    import torch
    import torch.distributed as dist

    from ledgerflow.workers.distributed import is_rank_zero, rank

    total = torch.tensor([float(rank() + 1)])
    dist.all_reduce(total)  # gloo: both workers really form one group
    for step in range(config["steps"]):
        lf.log_metric("loss", float(rank() * 10 + step), step=step)
    lf.log_metric("world_sum", float(total.item()))
    if is_rank_zero():
        lf.log_dict({"weights": [1, 2]}, "model/weights.json")


def test_a_two_worker_distributed_job_logs_every_rank_into_one_run(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(train_loop, config={"steps": 3}, num_workers=2, experiment_name="ddp")
    job.wait(timeout=240)
    assert job.status == "FINISHED", (job.error, job.logs()[-3000:])
    assert job.info.kind == "distributed" and job.info.num_workers == 2
    run = job.run
    assert run.info.status == "FINISHED"
    client = lf.Client()
    for r in (0, 1):
        history = client.get_metric_history(run.info.run_id, f"loss/rank{r}")
        assert [(m.step, m.value) for m in history] == [(s, float(r * 10 + s)) for s in range(3)]
        assert run.data.metrics[f"world_sum/rank{r}"] == 3.0
    plain = client.get_metric_history(run.info.run_id, "loss")
    assert [m.value for m in plain] == [0.0, 1.0, 2.0], "the plain key is rank 0's alone"
    assert [f.path for f in client.list_artifacts(run.info.run_id, "model")] == [
        "model/weights.json"
    ]
    assert len(lf.search_runs(experiment_names=["ddp"], output_format="list")) == 1


def crashing_loop() -> None:
    from ledgerflow.workers.distributed import rank

    lf.log_metric("loss", 1.0)
    if rank() == 1:
        raise RuntimeError("rank 1 ran out of data")


def test_a_crashing_worker_fails_the_distributed_job_and_its_run_with_the_reason(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(crashing_loop, num_workers=2)
    job.wait(timeout=240)
    assert job.status == "FAILED"
    assert "rank 1 ran out of data" in job.logs()
    assert job.error is not None and job.error.startswith("exit status 1")
    assert job.run.info.status == "FAILED"


def kill_my_supervisor() -> None:
    import os
    import signal

    os.kill(os.getppid(), signal.SIGKILL)


def test_a_job_whose_ray_worker_dies_is_failed_by_the_submitter_and_nothing_hangs(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(kill_my_supervisor)
    job.wait(timeout=120)
    assert job.status == "FAILED"
    assert job.error is not None and job.error.startswith("its worker failed:")
    assert job.run.info.status == "FAILED"


def endless_loop() -> None:
    from ledgerflow.workers.distributed import rank

    lf.log_metric("alive", 1.0)
    lf.flush()
    print(f"rank {rank()} looping", flush=True)
    time.sleep(600)


def test_cancelling_a_distributed_job_stops_its_workers_and_frees_their_cpus(
    tracking: Path, ray_runtime: RayRuntime
) -> None:
    job = lf.jobs.submit(endless_loop, num_workers=2)
    deadline = time.monotonic() + 180
    while job.run.data.metrics.get("alive/rank1") is None:
        assert job.status in ("SUBMITTED", "RUNNING"), (job.error, job.logs())
        assert time.monotonic() < deadline, job.logs()
        time.sleep(0.5)
    assert ray_runtime.ray.available_resources().get("CPU", 0) < 2
    job.cancel()
    assert job.status == "CANCELLED" and job.run.info.status == "KILLED"
    deadline = time.monotonic() + 60
    while ray_runtime.ray.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, "the cancelled job's workers still hold CPUs"
        time.sleep(0.5)
    wait_for_the_supervisor(job)
    assert "rank 1 looping" in job.logs()
