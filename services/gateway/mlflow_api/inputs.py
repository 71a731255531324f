"""MLflow's `runs/log-inputs`: the datasets a run read (`run.inputs_logged`: their names,
digests and sources, never their data) and the logged models it used
(`run.model_inputs_logged`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ledgerflow.events import logged_model_commands as lc
from ledgerflow.events.commands import on
from ledgerflow.events.payloads import DatasetInput
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.mlflow_api.endpoints import Call, Endpoints, Message
from ledgerflow.services.gateway.mlflow_api.logged_models import check_models
from ledgerflow.services.gateway.mlflow_api.runs import RunRef, run_info_of

api = Endpoints("mlflow run inputs")
EDIT_RUN = on("run", "run_id", Level.EDIT)


class _Tag(Message):
    key: str
    value: Any = ""


class _Dataset(Message):
    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class _DatasetInput(Message):
    tags: list[_Tag] = Field(default_factory=list)
    dataset: _Dataset


class _ModelInput(Message):
    model_id: str


class LogInputs(RunRef):
    datasets: list[_DatasetInput] = Field(default_factory=list)
    models: list[_ModelInput] = Field(default_factory=list)


@api.post("/runs/log-inputs", needs="EDIT on the run and READ on each model's experiment")
def log_inputs(call: Call) -> dict[str, Any]:
    msg = call.parse(LogInputs)
    rid = msg.id
    call.check(EDIT_RUN, run_id=rid)
    run_info_of(call, rid)
    datasets = [
        DatasetInput(
            name=d.dataset.name,
            digest=d.dataset.digest,
            source_type=d.dataset.source_type,
            source=d.dataset.source,
            dataset_schema=d.dataset.schema_,
            profile=d.dataset.profile,
            tags={t.key: str(t.value) for t in d.tags},
        )
        for d in msg.datasets
    ]
    model_ids = [m.model_id for m in msg.models]
    if model_ids:  # first: an unknown model refuses the call before anything is logged
        check_models(call, model_ids)
        call.execute(lc.LogRunInputs(run_id=rid, model_ids=model_ids), call.backend.logged_models)
    call.backend.tracking.log_inputs(rid, datasets, actor=call.actor)
    return {}
