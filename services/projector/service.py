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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.exc import DBAPIError

from ledgerflow.events.log import EventLog, Item
from ledgerflow.services.projector.projector import Projector

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from ledgerflow.events.kafka_log import KafkaEventLog

logger = logging.getLogger("ledgerflow.projector")


@dataclass
class Stats:
    """What a projector process has done, for its metrics endpoint."""

    applied: int = 0
    retries: int = 0
    lag: dict[str, int] = field(default_factory=dict)  # partition -> events not yet applied
    assigned: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prometheus(self, dead_letters: int) -> str:
        with self.lock:
            lines = [
                "# HELP ledgerflow_projector_events_applied_total Events applied to the views.",
                "# TYPE ledgerflow_projector_events_applied_total counter",
                f"ledgerflow_projector_events_applied_total {self.applied}",
                "# HELP ledgerflow_projector_batch_retries_total Batches retried after a "
                "database error.",
                "# TYPE ledgerflow_projector_batch_retries_total counter",
                f"ledgerflow_projector_batch_retries_total {self.retries}",
                "# HELP ledgerflow_projector_dead_letters Events the views could not apply.",
                "# TYPE ledgerflow_projector_dead_letters gauge",
                f"ledgerflow_projector_dead_letters {dead_letters}",
                "# HELP ledgerflow_projector_lag Events on the log not yet applied, per "
                "assigned partition.",
                "# TYPE ledgerflow_projector_lag gauge",
            ]
            lines += [
                f'ledgerflow_projector_lag{{partition="{p}"}} {n}'
                for p, n in sorted(self.lag.items())
            ]
        return "\n".join(lines) + "\n"


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
    ) -> None:
        self.log = log
        self.projector = projector
        self.group = group
        self.batch = batch
        self.stats = Stats()

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
        for _ in self.log.subscribe("latest", stop=stop, idle_wait=5.0):
            self._count(self.projector.catch_up())

    def _count(self, applied: int) -> None:
        with self.stats.lock:
            self.stats.applied += applied
            self.stats.lag = {"": 0}

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
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
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
        with self.stats.lock:
            self.stats.lag = lag

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
                with self.stats.lock:
                    self.stats.applied += len(fresh)
                return len(fresh)
            except DBAPIError as e:
                # Another member still applying a partition we were just given, or a
                # database restart: roll back and try again from the stored offsets.
                attempt += 1
                with self.stats.lock:
                    self.stats.retries += 1
                if attempt >= 20:
                    raise
                logger.warning("retrying a batch after a database error: %s", e.orig)
                time.sleep(min(0.05 * 2**attempt, 2.0))


def _names(tps: Any) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in tps)


def serve_metrics(host: str, port: int, render: Callable[[], str]) -> ThreadingHTTPServer:
    """A tiny HTTP endpoint in a daemon thread: `/metrics` (Prometheus text) and `/health`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, kind = render().encode(), "text/plain; version=0.0.4"
            elif self.path == "/health":
                body, kind = b'{"status": "ok"}', "application/json"
            else:
                self.send_error(404, "try /metrics or /health")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("metrics endpoint: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="projector-metrics", daemon=True).start()
    return server
