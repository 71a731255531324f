"""Deployment commands: read the folded deployment, decide, append, wait until projected.

The service adds to the pure decisions what needs a store: variants must name model
versions the registry has (and built bundles of them, when given), and promoting with
an alias appends the registry's `model.alias_set` in the same commit as
`deployment.promoted`, so no reader ever sees one without the other.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events import model_payloads as m
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput, NotFound, Unavailable
from ledgerflow.events.payloads import Payload
from ledgerflow.services.analytics import live
from ledgerflow.services.analytics.live import StatsSource
from ledgerflow.services.commands import Committer
from ledgerflow.services.deployments import checks, decide
from ledgerflow.services.deployments.checks import check_name
from ledgerflow.services.deployments.state import Deployment, DeploymentChange
from ledgerflow.services.projector.bundle_queries import BundleQueries
from ledgerflow.services.projector.deployment_queries import DeploymentQueries
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.registry.decide import check_alias

if TYPE_CHECKING:
    from ledgerflow.services.bootstrap import Backend

DEFAULT_ALIAS = "champion"


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

    @classmethod
    def for_backend(cls, backend: Backend) -> DeploymentService:
        """Wired from an embedded backend's log, projector and read engine."""
        committer = Committer(backend.log, backend.projector, backend.settings.projection_timeout_s)
        engine = backend.queries.engine
        return cls(
            committer,
            DeploymentQueries(engine),
            backend.registry.queries,
            BundleQueries(engine),
            live.stats_for(backend.settings, backend.log),
        )

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
        payloads = decide.create(
            self.queries.find(check_name(name)),
            name=name,
            variants=variants,
            baseline=baseline,
            description=description,
            key_header=key_header,
            key_field=key_field,
            guardrails=guardrails,
            plan=plan,
        )
        created = cast(d.DeploymentCreated, payloads[0])
        self._check_sources(created.variants, "variants")
        return self._commit(name, payloads, actor)

    def add_variant(
        self, name: str, variant: d.VariantSpec | Mapping[str, object], *, actor: str
    ) -> Deployment:
        payloads = decide.add_variant(self._live(name), variant)
        added = cast(d.DeploymentVariantAdded, payloads[0])
        self._check_sources([added.variant], "variant")
        return self._commit(name, payloads, actor)

    def remove_variant(
        self, name: str, variant: str, reason: str = "", *, actor: str
    ) -> Deployment:
        return self._commit(name, decide.remove_variant(self._live(name), variant, reason), actor)

    def set_traffic(
        self, name: str, weights: Mapping[str, float], reason: str = "", *, actor: str
    ) -> Deployment:
        return self._commit(name, decide.set_traffic(self._live(name), weights, reason), actor)

    def set_plan(
        self, name: str, plan: d.CanaryPlan | Mapping[str, object] | None, *, actor: str
    ) -> Deployment:
        return self._commit(name, decide.set_plan(self._live(name), plan), actor)

    def set_guardrails(
        self, name: str, guardrails: Sequence[d.Guardrail | Mapping[str, object]], *, actor: str
    ) -> Deployment:
        return self._commit(name, decide.set_guardrails(self._live(name), guardrails), actor)

    def pause(self, name: str, reason: str = "", *, actor: str) -> Deployment:
        return self._commit(name, decide.pause(self._live(name), reason), actor)

    def resume(self, name: str, *, actor: str) -> Deployment:
        return self._commit(name, decide.resume(self._live(name)), actor)

    def rollback(self, name: str, reason: str = "", *, actor: str) -> Deployment:
        return self._commit(name, decide.rollback(self._live(name), reason), actor)

    def promote(
        self,
        name: str,
        variant: str,
        alias: str | None = DEFAULT_ALIAS,
        reason: str = "",
        *,
        actor: str,
    ) -> Deployment:
        """All traffic to `variant`, which becomes the baseline; with `alias`, the alias
        moves to the variant's model version in the same commit."""
        checked = None if alias is None else check_alias(alias)
        payloads = decide.promote(self._live(name), variant, checked, reason)
        promoted = cast(d.DeploymentPromoted, payloads[0])
        if checked is not None:
            self._registry.get_model_version(promoted.model, promoted.version)
            payloads.append(
                m.ModelAliasSet(name=promoted.model, alias=checked, version=promoted.version)
            )
        return self._commit(name, payloads, actor)

    def delete(self, name: str, *, actor: str) -> None:
        self._committer.commit(decide.delete(self._live(name)), actor)

    # the deployer loop's commands ------------------------------------------------------
    def advance_step(
        self, name: str, requests: int, duration_s: float, *, actor: str
    ) -> Deployment:
        return self._commit(
            name, decide.advance_step(self._live(name), requests, duration_s), actor
        )

    def trip(
        self,
        name: str,
        variant: str,
        guardrail: d.Guardrail,
        observed: float,
        limit: float,
        baseline_value: float | None,
        samples: int,
        *,
        actor: str,
    ) -> Deployment:
        payloads = decide.trip(
            self._live(name), variant, guardrail, observed, limit, baseline_value, samples
        )
        return self._commit(name, payloads, actor)

    # traffic ---------------------------------------------------------------------------
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
        """An outcome for a served request: a conversion (0/1, or true/false) or a reward
        (any finite number). The stream statistics join it to the variant that served it."""
        feedback = checks.feedback(self._live(name), request_id, value, metric, kind, variant)
        # Traffic is never projected: append it without waiting for the projector.
        self._committer.log.append([Event.of(feedback, actor=actor)])
        return feedback

    # reads -----------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        return self.queries.get(name)

    def list(self) -> builtins.list[Deployment]:
        return self.queries.list()

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
