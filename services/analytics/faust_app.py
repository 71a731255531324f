"""The traffic aggregation as a Faust app, for distributed deployments.

The agent consumes `<prefix>.inference` (every `traffic:<deployment>` stream, encoded by
`ledgerflow.events.codec`) and folds its payloads with the same `TrafficStats` the
embedded server runs in process. Kafka keys records by stream, so all of a deployment's
traffic lands in one partition and one worker: the feedback join stays local, and
exactly one worker publishes each deployment.

Exact across stops, crashes and rebalances: the fold runs in a `TableFold` over the
`traffic-fold` table, which holds all of it (windows, the compacted past and the feedback
join) and, per partition, a journal of the last record folded, written before that
record's entries (see `table_fold`). When Faust has recovered the table from its
changelog (`on_rebalance_complete`, before it seeks the inference partitions to their
committed offsets), the worker commits the offset after each partition's journal and
seeks there (Faust does not seek to a committed 0): folding resumes at the first record
the table does not hold, whatever was committed before (Faust may commit ahead of its
changelog writes: its producer buffer's flush gives up after 0.1 s without a send). A
record given past the one the fold needs next is not folded: the worker seeks back to
that one (`_rewind`; after a rebalance Faust may hand over records fetched from the old
committed offset and drop the ones the seek asked for), unless retention deleted it.

Every changelog record goes in a batch of its own (`producer_max_batch_size=1`) by
default: Tansu reports a multi-record batch's end offset as its base offset + 1, and
Faust recovers a table up to that end, so it would miss the rest of the last batch.

The worker publishes what changed of each deployment's aggregates to Redis every
`publish_interval_s` (`ledgerflow:traffic:<name>` and its chunks, see `snapshots`), where
the deployer and gateway read them; after a recovery it publishes what it recovered whole,
and so it does whatever Redis lost (a restart without persistence, `FLUSHALL`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faust
import redis.asyncio as aioredis
from faust.transport.consumer import Consumer
from faust.types import TP

from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.settings import Settings
from ledgerflow.services.analytics.metrics import TrafficStatsMetrics
from ledgerflow.services.analytics.series import DEFAULT_WINDOW_MS
from ledgerflow.services.analytics.snapshots import (
    KEY_PREFIX,
    SnapshotWriter,
    snapshot_keys,
    write_async,
)
from ledgerflow.services.analytics.table_fold import TableFold
from ledgerflow.services.analytics.window import DEFAULT_RETENTION_MS

log = logging.getLogger(__name__)
TABLE = "traffic-fold"
REWIND_S = 0.5
"""How long a seek back to a record the fold needs is given before it is made again."""
MAX_REWINDS = 20
"""Seeks back to one record before the records it asked for are taken as never coming
(`_gap_is_real`); the stale records a rebalance leaves take one or two."""


@dataclass
class _Rewind:
    """A seek back to the record `wanted`: when it was last made and how many times."""

    wanted: int
    since: float
    tries: int = 1


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
    producer_max_batch_size: int = 1
    """Bytes per batch of changelog records; 1 sends each record in a batch of its own,
    which brokers that misreport a batch's end offset (Tansu) need. On Apache Kafka a
    larger one (Kafka's default is 16384) writes faster."""
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
        self.writer = SnapshotWriter()
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
            producer_max_batch_size=config.producer_max_batch_size,
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
        self.metrics.watch(self.fold)
        self.app.agent(self.topic, name="traffic")(self._consume)
        self.app.timer(config.publish_interval_s)(self.publish)
        self.app.timer(REWIND_S)(self._retry_rewinds)
        self._rewinding: dict[TP, _Rewind] = {}
        """Partitions sought back to a record not given yet."""
        # faust types receivers as a union mypy cannot match an async bound method against
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self.app.on_rebalance_complete.connect(self._on_recovered)  # type: ignore[arg-type]

    async def _consume(self, stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            tp, offset = message.tp, message.offset
            wanted = self.fold.expects(message.partition)
            if offset > wanted and not await self._gap_is_real(tp, wanted, offset):
                await self._rewind(tp, wanted, offset)
            else:
                if offset >= wanted:
                    self._rewinding.pop(tp, None)
                self.fold.handle(event.value, message.partition, offset)
                self.metrics.folded.inc()
            yield None

    async def _rewind(self, tp: TP, wanted: int, given: int) -> None:
        """Faust gave a record past the one the fold needs next, which is not folded.
        After a rebalance Faust may hand over records fetched from the old committed
        offset after the seek `_on_recovered` made (a fetch blocked while the flow was
        suspended puts them in the stream once it resumes) and, having moved its read
        offset past them, drop the records the seek asked for. Seek there again, once
        per `REWIND_S` while stale records keep coming; `_retry_rewinds` seeks again
        if nothing comes at all."""
        asked = self._rewinding.get(tp)
        now = time.monotonic()
        if asked is not None and asked.wanted == wanted:
            if now - asked.since < REWIND_S:
                return
            asked.since, asked.tries = now, asked.tries + 1
        else:
            self._rewinding[tp] = _Rewind(wanted, now)
        log.info("partition %s: given %s before %s; reading again from %s",
                 tp.partition, given, wanted, wanted)  # fmt: skip
        self.metrics.rewinds.inc()
        await self.app.consumer.seek(tp, wanted)

    async def _retry_rewinds(self) -> None:
        """Seek again where a rewind has not brought the record it asked for."""
        now = time.monotonic()
        for tp, asked in list(self._rewinding.items()):
            if (
                now - asked.since >= REWIND_S
                and asked.tries < MAX_REWINDS
                and self.fold.expects(tp.partition) == asked.wanted
            ):
                asked.since, asked.tries = now, asked.tries + 1
                self.metrics.rewinds.inc()
                await self.app.consumer.seek(tp, asked.wanted)

    async def _gap_is_real(self, tp: TP, wanted: int, given: int) -> bool:
        """Whether records `wanted`..`given - 1` will not come: retention deleted them,
        or `MAX_REWINDS` reads from `wanted` did not bring them (offsets a broker never
        gives, such as a transactional producer's markers). Folding then goes on."""
        asked = self._rewinding.get(tp)
        if asked is not None and asked.wanted == wanted:
            if asked.tries < MAX_REWINDS:
                return False
            log.warning("partition %s: records %s..%s did not come in %d reads from %s; "
                        "folding on from %s", tp.partition, wanted, given - 1, asked.tries,
                        wanted, given)  # fmt: skip
            return True
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        if earliest is None or wanted >= earliest:
            return False
        log.warning(
            "partition %s: records %s..%s were deleted before they were folded",
            tp.partition, wanted, earliest - 1,
        )  # fmt: skip
        return True

    async def _on_assigned(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        assigned: Set[TP] = args[0] if args else kwargs.get("assigned", set())
        topic = self.topic.get_topic_name()
        self.fold.keep_partitions({tp.partition for tp in assigned if tp.topic == topic})
        self._rewinding.clear()  # `_on_recovered` seeks every partition kept

    async def _on_recovered(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """The table is recovered and Faust is about to seek the inference partitions to
        their committed offsets: commit, and seek to, where the table says each resumes.
        A commit refused (a rebalance under way) stops the worker before it folds from
        another offset; a restarted one recovers again."""
        topic = self.topic.get_topic_name()
        mine = {tp for tp in self.app.consumer.assignment() if tp.topic == topic}
        if not mine:
            return
        starts = self.fold.take({tp.partition for tp in mine})
        offsets = {tp: starts[tp.partition] for tp in mine}
        log.info("resuming the traffic fold at %s", {tp.partition: o for tp, o in offsets.items()})
        consumer = cast(Consumer, self.app.consumer)
        # Faust's public commit covers only records its streams acked; this one sets them.
        if not await consumer._commit(offsets):
            raise Unavailable(
                f"could not commit where the traffic fold resumes ({offsets}); the worker "
                "stops rather than fold from other offsets"
            )
        for tp, offset in offsets.items():  # Faust's seek passes over a committed 0
            await consumer.seek(tp, offset)

    async def publish(self) -> None:
        """Write what changed of every deployment that changed to Redis (`snapshots`), and
        whole every deployment whose keys Redis lost (restarted without persistence,
        flushed, evicted): a quiet deployment would otherwise have no statistics there
        until its next request."""
        fold = self.fold
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.config.redis_url)
        await self._find_lost()
        if not fold.unpublished and not fold.reloaded:
            return
        names, changed, reloaded = fold.take_unpublished()
        for name in reloaded:
            self.writer.forget(name)
        for name in sorted(n for n in names if n in fold.stats.deployments):
            pub = self.writer.plan(name, fold.stats.deployment(name), changed.get(name, ()))
            try:
                await write_async(self._redis, snapshot_keys(name, self.config.key_prefix), pub)
                self.metrics.published.labels("ok").inc()
            except aioredis.RedisError as e:
                self.metrics.published.labels("failed").inc()
                log.warning("publishing traffic of %r to Redis failed (retrying): %s", name, e)
                self.writer.forget(name)  # whole next time: what Redis holds is unknown
                fold.unpublished.add(name)

    async def _find_lost(self) -> None:
        """Mark for publishing whole the deployments this worker published whose keys
        Redis no longer holds as published: gone (restarted, flushed, evicted), or holding
        fewer chunks than written. Deployments with changes waiting are checked too: their
        next publish rewrites only the changed chunks, which on a flushed Redis would leave
        a head and a few chunks that look whole to this check and partial to readers."""
        fold, published = self.fold, self.writer.published
        held = sorted(name for name in fold.stats.deployments if name in published)
        if not held or self._redis is None:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in held:
                    head, _, versions = snapshot_keys(name, self.config.key_prefix)
                    pipe.exists(head)
                    pipe.hlen(versions)
                found = await pipe.execute()
        except aioredis.RedisError as e:
            log.warning("checking the published traffic in Redis failed (retrying): %s", e)
            return
        lost = {
            name
            for name, there, chunks in zip(held, found[::2], found[1::2], strict=True)
            if not there or chunks != len(published[name])
        }
        if lost:
            log.warning("traffic of %s is gone from Redis; publishing it again", sorted(lost))
            fold.unpublished |= lost
            fold.reloaded |= lost  # whole: what is left of it there, if anything, is stale


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
    worker = _Worker(processor.app, loglevel=loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as e:
        failure = worker.failure or worker.crash_reason
        if e.code and failure is not None:
            raise Unavailable(
                f"the traffic-stats worker stopped: {type(failure).__name__}: {failure}"
            ) from None
        raise


class _Worker(faust.Worker):
    """Faust's worker, keeping why it could not start: Faust prints the traceback and
    exits 1, and the caller says why in one line (`Error: ...`), as every other
    Ledgerflow process does, for an operator or a restart policy's log."""

    failure: BaseException | None = None

    async def start(self) -> None:
        try:
            await super().start()
        except Exception as e:
            self.failure = e
            raise


if __name__ == "__main__":  # pragma: no cover - the CLI entry calls run_stream_stats
    level = os.environ.pop("LEDGERFLOW_STREAM_LOGLEVEL", "WARNING")
    run_stream_stats(Settings(), loglevel=level)
