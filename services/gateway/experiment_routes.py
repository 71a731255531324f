"""Experiments: create, look up, search, rename, delete, restore, tag.

The commands' routes are made from their classes (`ledgerflow.events.tracking_commands`);
the reads, and the get-or-create calls the SDK makes when it starts a run, are here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.commands import on
from ledgerflow.events.entities import Experiment
from ledgerflow.events.errors import NotFound
from ledgerflow.events.field_schemas import EXPERIMENT_NAME
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import check, checked, readable, requires
from ledgerflow.services.gateway.command_registry import EXPERIMENTS
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import BackendDep, FreshDep, PrincipalDep
from ledgerflow.services.gateway.schemas import ExperimentOut

reads = APIRouter(prefix="/experiments", tags=["experiments"])
VIEW_TYPES = "ACTIVE_ONLY, DELETED_ONLY or ALL (or 1, 2, 3)"
FILTER = "e.g. name LIKE 'team-%' AND tags.owner = 'cv' (the runs' filter language)"
READABLE = "any identity; only experiments the caller may READ are listed"
NAMED = "READ on the experiment found"
ORDER_BY = "e.g. name, or creation_time DESC; newest first by default"
_Name = Annotated[str, Query(json_schema_extra=EXPERIMENT_NAME)]


def _out(exp: object) -> ExperimentOut:
    return ExperimentOut.model_validate(exp)


_READ = on("experiment", "experiment_id", Level.READ)


def _shown(backend: Backend, principal: Principal, exp: Experiment) -> ExperimentOut:
    """The experiment found by name, if the caller may read it."""
    check(backend, principal, _READ, exp)
    return _out(exp)


@reads.get("", summary="Search experiments", dependencies=[checked(READABLE)])
def search_experiments(
    backend: FreshDep,
    principal: PrincipalDep,
    view_type: Annotated[str, Query(description=VIEW_TYPES)] = "ACTIVE_ONLY",
    max_results: Annotated[int, Query(ge=1)] = 1000,
    filter_string: Annotated[str | None, Query(alias="filter", description=FILTER)] = None,
    order_by: Annotated[list[str] | None, Query(description=ORDER_BY)] = None,
    name_like: Annotated[str | None, Query(description="SQL LIKE pattern on the name")] = None,
    order_by_name: bool = False,
) -> list[ExperimentOut]:
    if name_like:  # the older spelling of `name LIKE '...'`
        escaped = name_like.replace("\\", "\\\\").replace("'", "''")
        like = f"name LIKE '{escaped}'"
        given = filter_string and filter_string.strip()
        filter_string = f"({filter_string}) AND {like}" if given else like
    if order_by_name and not order_by:
        order_by = ["name"]
    shown = readable(backend, principal, "experiment")
    found = backend.queries.search_experiments(
        view_type, max_results, filter_string, order_by, readable=shown
    )
    return [_out(e) for e in found]


@reads.get("/by-name", summary="The experiment with this name", dependencies=[checked(NAMED)])
def get_experiment_by_name(
    name: _Name, backend: FreshDep, principal: PrincipalDep
) -> ExperimentOut:
    exp = backend.queries.get_experiment_by_name(name)
    if exp is None:
        raise NotFound(f"no experiment named {name!r}", kind="experiment", key=name)
    return _shown(backend, principal, exp)


@reads.put(
    "/by-name",
    summary="The experiment with this name, created if missing",
    dependencies=[checked(f"any identity creates; {NAMED}")],
)
def get_or_create_experiment(
    name: _Name, backend: BackendDep, principal: PrincipalDep
) -> ExperimentOut:
    exp = backend.tracking.get_or_create_experiment(name, actor=principal.actor)
    return _shown(backend, principal, exp)


@reads.put(
    "/default",
    summary="The Default experiment, created if missing",
    dependencies=[checked(f"any identity creates; {NAMED}")],
)
def default_experiment(backend: BackendDep, principal: PrincipalDep) -> ExperimentOut:
    exp = backend.tracking.default_experiment(actor=principal.actor)
    return _shown(backend, principal, exp)


@reads.get(
    "/{experiment_id}",
    summary="Get an experiment",
    dependencies=[requires("experiment", "experiment_id", Level.READ)],
)
def get_experiment(experiment_id: str, backend: FreshDep) -> ExperimentOut:
    return _out(backend.queries.get_experiment(experiment_id))


router = APIRouter()
router.include_router(command_router(EXPERIMENTS))
router.include_router(reads)
