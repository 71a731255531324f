"""The Faust traffic worker on a Kafka-protocol broker (Tansu) and Redis: it folds the
inference topic and publishes per-deployment aggregates to Redis, equal to what the
in-process fold computes from the same events."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from ledgerflow.events.deployment_payloads import (
    FeedbackRecorded,
    InferenceRecord,
    InferenceRecorded,
)
from ledgerflow.events.envelope import Event
from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.series import DeploymentTraffic
from ledgerflow.services.analytics.snapshots import (
    RedisTrafficSnapshots,
    snapshot_key,
    snapshot_keys,
)
from ledgerflow.services.analytics.traffic import TRAFFIC_TYPES
from ledgerflow.services.analytics.window import TrafficStats
from tests.conftest import free_port
from tests.metrics_text import sample

pytestmark = pytest.mark.slow
WAIT_S = 60.0


def _batch(deployment: str, start: int, n: int) -> list[Event]:
    records = tuple(
        InferenceRecord(
            request_id=f"q{i}", variant="ab"[i % 2], time=1000 + i, latency_ms=2.0 + i % 7,
            ok=i % 10 != 0,
        )
        for i in range(start, start + n)
    )  # fmt: skip
    feedback = [
        FeedbackRecorded(
            deployment=deployment, request_id=f"q{i}", value=float(i % 3 == 0), time=2000
        )
        for i in range(start, start + n)
    ]
    payloads = [InferenceRecorded(deployment=deployment, replica="r1", records=records), *feedback]
    return [Event.of(p) for p in payloads]


class Worker:
    """`ledgerflow traffic-stats --metrics-port PORT`, the worker as users start it."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.path = log
        self.log = log.open("ab")
        self.metrics_port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow", "traffic-stats",
             "--metrics-port", str(self.metrics_port), *args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def folded(self) -> float:
        try:
            return sample(self.metrics(), "ledgerflow_traffic_events_folded_total") or 0.0
        except httpx.HTTPError:
            return 0.0  # not serving yet

    def report(self) -> str:
        """What it says of its join (feedback held, given up, repeated; records passed
        over) and the end of its log, for a failure's message."""
        try:
            lines = [m for m in self.metrics().splitlines() if m.startswith("ledgerflow_traffic")]
        except httpx.HTTPError as e:
            lines = [f"(no metrics: {e})"]
        tail = self.path.read_text(errors="replace")[-4000:]
        return "\n".join([*lines, f"end of {self.path.name}:", tail])

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def setup(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[KafkaEventLog, dict[str, str], RedisTrafficSnapshots, str]]:
    prefix = f"tr{uuid.uuid4().hex[:8]}"
    log = KafkaEventLog(kafka_bootstrap, topic_prefix=prefix, partitions=2, idempotent=False)
    env = {
        **os.environ,
        "LEDGERFLOW_EVENT_LOG": f"kafka://{kafka_bootstrap}",
        "LEDGERFLOW_KAFKA_TOPIC_PREFIX": prefix,
        "LEDGERFLOW_KAFKA_PARTITIONS": "2",
        "LEDGERFLOW_REDIS_URL": redis_url,
        "LEDGERFLOW_TRACKING_URI": str(tmp_path / "data"),
    }
    snapshots = RedisTrafficSnapshots.from_url(redis_url)
    deployment = f"dep-{prefix}"
    try:
        yield log, env, snapshots, deployment
    finally:
        snapshots.delete(deployment)
        snapshots.close()
        log.close()


def _fold(deployment: str, events: list[Event]) -> dict[str, VariantStats]:
    fold = TrafficStats()
    fold.apply_all([e.data for e in events])  # type: ignore[misc]
    return fold.snapshot(deployment)


def _wait_for(
    snapshots: RedisTrafficSnapshots,
    deployment: str,
    expected: dict[str, VariantStats],
    worker: Worker | None = None,
) -> dict[str, VariantStats]:
    """Wait until Redis holds exactly `expected` (a failure shows what `worker` says)."""
    deadline = time.monotonic() + WAIT_S
    seen: dict[str, VariantStats] = {}
    while time.monotonic() < deadline:
        seen = snapshots.snapshot(deployment)
        if seen == expected:
            return seen
        time.sleep(0.2)
    diff = {
        name: (seen[name].to_dict() if name in seen else None, stats.to_dict())
        for name, stats in expected.items()
        if seen.get(name) != stats
    }
    said = "" if worker is None else f"\nthe worker:\n{worker.report()}"
    pytest.fail(f"the worker did not publish what the fold gives in {WAIT_S}s: {diff}{said}")


