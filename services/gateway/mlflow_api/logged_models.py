"""MLflow 3's logged model endpoints (`/logged-models...`) and `runs/outputs`.

A logged model belongs to an experiment: reading one needs READ on it, changing one EDIT,
deleting one MANAGE, checked by the commands' NEEDS once the model's experiment is read.
Its files go through the artifact proxy (`artifacts.py`) under its `artifact_uri`,
`mlflow-artifacts:/<exp>/models/<model_id>/artifacts`."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import Field

from ledgerflow.events import logged_model_commands as lc
from ledgerflow.events.commands import on
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.logged_model_entities import LoggedModel
from ledgerflow.events.permissions import Level
from ledgerflow.services.artifacts import safe_relpath
from ledgerflow.services.gateway.mlflow_api import messages
from ledgerflow.services.gateway.mlflow_api.artifacts import file_response
from ledgerflow.services.gateway.mlflow_api.endpoints import (
    Call,
    Endpoints,
    Message,
)
from ledgerflow.services.projector.logged_model_queries import MAX_SEARCH_RESULTS

api = Endpoints("mlflow logged models")
READ_EXPERIMENT = on("experiment", "experiment_id", Level.READ)
_ONE = "/logged-models/{model_id}"
_STATUS = {
    "LOGGED_MODEL_READY": "READY", "READY": "READY", "2": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED", "FAILED": "FAILED", "3": "FAILED",
}  # fmt: skip


class _Pair(Message):
    key: str
    value: Any = ""


class CreateLoggedModel(Message):
    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[_Pair] = Field(default_factory=list)
    tags: list[_Pair] = Field(default_factory=list)


class Finalize(Message):
    status: str | int


class SetTags(Message):
    tags: list[_Pair] = Field(default_factory=list)


class LogParams(Message):
    params: list[_Pair] = Field(default_factory=list)


class _OrderBy(Message):
    field_name: str
    ascending: bool = True


class SearchLoggedModels(Message):
    experiment_ids: list[str] = Field(min_length=1)
    filter: str | None = None
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    max_results: int = Field(MAX_SEARCH_RESULTS, ge=1, le=MAX_SEARCH_RESULTS)
    order_by: list[_OrderBy] = Field(default_factory=list)
    page_token: str | None = None


class ListDirectories(Message):
    artifact_directory_path: str | None = None


class _Output(Message):
    model_id: str
    step: int = 0


class LogOutputs(Message):
    run_id: str
    models: list[_Output] = Field(default_factory=list)


def _pairs(items: list[_Pair]) -> dict[str, Any]:
    return {p.key: p.value for p in items}


def model_of(call: Call, *, allow_deleted: bool = False) -> LoggedModel:
    """The model the path names, fresh from the views (NotFound when there is none)."""
    model_id = call.request.path_params["model_id"]
    return call.fresh().logged_models.queries.get(model_id, allow_deleted=allow_deleted)


def _answer(model: LoggedModel) -> dict[str, Any]:
    return {"model": messages.logged_model(model)}


@api.post("/logged-models", needs="EDIT on the experiment")
def create(call: Call) -> dict[str, Any]:
    msg = call.parse(CreateLoggedModel)
    command = lc.CreateLoggedModel(
        experiment_id=msg.experiment_id,
        name=msg.name or None,
        model_type=msg.model_type,
        source_run_id=msg.source_run_id or None,
        params=_pairs(msg.params),
        tags=_pairs(msg.tags),
    )
    return _answer(call.execute(command, call.backend.logged_models))


@api.post("/logged-models/search", needs="READ on every experiment searched")
def search(call: Call) -> dict[str, Any]:
    msg = call.parse(SearchLoggedModels)
    if msg.datasets:
        raise InvalidInput(
            "searching logged models by dataset is not supported: Ledgerflow does not keep "
            "a logged model's metrics",
            field="datasets",
        )
    for experiment_id in msg.experiment_ids:
        call.check(READ_EXPERIMENT, experiment_id=experiment_id)
    page = call.fresh().logged_models.queries.search(
        msg.experiment_ids,
        msg.filter or None,
        msg.max_results,
        [(o.field_name, o.ascending) for o in msg.order_by],
        msg.page_token or None,
    )
    out: dict[str, Any] = {"models": [messages.logged_model(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@api.get(_ONE, needs="READ on the model's experiment")
def get(call: Call) -> dict[str, Any]:
    allow_deleted = str(call.fields.get("allow_deleted", "")).lower() == "true"
    model = model_of(call, allow_deleted=allow_deleted)
    call.check(READ_EXPERIMENT, experiment_id=model.experiment_id)
    return _answer(model)


@api.route("PATCH", _ONE, needs="EDIT on the model's experiment")
def finalize(call: Call) -> dict[str, Any]:
    status = str(call.parse(Finalize).status).upper()
    if status not in _STATUS:
        raise InvalidInput(
            f"Invalid value for parameter 'status': {status!r}; a logged model is finalized "
            "as LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED",
            field="status",
        )
    model = model_of(call)
    command = lc.FinalizeLoggedModel(
        experiment_id=model.experiment_id,
        model_id=model.model_id,
        status="READY" if _STATUS[status] == "READY" else "FAILED",
    )
    return _answer(call.execute(command, call.backend.logged_models))


@api.route("DELETE", _ONE, needs="MANAGE on the model's experiment")
def delete(call: Call) -> dict[str, Any]:
    model = model_of(call)
    command = lc.DeleteLoggedModel(experiment_id=model.experiment_id, model_id=model.model_id)
    call.execute(command, call.backend.logged_models)
    return {}


@api.route("PATCH", _ONE + "/tags", needs="EDIT on the model's experiment")
def set_tags(call: Call) -> dict[str, Any]:
    tags = _pairs(call.parse(SetTags).tags)
    model = model_of(call)
    command = lc.SetLoggedModelTags(
        experiment_id=model.experiment_id, model_id=model.model_id, tags=tags
    )
    call.execute(command, call.backend.logged_models)
    return {}


@api.route("DELETE", _ONE + "/tags/{tag_key:path}", needs="EDIT on the model's experiment")
def delete_tag(call: Call) -> dict[str, Any]:
    model = model_of(call)
    command = lc.DeleteLoggedModelTag(
        experiment_id=model.experiment_id,
        model_id=model.model_id,
        key=call.request.path_params["tag_key"],
    )
    call.execute(command, call.backend.logged_models)
    return {}


@api.post(_ONE + "/params", needs="EDIT on the model's experiment")
def log_params(call: Call) -> dict[str, Any]:
    params = _pairs(call.parse(LogParams).params)
    model = model_of(call)
    command = lc.LogLoggedModelParams(
        experiment_id=model.experiment_id, model_id=model.model_id, params=params
    )
    call.execute(command, call.backend.logged_models)
    return {}


@api.get(_ONE + "/artifacts/directories", needs="READ on the model's experiment")
def list_directories(call: Call) -> dict[str, Any]:
    """A folder of the model's files, named from its artifact root."""
    model = model_of(call)
    call.check(READ_EXPERIMENT, experiment_id=model.experiment_id)
    rel = safe_relpath(call.parse(ListDirectories).artifact_directory_path or "", "path")
    files = call.backend.logged_models.queries.list_artifacts(model.model_id, rel or None)
    if rel and len(files) == 1 and files[0].path == rel and not files[0].is_dir:
        files = []
    out: dict[str, Any] = {"root_uri": messages.proxy_uri(model.artifact_key)}
    if files:
        out["files"] = [messages.file_info(f) for f in files]
    return out


