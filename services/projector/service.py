"""`ledgerflow projector`: keeps the views up to date as a long-running process.

On Kafka it is a consumer group: the partitions of every topic are shared among
the group's processes, and each process applies what it is given. The offsets
it has applied live in the views database (`projector_offsets`), written in the
same transaction as the rows, and a process that is assigned a partition seeks
to the offset stored there, never to one committed to Kafka. So a process killed
between applying and acknowledging replays nothing twice, and one killed before
committing loses nothing: effects are exactly once. (Offsets are also committed
to Kafka after each transaction, only so Kafka tooling can show the group's lag.)

On the SQLite log, where there is one partition and commands project inline, it
follows the log and catches up whenever something is appended, so views stay
fresh for readers even when writers were killed before projecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.exc import DBAPIError

from ledgerflow.events.envelope import Recorded
from ledgerflow.events.log import Checkpoint, EventLog, Item
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.projector.metrics import ProjectorMetrics
from ledgerflow.services.projector.projector import Projector

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from ledgerflow.events.kafka_log import KafkaEventLog

logger = logging.getLogger("ledgerflow.projector")


@dataclass
class Stats:
    """What a projector process has done: for its log line at exit, tests, and (kept in
    `metrics`) its metrics endpoint."""

    metrics: ProjectorMetrics = field(default_factory=ProjectorMetrics)
    applied: int = 0
    retries: int = 0
    lag: dict[str, int] = field(default_factory=dict)  # partition -> events not yet applied
    assigned: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_applied(self, items: Sequence[Item]) -> None:
        counts: dict[str, int] = {}
        last: dict[str, int] = {}
        for i in items:
            counts[i.partition] = counts.get(i.partition, 0) + 1
            if isinstance(i, Recorded):
                last[i.partition] = i.event.time
        with self.lock:
            self.applied += len(items)
        for partition, n in counts.items():
            self.metrics.note_applied(partition, n, last.get(partition))

    def note_lag(self, lag: dict[str, int]) -> None:
        with self.lock:
            self.lag = lag
        self.metrics.note_lag(lag)


class ProjectorService:
    """Runs a projector until `stop` is set: a Kafka consumer group member, or a
    follower of the SQLite log."""

    def __init__(
        self,
        log: EventLog,
        projector: Projector,
        *,
        group: str = "ledgerflow-projector",
        batch: int = 500,
        metrics: ProjectorMetrics | None = None,
        session_timeout_s: float = 10.0,
    ) -> None:
        """`metrics` go to the process's registry (`ledgerflow server` shares one); by
        default to one of the service's own (`stats.metrics.registry`).
        `session_timeout_s`: on Kafka, how soon a member that stopped answering loses its
        partitions to the rest of the group."""
        self.log = log
        self.session_timeout_s = session_timeout_s
        self.projector = projector
        self.group = group
        self.batch = batch
        self.stats = Stats(metrics or ProjectorMetrics())
        self.stats.metrics.count_dead_letters(projector.dead_letter_count)

    def run(self, stop: threading.Event) -> None:
        # A Kafka log was opened through its module; without it (no aiokafka installed, as
        # with `pip install ledgerflow[server]`) the log cannot be one.
        kafka = sys.modules.get("ledgerflow.events.kafka_log")
        if kafka is not None and isinstance(self.log, kafka.KafkaEventLog):
            log = cast("KafkaEventLog", self.log)
            log.run(self._consume(log, stop), "running the projector", timeout=1e9)
        else:
            self._follow(stop)

    # -- the SQLite log: one partition, follow and catch up ------------------------------

    def _follow(self, stop: threading.Event) -> None:
        self.stats.assigned = [""]
        self._count(self.projector.catch_up())
        self.stats.note_lag({"": 0})  # what it follows, it applies before waiting again
        for head in self._heads(stop):
            # commands of this process may have projected what woke it: then no transaction
            applied = self.projector.catch_up(unless=head)
            if applied:
                self._count(applied)

    def _heads(self, stop: threading.Event) -> Iterator[Checkpoint]:
        """Where the log ends, each time it moves. The SQLite log says so without reading
        events; another log is read (and its events decoded) to learn it."""
        if isinstance(self.log, SQLiteEventLog):
            yield from self.log.heads(stop=stop, idle_wait=5.0)
        else:
            for item in self.log.subscribe("latest", stop=stop, idle_wait=5.0):
                yield Checkpoint.of([item])

    def _count(self, applied: int) -> None:
        with self.stats.lock:
            self.stats.applied += applied
        self.stats.metrics.note_applied("", applied, None)

    # -- Kafka: a consumer group ----------------------------------------------------------

    async def _consume(self, log: KafkaEventLog, stop: threading.Event) -> None:
        from aiokafka import ConsumerRebalanceListener

        service = self
        loop = asyncio.get_running_loop()
        consumer = log.consumer(
            max_wait_ms=25,  # bounds how late new records are seen where a broker (Tansu)
            # holds a waiting fetch until it times out instead of answering when data lands
            group_id=self.group,
            max_poll_records=self.batch,
            session_timeout_ms=int(self.session_timeout_s * 1000),
            heartbeat_interval_ms=max(100, int(self.session_timeout_s * 100)),
        )

        class Seek(ConsumerRebalanceListener):  # type: ignore[misc]
            """Start each assigned partition after the offset the views hold."""

            async def on_partitions_revoked(self, revoked: Any) -> None:
                logger.info("partitions revoked: %s", _names(revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                stored = await loop.run_in_executor(None, service.projector.checkpoint)
                for tp in assigned:
                    last = stored.get(f"{tp.topic}/{tp.partition}")
                    consumer.seek(tp, 0 if last is None else last + 1)
                service.stats.assigned = _names(assigned)
                logger.info("partitions assigned: %s", service.stats.assigned)

        consumer.subscribe(topics=sorted(log.topics.values()), listener=Seek())
        await consumer.start()
        try:
            while not stop.is_set():
                got = await consumer.getmany(timeout_ms=500, max_records=self.batch)
                for tp, records in got.items():
                    items = [log.decode(r) for r in records]
                    await loop.run_in_executor(None, self.apply, items)
                    with contextlib.suppress(Exception):  # only for Kafka tooling's lag view
                        await consumer.commit({tp: records[-1].offset + 1})
                await self._note_lag(consumer)
        finally:
            await consumer.stop()

    async def _note_lag(self, consumer: AIOKafkaConsumer[bytes, bytes]) -> None:
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            with contextlib.suppress(Exception):  # a partition revoked meanwhile
                lag[f"{tp.topic}/{tp.partition}"] = max(0, high - await consumer.position(tp))
        self.stats.note_lag(lag)

    def apply(self, items: Sequence[Item]) -> int:
        """Apply consumed items in one transaction with their offsets; items the stored
        offsets already cover (a redelivery after a rebalance) are skipped."""
        attempt = 0
        while True:
            try:
                with self.projector.engine.begin() as conn:
                    stored = self.projector.checkpoint(conn)
                    fresh = [i for i in items if not stored.includes(i)]
                    if fresh:
                        self.projector.apply_all(conn, fresh)
                        self.projector.save_checkpoint(conn, stored, stored.advance_all(fresh))
                self.stats.note_applied(fresh)
                return len(fresh)
            except DBAPIError as e:
                # Another member still applying a partition we were just given, or a
                # database restart: roll back and try again from the stored offsets.
                attempt += 1
                with self.stats.lock:
                    self.stats.retries += 1
                self.stats.metrics.retries.inc()
                if attempt >= 20:
                    raise
                logger.warning("retrying a batch after a database error: %s", e.orig)
                time.sleep(min(0.05 * 2**attempt, 2.0))


def _names(tps: Any) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in tps)
