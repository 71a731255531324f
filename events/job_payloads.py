"""Typed payloads for training jobs, an event-sourced aggregate. Stream: `job:<id>`.

A job is submitted, starts on some worker, and ends exactly once: finished, failed
(with the error and the tail of its log) or cancelled. The run it produces is named
in `job.submitted`, so the run and the job can always be joined.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerflow.events.payloads import Payload

JobKind = Literal["command", "function", "distributed"]
JobStatus = Literal["SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]
JOB_TERMINAL: frozenset[str] = frozenset({"FINISHED", "FAILED", "CANCELLED"})


class _JobPayload(Payload):
    job_id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"job:{self.job_id}"


class JobSubmitted(_JobPayload):
    TYPE = "job.submitted"
    name: str = Field(min_length=1)
    kind: JobKind
    entry_point: str = Field(min_length=1)
    """The command line (kind `command`) or `module:function` that runs."""
    params: dict[str, str] = Field(default_factory=dict)
    cpus: float = Field(1.0, ge=0)
    gpus: float = Field(0.0, ge=0)
    memory: int | None = Field(None, gt=0)
    num_workers: int = Field(1, ge=1)
    experiment_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    runtime: str = Field(min_length=1)
    """Where it runs: `inline` (this machine, no Ray), `local` Ray, or a Ray address."""
    project: dict[str, str] = Field(default_factory=dict)
    """For MLproject runs: the project's name, entry point and declared environment."""


class JobStarted(_JobPayload):
    TYPE = "job.started"
    host: str = ""
    log_path: str = ""
    """Where the job's output is being written, on `host`."""


class JobFinished(_JobPayload):
    TYPE = "job.finished"
    log_tail: str = ""


class JobFailed(_JobPayload):
    TYPE = "job.failed"
    error: str = Field(min_length=1)
    log_tail: str = ""


class JobCancelled(_JobPayload):
    TYPE = "job.cancelled"
    reason: str = ""


JOB_PAYLOADS: tuple[type[Payload], ...] = (
    JobSubmitted,
    JobStarted,
    JobFinished,
    JobFailed,
    JobCancelled,
)