def test_the_faust_worker_publishes_the_same_statistics_as_the_in_process_fold(
    setup: tuple[KafkaEventLog, dict[str, str], RedisTrafficSnapshots, str], tmp_path: Path
) -> None:
    log, env, snapshots, deployment = setup
    first, second = _batch(deployment, 0, 40), _batch(deployment, 40, 30)
    log.append(first)  # before the worker starts: read from the beginning
    worker = Worker(env, tmp_path / "worker.log")
    try:
        _wait_for(snapshots, deployment, _fold(deployment, first))
        log.append(second)  # while it runs
        got = _wait_for(snapshots, deployment, _fold(deployment, first + second))
        metrics = worker.metrics()  # what Prometheus scrapes from it
    finally:
        worker.stop()
    folded = sample(metrics, "ledgerflow_traffic_events_folded_total")  # at least once
    assert folded is not None and folded >= len(first + second), metrics
    assert (sample(metrics, "ledgerflow_traffic_snapshots_published_total", outcome="ok") or 0) >= 1
    assert sample(metrics, "ledgerflow_traffic_snapshots_published_total", outcome="failed") == 0
    assert got["a"].requests == 35 and got["b"].outcomes["conversion"].n == 35
    found = snapshots.load(deployment)
    assert found is not None and isinstance(found[0], DeploymentTraffic)
    assert snapshots.requests_since(deployment, "a", 1000) == 35


def _traffic(deployment: str, n: int) -> list[Event]:
    """`n` requests as replicas and clients record them: inference in batches of 5, each
    outcome a few batches after its request (so outcomes and their requests straddle any
    restart), some outcomes naming their variant, some before their request (a slow
    replica's flush), some sent twice (a client retrying)."""
    out: list[Event] = []
    late: list[FeedbackRecorded] = []
    for b in range(0, n, 5):
        out += [Event.of(f) for f in late[:5]]
        del late[:5]
        records = tuple(
            InferenceRecord(request_id=f"q{i}", variant="ab"[i % 2], time=1000 + 7 * i,
                            latency_ms=1.0 + i % 11, ok=i % 17 != 0)
            for i in range(b, min(b + 5, n))
        )  # fmt: skip
        for i, r in enumerate(records, b):
            fb = FeedbackRecorded(
                deployment=deployment, request_id=r.request_id, value=float(i % 3 == 0),
                time=r.time + 50, variant=r.variant if i % 4 == 0 else None,
            )  # fmt: skip
            if i % 13 == 0:
                out.append(Event.of(fb))
            else:
                late.append(fb)
            if i % 10 == 0:
                late.append(fb)
        out.append(
            Event.of(InferenceRecorded(deployment=deployment, replica="r1", records=records))
        )
    return out + [Event.of(f) for f in late]


def _recount(log: KafkaEventLog, deployment: str) -> dict[str, VariantStats]:
    """The deployment's statistics folded afresh from every traffic event on the log."""
    fold = TrafficStats()
    for item in log.read(types=list(TRAFFIC_TYPES), limit=1_000_000):
        fold.apply(item.event.data)  # type: ignore[union-attr,arg-type]
    return fold.snapshot(deployment)


