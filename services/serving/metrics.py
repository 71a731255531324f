"""The model server's metrics (one place defines them all): per model, version and variant,
the requests (by protocol), errors (by reason), request latency, time queued for a batch,
batch sizes and readiness, exposed by the Prometheus client library from the registry of
the repository that serves the models.

The predict path is the hottest code of a model server, so it only bumps plain numbers
(an int, a bisected bucket: about 1 µs a request, bench/metrics_overhead.py), and
`ServingMetrics` is a custom collector that turns them into metric families when scraped
(the client library's own pattern for such state; it writes the exposition). Everything
is updated and read on the server's event loop, so no locks are needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


@dataclass
class Histogram:
    """Bucket counts of observations (not cumulative; `cumulative()` makes them so)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
        return out


@dataclass(eq=False)
class ModelMetrics:
    """The series of one served model; its labels say which model, version and variant."""

    model: str
    version: str
    variant: str = ""
    requests: dict[str, int] = field(default_factory=dict)  # by protocol
    errors: dict[str, int] = field(default_factory=lambda: {"bad_input": 0, "model_error": 0})
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    queued: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    batch_rows: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    batch_requests: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    ready: bool = False

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.model, self.version, self.variant)

    def observe_request(self, protocol: str, seconds: float, error: str | None) -> None:
        self.requests[protocol] = self.requests.get(protocol, 0) + 1
        self.latency.observe(seconds)
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1

    def observe_rejected(self, protocol: str, reason: str = "bad_input") -> None:
        """A request refused before it reached the model (so it has no model latency)."""
        self.requests[protocol] = self.requests.get(protocol, 0) + 1
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def observe_batch(self, requests: int, rows: int) -> None:
        self.batch_requests.observe(requests)
        self.batch_rows.observe(rows)

    def observe_queued(self, seconds: float) -> None:
        self.queued.observe(seconds)

    def set_ready(self, ready: bool) -> None:
        self.ready = ready


class ServingMetrics(Collector):
    """The metric families of one model repository, collected from its models' numbers
    into `registry` (a fresh one if None) at each scrape."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else exposition.registry()
        self._models: dict[tuple[str, str, str], ModelMetrics] = {}
        self.registry.register(self)

    def model(self, model: str, version: str, variant: str = "") -> ModelMetrics:
        """The series of one served model (reported at zero at once, so dashboards see it)."""
        m = ModelMetrics(model, version, variant)
        self._models[m.labels] = m
        return m

    def forget(self, m: ModelMetrics) -> None:
        """Drop the series of a model no longer served (a variant removed)."""
        if self._models.get(m.labels) is m:
            del self._models[m.labels]

    def text(self, accept: str = "") -> tuple[bytes, str]:
        return exposition.render(self.registry, accept)

    def describe(self) -> list[Metric]:
        return list(self._families([]))

    def collect(self) -> Iterator[Metric]:
        return self._families(list(self._models.values()))

    def _families(self, models: list[ModelMetrics]) -> Iterator[Metric]:
        labels = list(MODEL_LABELS)
        requests = CounterMetricFamily(
            "ledgerflow_serving_requests",
            "Inference requests answered.",
            labels=[*labels, "protocol"],
        )
        errors = CounterMetricFamily(
            "ledgerflow_serving_errors",
            "Inference requests that failed, by reason.",
            labels=[*labels, "reason"],
        )
        histograms = {
            "latency": HistogramMetricFamily(
                "ledgerflow_serving_request_duration_seconds",
                "Time from a request's arrival at the model to its predictions "
                "(queueing included).",
                labels=labels,
            ),
            "queued": HistogramMetricFamily(
                "ledgerflow_serving_queue_seconds",
                "Time a request waited for its batch to be predicted (dynamic batching only).",
                labels=labels,
            ),
            "batch_rows": HistogramMetricFamily(
                "ledgerflow_serving_batch_rows", "Rows per model predict call.", labels=labels
            ),
            "batch_requests": HistogramMetricFamily(
                "ledgerflow_serving_batch_requests",
                "Requests per model predict call.",
                labels=labels,
            ),
        }
        ready = GaugeMetricFamily(
            "ledgerflow_serving_model_ready",
            "1 once the model (or variant) is loaded and warmed, 0 before.",
            labels=labels,
        )
        for m in models:
            values = list(m.labels)
            for protocol, n in list(m.requests.items()):
                requests.add_metric([*values, protocol], n)
            for reason, n in list(m.errors.items()):
                errors.add_metric([*values, reason], n)
            for attr, family in histograms.items():
                h: Histogram = getattr(m, attr)
                family.add_metric(values, h.cumulative(), sum_value=h.total)
            ready.add_metric(values, 1.0 if m.ready else 0.0)
        yield requests
        yield errors
        yield from histograms.values()
        yield ready
