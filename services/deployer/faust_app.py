"""The traffic aggregation as a Faust app, for distributed deployments.

The agent consumes `<prefix>.inference` (every `traffic:<deployment>` stream, encoded by
`ledgerflow.events.codec`) and folds its payloads with the same `TrafficStats` the
embedded server runs in process. Kafka keys records by stream, so all of a deployment's
traffic lands in one partition and one worker: the feedback join by request id stays
local, and exactly one worker publishes each deployment.

State: every window aggregate the fold changes is written to the `traffic-windows` table
(keyed by `[deployment, variant, window start]`, the compacted past under a `null` start),
whose changelog topic lets a worker that takes over a partition rebuild the fold. The
worker publishes the changed deployments' aggregates to Redis every `publish_interval_s`
(`ledgerflow:traffic:<deployment>`, see `snapshots`), where the deployer and gateway read
them. Events that cannot be decoded are logged with their offset and reason and counted
(`corrupt`), not retried forever: the log keeps them for inspection.

Delivery is at least once. The table also records, per partition, the last offset folded,
so records Faust redelivers after a rebalance (from the last committed offset) are not
counted twice. Known limit: when a worker stops, Faust (0.15.3, seen on Tansu) can commit
consumer offsets ahead of the last changelog writes, so a worker restarted on the same
partitions may miss the last few records folded before the stop.
"""

from __future__ import annotations

import json
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

from ledgerflow.events.codec import decode
from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.errors import CorruptEvent, InvalidInput
from ledgerflow.events.settings import Settings
from ledgerflow.services.deployer.snapshots import KEY_PREFIX, encode_snapshot, snapshot_key
from ledgerflow.services.deployer.window import (
    DEFAULT_RETENTION_MS,
    DEFAULT_WINDOW_MS,
    EntryKey,
    TrafficStats,
)

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

    def __init__(self, config: StreamStatsConfig) -> None:
        self.config = config
        self.stats = TrafficStats(window_ms=config.window_ms, retention_ms=config.retention_ms)
        self.corrupt = 0
        self._restored: set[str] = set()
        self._applied: dict[int, int] = {}
        self._partition_of: dict[str, int] = {}
        self._unpublished: set[str] = set()
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
        self.app.agent(self.topic, name="traffic")(self._consume)
        self.app.timer(config.publish_interval_s)(self.publish)
        # faust types receivers as a union mypy cannot match an async bound method against
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    async def _consume(self, stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            self.handle(event.value, event.message.partition, event.message.offset)
            yield None

    def handle(self, raw: bytes, partition: int, offset: int) -> None:
        """Fold one record of the inference topic and write what changed to the table.

        The table also keeps, per partition, the offset of the last record folded, written
        after the record's changes (same changelog partition, so in that order). Records
        redelivered after a restart, whose consumer offset was committed late, are then
        recognized and skipped instead of being counted twice."""
        if offset <= self._applied_offset(partition):
            log.debug("skipping %s@%s: already folded", partition, offset)
            return
        try:
            payload = decode(raw).data
        except CorruptEvent as e:
            self.corrupt += 1
            log.error("skipping undecodable traffic record %s@%s: %s", partition, offset, e.message)
            payload = None
        if isinstance(payload, InferenceRecorded | FeedbackRecorded):
            self._restore(payload.deployment)
            self._partition_of[payload.deployment] = partition
            self.stats.apply(payload)
            for key, value in self.stats.drain_changes():
                table_key = json.dumps(list(key))
                if value is None:
                    self.table.pop(table_key, None)
                else:
                    self.table[table_key] = json.dumps(value).encode()
            self._unpublished.add(payload.deployment)
        self._applied[partition] = offset
        self.table[json.dumps([partition])] = str(offset).encode()

    def _applied_offset(self, partition: int) -> int:
        applied = self._applied.get(partition)
        if applied is None:
            stored = self.table.get(json.dumps([partition]))
            applied = self._applied[partition] = -1 if stored is None else int(stored)
        return applied

    async def _on_assigned(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """After a rebalance, forget the deployments of partitions that moved to another
        worker: if they come back, the table (kept by that worker meanwhile) is reloaded.
        Partitions this worker keeps keep their fold, join maps and applied offsets, so
        records Faust redelivers from the last committed offset are skipped."""
        assigned: Set[TP] = args[0] if args else kwargs.get("assigned", set())
        mine = {tp.partition for tp in assigned if tp.topic == self.topic.get_topic_name()}
        for name, partition in list(self._partition_of.items()):
            if partition not in mine:
                log.info("deployment %r moved to another worker (partition %s)", name, partition)
                self.stats.forget(name)
                self._restored.discard(name)
                del self._partition_of[name]
        for partition in [p for p in self._applied if p not in mine]:
            del self._applied[partition]

    def _restore(self, deployment: str) -> None:
        """The first time this worker sees a deployment, load its windows from the table
        (filled from the changelog when the partition moved here from another worker)."""
        if deployment in self._restored:
            return
        self._restored.add(deployment)
        for raw_key, raw_value in list(self.table.items()):
            key = json.loads(raw_key)
            if len(key) == 3 and key[0] == deployment and raw_value is not None:
                entry: EntryKey = (key[0], key[1], key[2])
                self.stats.restore(entry, json.loads(raw_value))

    async def publish(self) -> None:
        """Write the aggregates of every deployment that changed to Redis."""
        if not self._unpublished:
            return
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.config.redis_url)
        names, self._unpublished = self._unpublished, set()
        for name in sorted(n for n in names if n in self.stats.deployments):
            doc = encode_snapshot(self.stats.deployment(name))
            try:
                await self._redis.set(snapshot_key(name, self.config.key_prefix), doc)
            except aioredis.RedisError as e:
                log.warning("publishing traffic of %r to Redis failed (retrying): %s", name, e)
                self._unpublished.add(name)


def build_app(config: StreamStatsConfig) -> TrafficStreamProcessor:
    return TrafficStreamProcessor(config)


def run_stream_stats(settings: Settings, *, loglevel: str = "WARNING", **overrides: Any) -> None:
    """Run the stream-statistics worker until it is stopped (SIGINT/SIGTERM)."""
    processor = build_app(StreamStatsConfig.from_settings(settings, **overrides))
    worker = faust.Worker(processor.app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":  # pragma: no cover - the CLI entry calls run_stream_stats
    level = os.environ.pop("LEDGERFLOW_STREAM_LOGLEVEL", "WARNING")
    run_stream_stats(Settings(), loglevel=level)
