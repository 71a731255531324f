"""A/B tests, canaries and guardrails for registered model versions.

    import ledgerflow as lf

    lf.deployments.create(
        "web",
        variants=[
            {"name": "a", "model": "iris", "version": 1, "weight": 90},
            {"name": "b", "model": "iris", "version": 2, "weight": 10},
        ],
        guardrails=[{"metric": "error_rate", "threshold": 0.05}],
    )
    lf.deployments.set_plan("web", {"candidate": "b", "steps": [{"weight": 10}, {"weight": 50}]})
    lf.deployments.feedback("web", request_id, converted=True)
    lf.deployments.promote("web", "b")  # 100% to b, and iris@champion -> version 2

A deployment is an event-sourced aggregate (`deployment:<name>`); every model-server
replica routes from its fold. See docs/deployments.md.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.events import deployment_payloads as dp
    from ledgerflow.services.deployments.state import Deployment, DeploymentChange

__all__ = [
    "add_variant",
    "analysis",
    "create",
    "delete",
    "feedback",
    "get",
    "history",
    "list",
    "pause",
    "promote",
    "remove_variant",
    "resume",
    "rollback",
    "set_guardrails",
    "set_plan",
    "set_traffic",
]


def _client() -> Any:
    from ledgerflow.client import Client

    return Client()


def create(
    name: str,
    variants: Sequence[dp.VariantSpec | Mapping[str, object]],
    baseline: str | None = None,
    *,
    description: str = "",
    key_header: str = "X-Ledgerflow-Key",
    key_field: str | None = None,
    guardrails: Sequence[dp.Guardrail | Mapping[str, object]] = (),
    plan: dp.CanaryPlan | Mapping[str, object] | None = None,
) -> Deployment:
    """A deployment of `variants` (`{name, model, version, bundle_id?, weight?, shadow?}`);
    the baseline defaults to the first non-shadow variant."""
    dep: Deployment = _client().create_deployment(
        name, variants, baseline, description=description, key_header=key_header,
        key_field=key_field, guardrails=guardrails, plan=plan,
    )  # fmt: skip
    return dep


def get(name: str) -> Deployment:
    dep: Deployment = _client().get_deployment(name)
    return dep


def list() -> builtins.list[Deployment]:
    deps: builtins.list[Deployment] = _client().list_deployments()
    return deps


def add_variant(name: str, variant: dp.VariantSpec | Mapping[str, object]) -> Deployment:
    dep: Deployment = _client().add_deployment_variant(name, variant)
    return dep


def remove_variant(name: str, variant: str, reason: str = "") -> Deployment:
    dep: Deployment = _client().remove_deployment_variant(name, variant, reason)
    return dep


def set_traffic(name: str, weights: Mapping[str, float], reason: str = "") -> Deployment:
    """The whole split; arms not named get 0. Ends a running canary plan."""
    dep: Deployment = _client().set_deployment_traffic(name, weights, reason)
    return dep


def set_plan(name: str, plan: dp.CanaryPlan | Mapping[str, object] | None) -> Deployment:
    dep: Deployment = _client().set_deployment_plan(name, plan)
    return dep


def set_guardrails(
    name: str, guardrails: Sequence[dp.Guardrail | Mapping[str, object]]
) -> Deployment:
    dep: Deployment = _client().set_deployment_guardrails(name, guardrails)
    return dep


def pause(name: str, reason: str = "") -> Deployment:
    dep: Deployment = _client().pause_deployment(name, reason)
    return dep


def resume(name: str) -> Deployment:
    dep: Deployment = _client().resume_deployment(name)
    return dep


def rollback(name: str, reason: str = "") -> Deployment:
    dep: Deployment = _client().rollback_deployment(name, reason)
    return dep


def promote(
    name: str, variant: str, alias: str | None = "champion", reason: str = ""
) -> Deployment:
    """All traffic to `variant`, which becomes the baseline; `alias` moves with it."""
    dep: Deployment = _client().promote_deployment(name, variant, alias, reason)
    return dep


def delete(name: str) -> None:
    _client().delete_deployment(name)


def history(name: str, limit: int = 100) -> builtins.list[DeploymentChange]:
    changes: builtins.list[DeploymentChange] = _client().get_deployment_history(name, limit)
    return changes


def analysis(
    name: str,
    metric: str | None = None,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    mde: float | None = None,
    since_ms: int | None = None,
) -> dict[str, Any]:
    """Per-variant live statistics and significance against the baseline (see
    `Client.get_deployment_analysis`)."""
    doc: dict[str, Any] = _client().get_deployment_analysis(
        name, metric, alpha=alpha, power=power, mde=mde, since_ms=since_ms
    )
    return doc


def feedback(
    name: str,
    request_id: str,
    value: float | bool | None = None,
    *,
    converted: bool | None = None,
    metric: str = "conversion",
    kind: str | None = None,
    variant: str | None = None,
) -> dp.FeedbackRecorded:
    """An outcome for a served request: `converted=True/False`, or a `value` (0/1 for a
    conversion; any number with kind="reward", the default for non-0/1 values)."""
    if converted is not None and value is None:
        outcome: float | bool = converted
    elif value is not None and converted is None:
        outcome = value
    else:
        raise InvalidInput("give the outcome as value or as converted (one of them)", field="value")
    if kind is None:
        kind = "conversion" if isinstance(outcome, bool) or outcome in (0, 1) else "reward"
    recorded: dp.FeedbackRecorded = _client().record_deployment_feedback(
        name, request_id, outcome, metric, kind, variant
    )
    return recorded
