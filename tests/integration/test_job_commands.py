"""Job commands on a real SQLite backend with a fake launcher (no Ray): what submitting
records before the job is handed over, what it refuses first, and cancelling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ledgerflow.events import job_commands as jc
from ledgerflow.events.errors import Conflict, InvalidInput
from ledgerflow.events.job_entities import Job
from ledgerflow.events.settings import Settings
from ledgerflow.services.bootstrap import Backend, bootstrap


@dataclass
class FakeLauncher:
    """Takes jobs as `JobLauncher` does, and keeps them instead of running them."""

    runtime_name: str
    launched: list[tuple[Job, jc.SubmitJob, str]] = field(default_factory=list)

    def launch(self, job: Job, command: jc.SubmitJob, *, actor: str) -> None:
        self.launched.append((job, command, actor))


@pytest.fixture
def launchers(settings: Settings) -> Iterator[tuple[Backend, dict[str, FakeLauncher]]]:
    made: dict[str, FakeLauncher] = {}

    def launcher(backend: Backend, address: str | None) -> FakeLauncher:
        name = address or backend.settings.ray_address
        return made.setdefault(name, FakeLauncher(name))

    b = bootstrap(settings, launchers=launcher)
    yield b, made
    b.close()


def echo(**given: object) -> jc.SubmitJob:
    fields: dict[str, object] = {
        "name": "echo", "kind": "command", "entry_point": "echo hi", "command": "echo hi",
        "experiment_id": "0", "user_id": "ana", "params": {"lr": 0.1},
    }  # fmt: skip
    return jc.SubmitJob.model_validate(fields | given)


def test_submitting_records_the_run_and_the_job_before_the_launcher_gets_it(launchers):
    backend, made = launchers
    backend.tracking.default_experiment(actor="ana")
    job = backend.jobs.execute(echo(runtime="inline"), actor="user:ana")
    [(launched, command, actor)] = made["inline"].launched
    assert launched == job and command.command == "echo hi" and actor == "user:ana"
    assert (job.status, job.runtime, job.params) == ("SUBMITTED", "inline", {"lr": "0.1"})
    run = backend.queries.get_run(job.run_id)
    assert run.data.tags["ledgerflow.job_id"] == job.job_id
    assert run.data.tags["mlflow.source.type"] == "JOB" and run.data.params == {"lr": "0.1"}
    assert backend.jobs.get(job.job_id) == job


def test_what_no_runtime_could_run_is_refused_before_anything_is_recorded(launchers):
    backend, made = launchers
    backend.tracking.default_experiment(actor="ana")
    runs_before = len(backend.queries.search_runs(["0"]))
    distributed = echo(kind="distributed", command=None, function=b"plan", num_workers=2)
    with pytest.raises(InvalidInput, match="a distributed job runs on Ray") as e:
        backend.jobs.execute(distributed.model_copy(update={"runtime": "inline"}), actor="a")
    assert e.value.field == "ray_address"
    with pytest.raises(InvalidInput, match="num_workers must be at least 1, got 0"):
        backend.jobs.execute(echo(num_workers=0), actor="a")
    with pytest.raises(InvalidInput, match="needs its pickled function"):
        backend.jobs.execute(echo(kind="function", command=None), actor="a")
    with pytest.raises(InvalidInput, match="cpus: ") as e:
        echo(cpus=-1)
    assert e.value.field == "cpus"
    assert len(backend.queries.search_runs(["0"])) == runs_before
    assert all(not m.launched for m in made.values())


def test_cancelling_ends_the_job_and_kills_its_run_and_a_second_cancel_is_a_conflict(
    launchers,
):
    backend, _ = launchers
    backend.tracking.default_experiment(actor="ana")
    job = backend.jobs.execute(echo(), actor="ana")
    cancelled = backend.jobs.execute(jc.CancelJob(job_id=job.job_id), actor="user:bo")
    assert (cancelled.status, cancelled.error) == ("CANCELLED", "cancelled by user:bo")
    assert backend.queries.get_run(job.run_id).info.status == "KILLED"
    with pytest.raises(Conflict, match="already ended as CANCELLED"):
        backend.jobs.execute(jc.CancelJob(job_id=job.job_id, reason="again"), actor="bo")


def test_a_backend_without_a_launcher_refuses_to_submit_saying_where_to(backend: Backend):
    backend.tracking.default_experiment(actor="ana")
    with pytest.raises(InvalidInput, match="this process does not run jobs"):
        backend.jobs.execute(echo(), actor="ana")
