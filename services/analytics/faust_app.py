"""The traffic aggregation as a Faust app, for distributed deployments.

The agent consumes `<prefix>.inference` (every `traffic:<deployment>` stream, encoded by
`ledgerflow.events.codec`) and folds its payloads with the same `TrafficStats` the
embedded server runs in process. Kafka keys records by stream, so all of a deployment's
traffic lands in one partition and one worker: the feedback join by request id stays
local, and exactly one worker publishes each deployment.

State: the fold runs in a `TableFold` (see `table_fold`) over the `traffic-windows`
table, whose changelog topic lets a worker that takes over a partition rebuild the fold;
the table also records the last offset folded per partition, so records Faust redelivers
(delivery is at least once) are not counted twice. The worker publishes the changed
deployments' aggregates to Redis every `publish_interval_s` (`ledgerflow:traffic:<name>`,
see `snapshots`), where the deployer and gateway read them.

Known limit: when a worker stops, Faust (0.15.3, seen on Tansu) can commit consumer
offsets ahead of the last changelog writes, so a worker restarted on the same partitions
may miss the last few records folded before the stop.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis
from faust.types import TP

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.settings import Settings
from ledgerflow.services.analytics.metrics import TrafficStatsMetrics
from ledgerflow.services.analytics.series import DEFAULT_WINDOW_MS
from ledgerflow.services.analytics.snapshots import KEY_PREFIX, encode_snapshot, snapshot_key
from ledgerflow.services.analytics.table_fold import TableFold
from ledgerflow.services.analytics.window import DEFAULT_RETENTION_MS

log = logging.getLogger(__name__)
TABLE = "traffic-windows"


@dataclass(frozen=True)
class StreamStatsConfig:
    bootstrap: str
    """Kafka bootstrap servers, `host:port[,host:port...]`."""
    redis_url: str
    topic_prefix: str = "ledgerflow"
    partitions: int = 6
    """Partitions of the inference topic; the table's changelog must have as many."""
    app_id: str | None = None
    """The consumer group and prefix of the table's topics; default `<topic_prefix>-traffic`."""
    window_ms: int = DEFAULT_WINDOW_MS
    retention_ms: int = DEFAULT_RETENTION_MS
    publish_interval_s: float = 0.5
    key_prefix: str = KEY_PREFIX
    session_timeout_s: float = 10.0
    """How soon a dead worker's partitions move to another (and a group settles)."""
    data_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> StreamStatsConfig:
        if not settings.is_kafka:
            raise InvalidInput(
                "stream statistics on Faust need a Kafka event log "
                "(LEDGERFLOW_EVENT_LOG=kafka://host:port); the embedded server aggregates "
                "traffic in process instead",
                field="event_log",
            )
        if not settings.redis_url:
            raise InvalidInput(
                "stream statistics publish to Redis: set LEDGERFLOW_REDIS_URL",
                field="redis_url",
            )
        values: dict[str, Any] = {
            "bootstrap": settings.event_log_url.removeprefix("kafka://"),
            "redis_url": settings.redis_url,
            "topic_prefix": settings.kafka_topic_prefix,
            "partitions": settings.kafka_partitions,
            "data_dir": settings.data_dir / "stream-stats",
        }
        values.update(overrides)
        return cls(**values)


class TrafficStreamProcessor:
    """The fold, its table and its Redis publisher, wired into one Faust app."""

    def __init__(
        self, config: StreamStatsConfig, metrics: TrafficStatsMetrics | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or TrafficStatsMetrics()
        self._redis: aioredis.Redis | None = None
        data_dir = config.data_dir or Path(tempfile.mkdtemp(prefix="ledgerflow-faust-"))
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            config.app_id or f"{config.topic_prefix}-traffic",
            broker=[f"kafka://{b.strip()}" for b in config.bootstrap.split(",")],
            store="memory://",
            datadir=str(data_dir),
            topic_partitions=config.partitions,
            topic_replication_factor=1,
            web_enabled=False,
            broker_session_timeout=config.session_timeout_s,
            broker_heartbeat_interval=min(3.0, config.session_timeout_s / 3),
            broker_rebalance_timeout=config.session_timeout_s,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.topic = self.app.topic(
            f"{config.topic_prefix}.inference",
            key_type=bytes,
            value_type=bytes,
            partitions=config.partitions,
        )
        self.table = self.app.Table(
            TABLE,
            default=None,
            partitions=config.partitions,
            key_type=str,
            value_type=bytes,
        )
        self.fold = TableFold(
            self.table, window_ms=config.window_ms, retention_ms=config.retention_ms
        )
        self.app.agent(self.topic, name="traffic")(self._consume)
        self.app.timer(config.publish_interval_s)(self.publish)
        # faust types receivers as a union mypy cannot match an async bound method against
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    async def _consume(self, stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            self.fold.handle(event.value, event.message.partition, event.message.offset)
            self.metrics.folded.inc()
            yield None

    async def _on_assigned(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        assigned: Set[TP] = args[0] if args else kwargs.get("assigned", set())
        topic = self.topic.get_topic_name()
        self.fold.keep_partitions({tp.partition for tp in assigned if tp.topic == topic})

    async def publish(self) -> None:
        """Write the aggregates of every deployment that changed to Redis."""
        fold = self.fold
        if not fold.unpublished:
            return
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.config.redis_url)
        names, fold.unpublished = fold.unpublished, set()
        for name in sorted(n for n in names if n in fold.stats.deployments):
            doc = encode_snapshot(fold.stats.deployment(name))
            try:
                await self._redis.set(snapshot_key(name, self.config.key_prefix), doc)
                self.metrics.published.labels("ok").inc()
            except aioredis.RedisError as e:
                self.metrics.published.labels("failed").inc()
                log.warning("publishing traffic of %r to Redis failed (retrying): %s", name, e)
                fold.unpublished.add(name)


def build_app(
    config: StreamStatsConfig, metrics: TrafficStatsMetrics | None = None
) -> TrafficStreamProcessor:
    return TrafficStreamProcessor(config, metrics)


def run_stream_stats(
    settings: Settings,
    *,
    loglevel: str = "WARNING",
    metrics: TrafficStatsMetrics | None = None,
    **overrides: Any,
) -> None:
    """Run the stream-statistics worker until it is stopped (SIGINT/SIGTERM)."""
    processor = build_app(StreamStatsConfig.from_settings(settings, **overrides), metrics)
    worker = faust.Worker(processor.app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":  # pragma: no cover - the CLI entry calls run_stream_stats
    level = os.environ.pop("LEDGERFLOW_STREAM_LOGLEVEL", "WARNING")
    run_stream_stats(Settings(), loglevel=level)
