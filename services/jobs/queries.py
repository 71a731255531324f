"""The read side of jobs: the jobs view as `Job` entities."""

from __future__ import annotations

import json

from sqlalchemy import Engine, RowMapping, func, select

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.job_entities import Job
from ledgerflow.services.projector.job_tables import JOBS as J

__all__ = ["STATUSES", "Job", "JobQueries"]

STATUSES = ("SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED")


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

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status (statuses with none left out)."""
        stmt = select(J.c.status, func.count()).group_by(J.c.status)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(stmt).all()}