def _commit_ahead(log: KafkaEventLog) -> None:
    """Commit the worker group's offsets at the inference topic's end, as Faust may before
    its table's changelog holds the records (or as a worker of an older version left them)."""

    async def commit() -> None:
        consumer: AIOKafkaConsumer[bytes, bytes] = AIOKafkaConsumer(
            bootstrap_servers=log.bootstrap, group_id=f"{log.prefix}-traffic"
        )
        await consumer.start()
        try:
            tps = [TopicPartition(f"{log.prefix}.inference", p) for p in range(2)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
        finally:
            await consumer.stop()

    asyncio.run(commit())


def _stop_midstream(worker: Worker, sig: signal.Signals, at_least: int) -> float:
    """Signal the worker once it has folded `at_least` events; returns how many it had."""
    deadline = time.monotonic() + WAIT_S
    while (folded := worker.folded()) < at_least:
        if time.monotonic() > deadline:
            pytest.fail(f"the worker folded {folded} events in {WAIT_S}s, not {at_least}")
        time.sleep(0.02)
    worker.stop(sig)
    return folded


def test_the_faust_worker_counts_exactly_across_sigterm_and_sigkill_restarts(
    setup: tuple[KafkaEventLog, dict[str, str], RedisTrafficSnapshots, str], tmp_path: Path
) -> None:
    """A worker stopped mid-stream (SIGTERM: Faust's graceful stop; SIGKILL: no stop at
    all) and started again publishes exactly what a recount of the log gives: no event
    lost, none counted twice, every outcome joined to its request's variant. Where it
    resumes is its table's business, not the consumer offsets committed."""
    log, env, snapshots, deployment = setup
    events = _traffic(deployment, 600)
    thirds = len(events) // 3
    # the SIGKILLed worker's partitions move sooner; INFO says where each resumes
    quick = ("--session-timeout", "3", "--log-level", "INFO")
    log.append(events[:thirds])
    _commit_ahead(log)
    first = Worker(env, tmp_path / "worker-1.log", *quick)
    assert _stop_midstream(first, signal.SIGTERM, 1) < thirds
    second = Worker(env, tmp_path / "worker-2.log", *quick)
    try:
        log.append(events[thirds : 2 * thirds])
        assert _stop_midstream(second, signal.SIGKILL, thirds // 3) < 2 * thirds
    finally:
        second.stop(signal.SIGKILL)
    third = Worker(env, tmp_path / "worker-3.log", *quick)
    try:
        log.append(events[2 * thirds :])
        expected = _recount(log, deployment)
        assert expected["a"].requests + expected["b"].requests == 600
        got = _wait_for(snapshots, deployment, expected, third)
    finally:
        third.stop()
    assert got == expected


def test_the_faust_worker_publishes_again_what_redis_lost_without_new_traffic(
    setup: tuple[KafkaEventLog, dict[str, str], RedisTrafficSnapshots, str], tmp_path: Path
) -> None:
    """Redis restarted without persistence, or flushed, loses the published statistics;
    the worker publishes them again though the deployment gets no traffic (a quiet
    deployment would otherwise show none to the deployer and the gateway until its next
    request). Only this test's key is deleted: the Redis is shared."""
    log, env, snapshots, deployment = setup
    events = _batch(deployment, 0, 20)
    log.append(events)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        expected = _wait_for(snapshots, deployment, _fold(deployment, events))
        snapshots.client.delete(snapshot_key(deployment))
        assert _wait_for(snapshots, deployment, expected) == expected
        # Lost while new traffic waits to be published (a window 40 s later: another
        # chunk): published whole, not just the changed chunk over an empty Redis.
        more: list[Event] = []
        for k in range(12):  # traffic waiting at every publish (each 0.5 s) around the loss
            if k == 2:
                snapshots.client.delete(*snapshot_keys(deployment))
            more += _batch(deployment, 40_000 + 10 * k, 10)
            log.append(more[-11:])
            time.sleep(0.1)
        expected = _fold(deployment, events + more)
        fresh = RedisTrafficSnapshots(snapshots.client, prefix=snapshots.prefix)  # no chunks held
        assert _wait_for(fresh, deployment, expected) == expected
    finally:
        worker.stop()


def test_a_worker_that_cannot_reach_the_broker_says_so_in_one_line_and_exits_1(
    redis_url: str, tmp_path: Path
) -> None:
    """As every Ledgerflow process does (a restart policy's log, an operator): `Error: ...`
    naming the cause, not only Faust's traceback."""
    env = {
        **os.environ,
        "LEDGERFLOW_EVENT_LOG": f"kafka://127.0.0.1:{free_port()}",
        "LEDGERFLOW_REDIS_URL": redis_url,
        "LEDGERFLOW_TRACKING_URI": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "traffic-stats"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert done.returncode == 1, done.stderr
    assert errors and "Unable to bootstrap from" in errors[-1], done.stderr


def test_snapshots_round_trip_through_redis(redis_url: str) -> None:
    store = RedisTrafficSnapshots.from_url(redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    fold = TrafficStats()
    fold.apply_all([e.data for e in _batch("web", 0, 10)])  # type: ignore[misc]
    try:
        assert store.load("web") is None and store.snapshot("web") == {}
        store.publish("web", fold.deployment("web"))
        assert store.snapshot("web") == fold.snapshot("web")
        store.client.set(snapshot_key("web", store.prefix), b"not json")
        with pytest.raises(Exception, match="undecodable traffic snapshot"):
            store.load("web")
    finally:
        store.delete("web")
        store.close()
