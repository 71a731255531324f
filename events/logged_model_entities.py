"""A logged model (MLflow 3's `LoggedModel`) as the views hold it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """`artifact_key` is where its files live in the artifact store; `status` is PENDING
    until its upload is finalized READY or FAILED."""

    model_id: str
    experiment_id: str
    name: str
    artifact_key: str
    status: str
    creation_time: int
    last_updated_time: int
    model_type: str = ""
    source_run_id: str | None = None
    status_message: str = ""
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: tuple[ModelMetric, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelMetric:
    """A metric point of a logged model."""

    key: str
    value: float
    timestamp: int
    step: int
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """A logged model a run output, at a step."""

    model_id: str
    step: int
