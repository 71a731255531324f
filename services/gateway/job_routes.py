"""Jobs over HTTP, read-only: list them, show one, and read its output from an offset (a
page follows a running job by asking again from the offset it was given). Jobs are
submitted where the log is (`lf.jobs.submit`, `ledgerflow run`), not through these routes.

A job belongs to its experiment: the caller sees the jobs of the experiments they may READ.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.commands import on
from ledgerflow.events.job_entities import Job
from ledgerflow.events.permissions import Level
from ledgerflow.events.wire import Out, RecordOut, from_record
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import check, checked, readable
from ledgerflow.services.gateway.deps import FreshDep, PrincipalDep
from ledgerflow.services.jobs.logs import read_log
from ledgerflow.services.jobs.queries import STATUSES, JobQueries

router = APIRouter(prefix="/jobs", tags=["jobs"])
_READ_EXPERIMENT = on("experiment", "experiment_id", Level.READ)


@from_record(Job, descriptions={"run_id": "the run the job logs into"})
class JobOut(RecordOut[Job]):
    """A training job as the jobs view holds it."""


class JobLogOut(Out):
    text: str
    offset: int
    source: str
    done: bool


def _readable_job(backend: Backend, principal: Principal, job_id: str) -> Job:
    job = JobQueries(backend.queries.engine).get(job_id)
    check(backend, principal, _READ_EXPERIMENT, SimpleNamespace(experiment_id=job.experiment_id))
    return job


@router.get(
    "",
    summary="List jobs, newest first",
    dependencies=[checked("any identity; only jobs in experiments the caller may READ")],
)
def list_jobs(
    backend: FreshDep,
    principal: PrincipalDep,
    status: Annotated[
        str | None, Query(description=" or ".join(STATUSES), json_schema_extra={"enum": STATUSES})
    ] = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobOut]:
    jobs = JobQueries(backend.queries.engine).list_jobs(status or None, max_results)
    keys = readable(backend, principal, "experiment")
    if keys is not None:
        jobs = [j for j in jobs if (j.experiment_id in keys.keys) != keys.all_but]
    return [JobOut.model_validate(j) for j in jobs]


@router.get(
    "/{job_id}",
    summary="Get a job",
    dependencies=[checked("READ on the job's experiment")],
)
def get_job(job_id: str, backend: FreshDep, principal: PrincipalDep) -> JobOut:
    return JobOut.model_validate(_readable_job(backend, principal, job_id))


@router.get(
    "/{job_id}/log",
    summary="A job's output from a byte offset (ask again from `offset` to follow it)",
    dependencies=[checked("READ on the job's experiment")],
)
def get_job_log(
    job_id: str,
    backend: FreshDep,
    principal: PrincipalDep,
    offset: Annotated[int, Query(ge=0, description="bytes into the log")] = 0,
) -> JobLogOut:
    job = _readable_job(backend, principal, job_id)
    return JobLogOut.model_validate(read_log(job, backend.tracking, offset))
