"""Tracking commands (see `ledgerflow.events.commands`) on experiments and on runs'
lifecycle and tags, each with the REST route that carries it.

Logging itself (params, metrics, tags set during a run, a run's start and end) is not
here: it is the hot path, appended straight to the log (embedded) or to the spool
(remote) without a round trip per call.
"""

from __future__ import annotations

from typing import Any, Generic

from pydantic import Field

from ledgerflow.events.commands import ANYONE, NOTHING, Answer, AsText, Command, Http, R, Tags, on
from ledgerflow.events.field_schemas import ExperimentName, Key
from ledgerflow.events.permissions import Level
from ledgerflow.events.wire import Out

_EXPERIMENTS = "/experiments"
_EXPERIMENT = _EXPERIMENTS + "/{experiment_id}"
_RUN = "/runs/{run_id}"


class ExperimentId(Out):
    experiment_id: str


def _id_out(experiment_id: str) -> ExperimentId:
    return ExperimentId(experiment_id=experiment_id)


def _id_in(doc: Any) -> str:
    return str(ExperimentId.model_validate(doc).experiment_id)


EXPERIMENT_ID: Answer[str] = Answer(_id_out, _id_in, ExperimentId)


class TrackingCommand(Command[R], Generic[R]):
    """A command on experiments and runs."""


class CreateExperiment(TrackingCommand[str]):
    """Answers the new experiment's id."""

    HTTP = Http("POST", _EXPERIMENTS, "Create an experiment", 201)
    NEEDS = ANYONE
    ANSWER = EXPERIMENT_ID
    name: ExperimentName
    artifact_location: str | None = None
    tags: Tags = None
    experiment_id: str | None = Field(None, description="choose the id instead of a random one")


class RenameExperiment(TrackingCommand[None]):
    HTTP = Http("PATCH", _EXPERIMENT, "Rename an experiment", 204, idempotent=True)
    NEEDS = on("experiment", "experiment_id", Level.EDIT)
    ANSWER = NOTHING
    experiment_id: str
    name: ExperimentName = Field(description="the new name")


class DeleteExperiment(TrackingCommand[None]):
    HTTP = Http("DELETE", _EXPERIMENT, "Delete an experiment (restorable)", 204)
    NEEDS = on("experiment", "experiment_id", Level.MANAGE)
    experiment_id: str


class RestoreExperiment(TrackingCommand[None]):
    HTTP = Http("POST", _EXPERIMENT + "/restore", "Restore a deleted experiment", 204)
    NEEDS = on("experiment", "experiment_id", Level.MANAGE)
    experiment_id: str


class SetExperimentTag(TrackingCommand[None]):
    HTTP = Http("PUT", _EXPERIMENT + "/tags", "Set an experiment tag", 204)
    NEEDS = on("experiment", "experiment_id", Level.EDIT)
    experiment_id: str
    key: Key
    value: AsText


class DeleteExperimentTag(TrackingCommand[None]):
    HTTP = Http("DELETE", _EXPERIMENT + "/tags", "Delete an experiment tag", 204, query=("key",))
    NEEDS = on("experiment", "experiment_id", Level.EDIT)
    experiment_id: str
    key: Key


class DeleteRun(TrackingCommand[None]):
    HTTP = Http("DELETE", _RUN, "Delete a run (restorable)", 204)
    NEEDS = on("run", "run_id", Level.MANAGE)
    run_id: str


class RestoreRun(TrackingCommand[None]):
    HTTP = Http("POST", _RUN + "/restore", "Restore a deleted run", 204)
    NEEDS = on("run", "run_id", Level.MANAGE)
    run_id: str


class DeleteTag(TrackingCommand[None]):
    """Delete a run's tag."""

    HTTP = Http("DELETE", _RUN + "/tags", "Delete a run tag", 204, query=("key",))
    NEEDS = on("run", "run_id", Level.EDIT)
    run_id: str
    key: Key


EXPERIMENT_COMMANDS: tuple[type[TrackingCommand[Any]], ...] = (
    CreateExperiment,
    RenameExperiment,
    DeleteExperiment,
    RestoreExperiment,
    SetExperimentTag,
    DeleteExperimentTag,
)
RUN_COMMANDS: tuple[type[TrackingCommand[Any]], ...] = (DeleteRun, RestoreRun, DeleteTag)
TRACKING_COMMANDS = EXPERIMENT_COMMANDS + RUN_COMMANDS
