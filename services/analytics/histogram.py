"""A mergeable latency histogram with log-spaced buckets (the DDSketch mapping).

Bucket `i` holds values in (gamma^(i-1), gamma^i]; a quantile is answered with the
bucket's midpoint 2 gamma^i / (gamma + 1), whose relative error is at most
(gamma - 1) / (gamma + 1), 1% for the default gamma of 1.02. Buckets are sparse and
merge by adding counts, so histograms from any number of windows, partitions or
replicas combine exactly, and serialize to a small JSON dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ledgerflow.events.errors import InvalidInput

DEFAULT_GAMMA = 1.02
MIN_VALUE = 1e-3
"""Values at or below this (ms) count in the zero bucket and are reported as 0."""


class LatencyHistogram:
    __slots__ = ("_log_gamma", "bins", "count", "gamma", "zero")

    def __init__(self, gamma: float = DEFAULT_GAMMA) -> None:
        if not gamma > 1:
            raise InvalidInput(f"histogram gamma must be > 1, got {gamma!r}", field="gamma")
        self.gamma = gamma
        self._log_gamma = math.log(gamma)
        self.bins: dict[int, int] = {}
        self.zero = 0
        self.count = 0

    def add(self, value: float, count: int = 1) -> None:
        self.count += count
        if value <= MIN_VALUE:
            self.zero += count
            return
        i = math.ceil(math.log(value) / self._log_gamma)
        self.bins[i] = self.bins.get(i, 0) + count

    def merge(self, other: LatencyHistogram) -> None:
        if other.gamma != self.gamma:
            raise InvalidInput(
                f"cannot merge histograms of gamma {other.gamma} into gamma {self.gamma}",
                field="gamma",
            )
        self.count += other.count
        self.zero += other.zero
        for i, c in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + c

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1), within the relative accuracy; None when empty."""
        if not 0 <= q <= 1:
            raise InvalidInput(f"quantile must be in [0, 1], got {q!r}", field="q")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = self.zero
        if seen > rank:
            return 0.0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen > rank:
                return 2.0 * math.exp(i * self._log_gamma) / (self.gamma + 1.0)
        return 2.0 * math.exp(max(self.bins) * self._log_gamma) / (self.gamma + 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gamma": self.gamma,
            "zero": self.zero,
            "bins": {str(i): c for i, c in sorted(self.bins.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        h = cls(float(data.get("gamma", DEFAULT_GAMMA)))
        h.zero = int(data.get("zero", 0))
        h.bins = {int(i): int(c) for i, c in data.get("bins", {}).items()}
        h.count = h.zero + sum(h.bins.values())
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return (self.gamma, self.zero, self.bins) == (other.gamma, other.zero, other.bins)

    __hash__ = None  # type: ignore[assignment]
