"""The clustered event log: Kafka topics per category, partitioned by stream, via aiokafka.

Layout: an event goes to the topic of its stream's category (`<prefix>.runs` for
`run:` and `experiment:` streams, `<prefix>.registry` for `model:`, and so on, see
`CATEGORIES`), in the partition its stream hashes to, so every stream stays in
one partition and keeps its order, while different streams spread over the
partitions and the processes that consume them. The log has no order across
partitions; a reader's progress is a `Checkpoint` holding one offset per
partition, named `<topic>/<partition>`.

Partition counts come from settings when this adapter creates a topic; an
existing topic keeps the count it has (all producers read it from the broker,
so they agree on where a stream lives). Growing a topic's partitions later
would move streams, so it is not done here.

Durability: `append` returns once the broker has acknowledged every record with
`acks=all`. The producer is idempotent by default (no duplicates from its own
retries); pass `idempotent=False` for brokers without InitProducerId support
(Tansu's memory engine rejects aiokafka's v0 request). An append sends each
partition's new records as one batch where the broker reports a batch's end offset
right, which opening the log checks on `<prefix>.probe` (`_batches_hold`), and one
record per produce request where it does not (Tansu). Every event of an append is
encoded before any is written, so a bad one refuses the whole append.

Dedupe: Kafka cannot refuse a duplicate key, so each handle keeps an index of
event ids to where they are stored: the last `dedupe_window` records of each
partition, read on open (so opening reads at most that much, however long the log)
and caught up (for the partition concerned) before every append. Re-appending an
id this index knows is a no-op reporting its first place. Two handles appending
the same new id at the same moment can both write it; readers then see it
twice, which projectors absorb: they skip a copy within the same window of its
first (DESIGN §4). A retry arriving after more than the window is a new record.

A stream's last hash (for the chain) is known for streams appended within the
window; appending to an older stream first looks its last record up, reading the
partition backwards from the window's start. Streams whose last record left the
window are forgotten (swept whenever their number has doubled), so a handle's memory
follows the window, not the count of streams ever written (every run is one).

Hash chain (`ledgerflow.events.chain`): each record carries `prev` and `hash`
headers over its value. `prev` is the hash of its stream's last record as this handle
knows it: the same catch-up that keeps the id index also keeps every stream's last
hash, and it runs (until the partition is quiet) under the handle's lock right before
each append. Another handle can still append to the same stream between that catch-up
and this produce; both records then name the same predecessor. Such a fork is the
price of producers that do not coordinate: `verify` accepts a record that chains onto
a recent earlier record of its stream (`StoredLog.forks`), and checks it like any
other link.

Readers use no consumer group: they assign partitions and seek to offsets (the
projector service is the consumer group, see services/projector/service.py).
aiokafka is asynchronous; a private event loop thread gives the sync port.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import heapq
import json
import threading
import time
import zlib
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ledgerflow.events.chain import GENESIS, StoredEvent, StoredLog, chain_hash
from ledgerflow.events.codec import REGISTRY, EventRegistry, decode, encode
from ledgerflow.events.envelope import Event, Position, Recorded
from ledgerflow.events.errors import CorruptEvent, InvalidInput, Timeout, Unavailable
from ledgerflow.events.group_commit import GroupCommit
from ledgerflow.events.log import After, Checkpoint, CorruptRecord, Item, TypeMatcher

T = TypeVar("T")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
_POLL_S = 0.5
TIPS_SWEEP_MIN = 1024
"""Streams' last hashes a handle holds before it first sweeps out those left behind."""

CATEGORIES = {
    "experiment": "runs",
    "run": "runs",
    "model": "registry",
    "deployment": "deployments",
    "webhook": "webhooks",
    "job": "jobs",
    "bundle": "jobs",
    "traffic": "inference",
}
"""Stream prefix -> topic category. Streams of any other prefix go to `other`."""
TOPIC_CATEGORIES = sorted({*CATEGORIES.values(), "other"})
SHARED_PARTITION = {"experiment", "model"}
"""Prefixes whose streams all share one partition: experiment names and registered
model names are unique across streams (and a rename moves a model to a new stream),
so those streams need one order between them. Both are low-volume."""


