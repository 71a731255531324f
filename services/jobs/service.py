"""Job commands: decide from the job's current state, append `job.*`, wait until projected.

The decisions are small and pure (`decide_*`): a job starts only once, ends only
once, and cancelling an ended job is an error that says how it ended. The worker
that runs a job and the user who cancels it race; the log order decides, and the
loser's event is rejected by the projector (see job_handlers), which the worker
treats as "someone else already ended it".
"""

from __future__ import annotations

import contextlib

from ledgerflow.events import job_payloads as j
from ledgerflow.events.errors import Conflict
from ledgerflow.services.commands import Committer
from ledgerflow.services.jobs.queries import Job, JobQueries

LOG_TAIL_CHARS = 4000
"""How much of a job's output travels in its final event."""


def tail(text: str, chars: int = LOG_TAIL_CHARS) -> str:
    return text if len(text) <= chars else "…" + text[-chars:]


def decide_cancel(job: Job, reason: str) -> j.JobCancelled:
    if job.done:
        raise Conflict(f"job {job.job_id} already ended as {job.status}; nothing to cancel")
    return j.JobCancelled(job_id=job.job_id, reason=reason)


def decide_end(job: Job, error: str | None, log_tail: str) -> j.JobFinished | j.JobFailed | None:
    """The event that ends a job its worker saw end, or None when it had already ended
    (cancelled while running: the cancel is the job's end)."""
    if job.done:
        return None
    if error is None:
        return j.JobFinished(job_id=job.job_id, log_tail=tail(log_tail))
    return j.JobFailed(job_id=job.job_id, error=error, log_tail=tail(log_tail))


class JobService:
    def __init__(self, committer: Committer, queries: JobQueries) -> None:
        self._committer = committer
        self.queries = queries

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
