"""Stream aggregation of a deployment's traffic into per-variant statistics.

`TrafficStats` folds `inference.recorded` and `feedback.recorded` payloads into, per
(deployment, variant), tumbling windows (`series.py`). The embedded server runs it in
process; the Faust app (`faust_app`) runs the very same fold on Kafka, one partition's
deployments per worker, and publishes the serialized aggregates.

Each time event time crosses a multiple of `retention_ms`, the windows older than
`retention_ms` are folded into one compacted aggregate that all-time questions still
see (so at most two retention periods of windows are kept).

Feedback names the request it is about; when it does not name the variant, the variant
is found from a bounded map of recent request ids. Feedback that arrives before its
inference (replicas flush in batches) waits in a bounded pending map; what falls out of
either map unjoined is counted in `unjoined`, never silently dropped from the books.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.analytics.aggregates import Outcome, VariantStats
from ledgerflow.services.analytics.series import (
    DEFAULT_WINDOW_MS,
    DeploymentTraffic,
    WindowAggregate,
)

DEFAULT_RETENTION_MS = 3_600_000


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
