"""The projector process's metrics (one place defines them all): events applied, batches
retried, dead letters, and per assigned partition the lag in events and in seconds.

Lag in seconds is how far behind the views are in time: 0 when a partition is caught up,
else the age of the last event applied on it (the next one to apply is at least that old).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from ledgerflow.services.metrics import exposition


class ProjectorMetrics:
    """The projector's metric families in `registry` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        r = self.registry
        self.applied = Counter(
            "ledgerflow_projector_events_applied", "Events applied to the views.", registry=r
        )
        self.retries = Counter(
            "ledgerflow_projector_batch_retries",
            "Batches retried after a database error.",
            registry=r,
        )
        self.dead_letters = Gauge(
            "ledgerflow_projector_dead_letters", "Events the views could not apply.", registry=r
        )
        self.lag = Gauge(
            "ledgerflow_projector_lag",
            "Events on the log not yet applied, per assigned partition.",
            ["partition"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "ledgerflow_projector_lag_seconds",
            "How far behind the views are in time, per assigned partition (0: caught up).",
            ["partition"],
            registry=r,
        )
        self._last_applied_ms: dict[str, int] = {}

    def count_dead_letters(self, count: Callable[[], int]) -> None:
        """Read the dead-letter count (from the views database) at each scrape."""
        self.dead_letters.set_function(lambda: float(count()))

    def note_applied(self, partition: str, n: int, last_event_ms: int | None) -> None:
        if n:
            self.applied.inc(n)
        if last_event_ms is not None:
            self._last_applied_ms[partition] = last_event_ms

    def note_lag(self, lag: Mapping[str, int], now_s: float | None = None) -> None:
        """The lag of every assigned partition; partitions no longer assigned disappear."""
        now = time.time() if now_s is None else now_s
        for gauge in (self.lag, self.lag_seconds):
            for (partition,) in list(_label_values(gauge)):
                if partition not in lag:
                    gauge.remove(partition)
        for partition, events in lag.items():
            self.lag.labels(partition).set(events)
            last = self._last_applied_ms.get(partition)
            behind = 0.0 if events == 0 or last is None else max(0.0, now - last / 1000)
            self.lag_seconds.labels(partition).set(behind)


def _label_values(gauge: Gauge) -> list[tuple[str, ...]]:
    """The label sets `gauge` has children for."""
    return [tuple(s.labels.values()) for m in gauge.collect() for s in m.samples]