class ArtifactFile(Message):
    artifact_file_path: str


@api.get(_ONE + "/artifacts/files", needs="READ on the model's experiment")
def download_file(call: Call) -> Response:
    """One of the model's files (the path MLflow's UI reads them from)."""
    model = model_of(call)
    call.check(READ_EXPERIMENT, experiment_id=model.experiment_id)
    rel = safe_relpath(call.parse(ArtifactFile).artifact_file_path, "artifact_file_path")
    if rel not in call.backend.logged_models.queries.artifact_entries(model.model_id):
        raise NotFound(
            f"logged model {model.model_id} has no artifact {rel!r}", kind="artifact", key=rel
        )
    return file_response(call, f"{model.artifact_key}/{rel}")


def check_models(call: Call, model_ids: list[str]) -> None:
    """READ on each model's experiment (an unknown model is refused by the command)."""
    queries = call.fresh().logged_models.queries
    for model_id in model_ids:
        found = queries.find(model_id)
        if found is not None:
            call.check(READ_EXPERIMENT, experiment_id=found.experiment_id)


@api.post("/runs/outputs", needs="EDIT on the run and READ on each model's experiment")
def log_outputs(call: Call) -> dict[str, Any]:
    msg = call.parse(LogOutputs)
    if not msg.models:
        return {}
    check_models(call, [o.model_id for o in msg.models])
    command = lc.LogRunOutputs(run_id=msg.run_id, models=[(o.model_id, o.step) for o in msg.models])
    call.execute(command, call.backend.logged_models)
    return {}
