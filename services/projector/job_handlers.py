"""How `job.*` events change the jobs view.

A job ends once: the first of finished / failed / cancelled in log order wins, and a
later end (a worker reporting `finished` just after a user cancelled) is rejected and
dead-lettered with the reason, never silently merged.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ledgerflow.events import job_payloads as j
from ledgerflow.events.envelope import Event
from ledgerflow.services.projector.handlers import Rejected, _data, handles
from ledgerflow.services.projector.job_tables import JOBS as J


def _status(conn: Connection, job_id: str) -> str:
    row = conn.execute(select(J.c.status).where(J.c.job_id == job_id)).first()
    if row is None:
        raise Rejected(f"job {job_id} does not exist")
    return str(row.status)


def _end(conn: Connection, ev: Event, job_id: str, status: str, **values: Any) -> None:
    current = _status(conn, job_id)
    if current in j.JOB_TERMINAL:
        raise Rejected(f"job {job_id} already ended as {current}; it cannot become {status}")
    conn.execute(
        update(J).where(J.c.job_id == job_id).values(status=status, end_time=ev.time, **values)
    )


@handles(j.JobSubmitted)
def job_submitted(conn: Connection, ev: Event) -> None:
    d = _data(ev, j.JobSubmitted)
    if conn.execute(select(J.c.job_id).where(J.c.job_id == d.job_id)).first():
        raise Rejected(f"job {d.job_id} already exists")
    conn.execute(
        insert(J).values(
            job_id=d.job_id, name=d.name, kind=d.kind, entry_point=d.entry_point,
            params=json.dumps(d.params, sort_keys=True), cpus=d.cpus, gpus=d.gpus,
            memory=d.memory, num_workers=d.num_workers, experiment_id=d.experiment_id,
            run_id=d.run_id, runtime=d.runtime, project=json.dumps(d.project, sort_keys=True),
            status="SUBMITTED", host="", log_path="", error=None, log_tail="",
            submitted_time=ev.time, start_time=None, end_time=None, actor=ev.actor,
        )
    )  # fmt: skip


@handles(j.JobStarted)
def job_started(conn: Connection, ev: Event) -> None:
    d = _data(ev, j.JobStarted)
    current = _status(conn, d.job_id)
    if current != "SUBMITTED":
        raise Rejected(f"job {d.job_id} is {current}; only a SUBMITTED job can start")
    conn.execute(
        update(J)
        .where(J.c.job_id == d.job_id)
        .values(status="RUNNING", host=d.host, log_path=d.log_path, start_time=ev.time)
    )


@handles(j.JobFinished)
def job_finished(conn: Connection, ev: Event) -> None:
    d = _data(ev, j.JobFinished)
    _end(conn, ev, d.job_id, "FINISHED", log_tail=d.log_tail)


@handles(j.JobFailed)
def job_failed(conn: Connection, ev: Event) -> None:
    d = _data(ev, j.JobFailed)
    _end(conn, ev, d.job_id, "FAILED", error=d.error, log_tail=d.log_tail)


@handles(j.JobCancelled)
def job_cancelled(conn: Connection, ev: Event) -> None:
    d = _data(ev, j.JobCancelled)
    _end(conn, ev, d.job_id, "CANCELLED", error=d.reason or None)
