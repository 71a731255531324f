"""Live statistics of deployments' traffic, wherever they are computed.

A `StatsSource` answers per-variant statistics of a deployment since a time: the
in-process fold of the log (`FollowedStats`, the embedded default and any single
deployer), or the snapshots the Faust stream processor publishes to Redis when
distributed (`RedisStats`). The deployer loop, the gateway's analysis route and
`lf.deployments.analysis` all read through one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import EventLog
from ledgerflow.events.settings import Settings
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.stats import analyze
from ledgerflow.services.analytics.traffic import TrafficFollower
from ledgerflow.services.deployments.state import Deployment

if TYPE_CHECKING:
    from ledgerflow.services.analytics.snapshots import RedisTrafficSnapshots


class StatsSource(Protocol):
    def snapshot(self, deployment: str, since_ms: int | None = None) -> Mapping[str, VariantStats]:
        """Per-variant statistics of the traffic since `since_ms` (all of it when None)."""
        ...

    def requests_since(self, deployment: str, variant: str, since_ms: int) -> int:
        """Requests `variant` served from `since_ms` on, never counting any from before."""
        ...

    def refresh(self) -> None:
        """Bring the statistics up to what has been recorded (a no-op for pushed ones)."""
        ...


class FollowedStats:
    """The log's traffic folded in this process, caught up to the head on each `refresh`
    (the deployer refreshes once per tick, so each event is read once)."""

    def __init__(self, log: EventLog) -> None:
        self.follower = TrafficFollower(log)

    def refresh(self) -> None:
        self.follower.catch_up()

    def snapshot(self, deployment: str, since_ms: int | None = None) -> Mapping[str, VariantStats]:
        with self.follower.lock:
            return self.follower.stats.snapshot(deployment, since_ms)

    def requests_since(self, deployment: str, variant: str, since_ms: int) -> int:
        with self.follower.lock:
            return self.follower.stats.requests_since(deployment, variant, since_ms)


_followed: weakref.WeakKeyDictionary[EventLog, FollowedStats] = weakref.WeakKeyDictionary()
_followed_lock = threading.Lock()


def followed(log: EventLog) -> FollowedStats:
    """One in-process fold per event log per process, shared by the deployer loop and the
    analysis reads, so each traffic event is folded once."""
    with _followed_lock:
        found = _followed.get(log)
        if found is None:
            found = _followed[log] = FollowedStats(log)
        return found


class RedisStats:
    """The snapshots the Faust stream worker publishes (`ledgerflow traffic-stats`)."""

    def __init__(self, snapshots: RedisTrafficSnapshots) -> None:
        self.snapshots = snapshots

    def refresh(self) -> None:
        """Nothing to do: the worker pushes fresh snapshots every second."""

    def snapshot(self, deployment: str, since_ms: int | None = None) -> Mapping[str, VariantStats]:
        return self.snapshots.snapshot(deployment, since_ms)

    def requests_since(self, deployment: str, variant: str, since_ms: int) -> int:
        return self.snapshots.requests_since(deployment, variant, since_ms)


def stats_for(settings: Settings, log: EventLog) -> StatsSource:
    """Where this process reads live statistics: the in-process fold of `log`, or with
    LEDGERFLOW_TRAFFIC_STATS=redis the stream worker's snapshots in Redis."""
    if settings.traffic_stats == "redis":
        if not settings.redis_url:
            raise InvalidInput(
                "LEDGERFLOW_TRAFFIC_STATS=redis reads the stream worker's snapshots from Redis: "
                "set LEDGERFLOW_REDIS_URL too",
                field="LEDGERFLOW_REDIS_URL",
            )
        from ledgerflow.services.analytics.snapshots import RedisTrafficSnapshots

        return RedisStats(RedisTrafficSnapshots.from_url(settings.redis_url))
    return followed(log)


def analysis(
    dep: Deployment,
    source: StatsSource,
    *,
    metric: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    mde: float | None = None,
    since_ms: int | None = None,
) -> dict[str, Any]:
    """The deployment's A/B analysis as JSON-able data: its split, then per variant the
    counts, error rate, latency percentiles and the outcome with confidence intervals and
    the significance test against the baseline (Holm-corrected for several arms)."""
    source.refresh()
    stats = source.snapshot(dep.name, since_ms)
    result = analyze(stats, dep.baseline, metric=metric, alpha=alpha, power=power, mde=mde)
    shares = dep.shares()
    doc = result.to_dict()
    for row in doc["variants"]:
        row["weight"] = shares.get(row["variant"], 0.0)
    return {
        "deployment": dep.name,
        "status": dep.status,
        "step": dep.step,
        "since": since_ms,
        **doc,
    }
