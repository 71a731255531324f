"""Pure decisions for job commands: (job, command) -> the event to append.

A job is submitted only with what its runtime can run, starts only once, ends only
once, and cancelling an ended job is an error that says how it ended. The worker that
runs a job and the user who cancels it race; the log order decides, and the loser's
event is rejected by the projector (see job_handlers), which the worker treats as
"someone else already ended it".
"""

from __future__ import annotations

from ledgerflow.events import job_commands as jc
from ledgerflow.events import job_payloads as j
from ledgerflow.events.errors import Conflict, InvalidInput
from ledgerflow.events.job_entities import Job

LOG_TAIL_CHARS = 4000
"""How much of a job's output travels in its final event."""


def tail(text: str, chars: int = LOG_TAIL_CHARS) -> str:
    return text if len(text) <= chars else "…" + text[-chars:]


def check_submit(c: jc.SubmitJob, runtime: str) -> None:
    """What no runtime could run, refused before anything is recorded."""
    if c.num_workers < 1:
        raise InvalidInput(
            f"num_workers must be at least 1, got {c.num_workers}", field="num_workers"
        )
    if c.kind == "distributed" and runtime == "inline":
        raise InvalidInput(
            "a distributed job runs on Ray: use ray_address local, auto or "
            "ray://host:port (LEDGERFLOW_RAY_ADDRESS), not inline",
            field="ray_address",
        )
    if c.kind == "command" and not (c.command or "").strip():
        raise InvalidInput("the job's command is empty", field="target")
    if c.kind != "command" and not c.function:
        raise InvalidInput(f"a {c.kind} job needs its pickled function", field="function")


def decide_submit(c: jc.SubmitJob, *, job_id: str, run_id: str, runtime: str) -> j.JobSubmitted:
    """`job.submitted` for a job whose run `run_id` is started, to run on `runtime`."""
    check_submit(c, runtime)
    return j.JobSubmitted(
        job_id=job_id, name=c.name, kind=c.kind, entry_point=c.entry_point,
        params=dict(c.params), cpus=c.cpus, gpus=c.gpus, memory=c.memory,
        num_workers=c.num_workers, experiment_id=c.experiment_id, run_id=run_id,
        runtime=runtime, project=dict(c.project),
    )  # fmt: skip


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
