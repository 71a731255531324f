"""Experiments: create, look up, search, rename, delete, restore, tag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.errors import NotFound
from ledgerflow.services.gateway.deps import ActorDep, BackendDep, FreshDep
from ledgerflow.services.gateway.schemas import (
    ExperimentId,
    ExperimentIn,
    ExperimentOut,
    ExperimentPatch,
    TagIn,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])
VIEW_TYPES = "ACTIVE_ONLY, DELETED_ONLY or ALL (or 1, 2, 3)"
FILTER = "e.g. name LIKE 'team-%' AND tags.owner = 'cv' (the runs' filter language)"
ORDER_BY = "e.g. name, or creation_time DESC; newest first by default"


def _out(exp: object) -> ExperimentOut:
    return ExperimentOut.model_validate(exp)


@router.post("", status_code=201, summary="Create an experiment")
def create_experiment(body: ExperimentIn, backend: BackendDep, actor: ActorDep) -> ExperimentId:
    exp_id = backend.tracking.create_experiment(
        body.name,
        body.artifact_location,
        body.tags,
        actor=actor,
        experiment_id=body.experiment_id,
    )
    return ExperimentId(experiment_id=exp_id)


@router.get("", summary="Search experiments")
def search_experiments(
    backend: FreshDep,
    view_type: Annotated[str, Query(description=VIEW_TYPES)] = "ACTIVE_ONLY",
    max_results: Annotated[int, Query(ge=1)] = 1000,
    filter_string: Annotated[str | None, Query(alias="filter", description=FILTER)] = None,
    order_by: Annotated[list[str] | None, Query(description=ORDER_BY)] = None,
    name_like: Annotated[str | None, Query(description="SQL LIKE pattern on the name")] = None,
    order_by_name: bool = False,
) -> list[ExperimentOut]:
    kind: str | int = int(view_type) if view_type.isdigit() else view_type  # MLflow's ViewType
    if name_like:  # the older spelling of `name LIKE '...'`
        escaped = name_like.replace("\\", "\\\\").replace("'", "''")
        like = f"name LIKE '{escaped}'"
        given = filter_string and filter_string.strip()
        filter_string = f"({filter_string}) AND {like}" if given else like
    if order_by_name and not order_by:
        order_by = ["name"]
    found = backend.queries.search_experiments(kind, max_results, filter_string, order_by)
    return [_out(e) for e in found]


@router.get("/by-name", summary="The experiment with this name")
def get_experiment_by_name(name: str, backend: FreshDep) -> ExperimentOut:
    exp = backend.queries.get_experiment_by_name(name)
    if exp is None:
        raise NotFound(f"no experiment named {name!r}", kind="experiment", key=name)
    return _out(exp)


@router.put("/by-name", summary="The experiment with this name, created if missing")
def get_or_create_experiment(name: str, backend: BackendDep, actor: ActorDep) -> ExperimentOut:
    return _out(backend.tracking.get_or_create_experiment(name, actor=actor))


@router.put("/default", summary="The Default experiment, created if missing")
def default_experiment(backend: BackendDep, actor: ActorDep) -> ExperimentOut:
    return _out(backend.tracking.default_experiment(actor=actor))


@router.get("/{experiment_id}", summary="Get an experiment")
def get_experiment(experiment_id: str, backend: FreshDep) -> ExperimentOut:
    return _out(backend.queries.get_experiment(experiment_id))


@router.patch("/{experiment_id}", status_code=204, summary="Rename an experiment")
def rename_experiment(
    experiment_id: str, body: ExperimentPatch, backend: BackendDep, actor: ActorDep
) -> None:
    backend.tracking.rename_experiment(experiment_id, body.name, actor=actor)


@router.delete("/{experiment_id}", status_code=204, summary="Delete an experiment (restorable)")
def delete_experiment(experiment_id: str, backend: BackendDep, actor: ActorDep) -> None:
    backend.tracking.delete_experiment(experiment_id, actor=actor)


@router.post("/{experiment_id}/restore", status_code=204, summary="Restore a deleted experiment")
def restore_experiment(experiment_id: str, backend: BackendDep, actor: ActorDep) -> None:
    backend.tracking.restore_experiment(experiment_id, actor=actor)


@router.put("/{experiment_id}/tags", status_code=204, summary="Set an experiment tag")
def set_experiment_tag(
    experiment_id: str, body: TagIn, backend: BackendDep, actor: ActorDep
) -> None:
    backend.tracking.set_experiment_tag(experiment_id, body.key, body.value, actor=actor)
