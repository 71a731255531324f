"""The traffic-stats worker's metrics (one place defines them all): traffic events folded
and deployment snapshots published to Redis (and publishes that failed)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from ledgerflow.services.metrics import exposition


class TrafficStatsMetrics:
    """The worker's metric families in `registry` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        r = self.registry
        self.folded = Counter(
            "ledgerflow_traffic_events_folded",
            "Inference and feedback events folded into the windowed statistics.",
            registry=r,
        )
        self.published = Counter(
            "ledgerflow_traffic_snapshots_published",
            "Deployment snapshots written to Redis, by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self.published.labels("ok")
        self.published.labels("failed")
