"""Job commands (`ledgerflow.events.job_commands`): decide from the job's current state
(`decide`), append `job.*`, wait until projected.

Submitting records the job here and hands it to a `Launcher` (the process's
`ledgerflow.workers.jobs.JobLauncher`, given to `bootstrap` by the SDK's session),
which runs it on Ray or inline and watches it. A backend built without one (a
gateway, a job's own worker) refuses to submit, saying where to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from ledgerflow.events import job_commands as jc
from ledgerflow.events import job_payloads as j
from ledgerflow.events.commands import R
from ledgerflow.events.envelope import uuid7
from ledgerflow.events.errors import Conflict, InvalidInput
from ledgerflow.events.job_entities import Job
from ledgerflow.services.commands import Committer, Handlers
from ledgerflow.services.jobs.decide import check_submit, decide_cancel, decide_end, decide_submit
from ledgerflow.services.jobs.queries import JobQueries
from ledgerflow.services.tracking.service import TrackingService


class Launcher(Protocol):
    """Runs recorded jobs on one task runtime and watches them."""

    @property
    def runtime_name(self) -> str: ...
    def launch(self, job: Job, command: jc.SubmitJob, *, actor: str) -> None: ...


Launchers = Callable[[str | None], Launcher]
"""The launcher for a runtime address (None: LEDGERFLOW_RAY_ADDRESS)."""


class JobService:
    def __init__(
        self,
        committer: Committer,
        queries: JobQueries,
        tracking: TrackingService,
        launchers: Launchers | None = None,
    ) -> None:
        self._committer = committer
        self.queries = queries
        self.tracking = tracking
        self._launchers = launchers

    handlers = Handlers["JobService"]()

    def execute(self, command: jc.JobCommand[R], *, actor: str) -> R:
        return self.handlers.run(self, command, actor)

    @handlers.on(jc.SubmitJob)
    def _submit(self, c: jc.SubmitJob, actor: str) -> Job:
        if self._launchers is None:
            raise InvalidInput(
                "this process does not run jobs: submit them from the SDK next to the event "
                "log (lf.jobs.submit, ledgerflow jobs train|run)",
                field="tracking_uri",
            )
        launcher = self._launchers(c.runtime)
        check_submit(c, launcher.runtime_name)
        job_id = uuid7()
        run = self.tracking.create_run(
            c.experiment_id,
            user_id=c.user_id,
            run_name=c.name,
            tags={
                "ledgerflow.job_id": job_id,
                "mlflow.source.type": "JOB" if not c.project else "PROJECT",
                "mlflow.source.name": c.entry_point,
            },
            actor=actor,
        )
        if c.params:
            self.tracking.log_params(run.run_id, c.params, actor=actor)
        submitted = decide_submit(
            c, job_id=job_id, run_id=run.run_id, runtime=launcher.runtime_name
        )
        self._committer.commit([submitted], actor)
        job = self.queries.get(job_id)
        launcher.launch(job, c, actor=actor)
        return job

    @handlers.on(jc.CancelJob)
    def _cancel(self, c: jc.CancelJob, actor: str) -> Job:
        """The run is KILLED at once; the job's supervisor stops its process."""
        reason = c.reason or f"cancelled by {actor}"
        self._committer.commit([decide_cancel(self.queries.get(c.job_id), reason)], actor)
        job = self.queries.get(c.job_id)
        self.tracking.finish_run(job.run_id, "KILLED", actor=actor)
        return job

    # the supervisor's own records (ledgerflow.workers.job_task) ---------------------------
    def started(self, job_id: str, *, host: str, log_path: str, actor: str) -> None:
        self._committer.commit([j.JobStarted(job_id=job_id, host=host, log_path=log_path)], actor)

    def ended(self, job_id: str, error: str | None, log_tail: str, *, actor: str) -> Job:
        """Record how the worker saw the job end; a job already ended stays as it was."""
        event = decide_end(self.queries.get(job_id), error, log_tail)
        if event is not None:
            # Conflict: cancelled in the meantime; the cancel, first in the log, is its end.
            with contextlib.suppress(Conflict):
                self._committer.commit([event], actor)
        return self.queries.get(job_id)

    # reads ---------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        return self.queries.get(job_id)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        return self.queries.list_jobs(status, limit)
