"""The A/B rollout API over HTTP: deployments, their variants, traffic, canary plans,
guardrails, promotion and rollback, their history, and feedback on served requests.

The commands' routes are made from the command classes
(`ledgerflow.services.deployments.commands`, via `command_routes`); the reads are here.
A deployment travels as its folded state (`Deployment.to_dict()`), exactly what the
model servers route by. Variants, guardrails and plans are passed through to the same
decisions as embedded mode, so a mistake is refused with the same message and the
same field name (`variants[1].version`) whichever way the command came.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ledgerflow.events.permissions import Level
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.deployer.service import DeploymentService
from ledgerflow.services.deployments.checks import METRIC_PATTERN
from ledgerflow.services.deployments.state import Deployment
from ledgerflow.services.gateway.auth import checked, readable, requires
from ledgerflow.services.gateway.command_registry import DEPLOYMENTS
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import FreshDep, LiveDep, PrincipalDep
from ledgerflow.services.gateway.schemas import Out

reads = APIRouter(prefix="/deployments", tags=["deployments"])


class ChangeOut(Out):
    seq: int
    time: int
    type: str
    actor: str
    summary: dict[str, Any]


_READ = requires("deployment", "name", Level.READ)


def _service(backend: Backend) -> DeploymentService:
    return backend.deployments


def _doc(dep: Deployment) -> dict[str, Any]:
    return dep.to_dict()


@reads.get(
    "",
    summary="List deployments (not deleted ones) with their state",
    dependencies=[checked("any identity; only deployments the caller may READ are listed")],
)
def list_deployments(backend: FreshDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    shown = readable(backend, principal, "deployment")
    return [_doc(d) for d in _service(backend).list(readable=shown)]


@reads.get(
    "/{name}",
    summary="A deployment's state: variants, weights, plan, guardrails",
    dependencies=[_READ],
)
def get_deployment(name: str, backend: FreshDep) -> dict[str, Any]:
    return _doc(_service(backend).get(name))


@reads.get(
    "/{name}/history",
    summary="The deployment's events, oldest first (why it changed)",
    dependencies=[_READ],
)
def history(
    name: str,
    backend: FreshDep,
    limit: Annotated[int, Query(ge=1, description="the latest this many")] = 100,
) -> list[ChangeOut]:
    return [ChangeOut.model_validate(c) for c in _service(backend).history(name, limit)]


@reads.get(
    "/{name}/analysis",
    summary="Live per-variant statistics and significance tests",
    dependencies=[_READ],
)
def analysis(
    name: str,
    backend: LiveDep,
    metric: Annotated[
        str | None,
        Query(
            description="a feedback metric or error_rate (default: conversion)",
            json_schema_extra={"pattern": METRIC_PATTERN},
        ),
    ] = None,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    power: Annotated[float, Query(gt=0, lt=1)] = 0.8,
    mde: Annotated[float | None, Query(gt=0, description="minimum detectable effect")] = None,
    since: Annotated[int | None, Query(ge=0, description="epoch ms; default: all traffic")] = None,
) -> dict[str, Any]:
    return _service(backend).analysis(
        name, metric=metric, alpha=alpha, power=power, mde=mde, since_ms=since
    )


router = APIRouter()
router.include_router(command_router(DEPLOYMENTS))
router.include_router(reads)
