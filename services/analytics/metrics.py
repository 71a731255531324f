"""The traffic-stats worker's metrics (one place defines them all): traffic events folded
and deployment snapshots published to Redis (and publishes that failed), and, read off
the fold when scraped, what its feedback join holds back: feedback waiting for its
request, feedback that never found it, repeated outcomes, records passed over."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledgerflow.services.metrics import exposition

if TYPE_CHECKING:
    from ledgerflow.services.analytics.table_fold import TableFold


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
        self.rewinds = Counter(
            "ledgerflow_traffic_rewinds",
            "Seeks back to the record the fold needs next, after Faust gave a later one "
            "(records fetched before a rebalance's seek).",
            registry=r,
        )

    def watch(self, fold: TableFold) -> None:
        """Expose what `fold`'s join holds back, read when scraped."""
        self.registry.register(_JoinCollector(fold))


class _JoinCollector(Collector):
    def __init__(self, fold: TableFold) -> None:
        self.fold = fold

    def collect(self) -> Iterator[Metric]:
        stats = self.fold.stats
        yield GaugeMetricFamily(
            "ledgerflow_traffic_feedback_pending",
            "Feedback held until the inference record of its request arrives.",
            value=stats.pending,
        )
        yield CounterMetricFamily(
            "ledgerflow_traffic_feedback_unjoined",
            "Feedback given up on: its request was not seen within the join's bounds.",
            value=stats.unjoined,
        )
        yield CounterMetricFamily(
            "ledgerflow_traffic_feedback_duplicates",
            "Outcomes not counted because one of the same request and metric was.",
            value=stats.duplicates,
        )
        yield CounterMetricFamily(
            "ledgerflow_traffic_records_skipped",
            "Records of the inference topic passed over: already folded (redelivered).",
            value=self.fold.skipped,
        )
        yield CounterMetricFamily(
            "ledgerflow_traffic_records_corrupt",
            "Records of the inference topic that could not be decoded (logged).",
            value=self.fold.corrupt,
        )
