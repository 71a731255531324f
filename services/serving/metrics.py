"""Serving metrics in the Prometheus text exposition format (version 0.0.4), written out
here so the server needs no client library: per model, version and variant, the requests,
errors (by reason), request latency and batch sizes.

Everything is updated from the server's event loop, so plain integers and floats suffice.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

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
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels)


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: Labels) -> list[str]:
        out, running = [], 0
        base = _labels(labels)
        sep = "," if base else ""
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{{base}{sep}le="{_num(bound)}"}} {running}')
        out.append(f"{name}_sum{{{base}}} {_num(self.total)}")
        out.append(f"{name}_count{{{base}}} {self.count}")
        return out


@dataclass
class ModelMetrics:
    """The series of one served model; its labels say which model, version and variant."""

    model: str
    version: str
    variant: str = ""
    requests: dict[str, int] = field(default_factory=dict)  # by protocol
    errors: dict[str, int] = field(default_factory=dict)  # by reason
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    batch_rows: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    batch_requests: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))

    @property
    def labels(self) -> Labels:
        return (("model", self.model), ("version", self.version), ("variant", self.variant))

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


_HELP = {
    "ledgerflow_serving_requests_total": ("counter", "Inference requests answered."),
    "ledgerflow_serving_errors_total": ("counter", "Inference requests that failed, by reason."),
    "ledgerflow_serving_request_duration_seconds": (
        "histogram",
        "Time from a request's arrival at the model to its predictions (queueing included).",
    ),
    "ledgerflow_serving_batch_rows": ("histogram", "Rows per model predict call."),
    "ledgerflow_serving_batch_requests": ("histogram", "Requests per model predict call."),
}


def render(models: list[ModelMetrics]) -> str:
    """The exposition text for all `models`."""
    series: dict[str, list[str]] = {name: [] for name in _HELP}
    for m in models:
        base = m.labels
        for protocol, n in sorted(m.requests.items()):
            lbl = _labels((*base, ("protocol", protocol)))
            series["ledgerflow_serving_requests_total"].append(
                f"ledgerflow_serving_requests_total{{{lbl}}} {n}"
            )
        for reason, n in sorted(m.errors.items()):
            lbl = _labels((*base, ("reason", reason)))
            series["ledgerflow_serving_errors_total"].append(
                f"ledgerflow_serving_errors_total{{{lbl}}} {n}"
            )
        series["ledgerflow_serving_request_duration_seconds"] += m.latency.lines(
            "ledgerflow_serving_request_duration_seconds", base
        )
        series["ledgerflow_serving_batch_rows"] += m.batch_rows.lines(
            "ledgerflow_serving_batch_rows", base
        )
        series["ledgerflow_serving_batch_requests"] += m.batch_requests.lines(
            "ledgerflow_serving_batch_requests", base
        )
    out: list[str] = []
    for name, (kind, help_text) in _HELP.items():
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(series[name])
    return "\n".join(out) + "\n"
