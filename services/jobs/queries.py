"""The read side of jobs: the jobs view as `Job` entities."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, RowMapping, select

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.job_payloads import JOB_TERMINAL
from ledgerflow.services.projector.job_tables import JOBS as J

STATUSES = ("SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Job:
    """A training job as the views know it. `run_id` is the run it logs into."""

    job_id: str
    name: str
    kind: str
    entry_point: str
    status: str
    run_id: str
    experiment_id: str
    runtime: str
    params: dict[str, str] = field(default_factory=dict)
    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None
    num_workers: int = 1
    project: dict[str, str] = field(default_factory=dict)
    host: str = ""
    log_path: str = ""
    error: str | None = None
    log_tail: str = ""
    submitted_time: int = 0
    start_time: int | None = None
    end_time: int | None = None

    @property
    def done(self) -> bool:
        return self.status in JOB_TERMINAL

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _job(r: RowMapping) -> Job:
    return Job(
        job_id=r["job_id"], name=r["name"], kind=r["kind"], entry_point=r["entry_point"],
        status=r["status"], run_id=r["run_id"], experiment_id=r["experiment_id"],
        runtime=r["runtime"], params=json.loads(r["params"]), cpus=r["cpus"], gpus=r["gpus"],
        memory=r["memory"], num_workers=r["num_workers"], project=json.loads(r["project"]),
        host=r["host"], log_path=r["log_path"], error=r["error"], log_tail=r["log_tail"],
        submitted_time=r["submitted_time"], start_time=r["start_time"], end_time=r["end_time"],
    )  # fmt: skip


class JobQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(J).where(J.c.job_id == job_id)).mappings().first()
        return _job(row) if row is not None else None

    def get(self, job_id: str) -> Job:
        found = self.find(job_id)
        if found is None:
            raise NotFound(
                f"no job {job_id!r}; `ledgerflow jobs list` shows the jobs there are",
                kind="job",
                key=job_id,
            )
        return found

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"max_results must be a positive number, got {limit!r}")
        stmt = select(J).order_by(J.c.submitted_time.desc(), J.c.job_id.desc()).limit(limit)
        if status is not None:
            wanted = status.upper()
            if wanted not in STATUSES:
                raise InvalidInput(
                    f"unknown job status {status!r}; expected one of {', '.join(STATUSES)}",
                    field="status",
                )
            stmt = stmt.where(J.c.status == wanted)
        with self.engine.connect() as conn:
            return [_job(r) for r in conn.execute(stmt).mappings().all()]
