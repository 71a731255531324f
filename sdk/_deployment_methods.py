"""Deployment methods of `lf.Client`: A/B tests of model versions, their traffic, canary
plans, guardrails, promotion and rollback, and feedback on served requests.

Each method builds its typed command (`ledgerflow.services.deployments.commands`) and
executes it: embedded, on the `DeploymentService` next to the log; against a gateway
URL, over its `/api/v1/deployments` routes, with the same answers and the same errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow._client_methods import ClientMethods

if TYPE_CHECKING:
    from ledgerflow._ports import DeploymentsPort
    from ledgerflow.events import deployment_payloads as dp
    from ledgerflow.services.deployments.state import Deployment, DeploymentChange


class DeploymentMethods(ClientMethods):
    """Mixed into Client, which provides the backend and the actor."""

    def _deployments(self, *, refresh: bool = False) -> DeploymentsPort:
        """Where deployments are managed: the embedded service next to the log, or the
        gateway's deployment routes in remote mode; with `refresh`, after the views
        caught up."""
        backend = self._backend
        if refresh:
            backend.refresh()
        return backend.deployments

    def create_deployment(
        self,
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
        """An A/B test of model versions: `variants` are arms `{name, model, version,
        bundle_id?, weight?, shadow?}`; the baseline (default: the first non-shadow
        variant) is what others are compared with and what rollback returns to. With a
        canary `plan`, traffic starts at its first step. See docs/deployments.md."""
        from ledgerflow.services.deployments import commands as dc

        command = dc.CreateDeployment(
            name=name, variants=variants, baseline=baseline, description=description,
            key_header=key_header, key_field=key_field, guardrails=guardrails, plan=plan,
        )  # fmt: skip
        return self._deployments().execute(command, actor=self._actor)

    def get_deployment(self, name: str) -> Deployment:
        return self._deployments(refresh=True).get(name)

    def list_deployments(self) -> list[Deployment]:
        return self._deployments(refresh=True).list()

    def add_deployment_variant(
        self, name: str, variant: dp.VariantSpec | Mapping[str, object]
    ) -> Deployment:
        from ledgerflow.services.deployments import commands as dc

        command = dc.AddVariant(name=name, variant=variant)
        return self._deployments().execute(command, actor=self._actor)

    def remove_deployment_variant(self, name: str, variant: str, reason: str = "") -> Deployment:
        from ledgerflow.services.deployments import commands as dc

        command = dc.RemoveVariant(name=name, variant=variant, reason=reason)
        return self._deployments().execute(command, actor=self._actor)

    def set_deployment_traffic(
        self, name: str, weights: Mapping[str, float], reason: str = ""
    ) -> Deployment:
        """The whole split (`{"a": 90, "b": 10}`): arms not named get 0. Setting traffic by
        hand ends a running canary plan."""
        from ledgerflow.services.deployments import commands as dc

        command = dc.SetTraffic(name=name, weights=weights, reason=reason)
        return self._deployments().execute(command, actor=self._actor)

    def set_deployment_plan(
        self, name: str, plan: dp.CanaryPlan | Mapping[str, object] | None
    ) -> Deployment:
        """Start a canary plan at its first step (None stops the running one)."""
        from ledgerflow.services.deployments import commands as dc

        return self._deployments().execute(dc.SetPlan(name=name, plan=plan), actor=self._actor)

    def set_deployment_guardrails(
        self, name: str, guardrails: Sequence[dp.Guardrail | Mapping[str, object]]
    ) -> Deployment:
        from ledgerflow.services.deployments import commands as dc

        command = dc.SetGuardrails(name=name, guardrails=guardrails)
        return self._deployments().execute(command, actor=self._actor)

    def pause_deployment(self, name: str, reason: str = "") -> Deployment:
        """Stop canary steps and automatic rollback; traffic stays as it is."""
        from ledgerflow.services.deployments import commands as dc

        return self._deployments().execute(dc.Pause(name=name, reason=reason), actor=self._actor)

    def resume_deployment(self, name: str) -> Deployment:
        from ledgerflow.services.deployments import commands as dc

        return self._deployments().execute(dc.Resume(name=name), actor=self._actor)

    def rollback_deployment(self, name: str, reason: str = "") -> Deployment:
        """All traffic back to the baseline; a running plan stops."""
        from ledgerflow.services.deployments import commands as dc

        command = dc.Rollback(name=name, reason=reason)
        return self._deployments().execute(command, actor=self._actor)

    def promote_deployment(
        self, name: str, variant: str, alias: str | None = "champion", reason: str = ""
    ) -> Deployment:
        """All traffic to `variant`, which becomes the baseline; `alias` (None: none) moves
        to its model version in the same commit."""
        from ledgerflow.services.deployments import commands as dc

        command = dc.Promote(name=name, variant=variant, alias=alias, reason=reason)
        return self._deployments().execute(command, actor=self._actor)

    def delete_deployment(self, name: str) -> None:
        from ledgerflow.services.deployments import commands as dc

        self._deployments().execute(dc.DeleteDeployment(name=name), actor=self._actor)

    def get_deployment_history(self, name: str, max_results: int = 100) -> list[DeploymentChange]:
        """The deployment's latest events, oldest first: why traffic moved."""
        return self._deployments(refresh=True).history(name, max_results)

    def get_deployment_analysis(
        self,
        name: str,
        metric: str | None = None,
        *,
        alpha: float = 0.05,
        power: float = 0.8,
        mde: float | None = None,
        since_ms: int | None = None,
    ) -> dict[str, Any]:
        """Live statistics per variant (requests, error rate, latency percentiles, the
        outcome with its confidence interval) and each variant's test against the baseline:
        a two-proportion z-test for conversions, Welch's t-test for rewards, Holm-corrected
        for several arms, with the sample size still needed; `state` is `not_enough_data`
        until the data can tell."""
        return self._deployments(refresh=True).analysis(
            name, metric=metric, alpha=alpha, power=power, mde=mde, since_ms=since_ms
        )

    def record_deployment_feedback(
        self,
        name: str,
        request_id: str,
        value: float | bool,
        metric: str = "conversion",
        kind: str = "conversion",
        variant: str | None = None,
    ) -> dp.FeedbackRecorded:
        """An outcome for a served request: a conversion (0/1 or True/False) or, with
        kind="reward", any number."""
        from ledgerflow.services.deployments import commands as dc

        command = dc.RecordFeedback(
            name=name, request_id=request_id, value=value, metric=metric, kind=kind,
            variant=variant,
        )  # fmt: skip
        return self._deployments().execute(command, actor=self._actor)
