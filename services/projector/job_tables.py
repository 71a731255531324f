"""The jobs view, folded from `job.*` events: one row per job with its current status."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    job_id: str = Field(primary_key=True)
    name: str
    kind: str
    entry_point: str = Field(sa_column=Column(Text, nullable=False))
    params: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    cpus: float
    gpus: float
    memory: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    num_workers: int
    experiment_id: str = Field(index=True)
    run_id: str = Field(index=True)
    runtime: str
    project: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object
    status: str = Field(index=True)
    host: str = ""
    log_path: str = Field(default="", sa_column=Column(Text, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    log_tail: str = Field(default="", sa_column=Column(Text, nullable=False))
    submitted_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    start_time: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    end_time: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    actor: str = ""


JOBS = table(JobRow)
