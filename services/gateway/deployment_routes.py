"""The A/B rollout API over HTTP: deployments, their variants, traffic, canary plans,
guardrails, promotion and rollback, their history, and feedback on served requests.

A deployment travels as its folded state (`Deployment.to_dict()`), exactly what the
model servers route by. Variants, guardrails and plans are passed through to the same
decisions as embedded mode, so a mistake is refused with the same message and the
same field name (`variants[1].version`) whichever way the command came.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field, StrictBool

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.deployer.service import DEFAULT_ALIAS, DeploymentService
from ledgerflow.services.deployments.state import Deployment
from ledgerflow.services.gateway.deps import ActorDep, BackendDep, FreshDep
from ledgerflow.services.gateway.schemas import Body, Out

router = APIRouter(prefix="/deployments", tags=["deployments"])

_VARIANT = "{name, model, version, bundle_id?, weight?, shadow?}"
_GUARDRAIL = "{metric, bound: max|min, threshold, relative?, min_samples?}"
_PLAN = "{candidate, steps: [{weight (percent), min_duration_s?, min_requests?}]}"


class DeploymentIn(Body):
    name: str = Field(description="unique; letters, digits, '_', '-' and '.'")
    variants: list[Any] = Field(description=f"the arms, each {_VARIANT}")
    baseline: str | None = Field(None, description="default: the first non-shadow variant")
    description: str = ""
    key_header: str = Field("X-Ledgerflow-Key", description="request header with the sticky key")
    key_field: str | None = Field(None, description="or a top-level JSON field holding it")
    guardrails: list[Any] = Field(default_factory=list, description=f"each {_GUARDRAIL}")
    plan: Any = Field(None, description=f"a canary plan {_PLAN}")


class TrafficIn(Body):
    weights: dict[str, Any] = Field(description="the whole split; arms not named get 0")
    reason: str = ""


class PlanIn(Body):
    plan: Any = Field(description=f"{_PLAN}, or null to stop the running plan")


class GuardrailsIn(Body):
    guardrails: list[Any] = Field(description=f"each {_GUARDRAIL}; [] removes them all")


class ReasonIn(Body):
    reason: str = ""


class PromoteIn(Body):
    variant: str
    alias: str | None = Field(
        DEFAULT_ALIAS, description="registry alias moved to the variant's version; null: none"
    )
    reason: str = ""


class FeedbackIn(Body):
    request_id: str = Field(description="the served request's id (X-Request-Id of its answer)")
    value: Any = Field(None, description="0/1 for a conversion, any number for a reward")
    converted: StrictBool | None = Field(None, description="instead of value, for conversions")
    metric: str = "conversion"
    kind: str | None = Field(None, description="conversion (default) or reward")
    variant: str | None = Field(None, description="the arm that served it, if known")


class ChangeOut(Out):
    seq: int
    time: int
    type: str
    actor: str
    summary: dict[str, Any]


def _service(backend: Backend) -> DeploymentService:
    return DeploymentService.for_backend(backend)


def _doc(dep: Deployment) -> dict[str, Any]:
    return dep.to_dict()


@router.post("", status_code=201, summary="Create a deployment (an A/B test of model versions)")
def create_deployment(body: DeploymentIn, backend: BackendDep, actor: ActorDep) -> dict[str, Any]:
    dep = _service(backend).create(
        body.name, body.variants, body.baseline, description=body.description,
        key_header=body.key_header, key_field=body.key_field, guardrails=body.guardrails,
        plan=body.plan, actor=actor,
    )  # fmt: skip
    return _doc(dep)


@router.get("", summary="List deployments (not deleted ones) with their state")
def list_deployments(backend: FreshDep) -> list[dict[str, Any]]:
    return [_doc(d) for d in _service(backend).list()]


@router.get("/{name}", summary="A deployment's state: variants, weights, plan, guardrails")
def get_deployment(name: str, backend: FreshDep) -> dict[str, Any]:
    return _doc(_service(backend).get(name))


@router.delete("/{name}", status_code=204, summary="Delete a deployment")
def delete_deployment(name: str, backend: BackendDep, actor: ActorDep) -> None:
    _service(backend).delete(name, actor=actor)


@router.post("/{name}/variants", summary=f"Add a variant {_VARIANT}")
def add_variant(
    name: str, body: dict[str, Any], backend: BackendDep, actor: ActorDep
) -> dict[str, Any]:
    return _doc(_service(backend).add_variant(name, body, actor=actor))


@router.delete("/{name}/variants/{variant}", summary="Remove a variant (not the baseline)")
def remove_variant(
    name: str,
    variant: str,
    backend: BackendDep,
    actor: ActorDep,
    reason: Annotated[str, Query(description="why, recorded in the history")] = "",
) -> dict[str, Any]:
    return _doc(_service(backend).remove_variant(name, variant, reason, actor=actor))


@router.put("/{name}/traffic", summary="Set the whole traffic split (ends a canary plan)")
def set_traffic(name: str, body: TrafficIn, backend: BackendDep, actor: ActorDep) -> dict[str, Any]:
    return _doc(_service(backend).set_traffic(name, body.weights, body.reason, actor=actor))


@router.put("/{name}/plan", summary="Start a canary plan at its first step, or stop it (null)")
def set_plan(name: str, body: PlanIn, backend: BackendDep, actor: ActorDep) -> dict[str, Any]:
    return _doc(_service(backend).set_plan(name, body.plan, actor=actor))


@router.put("/{name}/guardrails", summary="Replace the guardrails")
def set_guardrails(
    name: str, body: GuardrailsIn, backend: BackendDep, actor: ActorDep
) -> dict[str, Any]:
    return _doc(_service(backend).set_guardrails(name, body.guardrails, actor=actor))


@router.post("/{name}/pause", summary="Stop canary steps and automatic rollback")
def pause(
    name: str, backend: BackendDep, actor: ActorDep, body: ReasonIn | None = None
) -> dict[str, Any]:
    return _doc(_service(backend).pause(name, body.reason if body else "", actor=actor))


@router.post("/{name}/resume", summary="Resume canary steps and guardrails")
def resume(name: str, backend: BackendDep, actor: ActorDep) -> dict[str, Any]:
    return _doc(_service(backend).resume(name, actor=actor))


@router.post("/{name}/rollback", summary="All traffic back to the baseline; the plan stops")
def rollback(
    name: str, backend: BackendDep, actor: ActorDep, body: ReasonIn | None = None
) -> dict[str, Any]:
    return _doc(_service(backend).rollback(name, body.reason if body else "", actor=actor))


@router.post(
    "/{name}/promote",
    summary="All traffic to a variant, which becomes the baseline; the alias moves with it",
)
def promote(name: str, body: PromoteIn, backend: BackendDep, actor: ActorDep) -> dict[str, Any]:
    dep = _service(backend).promote(name, body.variant, body.alias, body.reason, actor=actor)
    return _doc(dep)


@router.get("/{name}/history", summary="The deployment's events, oldest first (why it changed)")
def history(
    name: str,
    backend: FreshDep,
    limit: Annotated[int, Query(ge=1, description="the latest this many")] = 100,
) -> list[ChangeOut]:
    return [ChangeOut.model_validate(c) for c in _service(backend).history(name, limit)]


@router.get("/{name}/analysis", summary="Live per-variant statistics and significance tests")
def analysis(
    name: str,
    backend: FreshDep,
    metric: Annotated[
        str | None, Query(description="a feedback metric or error_rate (default: conversion)")
    ] = None,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    power: Annotated[float, Query(gt=0, lt=1)] = 0.8,
    mde: Annotated[float | None, Query(gt=0, description="minimum detectable effect")] = None,
    since: Annotated[int | None, Query(ge=0, description="epoch ms; default: all traffic")] = None,
) -> dict[str, Any]:
    return _service(backend).analysis(
        name, metric=metric, alpha=alpha, power=power, mde=mde, since_ms=since
    )


@router.post("/{name}/feedback", status_code=202, summary="An outcome for a served request")
def feedback(name: str, body: FeedbackIn, backend: BackendDep, actor: ActorDep) -> dict[str, Any]:
    if (body.value is None) == (body.converted is None):
        raise InvalidInput("give the outcome as value or as converted (one of them)", field="value")
    value = body.converted if body.converted is not None else body.value
    kind = body.kind or "conversion"
    recorded = _service(backend).record_feedback(
        name, body.request_id, value, body.metric, kind, body.variant, actor=actor
    )
    return recorded.model_dump(mode="json")
