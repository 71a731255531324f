"""A deployment's traffic as windows: per variant, tumbling windows of `window_ms` holding
counts, errors, a latency histogram, shadow agreement and feedback outcomes, and the
compacted past before them. `ledgerflow.services.analytics.window.TrafficStats` folds
traffic into them.

Windows let callers ask for statistics since a time, which is how a canary step counts
the requests served since it began. A snapshot includes the whole window containing
`since_ms` (it may count up to one window of traffic from just before: guardrails would
rather judge a little too much traffic than miss errors); `requests_since` counts only
the windows that start at or after it (a canary step must never advance on requests its
predecessor served; it may wait up to one window longer). Keep windows short: one
second by default.

Every aggregate serializes to plain JSON dicts and merges by addition, so the
aggregates of several partitions or replicas combine exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.analytics.aggregates import Outcome, VariantStats
from ledgerflow.services.analytics.histogram import LatencyHistogram

DEFAULT_WINDOW_MS = 1_000


@dataclass
class WindowAggregate:
    """What one variant did in one window (or in the compacted past)."""

    requests: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    compared: int = 0
    agreed: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def merge(self, other: WindowAggregate) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latency.merge(other.latency)
        self.compared += other.compared
        self.agreed += other.agreed
        for metric, o in other.outcomes.items():
            mine = self.outcomes.get(metric)
            self.outcomes[metric] = o if mine is None else mine.merge(o)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency": self.latency.to_dict(),
            "compared": self.compared,
            "agreed": self.agreed,
            "outcomes": {k: o.to_dict() for k, o in sorted(self.outcomes.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowAggregate:
        return cls(
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            latency=LatencyHistogram.from_dict(data["latency"]),
            compared=int(data.get("compared", 0)),
            agreed=int(data.get("agreed", 0)),
            outcomes={k: Outcome.from_dict(v) for k, v in data.get("outcomes", {}).items()},
        )


@dataclass
class VariantSeries:
    """One variant's windows by start time, plus the compacted windows before them."""

    shadow: bool = False
    windows: dict[int, WindowAggregate] = field(default_factory=dict)
    past: WindowAggregate = field(default_factory=WindowAggregate)
    past_until: int | None = None
    """End (epoch ms) of the newest window compacted into `past`."""

    def window(self, start: int) -> WindowAggregate:
        agg = self.windows.get(start)
        if agg is None:
            agg = self.windows[start] = WindowAggregate()
        return agg

    def compact(self, before: int, window_ms: int) -> list[int]:
        """Fold the windows ending by `before` into `past`; returns their starts."""
        starts = [s for s in self.windows if s + window_ms <= before]
        for start in starts:
            self.past.merge(self.windows.pop(start))
            self.past_until = max(self.past_until or 0, start + window_ms)
        return starts

    def total(
        self, since_ms: int | None, window_ms: int, *, strict: bool = False
    ) -> WindowAggregate:
        """The windows from the one containing `since_ms` on (with `strict`, from the first
        one starting at or after it)."""
        out = WindowAggregate()
        if since_ms is None or (self.past_until is not None and self.past_until > since_ms):
            out.merge(self.past)
        first = since_ms if strict or since_ms is None else since_ms - window_ms + 1
        for start, agg in sorted(self.windows.items()):  # one order: the same float sums
            if first is None or start >= first:
                out.merge(agg)
        return out

    def merge(self, other: VariantSeries) -> None:
        self.shadow = self.shadow or other.shadow
        for start, agg in other.windows.items():
            self.window(start).merge(agg)
        self.past.merge(other.past)
        if other.past_until is not None:
            self.past_until = max(self.past_until or 0, other.past_until)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shadow": self.shadow,
            "windows": {str(s): a.to_dict() for s, a in sorted(self.windows.items())},
            "past": self.past.to_dict(),
            "past_until": self.past_until,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantSeries:
        return cls(
            shadow=bool(data.get("shadow", False)),
            windows={int(s): WindowAggregate.from_dict(a) for s, a in data["windows"].items()},
            past=WindowAggregate.from_dict(data["past"]),
            past_until=data.get("past_until"),
        )


@dataclass
class DeploymentTraffic:
    """All variants' series of one deployment: the unit published to Redis."""

    window_ms: int = DEFAULT_WINDOW_MS
    variants: dict[str, VariantSeries] = field(default_factory=dict)

    def series(self, variant: str) -> VariantSeries:
        s = self.variants.get(variant)
        if s is None:
            s = self.variants[variant] = VariantSeries()
        return s

    def snapshot(self, since_ms: int | None = None) -> dict[str, VariantStats]:
        """Per-variant statistics over all time, or over the windows since `since_ms`."""
        return {
            name: variant_stats(name, series.shadow, series.total(since_ms, self.window_ms))
            for name, series in sorted(self.variants.items())
        }

    def requests_since(self, variant: str, since_ms: int) -> int:
        """Requests in the windows starting at or after `since_ms` (never any before)."""
        series = self.variants.get(variant)
        return 0 if series is None else series.total(since_ms, self.window_ms, strict=True).requests

    def merge(self, other: DeploymentTraffic) -> None:
        if other.window_ms != self.window_ms:
            raise InvalidInput(
                f"cannot merge traffic windows of {other.window_ms} ms into {self.window_ms} ms",
                field="window_ms",
            )
        for name, series in other.variants.items():
            self.series(name).merge(series)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_ms": self.window_ms,
            "variants": {n: s.to_dict() for n, s in sorted(self.variants.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentTraffic:
        return cls(
            window_ms=int(data["window_ms"]),
            variants={n: VariantSeries.from_dict(s) for n, s in data["variants"].items()},
        )


def variant_stats(name: str, shadow: bool, agg: WindowAggregate) -> VariantStats:
    """A variant's statistics from the total of its windows."""
    return VariantStats(
        variant=name,
        requests=agg.requests,
        errors=agg.errors,
        latency_p50_ms=agg.latency.quantile(0.50),
        latency_p90_ms=agg.latency.quantile(0.90),
        latency_p99_ms=agg.latency.quantile(0.99),
        outcomes=dict(agg.outcomes),
        shadow=shadow,
        compared=agg.compared,
        agreed=agg.agreed,
    )