def category_of(stream: str) -> str:
    return CATEGORIES.get(stream.split(":", 1)[0], "other")


def partition_of(stream: str, partitions: int) -> int:
    """Stable across processes, machines and versions (unlike Python's `hash`)."""
    prefix = stream.split(":", 1)[0]
    key = prefix if prefix in SHARED_PARTITION else stream
    return zlib.crc32(key.encode()) % partitions


def partition_name(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


@dataclass(frozen=True, slots=True)
class _Planned:
    """A record about to be produced: where, what, and its link in its stream's chain."""

    tp: TopicPartition
    ev: Event
    value: bytes
    prev: str
    hash: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("id", self.ev.id.encode()),
            ("type", self.ev.type.encode()),
            ("stream", self.ev.stream.encode()),
            ("prev", self.prev.encode()),
            ("hash", self.hash.encode()),
        ]


class KafkaEventLog:
    """EventLog adapter over one topic per category, partitioned by stream."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "ledgerflow",
        partitions: int = 6,
        replication: int = 1,
        idempotent: bool = True,
        registry: EventRegistry = REGISTRY,
        timeout: float = 30.0,
        dedupe_window: int = 1_000_000,
    ) -> None:
        if partitions < 1:
            raise InvalidInput(f"partitions={partitions}: need at least 1", field="partitions")
        self.bootstrap = bootstrap
        self.prefix = topic_prefix
        self.topics = {c: f"{topic_prefix}.{c}" for c in TOPIC_CATEGORIES}
        self.registry = registry
        self.timeout = timeout
        self._want_partitions = partitions
        self._replication = replication
        self._idempotent = idempotent
        self.partitions: dict[str, int] = {}  # topic -> its partition count on the broker
        self._tps: list[TopicPartition] = []
        self._names: dict[TopicPartition, str] = {}
        self._by_name: dict[str, TopicPartition] = {}
        self._ids: dict[str, tuple[TopicPartition, Position]] = {}
        self._window = dedupe_window
        self._probe = f"{topic_prefix}.probe"  # where _batches_hold tries the broker out
        self.batches = False
        """Whether appends send a partition's records as one batch (the broker reports its
        end right: `_batches_hold`), else one record per produce request."""
        self._recent: dict[TopicPartition, collections.deque[tuple[int, str]]] = {}  # in order
        self._from: dict[TopicPartition, int] = {}  # where the index started reading
        self._tips: dict[str, tuple[str, int]] = {}  # stream -> (hash, offset) of its last
        self._sweep_at = TIPS_SWEEP_MIN  # forget streams that left the window at this many
        self._indexed: dict[TopicPartition, int] = {}  # next offset the id index has not seen
        self._closed = False
        # Appends of this process's threads that meet share one append (one produce request
        # per partition instead of one per caller): `ledgerflow.events.group_commit`.
        self._group: GroupCommit[Event, Recorded] = GroupCommit(
            self._append_now, shared=(Unavailable, Timeout)
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"kafka-log-{topic_prefix}", daemon=True
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
        except concurrent.futures.CancelledError:  # aiokafka cancelled it (a lost connection)
            raise Unavailable(
                f"{what} was cancelled by the Kafka client; is the broker at {self.bootstrap} "
                "up and reachable?"
            ) from None
        except KafkaError as e:
            raise Unavailable(f"{what} failed: {e!r}; is Kafka at {self.bootstrap} healthy?") from e

    def consumer(self, max_wait_ms: int = 500, **options: Any) -> AIOKafkaConsumer[bytes, bytes]:
        """A consumer for this cluster; must be made (and used) on the log's loop."""
        return AIOKafkaConsumer(
            fetch_max_wait_ms=max_wait_ms,
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **({"group_id": None} | options),
        )

    async def _open(self) -> None:
        self._lock = asyncio.Lock()  # serializes the reader consumer and the id index
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            for topic in self.topics.values():
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(topic, self._want_partitions, self._replication)]
                    )
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(self._probe, 1, self._replication)])
        finally:
            await admin.close()
        self._producer = p = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=self._idempotent,
            linger_ms=0,
        )
        await p.start()
        self._reader = r = self.consumer(max_wait_ms=10)  # short: see _fetch_many
        await r.start()
        for topic in self.topics.values():
            found = await self._partitions_of(r, topic)
            self.partitions[topic] = len(found)
            for n in sorted(found):
                tp = TopicPartition(topic, n)
                self._tps.append(tp)
                self._names[tp] = name = partition_name(tp)
                self._by_name[name] = tp
                self._recent[tp] = collections.deque()
        self.batches = await self._batches_hold(r)
        r.assign(self._tps)
        r.pause(*self._tps)  # fetching only inside _fetch_many
        for tp, end in (await self._ends(r, self._tps)).items():  # the window, not the log
            self._indexed[tp] = self._from[tp] = max(0, end - self._window)
        async with self._lock:
            await self._catch_up_index(self._tps)

    async def _batches_hold(self, consumer: AIOKafkaConsumer[bytes, bytes]) -> bool:
        """Whether the broker reports a multi-record batch's end as Kafka does: two records
        produced as one batch to the probe topic, then its end offset must be their base
        offset + 2 exactly. Tansu answers base + 1 (the second record would stay hidden
        from readers), and a concurrent probe makes the end larger: either way, one record
        per produce request, which is always right."""
        batch = self._p.create_batch()
        for n in (1, 2):
            batch.append(timestamp=None, key=None, value=f"probe {n}".encode(), headers=[])
        meta = await (await self._p.send_batch(batch, self._probe, partition=0))
        await self._partitions_of(consumer, self._probe)
        tp = TopicPartition(self._probe, 0)
        return int((await consumer.end_offsets([tp]))[tp]) == int(meta.offset) + 2

    async def _partitions_of(
        self, consumer: AIOKafkaConsumer[bytes, bytes], topic: str
    ) -> set[int]:
        deadline = time.monotonic() + self.timeout
        while True:
            found = consumer.partitions_for_topic(topic)
            if found:
                return set(found)
            if time.monotonic() > deadline:
                raise Unavailable(f"topic {topic} has no partitions on Kafka at {self.bootstrap}")
            await consumer.topics()  # refreshes the cluster metadata
            await asyncio.sleep(0.05)

    async def _ends(
        self, consumer: AIOKafkaConsumer[bytes, bytes], tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        ends = await consumer.end_offsets(list(tps))
        return {tp: int(ends[tp]) for tp in tps}

    async def _fetch_many(
        self,
        consumer: AIOKafkaConsumer[bytes, bytes],
        ranges: dict[TopicPartition, tuple[int, int]],
        limit: int,
    ) -> dict[TopicPartition, list[Record]]:
        """Records with offsets in [start, end) of each partition, stopping once `limit`
        arrived in all; what each partition gives is a prefix of its range.

        Partitions the consumer has paused (all of the handle's reader's, between reads)
        are resumed for the read and paused again after it. An assigned, unpaused partition
        read to its end keeps a fetch long-polling the broker, and a broker answers one
        connection's requests in order: every `end_offsets` on the reader (one per append)
        would wait behind that poll, ~`fetch_max_wait_ms` as soon as a partition holds
        records (docs/reliability.md, soak)."""
        out: dict[TopicPartition, list[Record]] = {tp: [] for tp in ranges}
        pending = {tp for tp, (start, end) in ranges.items() if start < end}
        paused = pending & consumer.paused()
        for tp in pending:
            consumer.seek(tp, ranges[tp][0])
        consumer.resume(*paused)
        try:
            await self._fetch_into(consumer, ranges, limit, pending, out)
        finally:
            consumer.pause(*paused)
        return out

    async def _fetch_into(
        self,
        consumer: AIOKafkaConsumer[bytes, bytes],
        ranges: dict[TopicPartition, tuple[int, int]],
        limit: int,
        pending: set[TopicPartition],
        out: dict[TopicPartition, list[Record]],
    ) -> None:
        total = 0
        deadline = time.monotonic() + self.timeout
        while pending and total < limit:
            batch = await consumer.getmany(
                *pending, timeout_ms=int(_POLL_S * 1000), max_records=limit - total
            )
            for tp, records in batch.items():
                end = ranges[tp][1]
                for rec in records:
                    if rec.offset >= end:
                        break
                    out[tp].append(rec)
                    total += 1
            for tp in list(pending):
                if await consumer.position(tp) >= ranges[tp][1]:
                    pending.discard(tp)
            if pending and time.monotonic() > deadline:
                raise Unavailable(
                    f"reading {', '.join(self._names[tp] for tp in pending)}: records did not "
                    f"arrive in {self.timeout:.0f}s; is Kafka at {self.bootstrap} healthy?"
                )

    async def _catch_up_index(self, tps: Sequence[TopicPartition]) -> None:
        """Read what others appended to `tps` into the id index and the streams' last
        hashes, until a look at the ends finds nothing new (so the window in which
        another handle's append can race this one's is one produce, not one catch-up)."""
        while True:
            ends = await self._ends(self._r, tps)
            ranges = {
                tp: (self._indexed[tp], ends[tp]) for tp in tps if self._indexed[tp] < ends[tp]
            }
            if not ranges:
                return
            while ranges:
                for tp, records in (await self._fetch_many(self._r, ranges, 10_000)).items():
                    for rec in records:
                        id_ = _header(rec, "id")
                        if id_:
                            self._remember(id_, tp, rec.offset)
                        stream = _header(rec, "stream")
                        if stream:  # one without a hash restarts its stream's chain
                            self._tips[stream] = (_header(rec, "hash") or GENESIS, rec.offset)
                        self._indexed[tp] = rec.offset + 1
                ranges = {
                    tp: (self._indexed[tp], end)
                    for tp, (_, end) in ranges.items()
                    if self._indexed[tp] < end
                }

    def _remember(self, id_: str, tp: TopicPartition, offset: int) -> None:
        """Index `id_` at its first place, and forget ids that left the window."""
        if id_ in self._ids:
            return
        self._ids[id_] = (tp, offset)
        recent = self._recent[tp]
        recent.append((offset, id_))
        while recent and recent[0][0] <= offset - self._window:
            _, old = recent.popleft()
            if self._ids.get(old, (None, None))[0] == tp:
                del self._ids[old]

    def _window_start(self, tp: TopicPartition) -> int:
        """The first offset of `tp` whose streams' last hashes this handle still knows."""
        return max(self._from[tp], self._indexed[tp] - self._window)

    async def _tip(self, tp: TopicPartition, stream: str) -> str:
        """The hash of `stream`'s last record: known within the window, else read from the
        partition backwards from the window's start (once per stream)."""
        known = self._tips.get(stream)
        if known is not None:
            return known[0]
        found: tuple[str, int] | None = None
        end = self._window_start(tp)
        while end > 0 and found is None:
            start = max(0, end - 10_000)
            records = (await self._fetch_many(self._r, {tp: (start, end)}, end - start))[tp]
            for rec in records:
                if _header(rec, "stream") == stream:
                    found = (_header(rec, "hash") or GENESIS, rec.offset)
            end = start
        self._tips[stream] = found = found or (GENESIS, -1)
        return found[0]

    def _forget_old_tips(self) -> None:
        """Drop the last hashes of streams whose last record left the window, once their
        number has doubled since the last sweep (amortized constant per append)."""
        if len(self._tips) < self._sweep_at:
            return
        starts = {tp: self._window_start(tp) for tp in self._tps}
        for stream, (_, offset) in list(self._tips.items()):
            if offset < starts[self.where(stream)]:
                del self._tips[stream]
        self._sweep_at = max(TIPS_SWEEP_MIN, 2 * len(self._tips))

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

    def where(self, stream: str) -> TopicPartition:
        """The partition a stream lives in."""
        topic = self.topics[category_of(stream)]
        return TopicPartition(topic, partition_of(stream, self.partitions[topic]))

    def _starts(self, after: Checkpoint) -> dict[TopicPartition, int]:
        unknown = set(after.partitions()) - set(self._by_name)
        if unknown:
            raise InvalidInput(
                f"checkpoint {after.encode()!r} names partitions this log does not have "
                f"({', '.join(sorted(unknown))}); pass a checkpoint this log gave",
                field="after",
            )
        starts: dict[TopicPartition, int] = {}
        for tp in self._tps:
            last = after.get(self._names[tp])
            starts[tp] = 0 if last is None else last + 1
        return starts

    # -- the port ---------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> list[Recorded]:
        if not events:
            return []
        return self._group.append(events)

    def _append_now(self, events: Sequence[Event]) -> list[Recorded]:
        return self._call(self._append(list(events)), "appending to the Kafka event log")

    async def _append(self, events: list[Event]) -> list[Recorded]:
        async with self._lock:
            await self._catch_up_index(sorted({self.where(e.stream) for e in events}))
            where = {ev.id: self._ids[ev.id] for ev in events if ev.id in self._ids}
            fresh = list({ev.id: ev for ev in events if ev.id not in where}.values())
            values = [encode(ev) for ev in fresh]  # every one encodes before any is written
            planned: list[_Planned] = []
            tips: dict[str, str] = {}  # the chain as it will be once these are written
            for ev, value in zip(fresh, values, strict=True):
                tp = self.where(ev.stream)
                prev = tips.get(ev.stream) or await self._tip(tp, ev.stream)
                tips[ev.stream] = hash_ = chain_hash(prev, value)
                planned.append(_Planned(tp, ev, value, prev, hash_))
            if self.batches:
                by_partition: dict[TopicPartition, list[_Planned]] = {}
                for each in planned:
                    by_partition.setdefault(each.tp, []).append(each)
                sent = await asyncio.gather(
                    *(self._send_batches(got) for got in by_partition.values())
                )
                offsets = [offset for some in sent for offset in some]
                planned = [each for got in by_partition.values() for each in got]
            else:  # one record per produce request (see _batches_hold)
                offsets = []
                for each in planned:
                    offsets.append(await self._send_one(each))
                    self._placed(each, offsets[-1])
            where.update((e.ev.id, (e.tp, o)) for e, o in zip(planned, offsets, strict=True))
            self._forget_old_tips()
            return [Recorded(where[ev.id][1], ev, self._names[where[ev.id][0]]) for ev in events]

    async def _send_one(self, each: _Planned) -> int:
        meta = await self._p.send_and_wait(
            each.tp.topic, each.value, key=each.ev.stream.encode(), partition=each.tp.partition,
            timestamp_ms=each.ev.time,  # the record's time is the event's (checkpoint_at)
            headers=each.headers(),
        )  # fmt: skip
        return int(meta.offset)

    async def _send_batches(self, planned: list[_Planned]) -> list[int]:
        """`planned` (one partition's records, in order) in as few produce requests as the
        batch size allows; their offsets."""
        tp = planned[0].tp
        offsets: list[int] = []
        while planned:
            batch = self._p.create_batch()
            taken = 0
            for each in planned:
                appended = batch.append(
                    timestamp=each.ev.time, key=each.ev.stream.encode(), value=each.value,
                    headers=each.headers(),
                )  # fmt: skip
                if appended is None:
                    break
                taken += 1
            if taken == 0:  # one record over the batch size: a request of its own
                offsets.append(await self._send_one(planned[0]))
                self._placed(planned[0], offsets[-1])
                planned = planned[1:]
                continue
            meta = await (await self._p.send_batch(batch, tp.topic, partition=tp.partition))
            for n, each in enumerate(planned[:taken]):
                offsets.append(int(meta.offset) + n)
                self._placed(each, offsets[-1])
            planned = planned[taken:]
        return offsets

    def _placed(self, each: _Planned, offset: int) -> None:
        """`each` is stored at `offset`: its stream's chain and the id index move on."""
        self._tips[each.ev.stream] = (each.hash, offset)
        self._remember(each.ev.id, each.tp, offset)
        if offset == self._indexed[each.tp]:
            self._indexed[each.tp] += 1  # nobody else wrote in between

    def read(
        self,
        after: Checkpoint | Position | None = None,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        *,
        until: Checkpoint | None = None,
    ) -> Iterator[Item]:
        match = TypeMatcher(types)
        start = self._starts(Checkpoint.coerce(after))
        bounds = None if until is None else self._bounds(until)
        records = self._call(self._read(start, limit, bounds), "reading the Kafka event log")
        for rec in records:
            if match(_header(rec, "type")):
                yield self._decode(rec)

    def _bounds(self, until: Checkpoint) -> dict[TopicPartition, int]:
        """The offset each partition is read up to (exclusive) when reading `until`."""
        self._starts(until)  # names only partitions of this log
        offsets = until.partitions()
        return {tp: offsets.get(self._names[tp], -1) + 1 for tp in self._tps}

    async def _read(
        self,
        starts: dict[TopicPartition, int],
        limit: int,
        bounds: dict[TopicPartition, int] | None = None,
    ) -> list[Record]:
        async with self._lock:
            ends = await self._ends(self._r, self._tps)
            if bounds is not None:
                ends = {tp: min(end, bounds[tp]) for tp, end in ends.items()}
            got = await self._fetch_many(
                self._r, {tp: (starts[tp], ends[tp]) for tp in self._tps}, limit
            )
        # Each partition's records in their order; partitions interleaved by time.
        merged = heapq.merge(*got.values(), key=lambda r: r.timestamp)
        return [rec for _, rec in zip(range(limit), merged, strict=False)]

    def head(self) -> Checkpoint:
        return self._call(self._head(), "reading the Kafka event log head")

    def stored(self) -> StoredLog:
        """Every record as stored, partition by partition up to today's ends, for
        `verify`; through a consumer of its own, so appends go on meanwhile."""
        begins, ends = self._call(self._extent(), "reading the Kafka event log's bounds")
        trimmed = {self._names[tp]: begin for tp, begin in begins.items() if begin > 0}
        return StoredLog(self._stored(begins, ends), forks=True, trimmed=trimmed)

    async def _extent(self) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Where each partition begins (retention may have trimmed it) and ends now."""
        async with self._lock:
            begins = await self._r.beginning_offsets(self._tps)
            ends = await self._ends(self._r, self._tps)
        return {tp: int(begins[tp]) for tp in self._tps}, ends

    def _stored(
        self, begins: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> Iterator[StoredEvent]:
        consumer = self._call(self._verifying_consumer(), "reading Kafka to verify it")
        try:
            for tp in self._tps:
                start, end = begins[tp], ends[tp]
                while start < end:
                    records = self._call(
                        self._stored_range(consumer, tp, start, end),
                        f"reading {self._names[tp]} to verify it",
                    )
                    if not records:
                        break
                    for rec in records:
                        yield _stored_event(rec, self._names[tp])
                    start = records[-1].offset + 1
        finally:
            with contextlib.suppress(Unavailable):
                self._call(consumer.stop(), "closing the verifying consumer")

    async def _verifying_consumer(self) -> AIOKafkaConsumer[bytes, bytes]:
        # Made on the log's loop, as aiokafka needs; a short fetch wait, since a partition
        # read to its end must not hold the walk for the broker's long poll.
        consumer = self.consumer(max_wait_ms=10)
        await consumer.start()
        return consumer

    async def _stored_range(
        self, consumer: AIOKafkaConsumer[bytes, bytes], tp: TopicPartition, start: int, end: int
    ) -> list[Record]:
        """Records from [start, end) of one partition, a chunk at a time; only that partition
        is assigned, so the consumer prefetches nothing it will not read next."""
        if consumer.assignment() != {tp}:
            consumer.assign([tp])
        return (await self._fetch_many(consumer, {tp: (start, end)}, 10_000))[tp]

    async def _head(self) -> Checkpoint:
        async with self._lock:
            ends = await self._ends(self._r, self._tps)
        return Checkpoint({self._names[tp]: end - 1 for tp, end in ends.items() if end > 0})

    def checkpoint_at(self, time_ms: int) -> Checkpoint:
        """Scans each partition from its start for its first record stamped after
        `time_ms` (records carry their event's time; ones written before that carry the
        moment they were sent, a few milliseconds after it). It reads on a consumer of
        its own, so appends do not wait for it."""
        return self._call(self._checkpoint_at(time_ms), "finding a time in the Kafka log")

    async def _checkpoint_at(self, time_ms: int) -> Checkpoint:
        consumer = self.consumer()
        await consumer.start()
        try:
            consumer.assign(self._tps)
            ends = await self._ends(consumer, self._tps)
            stops: dict[TopicPartition, int] = {}  # where each partition's prefix ends
            scanned = dict.fromkeys(self._tps, 0)
            while ranges := {
                tp: (scanned[tp], ends[tp])
                for tp in self._tps
                if tp not in stops and scanned[tp] < ends[tp]
            }:
                got = await self._fetch_many(consumer, ranges, 10_000)
                if not any(got.values()):
                    break  # only markers left before the ends
                for tp, records in got.items():
                    for rec in records:
                        if rec.timestamp > time_ms:
                            stops[tp] = rec.offset
                            break
                        scanned[tp] = rec.offset + 1
        finally:
            await consumer.stop()
        return Checkpoint(
            {self._names[tp]: stop - 1 for tp in self._tps if (stop := stops.get(tp, ends[tp])) > 0}
        )

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
        seen = Checkpoint.coerce(self.head() if after == "latest" else after)
        match = TypeMatcher(types)
        consumer = self._call(self._start_follower(self._starts(seen)), "subscribing to Kafka")
        poll_ms = int(min(idle_wait, _POLL_S) * 1000)
        try:
            ends = None if follow else self._call(self._ends(consumer, self._tps), "the head")
            while not (stop is not None and stop.is_set()):
                if ends is not None:
                    starts = self._starts(seen)
                    ranges = {tp: (starts[tp], ends[tp]) for tp in self._tps}
                    got = self._call(self._fetch_many(consumer, ranges, batch), "reading")
                    records = list(heapq.merge(*got.values(), key=lambda r: r.timestamp))
                    if not records:
                        return
                else:
                    records = self._call(self._poll(consumer, batch, poll_ms), "following")
                for rec in records:
                    item = self._decode(rec)
                    seen = seen.advance(item)
                    if match(_header(rec, "type")):
                        yield item
        finally:
            with contextlib.suppress(Unavailable):
                self._call(consumer.stop(), "closing a Kafka follower")

    async def _start_follower(
        self, starts: dict[TopicPartition, int]
    ) -> AIOKafkaConsumer[bytes, bytes]:
        consumer = self.consumer()  # aiokafka objects must be made on their loop
        await consumer.start()
        consumer.assign(self._tps)
        for tp, start in starts.items():
            consumer.seek(tp, start)
        return consumer

    async def _poll(
        self, consumer: AIOKafkaConsumer[bytes, bytes], batch: int, poll_ms: int
    ) -> list[Record]:
        got = await consumer.getmany(timeout_ms=poll_ms, max_records=batch)
        return [rec for records in got.values() for rec in records]

    def decode(self, rec: Record) -> Item:
        """A consumed record as a log item (corrupt ones kept, with the reason)."""
        return self._decode(rec)

    def _decode(self, rec: Record) -> Item:
        raw = rec.value or b""
        partition = partition_name(TopicPartition(rec.topic, rec.partition))
        try:
            return Recorded(rec.offset, decode(raw, self.registry), partition)
        except CorruptEvent as e:
            return CorruptRecord(
                rec.offset,
                _header(rec, "id"),
                _header(rec, "type"),
                _header(rec, "stream") or (rec.key or b"").decode(errors="replace"),
                raw.decode(errors="replace"),
                e.message,
                partition,
            )

    def run(self, coro: Coroutine[Any, Any, T], what: str, timeout: float | None = None) -> T:
        """Run a coroutine on the log's event loop (for consumers made by `consumer()`)."""
        return self._call(coro, what, timeout)

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


def _stored_event(rec: Record, partition: str) -> StoredEvent:
    """A record as the verifier sees it: the value is the hashed document; id and stream
    come from it (the headers only where it is not a Ledgerflow event)."""
    value = rec.value or b""
    cut = value.find(b',"data":')
    try:
        head = json.loads(value[:cut] + b"}") if cut > 0 else {}
        id_, stream = head["id"], head["stream"]
        if not isinstance(id_, str) or not isinstance(stream, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        id_, stream = _header(rec, "id"), _header(rec, "stream")
    hash_ = _header(rec, "hash") or None
    prev = _header(rec, "prev") if hash_ else None
    return StoredEvent(partition, rec.offset, id_, stream, value, prev, hash_)


def _header(rec: Record, name: str) -> str:
    for key, value in rec.headers:
        if key == name:
            return bytes(value).decode(errors="replace")
    return ""
