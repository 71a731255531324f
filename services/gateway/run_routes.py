"""Runs: start, resume, log, tag, end, delete, restore, get, search, metric history.

Deleting and restoring a run and deleting its tags are commands whose routes are made
from their classes (`ledgerflow.events.tracking_commands`); logging stays here, as the
hot path it is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.commands import on
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.auth import check, checked, requires
from ledgerflow.services.gateway.command_registry import RUNS
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import (
    ActorDep,
    BackendDep,
    FreshDep,
    PrincipalDep,
    ReadsDep,
)
from ledgerflow.services.gateway.schemas import (
    FinishIn,
    MetricHistoryOut,
    MetricsIn,
    ParamsIn,
    RunIn,
    RunInfoOut,
    RunOut,
    RunPage,
    RunSearch,
    TagsIn,
)

reads = APIRouter(prefix="/runs", tags=["runs"])
_READ_EXPERIMENT = on("experiment", "experiment_id", Level.READ)


@reads.post(
    "",
    status_code=201,
    summary="Start a run",
    dependencies=[checked("EDIT on the body's experiment_id")],
)
def create_run(body: RunIn, backend: BackendDep, principal: PrincipalDep) -> RunInfoOut:
    check(backend, principal, on("experiment", "experiment_id", Level.EDIT), body)
    actor = principal.actor
    info = backend.tracking.create_run(
        body.experiment_id,
        # with auth on, the run's user is who started it, whatever the body says
        user_id=principal.user if backend.settings.auth else body.user_id,
        run_name=body.run_name,
        start_time=body.start_time,
        tags=body.tags,
        parent_run_id=body.parent_run_id,
        actor=actor,
        run_id=body.run_id,
    )
    return RunInfoOut.model_validate(info)


@reads.post(
    "/search",
    summary="Search runs (filter, order, cursor paging)",
    dependencies=[checked("READ on every experiment in experiment_ids")],
)
def search_runs(body: RunSearch, backend: FreshDep, principal: PrincipalDep) -> RunPage:
    for experiment_id in body.experiment_ids:
        check(backend, principal, _READ_EXPERIMENT, SimpleNamespace(experiment_id=experiment_id))
    page = backend.queries.search_runs(
        body.experiment_ids,
        body.filter,
        body.run_view_type,
        body.max_results,
        body.order_by,
        body.page_token,
    )
    return RunPage(runs=[RunOut.model_validate(r) for r in page], next_page_token=page.token)


@reads.get(
    "/{run_id}",
    summary="Get a run with its params, tags and latest metrics",
    dependencies=[requires("run", "run_id", Level.READ)],
)
def get_run(run_id: str, reads: ReadsDep) -> RunOut:
    return RunOut.model_validate(reads.queries.get_run(run_id))


@reads.get(
    "/{run_id}/info",
    summary="Get a run's info only (no params, tags or metrics)",
    dependencies=[requires("run", "run_id", Level.READ)],
)
def get_run_info(run_id: str, backend: FreshDep) -> RunInfoOut:
    return RunInfoOut.model_validate(backend.queries.get_run_info(run_id))


@reads.post(
    "/{run_id}/resume",
    summary="Reopen a run (no-op when it is running)",
    dependencies=[requires("run", "run_id", Level.EDIT)],
)
def resume_run(run_id: str, backend: BackendDep, actor: ActorDep) -> RunInfoOut:
    return RunInfoOut.model_validate(backend.tracking.resume_run(run_id, actor=actor))


@reads.post(
    "/{run_id}/params",
    status_code=204,
    summary="Log params (immutable once logged)",
    dependencies=[requires("run", "run_id", Level.EDIT)],
)
def log_params(run_id: str, body: ParamsIn, backend: BackendDep, actor: ActorDep) -> None:
    backend.tracking.log_params(run_id, body.params, actor=actor)


@reads.post(
    "/{run_id}/metrics",
    status_code=204,
    summary="Log metric points",
    dependencies=[requires("run", "run_id", Level.EDIT)],
)
def log_metrics(run_id: str, body: MetricsIn, backend: BackendDep, actor: ActorDep) -> None:
    backend.tracking.log_metrics(
        run_id,
        [(m.key, _number(m.value), m.timestamp, m.step) for m in body.metrics],
        actor=actor,
    )


def _number(value: float | str) -> float | str:
    """ "NaN" / "Infinity" / "-Infinity" as floats; any other text is left for validation."""
    if isinstance(value, str) and value.strip().lower() in ("nan", "infinity", "-infinity"):
        return float(value)
    return value


@reads.get(
    "/{run_id}/metrics/history",
    summary="A metric's points in step order, optionally downsampled to keep its shape",
    dependencies=[requires("run", "run_id", Level.READ)],
)
def get_metric_history(
    run_id: str,
    backend: FreshDep,
    key: Annotated[str, Query(description="the metric's name")],
    max_points: Annotated[int | None, Query(ge=2)] = None,
) -> MetricHistoryOut:
    return MetricHistoryOut.of(key, backend.queries.get_metric_history(run_id, key, max_points))


@reads.put(
    "/{run_id}/tags",
    status_code=204,
    summary="Set run tags",
    dependencies=[requires("run", "run_id", Level.EDIT)],
)
def set_tags(run_id: str, body: TagsIn, backend: BackendDep, actor: ActorDep) -> None:
    backend.tracking.set_tags(run_id, body.tags, actor=actor)


@reads.post(
    "/{run_id}/finish",
    status_code=204,
    summary="End a run",
    dependencies=[requires("run", "run_id", Level.EDIT)],
)
def finish_run(run_id: str, body: FinishIn, backend: BackendDep, actor: ActorDep) -> None:
    backend.tracking.finish_run(run_id, body.status, body.end_time, actor=actor)


router = APIRouter()
router.include_router(command_router(RUNS))
router.include_router(reads)
