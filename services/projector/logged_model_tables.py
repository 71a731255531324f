"""The logged models view, folded from `logged_model.*` events, and which models each
run output (`run.outputs_logged`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class LoggedModelRow(SQLModel, table=True):
    __tablename__ = "logged_models"
    __table_args__ = (Index("logged_models_by_experiment", "experiment_id", "creation_time"),)
    model_id: str = Field(primary_key=True)
    experiment_id: str
    name: str = Field(index=True)
    artifact_key: str = Field(sa_column=Column(Text, nullable=False))
    model_type: str = Field(default="", sa_column=Column(Text, nullable=False))
    source_run_id: str | None = Field(default=None, index=True)
    status: str
    status_message: str = Field(default="", sa_column=Column(Text, nullable=False))
    lifecycle_stage: str = "active"
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class LoggedModelTagRow(SQLModel, table=True):
    __tablename__ = "logged_model_tags"
    model_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class LoggedModelParamRow(SQLModel, table=True):
    __tablename__ = "logged_model_params"
    model_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class LoggedModelMetricRow(SQLModel, table=True):
    """A metric point of a logged model; `value` NULL means NaN. One row per (key, step,
    timestamp, dataset): the same point logged again is the same point."""

    __tablename__ = "logged_model_metrics"
    model_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    step: int = Field(sa_column=Column(BigInteger, primary_key=True))
    timestamp: int = Field(sa_column=Column(BigInteger, primary_key=True))
    dataset_name: str = Field(default="", primary_key=True)
    dataset_digest: str = Field(default="", primary_key=True)
    value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    run_id: str | None = None


class LoggedModelArtifactRow(SQLModel, table=True):
    __tablename__ = "logged_model_artifacts"
    model_id: str = Field(primary_key=True)
    path: str = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str
    time: int = Field(sa_column=Column(BigInteger, nullable=False))


class RunModelOutputRow(SQLModel, table=True):
    __tablename__ = "run_model_outputs"
    run_id: str = Field(primary_key=True)
    model_id: str = Field(primary_key=True)
    step: int = Field(sa_column=Column(BigInteger, nullable=False))


class RunModelInputRow(SQLModel, table=True):
    __tablename__ = "run_model_inputs"
    run_id: str = Field(primary_key=True)
    model_id: str = Field(primary_key=True)


LOGGED_MODELS = table(LoggedModelRow)
LOGGED_MODEL_TAGS = table(LoggedModelTagRow)
LOGGED_MODEL_PARAMS = table(LoggedModelParamRow)
LOGGED_MODEL_METRICS = table(LoggedModelMetricRow)
LOGGED_MODEL_ARTIFACTS = table(LoggedModelArtifactRow)
RUN_MODEL_OUTPUTS = table(RunModelOutputRow)
RUN_MODEL_INPUTS = table(RunModelInputRow)
