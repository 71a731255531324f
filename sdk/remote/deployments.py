"""Deployments over the gateway (`/api/v1/deployments`), with the embedded
`DeploymentService`'s signatures, so the Client manages them alike in both modes.

The gateway decides with the same functions as embedded mode, so a mistake is
refused with the same message and field; answers are the folded state, read back
into the same `Deployment`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.channel import Channel, seg
from ledgerflow.services.deployments.state import Deployment, DeploymentChange

ROOT = "/deployments"


def plain(value: Any) -> Any:
    """Payload models (VariantSpec, Guardrail, CanaryPlan) as JSON-ready values, anything
    else as it is, for the gateway to validate."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class RemoteDeployments:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    def _path(self, name: str, *rest: str) -> str:
        return "/".join([ROOT, seg(name), *(seg(r) for r in rest)])

    def _state(self, doc: Any) -> Deployment:
        return Deployment.from_dict(doc)

    def create(
        self,
        name: str,
        variants: Sequence[d.VariantSpec | Mapping[str, object]],
        baseline: str | None = None,
        *,
        description: str = "",
        key_header: str = "X-Ledgerflow-Key",
        key_field: str | None = None,
        guardrails: Sequence[d.Guardrail | Mapping[str, object]] = (),
        plan: d.CanaryPlan | Mapping[str, object] | None = None,
        actor: str,
    ) -> Deployment:
        body = {
            "name": name,
            "variants": plain(variants),
            "baseline": baseline,
            "description": description,
            "key_header": key_header,
            "key_field": key_field,
            "guardrails": plain(guardrails),
            "plan": plain(plan),
        }
        return self._state(self._ch.call("POST", ROOT, actor=actor, json=body))

    def add_variant(
        self, name: str, variant: d.VariantSpec | Mapping[str, object], *, actor: str
    ) -> Deployment:
        doc = self._ch.call("POST", self._path(name, "variants"), actor=actor, json=plain(variant))
        return self._state(doc)

    def remove_variant(
        self, name: str, variant: str, reason: str = "", *, actor: str
    ) -> Deployment:
        doc = self._ch.call(
            "DELETE", self._path(name, "variants", variant), actor=actor,
            params={"reason": reason}, idempotent=False,
        )  # fmt: skip
        return self._state(doc)

    def set_traffic(
        self, name: str, weights: Mapping[str, float], reason: str = "", *, actor: str
    ) -> Deployment:
        if not isinstance(weights, Mapping):
            raise InvalidInput("weights must map variant names to weights", field="weights")
        body = {"weights": dict(weights), "reason": reason}
        return self._state(
            self._ch.call("PUT", self._path(name, "traffic"), actor=actor, json=body)
        )

    def set_plan(
        self, name: str, plan: d.CanaryPlan | Mapping[str, object] | None, *, actor: str
    ) -> Deployment:
        body = {"plan": plain(plan)}
        return self._state(self._ch.call("PUT", self._path(name, "plan"), actor=actor, json=body))

    def set_guardrails(
        self, name: str, guardrails: Sequence[d.Guardrail | Mapping[str, object]], *, actor: str
    ) -> Deployment:
        body = {"guardrails": plain(guardrails)}
        doc = self._ch.call("PUT", self._path(name, "guardrails"), actor=actor, json=body)
        return self._state(doc)

    def _post(self, name: str, action: str, body: Any, actor: str) -> Deployment:
        return self._state(self._ch.call("POST", self._path(name, action), actor=actor, json=body))

    def pause(self, name: str, reason: str = "", *, actor: str) -> Deployment:
        return self._post(name, "pause", {"reason": reason}, actor)

    def resume(self, name: str, *, actor: str) -> Deployment:
        return self._post(name, "resume", None, actor)

    def rollback(self, name: str, reason: str = "", *, actor: str) -> Deployment:
        return self._post(name, "rollback", {"reason": reason}, actor)

    def promote(
        self,
        name: str,
        variant: str,
        alias: str | None = "champion",
        reason: str = "",
        *,
        actor: str,
    ) -> Deployment:
        body = {"variant": variant, "alias": alias, "reason": reason}
        return self._post(name, "promote", body, actor)

    def delete(self, name: str, *, actor: str) -> None:
        self._ch.call("DELETE", self._path(name), actor=actor, idempotent=False)

    def record_feedback(
        self,
        name: str,
        request_id: str,
        value: float | bool,
        metric: str = "conversion",
        kind: str = "conversion",
        variant: str | None = None,
        *,
        actor: str,
    ) -> d.FeedbackRecorded:
        body = {
            "request_id": request_id,
            "value": value,
            "metric": metric,
            "kind": kind,
            "variant": variant,
        }
        doc = self._ch.call("POST", self._path(name, "feedback"), actor=actor, json=body)
        return d.FeedbackRecorded.model_validate(doc)

    def get(self, name: str) -> Deployment:
        return self._state(self._ch.call("GET", self._path(name)))

    def list(self) -> builtins.list[Deployment]:
        return [self._state(doc) for doc in self._ch.call("GET", ROOT)]

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentChange]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive number, got {limit!r}", field="limit")
        docs = self._ch.call("GET", self._path(name, "history"), params={"limit": limit})
        return [DeploymentChange(**doc) for doc in docs]

    def analysis(
        self,
        name: str,
        *,
        metric: str | None = None,
        alpha: float = 0.05,
        power: float = 0.8,
        mde: float | None = None,
        since_ms: int | None = None,
    ) -> dict[str, Any]:
        params = {"metric": metric, "alpha": alpha, "power": power, "mde": mde, "since": since_ms}
        doc = self._ch.call(
            "GET",
            self._path(name, "analysis"),
            params={k: v for k, v in params.items() if v is not None},
        )
        return dict(doc)
