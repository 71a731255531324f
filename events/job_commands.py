"""Job commands (see `ledgerflow.events.commands`): submit a training job, cancel one.

Neither has a REST route (`HTTP = None`): a job is recorded where the event log is,
handed to the Ray of the process that has it, and watched from there, and its code
travels pickled by the submitter (`function`). A gateway URL answers an InvalidInput
saying to submit where the log is; the job's own code may still log through a gateway.
What the scheduler must refuse (a distributed job without Ray, no workers) is decided
by `ledgerflow.services.jobs.decide`, with the same message wherever the command came
from.
"""

from __future__ import annotations

from typing import Any, Generic

from pydantic import ConfigDict, Field

from ledgerflow.events.commands import Answer, AsText, Command, R
from ledgerflow.events.job_entities import Job
from ledgerflow.events.job_payloads import JobKind

JOB: Answer[Job] = Answer(Job.to_dict, Job.from_dict, dict[str, Any])


class JobCommand(Command[R], Generic[R]):
    """A command on training jobs (`job:<id>` streams)."""


class SubmitJob(JobCommand[Job]):
    """Start the job's run (so its id is known before any code runs), record
    `job.submitted`, and hand the job to the runtime `runtime` names; answers the job
    as submitted."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    ANSWER = JOB
    name: str = Field(min_length=1, description="the job's and its run's name")
    kind: JobKind
    entry_point: str = Field(
        min_length=1, description="the command line, or module:function, that runs"
    )
    experiment_id: str = Field(min_length=1, description="the experiment of the job's run")
    user_id: str = Field(description="the run's user")
    params: dict[str, AsText] = Field(
        default_factory=dict, description="logged as the run's params, and shown on the job"
    )
    command: str | None = Field(None, description="the shell command line (kind command)")
    function: bytes | None = Field(
        None,
        description="cloudpickled (function, kwargs) for kind function; the pickled "
        "distributed plan (ledgerflow.workers.distributed.Plan) for kind distributed",
    )
    cpus: float = Field(1.0, ge=0)
    gpus: float = Field(0.0, ge=0)
    memory: int | None = Field(None, gt=0, description="bytes")
    num_workers: int = Field(1, description="Ray Train workers of a distributed job")
    cwd: str | None = Field(None, description="where the code runs (default: the submitter's)")
    project: dict[str, str] = Field(
        default_factory=dict, description="an MLproject's name, entry point and environment"
    )
    runtime: str | None = Field(
        None, description="inline, local, auto or ray://host:port (None: LEDGERFLOW_RAY_ADDRESS)"
    )


class CancelJob(JobCommand[Job]):
    """Record the cancellation and end the job's run as KILLED; the job's supervisor
    stops its process within a second, wherever it runs. Answers the cancelled job."""

    ANSWER = JOB
    job_id: str
    reason: str = Field("", description="why (default: cancelled by <actor>)")


JOB_COMMANDS: tuple[type[JobCommand[Any]], ...] = (SubmitJob, CancelJob)
