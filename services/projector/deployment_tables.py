"""The deployment views, folded from `deployment.*` events.

`deployments.state` is the folded aggregate (`Deployment.to_dict()`), so readers
(the deployer, model-server replicas) get exactly what the fold gives; the other
columns and the variants table are there to filter and join on. The history keeps
one row per event, which is what explains a rollback after the fact.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class DeploymentRow(SQLModel, table=True):
    __tablename__ = "deployments"
    name: str = Field(primary_key=True)
    status: str = Field(index=True)  # active, paused or deleted
    baseline: str
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))  # JSON: Deployment.to_dict()
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    version: int


class DeploymentVariantRow(SQLModel, table=True):
    __tablename__ = "deployment_variants"
    deployment: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    model: str = Field(index=True)
    version: int
    bundle_id: str | None = None
    weight: float
    shadow: bool


class DeploymentHistoryRow(SQLModel, table=True):
    __tablename__ = "deployment_history"
    deployment: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)  # the deployment's version after the event
    time: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str
    actor: str = ""
    summary: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the event's payload


DEPLOYMENTS = table(DeploymentRow)
DEPLOYMENT_VARIANTS = table(DeploymentVariantRow)
DEPLOYMENT_HISTORY = table(DeploymentHistoryRow)
