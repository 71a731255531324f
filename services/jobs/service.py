"""Job commands: decide from the job's current state (`decide`), append `job.*`, wait
until projected."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ledgerflow.events import job_payloads as j
from ledgerflow.events.errors import Conflict
from ledgerflow.services.commands import Committer
from ledgerflow.services.jobs.decide import decide_cancel, decide_end
from ledgerflow.services.jobs.queries import Job, JobQueries

if TYPE_CHECKING:
    from ledgerflow.services.bootstrap import Backend


class JobService:
    def __init__(self, committer: Committer, queries: JobQueries) -> None:
        self._committer = committer
        self.queries = queries

    @classmethod
    def for_backend(cls, backend: Backend) -> JobService:
        committer = Committer(backend.log, backend.projector, backend.settings.projection_timeout_s)
        return cls(committer, JobQueries(backend.queries.engine))

    def submitted(self, payload: j.JobSubmitted, *, actor: str) -> Job:
        self._committer.commit([payload], actor)
        return self.queries.get(payload.job_id)

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

    def cancel(self, job_id: str, reason: str, *, actor: str) -> Job:
        self._committer.commit([decide_cancel(self.queries.get(job_id), reason)], actor)
        return self.queries.get(job_id)

    def get(self, job_id: str) -> Job:
        return self.queries.get(job_id)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        return self.queries.list_jobs(status, limit)
