"""Submitting training jobs and following them: the submitter's side.

The `JobService` records a submitted job (its run, then `job.submitted`) and gives it to
`JobLauncher.launch`, which hands a `JobSpec` to the runtime (Ray, or a thread for
`inline`). The job's supervisor (job_task.run_job) records the rest.
A watcher thread here turns a task that died without recording its end (a
worker process killed, a node lost) into `job.failed` and a FAILED run, so
nothing waits forever on a job whose worker is gone.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import NotFound, Timeout
from ledgerflow.events.job_commands import SubmitJob
from ledgerflow.events.job_entities import Job
from ledgerflow.workers.job_task import (
    RUN_STATUS,
    JobSpec,
    read_tail,
    run_job,
    stop_all,
    wait_until,
)
from ledgerflow.workers.runtime import Handle, Resources, Runtime, TaskCancelled, TaskFailed

if TYPE_CHECKING:
    from ledgerflow.services.bootstrap import Backend


def job_settings(backend: Backend) -> dict[str, Any]:
    """The settings a job's code needs to log where the submitter does, with a data
    directory made absolute (the job runs in another folder, maybe on another host)."""
    s = backend.settings
    out: dict[str, Any] = s.model_dump(exclude_unset=True, exclude={"run_id", "rank"})
    if not s.is_remote:
        out["tracking_uri"] = str(s.data_dir)
    return out


class JobLauncher:
    def __init__(self, backend: Backend, runtime: Runtime, *, runtime_name: str) -> None:
        self.backend = backend
        self.runtime = runtime
        self.runtime_name = runtime_name
        self.jobs = backend.jobs
        self._handles: dict[str, Handle] = {}
        if runtime_name in ("local", "inline"):
            atexit.register(self._at_exit)

    def launch(self, job: Job, command: SubmitJob, *, actor: str) -> None:
        """Hand the recorded `job` to the runtime and watch its task; a job the runtime
        refuses is failed with the reason, and the error raised."""
        spec = JobSpec(
            job_id=job.job_id, run_id=job.run_id, kind=command.kind,
            settings=job_settings(self.backend), command=command.command,
            function=command.function, cwd=command.cwd or os.getcwd(), actor=actor,
        )  # fmt: skip
        # A distributed job's driver only coordinates; its workers hold the resources.
        resources = (
            Resources(cpus=0)
            if command.kind == "distributed"
            else Resources(cpus=command.cpus, gpus=command.gpus, memory=command.memory)
        )
        try:
            handle = self.runtime.submit(
                run_job, spec, name=f"ledgerflow-job-{job.job_id}", resources=resources
            )
        except Exception as e:
            self._fail(job, f"could not submit to {self.runtime_name}: {e}")
            raise
        self._handles[job.job_id] = handle
        threading.Thread(
            target=self._watch, args=(job, handle), name=f"job-{job.job_id}", daemon=True
        ).start()

    def _watch(self, job: Job, handle: Handle) -> None:
        try:
            self.runtime.result(handle)
            return
        except TaskCancelled:
            reason = "its Ray task was cancelled"
        except TaskFailed as e:
            reason = f"its worker failed: {e.error}"
        except Exception as e:  # the runtime itself went away
            reason = f"lost track of its worker: {type(e).__name__}: {e}"
        except SystemExit:  # Ray shutting down in this process: the log keeps what it knows
            return
        self._fail(job, reason)

    def _at_exit(self) -> None:
        """Jobs on a local Ray or inline end with this process: stop their processes and
        record why, rather than leave them RUNNING in the views forever."""
        stop_all()
        for job_id in list(self._handles):
            job = self.jobs.queries.find(job_id)
            if job is not None and not job.done:
                self._fail(job, f"the process that ran it on {self.runtime_name} exited")

    def _fail(self, job: Job, reason: str) -> None:
        """End a job whose supervisor could not, unless it already ended."""
        try:
            current = self.jobs.get(job.job_id)
            tail = read_tail(Path(current.log_path)) if current.log_path else ""
            if not current.done:  # the run ends before its job, as in run_job
                self.backend.tracking.finish_run(job.run_id, "FAILED", actor="service:jobs")
            final = self.jobs.ended(job.job_id, reason, tail, actor="service:jobs")
            if RUN_STATUS[final.status] != "FAILED":
                self.backend.tracking.finish_run(
                    job.run_id, RUN_STATUS[final.status], actor="service:jobs"
                )
        except Exception:  # noqa: S110 - the backend is closing: the job stays as the log says
            pass

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job ends; a Timeout names the job and its status if not."""
        job = self.jobs.get(job_id)

        def done() -> bool:
            nonlocal job
            self.backend.refresh()
            job = self.jobs.get(job_id)
            return job.done

        if not wait_until(done, float("inf") if timeout is None else timeout):
            raise Timeout(f"job {job_id} is still {job.status} after {timeout:g} s")
        return job

    def logs(self, job_id: str) -> str:
        """The job's output: the live log file where this machine can read it, else the
        copy kept as the run's `job/output.log` artifact once the job ended."""
        job = self.jobs.get(job_id)
        if job.log_path and Path(job.log_path).is_file():
            return Path(job.log_path).read_text(errors="replace")
        if job.done:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                try:
                    got = self.backend.tracking.download_artifacts(
                        job.run_id, "job/output.log", Path(tmp)
                    )
                except NotFound:
                    return job.log_tail
                return Path(got).read_text(errors="replace")
        return ""
