"""Logged model commands (see `ledgerflow.events.commands`).

A logged model belongs to an experiment: creating one needs EDIT on it, and so does
changing one; deleting needs MANAGE. A command on an existing model names its experiment
as well as its id, so the caller's level is read from the command alone; the service
refuses a model that is not in the experiment named. None is offered as a native REST
route yet: MLflow's REST API (`/api/2.0/mlflow/logged-models`) carries them.
"""

from __future__ import annotations

from typing import Any, Generic, Literal

from pydantic import Field

from ledgerflow.events.commands import AsText, Command, R, on
from ledgerflow.events.logged_model_entities import LoggedModel
from ledgerflow.events.permissions import Level

_EDIT = on("experiment", "experiment_id", Level.EDIT)


class LoggedModelCommand(Command[R], Generic[R]):
    experiment_id: str = Field(min_length=1)


class CreateLoggedModel(LoggedModelCommand[LoggedModel]):
    NEEDS = _EDIT
    name: str | None = None
    """A random name when absent, as MLflow gives."""
    model_type: str | None = None
    source_run_id: str | None = None
    params: dict[str, AsText] = Field(default_factory=dict)
    tags: dict[str, AsText] = Field(default_factory=dict)


class OnLoggedModel(LoggedModelCommand[R], Generic[R]):
    model_id: str = Field(min_length=1)


class FinalizeLoggedModel(OnLoggedModel[LoggedModel]):
    NEEDS = _EDIT
    status: Literal["READY", "FAILED"]
    status_message: str = ""


class SetLoggedModelTags(OnLoggedModel[None]):
    NEEDS = _EDIT
    tags: dict[str, AsText]


class DeleteLoggedModelTag(OnLoggedModel[None]):
    NEEDS = _EDIT
    key: str


class LogLoggedModelParams(OnLoggedModel[None]):
    NEEDS = _EDIT
    params: dict[str, AsText]


class LogLoggedModelMetrics(OnLoggedModel[None]):
    """Metric points of the model, checked as a run's are."""

    NEEDS = _EDIT
    points: list[tuple[str, float, int, int]] = Field(min_length=1)
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class DeleteLoggedModel(OnLoggedModel[None]):
    NEEDS = on("experiment", "experiment_id", Level.MANAGE)


class LogRunOutputs(Command[None]):
    """The logged models a run produced (`(model_id, step)` pairs). The caller needs EDIT
    on the run, and READ on each model's experiment (checked where the models are read)."""

    NEEDS = on("run", "run_id", Level.EDIT)
    run_id: str = Field(min_length=1)
    models: list[tuple[str, int]] = Field(min_length=1)


class LogRunInputs(Command[None]):
    """The logged models a run used. The caller needs EDIT on the run, and READ on each
    model's experiment (checked where the models are read)."""

    NEEDS = on("run", "run_id", Level.EDIT)
    run_id: str = Field(min_length=1)
    model_ids: list[str] = Field(min_length=1)


LOGGED_MODEL_COMMANDS: tuple[type[Command[Any]], ...] = (
    CreateLoggedModel,
    FinalizeLoggedModel,
    SetLoggedModelTags,
    DeleteLoggedModelTag,
    LogLoggedModelParams,
    LogLoggedModelMetrics,
    DeleteLoggedModel,
    LogRunOutputs,
    LogRunInputs,
)
