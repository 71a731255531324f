"""Traffic snapshots in Redis, chunked (`services/analytics/snapshots.py`): a reader that
decodes only the chunks published since its last read assembles exactly the traffic the
writer's fold holds, through compaction, late windows and a writer's restart, and a
publish in steady traffic writes only the chunks the last second touched."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from ledgerflow.events.codec import encode
from ledgerflow.events.deployment_payloads import (
    FeedbackRecorded,
    InferenceRecord,
    InferenceRecorded,
)
from ledgerflow.events.envelope import Event
from ledgerflow.services.analytics.snapshots import CHUNK_WINDOWS, RedisTrafficSnapshots
from ledgerflow.services.analytics.table_fold import TableFold


@pytest.fixture
def stores(redis_url: str, redis_prefix: str) -> Iterator[tuple[RedisTrafficSnapshots, ...]]:
    writer = RedisTrafficSnapshots.from_url(redis_url, prefix=redis_prefix)
    reader = RedisTrafficSnapshots.from_url(redis_url, prefix=redis_prefix)
    yield writer, reader
    writer.close()
    reader.close()


def _traffic(rng: random.Random, n: int, now: int, late_ms: int) -> list[bytes]:
    records = tuple(
        InferenceRecord(
            request_id=f"q{now}-{i}", variant=rng.choice("abc"),
            time=now - rng.randint(0, late_ms), latency_ms=rng.uniform(1, 50),
            ok=rng.random() > 0.1,
        )
        for i in range(n)
    )  # fmt: skip
    feedback = FeedbackRecorded(
        deployment="web", request_id=f"q{now}-0", value=rng.random(), time=now
    )
    return [
        encode(Event.of(InferenceRecorded(deployment="web", replica="r", records=records))),
        encode(Event.of(feedback)),
    ]


def _publish(fold: TableFold, store: RedisTrafficSnapshots) -> None:
    names, changed, reloaded = fold.take_unpublished()
    for name in reloaded:
        store.writer.forget(name)
    for name in names:
        store.publish(name, fold.stats.deployment(name), changed.get(name, ()))


def test_a_reader_of_the_changed_chunks_assembles_exactly_what_the_writer_folded(
    stores: tuple[RedisTrafficSnapshots, RedisTrafficSnapshots],
) -> None:
    writer, reader = stores
    rng = random.Random(7)
    fold = TableFold({}, window_ms=1000, retention_ms=200_000)  # compacts every 200 s
    now, offset = 1_000_000, 0
    for step in range(400):
        for _ in range(rng.randint(0, 4)):
            now += rng.randint(0, 700)
            for raw in _traffic(rng, 3, now, late_ms=3000):
                fold.handle(raw, 0, offset)
                offset += 1
        _publish(fold, writer)
        if step == 120:
            writer.writer.forget("web")  # a restarted worker: a new generation, written whole
        found = reader.load("web")
        if found is None:
            continue
        mine = fold.stats.deployment("web")
        assert found[0] == mine, step
        for since in (None, 1_003_000, 1_000_000 + 30 * step, now - 5_000, now - 60_000):
            assert reader.snapshot("web", since) == mine.snapshot(since), (step, since)
            since = since or 0
            assert reader.requests_since("web", "b", since) == mine.requests_since("b", since)
    assert fold.stats.deployment("web").series("a").past_until is not None  # it did compact


def test_in_steady_traffic_a_publish_writes_only_the_chunks_the_last_second_touched(
    stores: tuple[RedisTrafficSnapshots, RedisTrafficSnapshots],
) -> None:
    writer, _ = stores
    rng = random.Random(3)
    fold = TableFold({}, window_ms=1000)
    offset = 0
    written: list[int] = []
    for second in range(10 * CHUNK_WINDOWS):
        now = 5_000_000 + second * 1000
        for raw in _traffic(rng, 25, now, late_ms=0):
            fold.handle(raw, 0, offset)
            offset += 1
        _, changed, _ = fold.take_unpublished()
        pub = writer.writer.plan("web", fold.stats.deployment("web"), changed["web"])
        written.append(len(pub.chunks))
    assert written[0] == 2  # the first publish: everything (the past and one chunk)
    assert max(written[1:]) == 1
