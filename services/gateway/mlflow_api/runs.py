"""MLflow's run endpoints: create, get, update, delete, restore, tags, params, metrics,
log-batch, log-model, search."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from ledgerflow.events import logged_model_commands as lc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.commands import on
from ledgerflow.events.entities import RunInfo
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.mlflow_api import messages
from ledgerflow.services.gateway.mlflow_api.endpoints import (
    Call,
    Endpoints,
    Message,
)
from ledgerflow.services.gateway.mlflow_api.experiments import experiment_of
from ledgerflow.services.projector.filters import MAX_ORDER_KEYS, parse_order_by
from ledgerflow.services.tracking.decide import new_run
from ledgerflow.services.tracking.service import DEFAULT_EXPERIMENT_ID

api = Endpoints("mlflow runs")
READ_RUN = on("run", "run_id", Level.READ)
EDIT_RUN = on("run", "run_id", Level.EDIT)
EDIT_EXPERIMENT = on("experiment", "experiment_id", Level.EDIT)
READ_EXPERIMENT = on("experiment", "experiment_id", Level.READ)
TERMINAL = ("FINISHED", "FAILED", "KILLED")
MAX_BATCH_ITEMS, MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 1000, 100, 100
LOGGED_MODEL_HISTORY = "mlflow.log-model.history"
Point = tuple[str, Any, int, int]


class _Tag(Message):
    key: str
    value: Any = ""


class RunRef(Message):
    """MLflow's clients send `run_id`, older ones `run_uuid`, many both."""

    run_id: str = ""
    run_uuid: str = ""

    @property
    def id(self) -> str:
        rid = self.run_id or self.run_uuid
        if not rid:
            raise InvalidInput("Missing value for required parameter 'run_id'", field="run_id")
        return rid


class CreateRun(Message):
    experiment_id: str = DEFAULT_EXPERIMENT_ID
    user_id: str = ""
    run_name: str | None = None
    start_time: int | None = None
    tags: list[_Tag] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class SetTag(RunRef):
    key: str
    value: Any = ""


class DeleteTag(RunRef):
    key: str


class LogParam(RunRef):
    key: str
    value: Any = ""


class _Metric(Message):
    key: str
    value: float | str
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogMetric(RunRef, _Metric):
    pass


class LogBatch(RunRef):
    metrics: list[_Metric] = Field(default_factory=list)
    params: list[_Tag] = Field(default_factory=list)
    tags: list[_Tag] = Field(default_factory=list)


class LogModel(RunRef):
    model_json: str


class SearchRuns(Message):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int = "ACTIVE_ONLY"
    max_results: int = Field(1000, ge=1, le=50_000)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


def _value(value: float | str) -> float | str:
    """Protobuf's JSON spells NaN and the infinities as strings."""
    if isinstance(value, str) and value.strip().lower() in ("nan", "infinity", "-infinity", "inf"):
        return float(value)
    return value


def run_info_of(call: Call, run_id: str) -> RunInfo:
    found = call.fresh().queries.find_run_info(run_id)
    if found is None:
        raise NotFound(f"Run with id={run_id} not found", kind="run", key=run_id)
    return found


def run_message(call: Call, run_id: str) -> dict[str, Any]:
    """The run as `runs/get` answers it (latest metrics with their steps, model outputs)."""
    queries = call.fresh().queries
    found = queries.get_run(run_id)
    latest = queries.latest_metrics([run_id]).get(run_id, [])
    outputs = model_outputs(call, [run_id]).get(run_id, ())
    datasets = queries.dataset_inputs([run_id]).get(run_id, ())
    used = call.backend.logged_models.queries.inputs_of([run_id]).get(run_id, ())
    return messages.run(found, latest, outputs, datasets, used)


