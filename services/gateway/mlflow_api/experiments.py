"""MLflow's experiment endpoints: create, get, get-by-name, search, update, delete,
restore, set and delete tags.

The Default experiment (id "0") exists for MLflow's client even before anything was
logged: reading it creates it, as `start_run()` with no experiment expects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.commands import on
from ledgerflow.events.entities import Experiment
from ledgerflow.events.errors import NotFound
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.auth import readable
from ledgerflow.services.gateway.mlflow_api import messages
from ledgerflow.services.gateway.mlflow_api.endpoints import (
    Call,
    Endpoints,
    Message,
    offset_of,
    token_of,
)
from ledgerflow.services.tracking.service import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME

api = Endpoints("mlflow experiments")
READ = on("experiment", "experiment_id", Level.READ)
SEARCH_MAX_RESULTS = 50_000


class _Tag(Message):
    key: str
    value: Any = ""


class CreateExperiment(Message):
    name: str
    artifact_location: str | None = None
    tags: list[_Tag] = Field(default_factory=list)


class ExperimentRef(Message):
    experiment_id: str


class ExperimentByName(Message):
    experiment_name: str


class UpdateExperiment(Message):
    experiment_id: str
    new_name: str


class ExperimentTag(Message):
    experiment_id: str
    key: str
    value: Any = ""


class ExperimentTagRef(Message):
    experiment_id: str
    key: str


class SearchExperiments(Message):
    max_results: int = Field(1000, ge=1, le=SEARCH_MAX_RESULTS)
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | int = "ACTIVE_ONLY"


def experiment_of(call: Call, experiment_id: str) -> Experiment:
    """The experiment with this id (the Default one created on first use)."""
    backend = call.fresh()
    found = backend.queries.find_experiment(experiment_id)
    if found is None and experiment_id == DEFAULT_EXPERIMENT_ID:
        return backend.tracking.default_experiment(actor=call.actor)
    if found is None:
        raise NotFound(
            f"No Experiment with id={experiment_id} exists", kind="experiment", key=experiment_id
        )
    return found


def _default_first(call: Call, name: str) -> None:
    """MLflow's Default experiment always exists, so its name is always taken: made
    before an experiment is created or renamed under that name, which then conflicts."""
    if name == DEFAULT_EXPERIMENT_NAME:
        experiment_of(call, DEFAULT_EXPERIMENT_ID)


@api.post("/experiments/create", needs="any identity")
def create_experiment(call: Call) -> dict[str, Any]:
    msg = call.parse(CreateExperiment)
    _default_first(call, msg.name)
    tags = {t.key: t.value for t in msg.tags}
    # Artifacts always go to the server's store (through the proxy), wherever the
    # client asked: docs/mlflow-compat.md.
    command = tc.CreateExperiment(name=msg.name, tags=tags or None)
    return {"experiment_id": call.execute(command, call.backend.tracking)}


@api.get("/experiments/get", needs="READ on the experiment")
def get_experiment(call: Call) -> dict[str, Any]:
    msg = call.parse(ExperimentRef)
    call.check(READ, msg)
    return {"experiment": messages.experiment(experiment_of(call, msg.experiment_id))}


@api.get("/experiments/get-by-name", needs="READ on the experiment found")
def get_experiment_by_name(call: Call) -> dict[str, Any]:
    msg = call.parse(ExperimentByName)
    backend = call.fresh()
    found = backend.queries.get_experiment_by_name(msg.experiment_name)
    if found is None and msg.experiment_name == "Default":
        default = backend.queries.find_experiment(DEFAULT_EXPERIMENT_ID)
        found = default or backend.tracking.default_experiment(actor=call.actor)
    if found is None:
        raise NotFound(
            f"Could not find experiment with name '{msg.experiment_name}'",
            kind="experiment",
            key=msg.experiment_name,
        )
    call.check(READ, found)
    return {"experiment": messages.experiment(found)}


@api.post("/experiments/search", needs="any identity; lists the experiments it may READ")
def search_experiments(call: Call) -> dict[str, Any]:
    msg = call.parse(SearchExperiments)
    experiment_of(call, DEFAULT_EXPERIMENT_ID)  # MLflow's server lists it from the start
    backend = call.fresh()
    start = offset_of(msg.page_token)
    found = backend.queries.search_experiments(
        msg.view_type,
        start + msg.max_results + 1,
        msg.filter or None,
        msg.order_by or None,
        readable=readable(backend, call.principal, "experiment"),
    )
    page = found[start : start + msg.max_results]
    out: dict[str, Any] = {"experiments": [messages.experiment(e) for e in page]}
    if len(found) > start + msg.max_results:
        out["next_page_token"] = token_of(start + msg.max_results)
    return out


api.get("/experiments/search", needs="any identity; lists the experiments it may READ")(
    search_experiments
)


@api.post("/experiments/update", needs="EDIT on the experiment")
def update_experiment(call: Call) -> dict[str, Any]:
    msg = call.parse(UpdateExperiment)
    _default_first(call, msg.new_name)
    call.execute(
        tc.RenameExperiment(experiment_id=msg.experiment_id, name=msg.new_name),
        call.backend.tracking,
    )
    return {}


@api.post("/experiments/delete", needs="MANAGE on the experiment")
def delete_experiment(call: Call) -> dict[str, Any]:
    msg = call.parse(ExperimentRef)
    command = tc.DeleteExperiment(experiment_id=msg.experiment_id)
    if experiment_of(call, msg.experiment_id).lifecycle_stage == "deleted":
        call.check(command.NEEDS, command)  # MLflow: deleting twice is no error
        return {}
    call.execute(command, call.backend.tracking)
    return {}


@api.post("/experiments/restore", needs="MANAGE on the experiment")
def restore_experiment(call: Call) -> dict[str, Any]:
    msg = call.parse(ExperimentRef)
    command = tc.RestoreExperiment(experiment_id=msg.experiment_id)
    if experiment_of(call, msg.experiment_id).lifecycle_stage == "active":
        call.check(command.NEEDS, command)
        return {}
    call.execute(command, call.backend.tracking)
    return {}


@api.post("/experiments/set-experiment-tag", needs="EDIT on the experiment")
def set_experiment_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(ExperimentTag)
    command = tc.SetExperimentTag(experiment_id=msg.experiment_id, key=msg.key, value=msg.value)
    call.execute(command, call.backend.tracking)
    return {}


@api.post("/experiments/delete-experiment-tag", needs="EDIT on the experiment")
def delete_experiment_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(ExperimentTagRef)
    call.execute(
        tc.DeleteExperimentTag(experiment_id=msg.experiment_id, key=msg.key),
        call.backend.tracking,
    )
    return {}
