"""What the model server's metrics cost per request: the calls the predict path makes
(`observe_batch` and `observe_request`) on `ledgerflow.services.serving.metrics` (plain
numbers, turned into metric families by a custom collector at scrape time), beside the
hand-written exposition's counters it replaced (reproduced below) and beside the
Prometheus client's own Counter/Histogram objects with label children resolved once (what
a first version used: a lock per value), in one process, one after the other.

    .venv/bin/python bench/metrics_overhead.py [--n 200000]

Numbers in docs/benchmarks.md ("Metrics overhead"); a served request costs tens to hundreds
of microseconds, so the difference is what matters, not the absolute figure.
"""

from __future__ import annotations

import argparse
import bisect
import time

from ledgerflow.services.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS_S, ServingMetrics


class HandWritten:
    """The previous per-model state: plain dicts, ints and bisected bucket counts."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.rows = [0] * (len(BATCH_BUCKETS) + 1)
        self.reqs = [0] * (len(BATCH_BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe_request(self, protocol: str, seconds: float, error: str | None) -> None:
        self.requests[protocol] = self.requests.get(protocol, 0) + 1
        self.latency[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.total += seconds
        self.count += 1
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1

    def observe_batch(self, requests: int, rows: int) -> None:
        self.reqs[bisect.bisect_left(BATCH_BUCKETS, requests)] += 1
        self.rows[bisect.bisect_left(BATCH_BUCKETS, rows)] += 1


class ClientObjects:
    """prometheus_client Counter and Histogram children, resolved once."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        r = CollectorRegistry()
        labels = ["model", "version", "variant"]
        self._requests = Counter("r", "", [*labels, "protocol"], registry=r).labels(
            "m", "1", "a", "rest"
        )
        self._latency = Histogram("l", "", labels, buckets=LATENCY_BUCKETS_S, registry=r).labels(
            "m", "1", "a"
        )
        self._rows = Histogram("b", "", labels, buckets=BATCH_BUCKETS, registry=r).labels(
            "m", "1", "a"
        )
        self._reqs = Histogram("q", "", labels, buckets=BATCH_BUCKETS, registry=r).labels(
            "m", "1", "a"
        )

    def observe_request(self, protocol: str, seconds: float, error: str | None) -> None:
        self._requests.inc()
        self._latency.observe(seconds)

    def observe_batch(self, requests: int, rows: int) -> None:
        self._reqs.observe(requests)
        self._rows.observe(rows)


def per_request_ns(m: object, n: int) -> float:
    observe_request = m.observe_request  # type: ignore[attr-defined]
    observe_batch = m.observe_batch  # type: ignore[attr-defined]
    start = time.perf_counter_ns()
    for i in range(n):
        observe_batch(1, 1)
        observe_request("rest", 0.0004 + (i % 7) * 1e-4, None)
    return (time.perf_counter_ns() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    results = {}
    for _ in range(3):  # best of three, each alternating
        for name, make in (
            ("hand-written", HandWritten),
            ("ledgerflow", lambda: ServingMetrics().model("m", "1", "a")),
            ("client objects", ClientObjects),
        ):
            ns = per_request_ns(make(), args.n)
            results[name] = min(results.get(name, ns), ns)
    for name, ns in results.items():
        print(f"{name:>15}: {ns / 1000:.2f} µs per request (observe_batch + observe_request)")


if __name__ == "__main__":
    main()
