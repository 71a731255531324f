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
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from ledgerflow._deployment_methods import DeploymentMethods
from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.events import deployment_payloads as dp
    from ledgerflow.services.deployments.state import DeploymentChange

P = ParamSpec("P")
T = TypeVar("T")

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


def _on_client(method: Callable[Concatenate[DeploymentMethods, P], T], name: str) -> Callable[P, T]:
    """`lf.Client`'s deployment method as a function of this module, with the method's
    own signature and docstring: the signature is written once, on the Client."""

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return method(_client(), *args, **kwargs)

    signature = inspect.signature(method)
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=builtins.list(signature.parameters.values())[1:]
    )
    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


create = _on_client(DeploymentMethods.create_deployment, "create")
get = _on_client(DeploymentMethods.get_deployment, "get")
list = _on_client(DeploymentMethods.list_deployments, "list")
add_variant = _on_client(DeploymentMethods.add_deployment_variant, "add_variant")
remove_variant = _on_client(DeploymentMethods.remove_deployment_variant, "remove_variant")
set_traffic = _on_client(DeploymentMethods.set_deployment_traffic, "set_traffic")
set_plan = _on_client(DeploymentMethods.set_deployment_plan, "set_plan")
set_guardrails = _on_client(DeploymentMethods.set_deployment_guardrails, "set_guardrails")
pause = _on_client(DeploymentMethods.pause_deployment, "pause")
resume = _on_client(DeploymentMethods.resume_deployment, "resume")
rollback = _on_client(DeploymentMethods.rollback_deployment, "rollback")
promote = _on_client(DeploymentMethods.promote_deployment, "promote")
delete = _on_client(DeploymentMethods.delete_deployment, "delete")
analysis = _on_client(DeploymentMethods.get_deployment_analysis, "analysis")


def history(name: str, limit: int = 100) -> builtins.list[DeploymentChange]:
    changes: builtins.list[DeploymentChange] = _client().get_deployment_history(name, limit)
    return changes


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
