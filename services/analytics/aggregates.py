"""What one variant of a deployment served and the outcomes reported for it, as
sufficient statistics: counts, latency percentiles, and for each feedback metric the
Welford count, mean and sum of squared deviations. Aggregates from several stream
partitions or replicas merge exactly (Chan's formula), so the analysis
(`ledgerflow.services.analytics.stats`) never needs the raw observations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.events.deployment_payloads import OutcomeKind


@dataclass(frozen=True)
class Outcome:
    """The outcomes of one feedback metric for one variant: count, mean and M2 (the sum of
    squared deviations from the mean), merged with Chan's formula."""

    kind: OutcomeKind = "conversion"
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, kind: OutcomeKind, values: Iterable[float]) -> Outcome:
        out = cls(kind=kind)
        for v in values:
            out = out.add(v)
        return out

    def add(self, value: float) -> Outcome:
        n = self.n + 1
        delta = value - self.mean
        mean = self.mean + delta / n
        return Outcome(self.kind, n, mean, self.m2 + delta * (value - mean))

    def merge(self, other: Outcome) -> Outcome:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Outcome(self.kind, n, mean, m2)

    @property
    def variance(self) -> float | None:
        """Sample variance (ddof 1); None below two observations."""
        return self.m2 / (self.n - 1) if self.n > 1 else None

    @property
    def successes(self) -> int:
        """For a conversion: how many outcomes were 1."""
        return round(self.mean * self.n)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": self.n, "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(data["kind"], int(data["n"]), float(data["mean"]), float(data["m2"]))


@dataclass(frozen=True)
class VariantStats:
    """What one variant served and the outcomes reported for it."""

    variant: str
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p99_ms: float | None = None
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    shadow: bool = False
    compared: int = 0
    """Shadow answers compared with the answer returned; `agreed` of them matched."""
    agreed: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "requests": self.requests,
            "errors": self.errors,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p90_ms": self.latency_p90_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "outcomes": {k: o.to_dict() for k, o in sorted(self.outcomes.items())},
            "shadow": self.shadow,
            "compared": self.compared,
            "agreed": self.agreed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantStats:
        return cls(
            variant=data["variant"],
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            latency_p50_ms=data.get("latency_p50_ms"),
            latency_p90_ms=data.get("latency_p90_ms"),
            latency_p99_ms=data.get("latency_p99_ms"),
            outcomes={k: Outcome.from_dict(v) for k, v in data.get("outcomes", {}).items()},
            shadow=bool(data.get("shadow", False)),
            compared=int(data.get("compared", 0)),
            agreed=int(data.get("agreed", 0)),
        )
