"""Stream aggregation of a deployment's traffic into per-variant statistics.

`TrafficStats` folds `inference.recorded` and `feedback.recorded` payloads into, per
(deployment, variant), tumbling windows (`series.py`). The embedded server runs it in
process; the Faust app (`faust_app`) runs the very same fold on Kafka, one partition's
deployments per worker, and publishes the serialized aggregates.

Each time event time crosses a multiple of `retention_ms`, the windows older than
`retention_ms` are folded into one compacted aggregate that all-time questions still
see (so at most two retention periods of windows are kept).

Feedback names the request it is about; when it does not name the variant, each
deployment's `FeedbackJoin` (`join.py`) finds it from the request's inference record,
holds feedback that came first, and counts one outcome per request and metric.

Everything the fold holds (windows, the compacted past, the joins) comes out of
`drain_changes` and `drain_requests` as table entries and goes back in through `restore`
and `restore_requests`, so a fold rebuilt from a table continues exactly as the one that
wrote it would have (what the Faust worker does after a restart, `table_fold`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.analytics.aggregates import Outcome, VariantStats
from ledgerflow.services.analytics.join import Entry, FeedbackJoin
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
        self.joins: dict[str, FeedbackJoin] = {}
        """Per deployment, bounded by `max_recent` requests and `max_pending` waiting."""
        self._newest: dict[str, int] = {}
        self._dirty: set[EntryKey] = set()
        self._unjoined = 0

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
            for fb in self.join(payload.deployment).served(r.request_id, r.variant):
                self._add_outcome(fb, r.variant)

    def record_feedback(self, payload: FeedbackRecorded) -> None:
        join = self.join(payload.deployment)
        variant = join.variant_of(payload)
        if variant is None:
            join.wait(payload)
        else:
            self._add_outcome(payload, variant)

    def join(self, deployment: str) -> FeedbackJoin:
        found = self.joins.get(deployment)
        if found is None:
            found = self.joins[deployment] = FeedbackJoin(
                max_requests=self.max_recent, max_pending=self.max_pending
            )
        return found

    @property
    def pending(self) -> int:
        """Feedback waiting for the inference it is about."""
        return sum(j.pending for j in list(self.joins.values()))

    @property
    def unjoined(self) -> int:
        """Feedback dropped because its request was never seen within the bounds."""
        return self._unjoined + sum(j.unjoined for j in list(self.joins.values()))

    @property
    def duplicates(self) -> int:
        """Repeated outcomes (same request and metric) that were not counted again."""
        return sum(j.duplicates for j in list(self.joins.values()))

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
        """Drop a deployment's aggregates and join (deleted, or its partition moved away)."""
        self.deployments.pop(deployment, None)
        self.joins.pop(deployment, None)
        self._newest.pop(deployment, None)

    def merge(self, other: TrafficStats) -> None:
        """Add another fold's aggregates (another partition or replica) into this one."""
        for name, dep in other.deployments.items():
            self.deployment(name).merge(dep)
        self._unjoined += other.unjoined

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
        out._unjoined = int(data.get("unjoined", 0))
        return out

    def drain_changes(self) -> list[tuple[EntryKey, dict[str, Any] | None]]:
        """The entries changed since the last drain, as (key, JSON value or None when the
        entry is gone): what a changelog-backed table (Faust's) must write."""
        out: list[tuple[EntryKey, dict[str, Any] | None]] = []
        for key in sorted(self._dirty, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
            out.append((key, self.entry(key)))
        self._dirty.clear()
        return out

    def drain_requests(self) -> list[tuple[str, str, Entry | None]]:
        """The join entries changed since the last drain, as (deployment, request id, JSON
        value or None when the request left the join): the rest of what a table must
        write for a fold restored from it to join as this one would."""
        return [
            (name, rid, value)
            for name, join in sorted(self.joins.items())
            for rid, value in join.drain()
        ]

    def restore_requests(
        self, deployment: str, entries: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """Load a deployment's join entries written from `drain_requests` (all at once)."""
        self.join(deployment).load(entries)

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
        """Count the outcome once: clients retry, so a second outcome of the same metric
        for the same request is a duplicate."""
        if not self.join(fb.deployment).first_outcome(fb):
            return
        series = self.deployment(fb.deployment).series(variant)
        start = self._window_of(fb.deployment, fb.time)
        self._dirty.add((fb.deployment, variant, start))
        agg = series.window(start)
        value = (1.0 if fb.value > 0 else 0.0) if fb.kind == "conversion" else fb.value
        current = agg.outcomes.get(fb.metric) or Outcome(kind=fb.kind)
        agg.outcomes[fb.metric] = current.add(value)