def model_outputs(call: Call, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The logged models each run output (`runs/outputs`)."""
    found = call.backend.logged_models.queries.outputs_of(run_ids)
    return {rid: [messages.model_output(o) for o in outputs] for rid, outputs in found.items()}


@api.post("/runs/create", needs="EDIT on the experiment")
def create_run(call: Call) -> dict[str, Any]:
    msg = call.parse(CreateRun)
    experiment_of(call, msg.experiment_id)  # the Default experiment exists once asked for
    call.check(EDIT_EXPERIMENT, msg)
    tags = {t.key: t.value for t in msg.tags}
    info = call.backend.tracking.create_run(
        msg.experiment_id,
        # with auth on, the run's user is who started it, whatever the body says
        user_id=call.principal.user if call.auth else (msg.user_id or call.principal.user),
        run_name=msg.run_name or None,
        start_time=msg.start_time,
        tags=tags,
        parent_run_id=tags.get("mlflow.parentRunId") or None,
        actor=call.actor,
    )
    started = new_run(info, tags, tags.get("mlflow.parentRunId") or None)
    return {"run": messages.run(started, ())}  # new: nothing logged on it yet


@api.get("/runs/get", needs="READ on the run")
def get_run(call: Call) -> dict[str, Any]:
    rid = call.parse(RunRef).id
    call.check(READ_RUN, run_id=rid)
    run_info_of(call, rid)
    return {"run": run_message(call, rid)}


@api.post("/runs/update", needs="EDIT on the run")
def update_run(call: Call) -> dict[str, Any]:
    msg = call.parse(UpdateRun)
    rid = msg.id
    call.check(EDIT_RUN, run_id=rid)
    tracking = call.backend.tracking
    info = run_info_of(call, rid)
    if msg.run_name:
        tracking.set_tags(rid, {"mlflow.runName": msg.run_name}, actor=call.actor)
    status = (msg.status or "").upper()
    if status in TERMINAL:
        tracking.finish_run(rid, status, msg.end_time, actor=call.actor)
    elif status == "RUNNING" and info.status != "RUNNING":
        tracking.resume_run(rid, actor=call.actor)
    elif status and status not in ("RUNNING", "SCHEDULED"):
        raise InvalidInput(f"Invalid value for parameter 'status': {msg.status!r}", field="status")
    return {"run_info": messages.run_info(run_info_of(call, rid))}


@api.post("/runs/delete", needs="MANAGE on the run")
def delete_run(call: Call) -> dict[str, Any]:
    command = tc.DeleteRun(run_id=call.parse(RunRef).id)
    if run_info_of(call, command.run_id).lifecycle_stage == "deleted":
        call.check(on("run", "run_id", Level.MANAGE), command)  # MLflow: twice is no error
        return {}
    call.execute(command, call.backend.tracking)
    return {}


@api.post("/runs/restore", needs="MANAGE on the run")
def restore_run(call: Call) -> dict[str, Any]:
    command = tc.RestoreRun(run_id=call.parse(RunRef).id)
    if run_info_of(call, command.run_id).lifecycle_stage == "active":
        call.check(on("run", "run_id", Level.MANAGE), command)
        return {}
    call.execute(command, call.backend.tracking)
    return {}


@api.post("/runs/set-tag", needs="EDIT on the run")
def set_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(SetTag)
    call.check(EDIT_RUN, run_id=msg.id)
    call.backend.tracking.set_tags(msg.id, {msg.key: msg.value}, actor=call.actor)
    return {}


@api.post("/runs/delete-tag", needs="EDIT on the run")
def delete_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(DeleteTag)
    call.execute(tc.DeleteTag(run_id=msg.id, key=msg.key), call.backend.tracking)
    return {}


@api.post("/runs/log-parameter", needs="EDIT on the run")
def log_parameter(call: Call) -> dict[str, Any]:
    msg = call.parse(LogParam)
    call.check(EDIT_RUN, run_id=msg.id)
    call.backend.tracking.log_params(msg.id, {msg.key: msg.value}, actor=call.actor)
    return {}


@api.post("/runs/log-metric", needs="EDIT on the run")
def log_metric(call: Call) -> dict[str, Any]:
    msg = call.parse(LogMetric)
    call.check(EDIT_RUN, run_id=msg.id)
    points = _run_points(call, msg.id, [msg])
    if points:
        call.backend.tracking.log_metrics(msg.id, points, actor=call.actor)
    return {}


@api.post("/runs/log-batch", needs="EDIT on the run")
def log_batch(call: Call) -> dict[str, Any]:
    msg = call.parse(LogBatch)
    call.check(EDIT_RUN, run_id=msg.id)
    _check_batch(msg)
    call.backend.tracking.log_batch(
        msg.id,
        _run_points(call, msg.id, msg.metrics),
        {p.key: p.value for p in msg.params},
        {t.key: t.value for t in msg.tags},
        actor=call.actor,
    )
    return {}


def _run_points(call: Call, run_id: str, metrics: Sequence[_Metric]) -> list[Point]:
    """The points to log on the run. Those with a `model_id` are also their logged model's
    (MLflow logs them to both); of those, the ones the run already holds are not logged on
    it again (MLflow's `log_model` copies the run's points of a step to the model)."""
    points = [(m.key, _value(m.value), m.timestamp, m.step) for m in metrics]
    groups: dict[tuple[str, str | None, str | None], list[Point]] = {}
    for m, point in zip(metrics, points, strict=True):
        if m.model_id:
            groups.setdefault((m.model_id, m.dataset_name, m.dataset_digest), []).append(point)
    if not groups:
        return points
    service = call.backend.logged_models
    for (model_id, dataset, digest), of_model in groups.items():
        model = service.queries.get(model_id)
        command = lc.LogLoggedModelMetrics(
            experiment_id=model.experiment_id, model_id=model_id, points=of_model,
            run_id=run_id, dataset_name=dataset, dataset_digest=digest,
        )  # fmt: skip
        call.execute(command, service)
    held = service.queries.run_points_present(run_id, [p for ps in groups.values() for p in ps])
    return [
        point
        for m, point in zip(metrics, points, strict=True)
        if not (m.model_id and (point[0], point[3], point[2]) in held)
    ]


def _check_batch(msg: LogBatch) -> None:
    """MLflow's limits on one batch, with its wording."""
    for name, items, most in (
        ("metrics", msg.metrics, MAX_BATCH_METRICS),
        ("params", msg.params, MAX_BATCH_PARAMS),
        ("tags", msg.tags, MAX_BATCH_TAGS),
    ):
        if len(items) > most:
            raise InvalidInput(
                f"A batch logging request can contain at most {most} {name}. "
                f"Got {len(items)} {name}. Please split up {name} across multiple requests "
                "and try again.",
                field=name,
            )
    total = len(msg.metrics) + len(msg.params) + len(msg.tags)
    if total > MAX_BATCH_ITEMS:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_BATCH_ITEMS} metrics, params, "
            f"and tags in total. Got {total} items.",
        )


