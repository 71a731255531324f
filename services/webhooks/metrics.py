"""The webhook dispatcher's metrics (one place defines them all): delivery attempts by
webhook and outcome, their duration, and each webhook's backlog age: how long the event
it is trying to deliver has waited since it was logged (0 when it is caught up)."""

from __future__ import annotations

import contextlib
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledgerflow.services.metrics import exposition


class WebhookMetrics:
    """The dispatcher's metric families in `registry` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        r = self.registry
        self.deliveries = Counter(
            "ledgerflow_webhooks_deliveries",
            "Delivery attempts, by webhook and outcome (ok, failed).",
            ["webhook", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "ledgerflow_webhooks_delivery_duration_seconds",
            "How long a receiver took to answer a delivery.",
            ["webhook"],
            registry=r,
        )
        self.backlog_age = Gauge(
            "ledgerflow_webhooks_backlog_age_seconds",
            "Age of the oldest event a webhook has not yet delivered (0: caught up).",
            ["webhook"],
            registry=r,
        )
        self.workers = Gauge(
            "ledgerflow_webhooks_workers", "Webhooks being delivered to.", registry=r
        )
        self._pending: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def watch(self, webhook: str) -> None:
        """Start reporting `webhook` (its worker started)."""
        with self._lock:
            self._pending.setdefault(webhook, None)
        self.backlog_age.labels(webhook).set_function(lambda: self._age(webhook))
        for outcome in ("ok", "failed"):
            self.deliveries.labels(webhook, outcome)
        self.duration.labels(webhook)

    def forget(self, webhook: str) -> None:
        with self._lock:
            self._pending.pop(webhook, None)
        for family, labels in (
            (self.backlog_age, (webhook,)),
            (self.duration, (webhook,)),
            (self.deliveries, (webhook, "ok")),
            (self.deliveries, (webhook, "failed")),
        ):
            with contextlib.suppress(KeyError):  # never reported
                family.remove(*labels)

    def pending(self, webhook: str, event_ms: int | None) -> None:
        """`webhook` is delivering an event logged at `event_ms` (None: caught up)."""
        with self._lock:
            self._pending[webhook] = event_ms

    def attempted(self, webhook: str, ok: bool, seconds: float) -> None:
        self.deliveries.labels(webhook, "ok" if ok else "failed").inc()
        self.duration.labels(webhook).observe(seconds)

    def _age(self, webhook: str) -> float:
        with self._lock:
            since = self._pending.get(webhook)
        return 0.0 if since is None else max(0.0, time.time() - since / 1000)
