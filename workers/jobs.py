"""Submitting training jobs and following them: the submitter's side.

`JobLauncher.submit` starts the job's run (so its id is known before any code
runs), records `job.submitted`, and hands a `JobSpec` to the runtime (Ray, or a
thread for `inline`). The job's supervisor (job_task.run_job) records the rest.
A watcher thread here turns a task that died without recording its end (a
worker process killed, a node lost) into `job.failed` and a FAILED run, so
nothing waits forever on a job whose worker is gone.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events import job_payloads as j
from ledgerflow.events.envelope import uuid7
from ledgerflow.events.errors import InvalidInput, NotFound, Timeout
from ledgerflow.services.jobs.queries import Job
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

    def submit(
        self,
        *,
        name: str,
        kind: j.JobKind,
        entry_point: str,
        experiment_id: str,
        user_id: str,
        actor: str,
        params: Mapping[str, Any] | None = None,
        command: str | None = None,
        function: bytes | None = None,
        resources: Resources = Resources(),
        num_workers: int = 1,
        cwd: str | None = None,
        project: Mapping[str, str] | None = None,
        plan: Callable[[dict[str, Any], str, str], bytes] | None = None,
    ) -> Job:
        """Start the run, record the job, and hand it to the runtime. `plan` builds the
        pickled payload of a distributed job from (job settings, run id, job id)."""
        if num_workers < 1:
            raise InvalidInput(f"num_workers must be at least 1, got {num_workers}")
        if kind == "distributed" and self.runtime_name == "inline":
            raise InvalidInput(
                "a distributed job runs on Ray: use ray_address local, auto or "
                "ray://host:port (LEDGERFLOW_RAY_ADDRESS), not inline",
                field="ray_address",
            )
        text_params = {str(k): str(v) for k, v in (params or {}).items()}
        job_id = uuid7()
        tracking = self.backend.tracking
        run = tracking.create_run(
            experiment_id,
            user_id=user_id,
            run_name=name,
            tags={
                "ledgerflow.job_id": job_id,
                "mlflow.source.type": "JOB" if not project else "PROJECT",
                "mlflow.source.name": entry_point,
            },
            actor=actor,
        )
        if text_params:
            tracking.log_params(run.run_id, text_params, actor=actor)
        settings = job_settings(self.backend)
        if plan is not None:
            function = plan(settings, run.run_id, job_id)
        spec = JobSpec(
            job_id=job_id, run_id=run.run_id, kind=kind, settings=settings,
            command=command, function=function, cwd=cwd or os.getcwd(), actor=actor,
        )  # fmt: skip
        job = self.jobs.submitted(
            j.JobSubmitted(
                job_id=job_id, name=name, kind=kind, entry_point=entry_point,
                params=text_params, cpus=resources.cpus, gpus=resources.gpus,
                memory=resources.memory, num_workers=num_workers,
                experiment_id=experiment_id, run_id=run.run_id, runtime=self.runtime_name,
                project=dict(project or {}),
            ),
            actor=actor,
        )  # fmt: skip
        # A distributed job's driver only coordinates; its workers hold the resources.
        task_resources = Resources(cpus=0) if kind == "distributed" else resources
        try:
            handle = self.runtime.submit(
                run_job, spec, name=f"ledgerflow-job-{job_id}", resources=task_resources
            )
        except Exception as e:
            self._fail(job, f"could not submit to {self.runtime_name}: {e}")
            raise
        self._handles[job_id] = handle
        threading.Thread(
            target=self._watch, args=(job, handle), name=f"job-{job_id}", daemon=True
        ).start()
        return job

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

    def cancel(self, job_id: str, reason: str = "", *, actor: str) -> Job:
        """Record the cancellation; the job's supervisor stops its process within a
        second, wherever it runs. The run is KILLED at once."""
        job = self.jobs.cancel(job_id, reason or f"cancelled by {actor}", actor=actor)
        self.backend.tracking.finish_run(job.run_id, "KILLED", actor=actor)
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
