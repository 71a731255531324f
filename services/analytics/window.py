"""Stream aggregation of a deployment's traffic into per-variant statistics.

`TrafficStats` folds `inference.recorded` and `feedback.recorded` payloads into, per
(deployment, variant), tumbling windows of `window_ms` holding counts, errors, a latency
histogram, shadow agreement and feedback outcomes. The embedded server runs it in
process; the Faust app (`faust_app`) runs the very same fold on Kafka, one partition's
deployments per worker, and publishes the serialized aggregates.

Windows let callers ask for statistics since a time, which is how a canary step counts
the requests served since it began. A snapshot includes the whole window containing
`since_ms` (it may count up to one window of traffic from just before: guardrails would
rather judge a little too much traffic than miss errors); `requests_since` counts only
the windows that start at or after it (a canary step must never advance on requests its
predecessor served; it may wait up to one window longer). Keep windows short: one
second by default. Each time event time crosses a multiple of `retention_ms`, the
windows older than `retention_ms` are folded into one compacted aggregate that
all-time questions still see (so at most two retention periods of windows are kept).

Feedback names the request it is about; when it does not name the variant, the variant
is found from a bounded map of recent request ids. Feedback that arrives before its
inference (replicas flush in batches) waits in a bounded pending map; what falls out of
either map unjoined is counted in `unjoined`, never silently dropped from the books.

Every aggregate serializes to plain JSON dicts and merges by addition, so the
aggregates of several partitions or replicas combine exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.analytics.histogram import LatencyHistogram
from ledgerflow.services.analytics.stats import Outcome, VariantStats

DEFAULT_WINDOW_MS = 1_000
DEFAULT_RETENTION_MS = 3_600_000


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
        out: dict[str, VariantStats] = {}
        for name, series in sorted(self.variants.items()):
            agg = series.total(since_ms, self.window_ms)
            out[name] = VariantStats(
                variant=name,
                requests=agg.requests,
                errors=agg.errors,
                latency_p50_ms=agg.latency.quantile(0.50),
                latency_p90_ms=agg.latency.quantile(0.90),
                latency_p99_ms=agg.latency.quantile(0.99),
                outcomes=dict(agg.outcomes),
                shadow=series.shadow,
                compared=agg.compared,
                agreed=agg.agreed,
            )
        return out

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


TrafficPayload = InferenceRecorded | FeedbackRecorded
EntryKey = tuple[str, str, int | None]
"""(deployment, variant, window start); None for the compacted past."""


class TrafficStats:
    """The fold of traffic payloads into per-deployment, per-variant windowed aggregates."""

    def __init__(
        self,
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        retention_ms: int = DEFAULT_RETENTION_MS,
        max_recent: int = 100_000,
        max_pending: int = 10_000,
    ) -> None:
        if window_ms <= 0 or retention_ms < window_ms:
            raise InvalidInput(
                f"need 0 < window_ms <= retention_ms, got {window_ms} and {retention_ms}",
                field="window_ms",
            )
        self.window_ms = window_ms
        self.retention_ms = retention_ms
        self.max_recent = max_recent
        self.max_pending = max_pending
        self.deployments: dict[str, DeploymentTraffic] = {}
        self._recent: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._judged: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        """(deployment, request id, metric) of recent outcomes: a repeat is not counted."""
        self.duplicates = 0
        self._pending: OrderedDict[tuple[str, str], list[FeedbackRecorded]] = OrderedDict()
        self._newest: dict[str, int] = {}
        self._dirty: set[EntryKey] = set()
        self.unjoined = 0
        """Feedback dropped because its request was never seen within the bounds."""

    def apply(self, payload: TrafficPayload) -> None:
        if isinstance(payload, InferenceRecorded):
            self.record_inference(payload)
        else:
            self.record_feedback(payload)

    def apply_all(self, payloads: Iterable[TrafficPayload]) -> None:
        for p in payloads:
            self.apply(p)

    def record_inference(self, payload: InferenceRecorded) -> None:
        dep = self.deployment(payload.deployment)
        for r in payload.records:
            series = dep.series(r.variant)
            series.shadow = series.shadow or r.shadow
            start = self._window_of(payload.deployment, r.time)
            self._dirty.add((payload.deployment, r.variant, start))
            agg = series.window(start)
            agg.requests += 1
            agg.errors += 0 if r.ok else 1
            agg.latency.add(r.latency_ms)
            if r.agreed is not None:
                agg.compared += 1
                agg.agreed += 1 if r.agreed else 0
            if r.shadow:
                continue
            key = (payload.deployment, r.request_id)
            self._recent[key] = r.variant
            self._recent.move_to_end(key)
            if len(self._recent) > self.max_recent:
                self._recent.popitem(last=False)
            for fb in self._pending.pop(key, []):
                self._add_outcome(fb, r.variant)

    def record_feedback(self, payload: FeedbackRecorded) -> None:
        key = (payload.deployment, payload.request_id)
        variant = payload.variant or self._recent.get(key)
        if variant is not None:
            self._add_outcome(payload, variant)
            return
        self._pending.setdefault(key, []).append(payload)
        while len(self._pending) > self.max_pending:
            _, dropped = self._pending.popitem(last=False)
            self.unjoined += len(dropped)

    @property
    def pending(self) -> int:
        """Feedback waiting for the inference it is about."""
        return sum(len(v) for v in self._pending.values())

    def deployment(self, name: str) -> DeploymentTraffic:
        dep = self.deployments.get(name)
        if dep is None:
            dep = self.deployments[name] = DeploymentTraffic(window_ms=self.window_ms)
        return dep

    def snapshot(self, deployment: str, since_ms: int | None = None) -> dict[str, VariantStats]:
        dep = self.deployments.get(deployment)
        return {} if dep is None else dep.snapshot(since_ms)

    def requests_since(self, deployment: str, variant: str, since_ms: int) -> int:
        dep = self.deployments.get(deployment)
        return 0 if dep is None else dep.requests_since(variant, since_ms)

    def forget(self, deployment: str) -> None:
        """Drop a deleted deployment's aggregates (its join entries age out on their own)."""
        self.deployments.pop(deployment, None)
        self._newest.pop(deployment, None)

    def merge(self, other: TrafficStats) -> None:
        """Add another fold's aggregates (another partition or replica) into this one."""
        for name, dep in other.deployments.items():
            self.deployment(name).merge(dep)
        self.unjoined += other.unjoined

    def to_dict(self) -> dict[str, Any]:
        """The aggregates (not the join maps, which are transient) as plain JSON."""
        return {
            "window_ms": self.window_ms,
            "deployments": {n: d.to_dict() for n, d in sorted(self.deployments.items())},
            "unjoined": self.unjoined,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **options: int) -> TrafficStats:
        out = cls(window_ms=int(data["window_ms"]), **options)
        out.deployments = {
            n: DeploymentTraffic.from_dict(d) for n, d in data.get("deployments", {}).items()
        }
        out.unjoined = int(data.get("unjoined", 0))
        return out

    def drain_changes(self) -> list[tuple[EntryKey, dict[str, Any] | None]]:
        """The entries changed since the last drain, as (key, JSON value or None when the
        entry is gone): what a changelog-backed table (Faust's) must write."""
        out: list[tuple[EntryKey, dict[str, Any] | None]] = []
        for key in sorted(self._dirty, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
            out.append((key, self.entry(key)))
        self._dirty.clear()
        return out

    def entry(self, key: EntryKey) -> dict[str, Any] | None:
        """One window's (or the past's) aggregate as a table value, None if there is none."""
        deployment, variant, start = key
        dep = self.deployments.get(deployment)
        series = dep.variants.get(variant) if dep else None
        if series is None:
            return None
        if start is None:
            return {
                "shadow": series.shadow,
                "agg": series.past.to_dict(),
                "until": series.past_until,
            }
        agg = series.windows.get(start)
        return None if agg is None else {"shadow": series.shadow, "agg": agg.to_dict()}

    def restore(self, key: EntryKey, value: Mapping[str, Any]) -> None:
        """Load a table entry written from `drain_changes` (recovery after a restart)."""
        deployment, variant, start = key
        series = self.deployment(deployment).series(variant)
        series.shadow = series.shadow or bool(value.get("shadow", False))
        agg = WindowAggregate.from_dict(value["agg"])
        if start is None:
            series.past = agg
            series.past_until = value.get("until")
        else:
            series.windows[start] = agg
            newest = self._newest.get(deployment)
            self._newest[deployment] = start if newest is None else max(newest, start)

    def _window_of(self, deployment: str, time_ms: int) -> int:
        start = time_ms - time_ms % self.window_ms
        newest = self._newest.get(deployment)
        if newest is None or start > newest:
            self._newest[deployment] = start
            if newest is not None and start // self.retention_ms != newest // self.retention_ms:
                for name, series in self.deployments[deployment].variants.items():
                    moved = series.compact(start - self.retention_ms, self.window_ms)
                    self._dirty.update((deployment, name, s) for s in moved)
                    if moved:
                        self._dirty.add((deployment, name, None))
        return start

    def _add_outcome(self, fb: FeedbackRecorded, variant: str) -> None:
        """Count the outcome once: clients retry, and at-least-once delivery redelivers,
        so a second outcome of the same metric for the same request is a duplicate."""
        seen = (fb.deployment, fb.request_id, fb.metric)
        if seen in self._judged:
            self.duplicates += 1
            return
        self._judged[seen] = None
        if len(self._judged) > self.max_recent:
            self._judged.popitem(last=False)
        series = self.deployment(fb.deployment).series(variant)
        start = self._window_of(fb.deployment, fb.time)
        self._dirty.add((fb.deployment, variant, start))
        agg = series.window(start)
        value = (1.0 if fb.value > 0 else 0.0) if fb.kind == "conversion" else fb.value
        current = agg.outcomes.get(fb.metric) or Outcome(kind=fb.kind)
        agg.outcomes[fb.metric] = current.add(value)
