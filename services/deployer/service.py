"""Deployment commands: read the folded deployment, decide, append, wait until projected.

The service adds to the pure decisions what needs a store: variants must name model
versions the registry has (and built bundles of them, when given), and promoting with
an alias appends the registry's `model.alias_set` in the same commit as
`deployment.promoted`, so no reader ever sees one without the other.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, cast

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events import model_payloads as m
from ledgerflow.events.commands import R
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput, NotFound, Unavailable
from ledgerflow.events.payloads import Payload
from ledgerflow.services.analytics import live
from ledgerflow.services.analytics.live import StatsSource
from ledgerflow.services.commands import Committer, Handlers
from ledgerflow.services.deployments import checks, decide
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.deployments.checks import check_name
from ledgerflow.services.deployments.commands import DEFAULT_ALIAS
from ledgerflow.services.deployments.state import Deployment, DeploymentChange
from ledgerflow.services.projector.bundle_queries import BundleQueries
from ledgerflow.services.projector.deployment_queries import DeploymentQueries
from ledgerflow.services.projector.readable import Readable
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.registry.decide import check_alias

__all__ = ["DEFAULT_ALIAS", "DeploymentService"]


class DeploymentService:
    def __init__(
        self,
        committer: Committer,
        queries: DeploymentQueries,
        registry_queries: RegistryQueries,
        bundles: BundleQueries | None = None,
        stats: StatsSource | None = None,
    ) -> None:
        """`stats` is where live traffic statistics come from (for `analysis`)."""
        self._committer = committer
        self.queries = queries
        self._registry = registry_queries
        self._bundles = bundles
        self.stats = stats

    def _commit(self, name: str, payloads: Sequence[Payload], actor: str) -> Deployment:
        self._committer.commit(payloads, actor)
        return self.queries.get(name)

    def _live(self, name: str) -> Deployment:
        return decide.live(self.queries.find(name), name)

    def _check_sources(self, variants: Sequence[d.VariantSpec], field: str) -> None:
        """Each variant's model version exists, and its bundle (if any) is a built bundle
        of that version."""
        for i, v in enumerate(variants):
            where = f"{field}[{i}]" if field == "variants" else field
            try:
                self._registry.get_model_version(v.model, v.version)
            except NotFound as e:
                raise InvalidInput(f"variant {v.name!r}: {e.message}", field=where) from None
            if v.bundle_id is None:
                continue
            if self._bundles is None:
                raise InvalidInput(
                    "bundles cannot be checked here", field=f"{where}.bundle_id"
                )  # pragma: no cover - every wiring passes bundle queries
            try:
                b = self._bundles.get_bundle(v.bundle_id)
            except NotFound as e:
                raise InvalidInput(
                    f"variant {v.name!r}: {e.message}", field=f"{where}.bundle_id"
                ) from None
            if (b.name, b.version) != (v.model, v.version) or b.status != "built":
                raise InvalidInput(
                    f"variant {v.name!r}: bundle {v.bundle_id} is a {b.status} bundle of "
                    f"{b.name}/{b.version}; it must be a built bundle of {v.model}/{v.version}",
                    field=f"{where}.bundle_id",
                )

    # commands --------------------------------------------------------------------------
    handlers = Handlers["DeploymentService"]()

    def execute(self, command: dc.DeploymentCommand[R], *, actor: str) -> R:
        """Decide on `command` against the deployment's state and commit its events."""
        return self.handlers.run(self, command, actor)

    @handlers.on(dc.CreateDeployment)
    def _create(self, c: dc.CreateDeployment, actor: str) -> Deployment:
        payloads = decide.create(
            self.queries.find(check_name(c.name)),
            name=c.name,
            variants=c.variants,
            baseline=c.baseline,
            description=c.description,
            key_header=c.key_header,
            key_field=c.key_field,
            guardrails=c.guardrails,
            plan=c.plan,
        )
        created = cast(d.DeploymentCreated, payloads[0])
        self._check_sources(created.variants, "variants")
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.AddVariant)
    def _add_variant(self, c: dc.AddVariant, actor: str) -> Deployment:
        payloads = decide.add_variant(self._live(c.name), c.variant)
        added = cast(d.DeploymentVariantAdded, payloads[0])
        self._check_sources([added.variant], "variant")
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.RemoveVariant)
    def _remove_variant(self, c: dc.RemoveVariant, actor: str) -> Deployment:
        payloads = decide.remove_variant(self._live(c.name), c.variant, c.reason)
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.SetTraffic)
    def _set_traffic(self, c: dc.SetTraffic, actor: str) -> Deployment:
        payloads = decide.set_traffic(self._live(c.name), c.weights, c.reason)
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.SetPlan)
    def _set_plan(self, c: dc.SetPlan, actor: str) -> Deployment:
        return self._commit(c.name, decide.set_plan(self._live(c.name), c.plan), actor)

    @handlers.on(dc.SetGuardrails)
    def _set_guardrails(self, c: dc.SetGuardrails, actor: str) -> Deployment:
        return self._commit(c.name, decide.set_guardrails(self._live(c.name), c.guardrails), actor)

    @handlers.on(dc.Pause)
    def _pause(self, c: dc.Pause, actor: str) -> Deployment:
        return self._commit(c.name, decide.pause(self._live(c.name), c.reason), actor)

    @handlers.on(dc.Resume)
    def _resume(self, c: dc.Resume, actor: str) -> Deployment:
        return self._commit(c.name, decide.resume(self._live(c.name)), actor)

    @handlers.on(dc.Rollback)
    def _rollback(self, c: dc.Rollback, actor: str) -> Deployment:
        return self._commit(c.name, decide.rollback(self._live(c.name), c.reason), actor)

    @handlers.on(dc.Promote)
    def _promote(self, c: dc.Promote, actor: str) -> Deployment:
        """All traffic to the variant, which becomes the baseline; with an alias, the alias
        moves to the variant's model version in the same commit."""
        checked = None if c.alias is None else check_alias(c.alias)
        payloads = decide.promote(self._live(c.name), c.variant, checked, c.reason)
        promoted = cast(d.DeploymentPromoted, payloads[0])
        if checked is not None:
            self._registry.get_model_version(promoted.model, promoted.version)
            payloads.append(
                m.ModelAliasSet(name=promoted.model, alias=checked, version=promoted.version)
            )
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.DeleteDeployment)
    def _delete(self, c: dc.DeleteDeployment, actor: str) -> None:
        self._committer.commit(decide.delete(self._live(c.name)), actor)

    @handlers.on(dc.AdvanceStep)
    def _advance_step(self, c: dc.AdvanceStep, actor: str) -> Deployment:
        payloads = decide.advance_step(self._live(c.name), c.requests, c.duration_s, c.version)
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.TripGuardrail)
    def _trip(self, c: dc.TripGuardrail, actor: str) -> Deployment:
        payloads = decide.trip(
            self._live(c.name), c.variant, c.guardrail, c.observed, c.limit, c.baseline_value,
            c.samples, c.version,
        )  # fmt: skip
        return self._commit(c.name, payloads, actor)

    @handlers.on(dc.RecordFeedback)
    def _record_feedback(self, c: dc.RecordFeedback, actor: str) -> d.FeedbackRecorded:
        """An outcome for a served request: a conversion (0/1, or true/false) or a reward
        (any finite number). The stream statistics join it to the variant that served it."""
        if (c.value is None) == (c.converted is None):
            raise InvalidInput(
                "give the outcome as value or as converted (one of them)", field="value"
            )
        value = c.converted if c.converted is not None else c.value
        feedback = checks.feedback(
            self._live(c.name), c.request_id, value, c.metric, c.kind or "conversion", c.variant
        )
        # Traffic is never projected: append it without waiting for the projector.
        self._committer.log.append([Event.of(feedback, actor=actor)])
        return feedback

    # reads -----------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        return self.queries.get(name)

    def list(self, *, readable: Readable | None = None) -> builtins.list[Deployment]:
        """The deployments (not deleted ones); with `readable`, those a reader may see."""
        return self.queries.list(readable=readable)

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentChange]:
        return self.queries.history(name, limit)

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
        """Per-variant statistics of the live traffic and the significance of each
        variant's difference from the baseline (see `live.analysis`)."""
        if metric is not None:
            checks.check_metric(metric)
        if self.stats is None:
            raise Unavailable("this deployment service was built without traffic statistics")
        return live.analysis(
            self.get(name), self.stats, metric=metric, alpha=alpha, power=power, mde=mde,
            since_ms=since_ms,
        )  # fmt: skip