@api.post("/runs/log-model", needs="EDIT on the run")
def log_model(call: Call) -> dict[str, Any]:
    """The older record of a logged model: appended to the run's
    `mlflow.log-model.history` tag, as MLflow's own stores keep it."""
    msg = call.parse(LogModel)
    call.check(EDIT_RUN, run_id=msg.id)
    try:
        model = json.loads(msg.model_json)
    except ValueError:
        raise InvalidInput("model_json is not valid JSON", field="model_json") from None
    tags = call.fresh().queries.get_run(msg.id).data.tags
    history = json.loads(tags.get(LOGGED_MODEL_HISTORY) or "[]")
    history.append(model)
    history_json = json.dumps(history)
    call.backend.tracking.set_tags(msg.id, {LOGGED_MODEL_HISTORY: history_json}, actor=call.actor)
    return {}


def _with_start_time(order_by: list[str]) -> list[str]:
    """MLflow's order: what was asked, then the latest start first unless the start time
    was asked for (then the run id, as Ledgerflow's search always ends)."""
    asked = parse_order_by(order_by) if order_by else ()
    if len(asked) >= MAX_ORDER_KEYS or any(
        k.entity == "attribute" and k.key == "start_time" for k in asked
    ):
        return order_by
    return [*order_by, "attributes.start_time DESC"]


@api.post("/runs/search", needs="READ on every experiment searched")
def search_runs(call: Call) -> dict[str, Any]:
    msg = call.parse(SearchRuns)
    for experiment_id in msg.experiment_ids:
        call.check(READ_EXPERIMENT, experiment_id=experiment_id)
    queries = call.fresh().queries
    page = queries.search_runs(
        msg.experiment_ids,
        msg.filter or None,
        msg.run_view_type,
        msg.max_results,
        _with_start_time(msg.order_by),
        msg.page_token or None,
    )
    ids = [r.info.run_id for r in page]
    latest, datasets = queries.latest_metrics(ids), queries.dataset_inputs(ids)
    outputs = model_outputs(call, ids)
    used = call.backend.logged_models.queries.inputs_of(ids)
    out: dict[str, Any] = {
        "runs": [
            messages.run(
                r,
                latest.get(r.info.run_id, ()),
                outputs.get(r.info.run_id, ()),
                datasets.get(r.info.run_id, ()),
                used.get(r.info.run_id, ()),
            )
            for r in page
        ]
    }
    if page.token:
        out["next_page_token"] = page.token
    return out
