"""Pure decisions for job commands: (job, command) -> the event to append.

A job starts only once, ends only once, and cancelling an ended job is an error that
says how it ended. The worker that runs a job and the user who cancels it race; the
log order decides, and the loser's event is rejected by the projector (see
job_handlers), which the worker treats as "someone else already ended it".
"""

from __future__ import annotations

from ledgerflow.events import job_payloads as j
from ledgerflow.events.errors import Conflict
from ledgerflow.services.jobs.queries import Job

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
