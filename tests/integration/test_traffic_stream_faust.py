"""The Faust traffic worker on a Kafka-protocol broker (Tansu) and Redis: it folds the
inference topic and publishes per-deployment aggregates to Redis, equal to what the
in-process fold computes from the same events."""

from __future__ import annotations

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

from ledgerflow.events.deployment_payloads import (
    FeedbackRecorded,
    InferenceRecord,
    InferenceRecorded,
)
from ledgerflow.events.envelope import Event
from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.series import DeploymentTraffic
from ledgerflow.services.analytics.snapshots import RedisTrafficSnapshots, snapshot_key
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

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.metrics_port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow", "traffic-stats",
             "--metrics-port", str(self.metrics_port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
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
        snapshots.client.delete(snapshot_key(deployment))
        snapshots.close()
        log.close()


def _wait_for(
    snapshots: RedisTrafficSnapshots, deployment: str, events: list[Event]
) -> dict[str, VariantStats]:
    """Wait until Redis holds exactly what folding `events` in process gives."""
    fold = TrafficStats()
    fold.apply_all([e.data for e in events])  # type: ignore[misc]
    expected = fold.snapshot(deployment)
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
    pytest.fail(f"the worker did not publish what the fold gives in {WAIT_S}s: {diff}")


def test_the_faust_worker_publishes_the_same_statistics_as_the_in_process_fold(
    setup: tuple[KafkaEventLog, dict[str, str], RedisTrafficSnapshots, str], tmp_path: Path
) -> None:
    log, env, snapshots, deployment = setup
    first, second = _batch(deployment, 0, 40), _batch(deployment, 40, 30)
    log.append(first)  # before the worker starts: read from the beginning
    worker = Worker(env, tmp_path / "worker.log")
    try:
        _wait_for(snapshots, deployment, first)
        log.append(second)  # while it runs
        got = _wait_for(snapshots, deployment, first + second)
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
        store.client.delete(snapshot_key("web", store.prefix))
        store.close()
