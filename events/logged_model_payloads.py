"""Typed payloads for MLflow 3 logged models. Stream: `logged_model:<model_id>`.

A logged model belongs to an experiment, and every event of its stream names that
experiment, so who may see an event is decided from the event alone (READ on the
experiment), as for a run's first event. Which models a run output (`runs/outputs`)
is an event of the run's own stream.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledgerflow.events.payloads import MetricPoint, Payload

LoggedModelStatus = Literal["PENDING", "READY", "FAILED"]
"""MLflow's `LoggedModelStatus` names (FAILED is `LOGGED_MODEL_UPLOAD_FAILED` on the wire)."""
FINAL_STATUSES: tuple[str, ...] = ("READY", "FAILED")


class _LoggedModelPayload(Payload):
    model_id: str = Field(min_length=1)
    experiment_id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"logged_model:{self.model_id}"


class LoggedModelCreated(_LoggedModelPayload):
    TYPE = "logged_model.created"
    name: str = Field(min_length=1)
    artifact_key: str = Field(min_length=1)
    """Where its files live in the artifact store (`<exp>/models/<model_id>/artifacts`)."""
    model_type: str = ""
    source_run_id: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class LoggedModelFinalized(_LoggedModelPayload):
    """Its upload finished (READY) or failed (FAILED)."""

    TYPE = "logged_model.finalized"
    status: Literal["READY", "FAILED"]
    status_message: str = ""


class LoggedModelTagsSet(_LoggedModelPayload):
    TYPE = "logged_model.tags_set"
    tags: dict[str, str] = Field(min_length=1)


class LoggedModelTagDeleted(_LoggedModelPayload):
    TYPE = "logged_model.tag_deleted"
    key: str


class LoggedModelParamsLogged(_LoggedModelPayload):
    TYPE = "logged_model.params_logged"
    params: dict[str, str] = Field(min_length=1)


class LoggedModelMetricsLogged(_LoggedModelPayload):
    """Metric points of the model (MLflow's metrics with a `model_id`), from a run and on a
    dataset when they say so."""

    TYPE = "logged_model.metrics_logged"
    points: tuple[MetricPoint, ...] = Field(min_length=1)
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LoggedModelArtifactLogged(_LoggedModelPayload):
    TYPE = "logged_model.artifact_logged"
    path: str = Field(min_length=1)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class LoggedModelDeleted(_LoggedModelPayload):
    TYPE = "logged_model.deleted"


class ModelOutput(BaseModel):
    """One model a run output, and the step it was logged at."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model_id: str = Field(min_length=1)
    step: int = 0


class RunOutputsLogged(Payload):
    """A run produced these logged models (MLflow's `runs/outputs`), at these steps."""

    TYPE = "run.outputs_logged"
    run_id: str = Field(min_length=1)
    models: tuple[ModelOutput, ...] = Field(min_length=1)

    def stream(self) -> str:
        return f"run:{self.run_id}"


class RunModelInputsLogged(Payload):
    """A run used these logged models (MLflow's `runs/log-inputs` with `models`)."""

    TYPE = "run.model_inputs_logged"
    run_id: str = Field(min_length=1)
    model_ids: tuple[str, ...] = Field(min_length=1)

    def stream(self) -> str:
        return f"run:{self.run_id}"


LOGGED_MODEL_PAYLOADS: tuple[type[Payload], ...] = (
    LoggedModelCreated,
    LoggedModelFinalized,
    LoggedModelTagsSet,
    LoggedModelTagDeleted,
    LoggedModelParamsLogged,
    LoggedModelMetricsLogged,
    LoggedModelArtifactLogged,
    LoggedModelDeleted,
    RunOutputsLogged,
    RunModelInputsLogged,
)
