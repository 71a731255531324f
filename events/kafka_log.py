"""The clustered event log: one Kafka topic, read by offset, through aiokafka.

Layout: every event goes to one topic, `<prefix>.events`, with one partition, so
a position is simply the Kafka offset and the log has the total order the port
promises (`read(after)`, `head()`, projector checkpoints are one integer). A topic
per category, or several partitions keyed by stream, would keep each stream
ordered but give no order across the log, which `Position = int` cannot express;
that needs a contract change (see `partitions`).

Durability: `append` returns once the broker has acknowledged every record with
`acks=all`. The producer is idempotent by default (no duplicates from its own
retries); pass `idempotent=False` for brokers without InitProducerId support
(Tansu's memory engine rejects aiokafka's v0 request).

Dedupe: Kafka cannot refuse a duplicate key, so each handle keeps an index of
event ids to offsets, built on open by reading the topic and caught up before
every append. Re-appending an id this index knows is a no-op returning its first
offset. Two handles appending the same new id at the same moment can both write
it; readers then see it twice, which projectors absorb because they apply ids at
most once (DESIGN §4). The index costs memory and open time in the log's size.

Readers use no consumer group: they assign the partition and seek to an offset.
aiokafka is asynchronous; a private event loop thread gives the sync port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ledgerflow.events.codec import REGISTRY, EventRegistry, decode, encode
from ledgerflow.events.envelope import Event, Position, Recorded
from ledgerflow.events.errors import CorruptEvent, InvalidInput, Unavailable
from ledgerflow.events.log import After, CorruptRecord, Item, TypeMatcher

T = TypeVar("T")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
_POLL_S = 0.5


class KafkaEventLog:
    """EventLog adapter over one single-partition Kafka topic."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "ledgerflow",
        partitions: int = 1,
        idempotent: bool = True,
        registry: EventRegistry = REGISTRY,
        timeout: float = 30.0,
    ) -> None:
        if partitions != 1:
            raise InvalidInput(
                f"partitions={partitions}: the event log needs one total order, which Kafka "
                "gives only within a partition; use partitions=1",
                field="partitions",
            )
        self.bootstrap = bootstrap
        self.topic = f"{topic_prefix}.events"
        self.registry = registry
        self.timeout = timeout
        self._tp = TopicPartition(self.topic, 0)
        self._idempotent = idempotent
        self._ids: dict[str, Position] = {}
        self._indexed_to = 0  # next offset the id index has not seen
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"kafka-log-{self.topic}", daemon=True
        )
        self._thread.start()
        self._producer: AIOKafkaProducer[bytes, bytes] | None = None
        self._reader: AIOKafkaConsumer[bytes, bytes] | None = None
        try:
            self._call(self._open(), "opening the Kafka event log")
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], what: str, timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise Unavailable(f"{what}: the Kafka event log is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout or self.timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise Unavailable(
                f"{what}: no answer from Kafka at {self.bootstrap} within "
                f"{timeout or self.timeout:.0f}s; is the broker up and reachable?"
            ) from None
        except KafkaError as e:
            raise Unavailable(f"{what} failed: {e!r}; is Kafka at {self.bootstrap} healthy?") from e

    def _consumer(self, max_wait_ms: int = 500) -> AIOKafkaConsumer[bytes, bytes]:
        return AIOKafkaConsumer(
            fetch_max_wait_ms=max_wait_ms,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )

    async def _open(self) -> None:
        self._lock = asyncio.Lock()  # serializes the reader consumer and the id index
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(self.topic, 1, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()
        self._producer = p = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=self._idempotent,
            linger_ms=0,
        )
        await p.start()
        self._reader = r = self._consumer(max_wait_ms=10)  # short: its prefetch blocks head()
        await r.start()
        r.assign([self._tp])
        async with self._lock:
            await self._catch_up_index()

    async def _end(self, consumer: AIOKafkaConsumer[bytes, bytes]) -> int:
        ends = await consumer.end_offsets([self._tp])
        return int(ends[self._tp])

    async def _fetch(
        self, consumer: AIOKafkaConsumer[bytes, bytes], start: int, limit: int, end: int
    ) -> list[Record]:
        """Records with offsets in [start, end), at most `limit`."""
        out: list[Record] = []
        if start >= end or limit <= 0:
            return out
        consumer.seek(self._tp, start)
        deadline = time.monotonic() + self.timeout
        while len(out) < limit:
            batch = await consumer.getmany(
                self._tp, timeout_ms=int(_POLL_S * 1000), max_records=limit - len(out)
            )
            for rec in batch.get(self._tp, []):
                if rec.offset >= end:
                    return out
                out.append(rec)
            nxt = await consumer.position(self._tp)
            if nxt >= end:
                return out
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"reading {self.topic}: offsets {nxt}..{end} did not arrive in "
                    f"{self.timeout:.0f}s; is Kafka at {self.bootstrap} healthy?"
                )
        return out

    async def _catch_up_index(self) -> None:
        end = await self._end(self._r)
        while self._indexed_to < end:
            for rec in await self._fetch(self._r, self._indexed_to, 10_000, end):
                id_ = _header(rec, "id")
                if id_:
                    self._ids.setdefault(id_, rec.offset)
                self._indexed_to = rec.offset + 1

    @property
    def _p(self) -> AIOKafkaProducer[bytes, bytes]:
        if self._producer is None:
            raise Unavailable("the Kafka event log did not open; make a new KafkaEventLog")
        return self._producer

    @property
    def _r(self) -> AIOKafkaConsumer[bytes, bytes]:
        if self._reader is None:
            raise Unavailable("the Kafka event log did not open; make a new KafkaEventLog")
        return self._reader

    # -- the port ---------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> list[Position]:
        if not events:
            return []
        return self._call(self._append(list(events)), "appending to the Kafka event log")

    async def _append(self, events: list[Event]) -> list[Position]:
        async with self._lock:
            await self._catch_up_index()
            positions: list[Position] = []
            for ev in events:
                if ev.id not in self._ids:
                    # One record per produce request: Tansu reports the end offset of a
                    # multi-record batch as its base offset + 1, which would hide records.
                    meta = await self._p.send_and_wait(
                        self.topic,
                        encode(ev),
                        key=ev.stream.encode(),
                        partition=0,
                        headers=[
                            ("id", ev.id.encode()),
                            ("type", ev.type.encode()),
                            ("stream", ev.stream.encode()),
                        ],
                    )
                    self._ids[ev.id] = int(meta.offset)
                    if meta.offset == self._indexed_to:
                        self._indexed_to += 1  # nobody else wrote in between
                positions.append(self._ids[ev.id])
            return positions

    def read(
        self, after: Position | None = None, limit: int = 1000, types: Sequence[str] | None = None
    ) -> Iterator[Item]:
        match = TypeMatcher(types)
        records = self._call(self._read(after, limit), "reading the Kafka event log")
        for rec in records:
            if match(_header(rec, "type")):
                yield self._decode(rec)

    async def _read(self, after: Position | None, limit: int) -> list[Record]:
        async with self._lock:
            end = await self._end(self._r)
            return await self._fetch(self._r, _start(after), limit, end)

    def head(self) -> Position | None:
        return self._call(self._head(), "reading the Kafka event log head")

    async def _head(self) -> Position | None:
        async with self._lock:
            end = await self._end(self._r)
        return end - 1 if end > 0 else None

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        batch: int = 1000,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]:
        """Kafka fetches long-poll, so a follower wakes when a record lands; `idle_wait`
        is not needed for that and only caps each poll (at most 0.5 s, to notice `stop`)."""
        position: Position | None = self.head() if after == "latest" else after
        match = TypeMatcher(types)
        consumer = self._call(self._start_follower(_start(position)), "subscribing to Kafka")
        poll_ms = int(min(idle_wait, _POLL_S) * 1000)
        try:
            end = None if follow else self._call(self._end(consumer), "reading the head")
            while not (stop is not None and stop.is_set()):
                if end is not None:
                    nxt = _start(position)
                    records = self._call(self._fetch(consumer, nxt, batch, end), "reading")
                    if not records:
                        return
                else:
                    records = self._call(self._poll(consumer, batch, poll_ms), "following")
                for rec in records:
                    position = rec.offset
                    if match(_header(rec, "type")):
                        yield self._decode(rec)
        finally:
            with contextlib.suppress(Unavailable):
                self._call(consumer.stop(), "closing a Kafka follower")

    async def _start_follower(self, start: int) -> AIOKafkaConsumer[bytes, bytes]:
        consumer = self._consumer()  # aiokafka objects must be made on their loop
        await consumer.start()
        consumer.assign([self._tp])
        consumer.seek(self._tp, start)
        return consumer

    async def _poll(
        self, consumer: AIOKafkaConsumer[bytes, bytes], batch: int, poll_ms: int
    ) -> list[Record]:
        got = await consumer.getmany(self._tp, timeout_ms=poll_ms, max_records=batch)
        return list(got.get(self._tp, []))

    def _decode(self, rec: Record) -> Item:
        raw = rec.value or b""
        try:
            return Recorded(rec.offset, decode(raw, self.registry))
        except CorruptEvent as e:
            return CorruptRecord(
                rec.offset,
                _header(rec, "id"),
                _header(rec, "type"),
                _header(rec, "stream") or (rec.key or b"").decode(errors="replace"),
                raw.decode(errors="replace"),
                e.message,
            )

    def close(self) -> None:
        if self._closed:
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown(), "closing the Kafka event log", timeout=10)
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._closed = True
        if not self._loop.is_running():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._reader is not None:
            await self._reader.stop()


def _start(after: Position | None) -> int:
    return 0 if after is None else after + 1


def _header(rec: Record, name: str) -> str:
    for key, value in rec.headers:
        if key == name:
            return bytes(value).decode(errors="replace")
    return ""
