"""The model server's metrics (one place defines them all): per model, version and variant,
the requests (by protocol), errors (by reason), request latency, time queued for a batch,
batch sizes and readiness, kept by the Prometheus client library in the registry of the
repository that serves the models.

The hot path pays for label lookups once: a `ModelMetrics` resolves its label children
when the model is added, and caches the few per-protocol and per-reason ones on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledgerflow.services.metrics import exposition

LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MODEL_LABELS = ("model", "version", "variant")


class ServingMetrics:
    """The metric families of one model repository, in `registry` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        r = self.registry
        self.requests = Counter(
            "ledgerflow_serving_requests",
            "Inference requests answered.",
            [*MODEL_LABELS, "protocol"],
            registry=r,
        )
        self.errors = Counter(
            "ledgerflow_serving_errors",
            "Inference requests that failed, by reason.",
            [*MODEL_LABELS, "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "ledgerflow_serving_request_duration_seconds",
            "Time from a request's arrival at the model to its predictions (queueing included).",
            MODEL_LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.queued = Histogram(
            "ledgerflow_serving_queue_seconds",
            "Time a request waited for its batch to be predicted (dynamic batching only).",
            MODEL_LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_rows = Histogram(
            "ledgerflow_serving_batch_rows",
            "Rows per model predict call.",
            MODEL_LABELS,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "ledgerflow_serving_batch_requests",
            "Requests per model predict call.",
            MODEL_LABELS,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.ready = Gauge(
            "ledgerflow_serving_model_ready",
            "1 once the model (or variant) is loaded and warmed, 0 before.",
            MODEL_LABELS,
            registry=r,
        )

    def model(self, model: str, version: str, variant: str = "") -> ModelMetrics:
        """The series of one served model (created at zero, so dashboards see it at once)."""
        return ModelMetrics(self, model, version, variant)

    def forget(self, m: ModelMetrics) -> None:
        """Drop the series of a model no longer served (a variant removed)."""
        for family in (self.latency, self.queued, self.batch_rows, self.batch_requests, self.ready):
            family.remove(*m.labels)
        for protocol in m.protocols:
            self.requests.remove(*m.labels, protocol)
        for reason in m.reasons:
            self.errors.remove(*m.labels, reason)

    def text(self, accept: str = "") -> tuple[bytes, str]:
        return exposition.render(self.registry, accept)


@dataclass
class ModelMetrics:
    """The series of one served model; its labels say which model, version and variant."""

    family: ServingMetrics
    model: str
    version: str
    variant: str = ""
    protocols: dict[str, Counter] = field(default_factory=dict)
    reasons: dict[str, Counter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f, labels = self.family, self.labels
        self._latency = f.latency.labels(*labels)
        self._queued = f.queued.labels(*labels)
        self._batch_rows = f.batch_rows.labels(*labels)
        self._batch_requests = f.batch_requests.labels(*labels)
        self._ready = f.ready.labels(*labels)
        self._ready.set(0)
        for reason in ("bad_input", "model_error"):
            self._error(reason)

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.model, self.version, self.variant)

    def _request(self, protocol: str) -> Counter:
        child = self.protocols.get(protocol)
        if child is None:
            child = self.protocols[protocol] = self.family.requests.labels(*self.labels, protocol)
        return child

    def _error(self, reason: str) -> Counter:
        child = self.reasons.get(reason)
        if child is None:
            child = self.reasons[reason] = self.family.errors.labels(*self.labels, reason)
        return child

    def observe_request(self, protocol: str, seconds: float, error: str | None) -> None:
        self._request(protocol).inc()
        self._latency.observe(seconds)
        if error is not None:
            self._error(error).inc()

    def observe_rejected(self, protocol: str, reason: str = "bad_input") -> None:
        """A request refused before it reached the model (so it has no model latency)."""
        self._request(protocol).inc()
        self._error(reason).inc()

    def observe_batch(self, requests: int, rows: int) -> None:
        self._batch_requests.observe(requests)
        self._batch_rows.observe(rows)

    def observe_queued(self, seconds: float) -> None:
        self._queued.observe(seconds)

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)
