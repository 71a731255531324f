"""The deployer's metrics (one place defines them all): its ticks, its decisions by kind
and deployment, and guardrail trips by deployment, variant and metric."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from ledgerflow.services.metrics import exposition


class DeployerMetrics:
    """The deployer's metric families in `registry` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        r = self.registry
        self.ticks = Counter(
            "ledgerflow_deployer_ticks", "Looks at every active deployment.", registry=r
        )
        self.last_tick = Gauge(
            "ledgerflow_deployer_last_tick_timestamp_seconds",
            "When the deployer last looked at the deployments (a stalled loop stops it).",
            registry=r,
        )
        self.decisions = Counter(
            "ledgerflow_deployer_decisions",
            "Decisions taken, by kind (rolled_back, step_advanced) and deployment.",
            ["deployment", "kind"],
            registry=r,
        )
        self.guardrail_trips = Counter(
            "ledgerflow_deployer_guardrail_trips",
            "Guardrails breached (each rolls traffic back), by deployment, variant and metric.",
            ["deployment", "variant", "metric"],
            registry=r,
        )
        # present from the start, so a rate() over them is 0 rather than no data
        self.decisions.labels("", "rolled_back")
        self.decisions.labels("", "step_advanced")
        self.guardrail_trips.labels("", "", "")

    def note_tick(self) -> None:
        self.ticks.inc()
        self.last_tick.set_to_current_time()

    def note_decision(self, deployment: str, kind: str) -> None:
        self.decisions.labels(deployment, kind).inc()

    def note_trip(self, deployment: str, variant: str, metric: str) -> None:
        self.guardrail_trips.labels(deployment, variant, metric).inc()
