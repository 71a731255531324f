"""The event hub through Redis: one elected follower for all gateways, and takeovers."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ledgerflow.events.errors import Unavailable
from ledgerflow.events.log import Item
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.relay import RedisRelay
from tests.conftest import PYTHON, python_env
from tests.integration.event_hub_helpers import positions, tags, take
from tests.waiting import wait_until

LEASE_S = 1.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def gateways(db: Path, redis_url: str, redis_prefix: str) -> Iterator[list[Hub]]:
    """Hubs as separate gateway processes would have them: each its own log handle."""
    made: list[Hub] = []
    logs: list[SQLiteEventLog] = []

    def make() -> Hub:
        log = SQLiteEventLog(db)
        logs.append(log)
        hub = Hub(log, redis_url=redis_url, prefix=redis_prefix, lease_s=LEASE_S).start()
        made.append(hub)
        return hub

    yield [make(), make()]
    for hub in made:
        hub.close()
    for log in logs:
        log.close()


def relay(hub: Hub) -> RedisRelay:
    assert isinstance(hub.source, RedisRelay)
    return hub.source


def leaders(hubs: list[Hub]) -> list[Hub]:
    return [h for h in hubs if relay(h).leading.is_set()]


def test_two_gateways_elect_one_follower_and_both_fan_out_its_events(
    gateways: list[Hub], redis_url: str, redis_prefix: str
):
    wait_until(lambda: len(leaders(gateways)) == 1, what="a leader")
    subs = [hub.subscribe("latest") for hub in gateways]
    for sub in subs:
        assert sub.next(0.05) is None

    gateways[0].log.append(tags("a", 0, 25))

    assert [positions(take(sub, 25)) for sub in subs] == [list(range(1, 26))] * 2
    published = redis.Redis.from_url(redis_url).xlen(f"{redis_prefix}hub:stream")
    assert published == 25  # they came through Redis, published once
    assert len(leaders(gateways)) == 1


def test_when_the_leader_stops_another_gateway_takes_over_without_a_gap(
    gateways: list[Hub],
):
    wait_until(lambda: len(leaders(gateways)) == 1, what="a leader")
    [leader] = leaders(gateways)
    [other] = [h for h in gateways if h is not leader]
    sub = other.subscribe("latest")
    assert sub.next(0.05) is None
    other.log.append(tags("a", 0, 10))
    assert positions(take(sub, 10)) == list(range(1, 11))

    leader.close()
    other.log.append(tags("a", 10, 10))  # while nobody leads yet

    assert positions(take(sub, 10)) == list(range(11, 21))
    assert relay(other).leading.is_set()
    assert other.subscribers == 1  # still live, never fell back to the log


LEADER = textwrap.dedent(
    """
    import sys, time
    from ledgerflow.events.sqlite_log import SQLiteEventLog
    from ledgerflow.services.gateway.hub import Hub
    db, url, prefix, lease = sys.argv[1:5]
    hub = Hub(SQLiteEventLog(db), redis_url=url, prefix=prefix, lease_s=float(lease)).start()
    hub.source.leading.wait()
    print("leading", flush=True)
    time.sleep(600)
    """
)


def test_a_leader_killed_without_warning_is_replaced_once_its_lease_expires(
    db: Path, redis_url: str, redis_prefix: str
):
    proc = subprocess.Popen(
        [PYTHON, "-c", LEADER, str(db), redis_url, redis_prefix, str(LEASE_S)],
        stdout=subprocess.PIPE, env=python_env(),
    )  # fmt: skip
    log = SQLiteEventLog(db)
    hub: Hub | None = None
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"leading"
        hub = Hub(log, redis_url=redis_url, prefix=redis_prefix, lease_s=LEASE_S).start()
        sub = hub.subscribe("latest")
        assert sub.next(0.05) is None
        log.append(tags("a", 0, 5))
        assert positions(take(sub, 5)) == list(range(1, 6))  # published by the other process
        assert not relay(hub).leading.is_set()

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.append(tags("a", 5, 5))

        assert positions(take(sub, 5, timeout=20)) == list(range(6, 11))
        assert relay(hub).leading.is_set()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if hub is not None:
            hub.close()
        log.close()


def test_entries_a_gateway_missed_make_its_subscribers_catch_up_from_the_log(
    gateways: list[Hub], redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
):
    wait_until(lambda: len(leaders(gateways)) == 1, what="a leader")
    hub = gateways[1]
    sub = hub.subscribe("latest")
    assert sub.next(0.05) is None
    hub.log.append(tags("a", 0, 3))
    assert positions(take(sub, 3)) == [1, 2, 3]

    # As if three entries had been trimmed before this gateway read them.
    redis.Redis.from_url(redis_url).incrby(f"{redis_prefix}hub:seq", 3)
    with caplog.at_level(logging.WARNING, logger="ledgerflow.services.gateway.relay"):
        hub.log.append(tags("a", 3, 4))
        assert positions(take(sub, 4)) == [4, 5, 6, 7]
    assert "catch up from the log" in caplog.text
    assert sub.next(0.1) is None
    assert hub.subscribers == 1  # back on the live feed after catching up


def test_the_stream_keeps_only_the_last_retention_of_entries(
    db: Path, redis_url: str, redis_prefix: str
):
    """A steady rate must not grow Redis until the stream holds its 100,000-entry cap of
    whole events (bench/soak.py saw it grow all along): entries older than the retention
    go as new ones are published, a whole node of 100 at a time."""
    log = SQLiteEventLog(db)
    seen: list[Item] = []
    source = RedisRelay(
        log, redis_url, prefix=redis_prefix, dispatch=seen.append, resync=lambda: None,
        lease_s=LEASE_S, retention_s=2.0,
    )  # fmt: skip
    stream = redis.Redis.from_url(redis_url)
    key = f"{redis_prefix}hub:stream"
    try:
        source.start()
        wait_until(source.leading.is_set, what="a leader")
        log.append(tags("a", 0, 250))
        wait_until(lambda: len(seen) == 250, what=lambda: f"{len(seen)} of 250 read")
        assert stream.xlen(key) == 250  # all younger than the retention

        time.sleep(2.2)
        log.append(tags("a", 250, 1))
        wait_until(lambda: len(seen) == 251, what="the last entry read")
        assert stream.xlen(key) < 100  # the two full nodes of older entries are gone
    finally:
        source.close()
        stream.close()
        log.close()


def test_a_wrong_redis_url_fails_at_start_naming_the_setting(db: Path):
    log = SQLiteEventLog(db)
    try:
        with pytest.raises(Unavailable, match="LEDGERFLOW_REDIS_URL"):
            Hub(log, redis_url="redis://127.0.0.1:1/0").start()
    finally:
        log.close()


def test_threads_of_a_closed_relay_are_gone(gateways: list[Hub]):
    for hub in gateways:
        hub.close()
    names = {t.name for t in threading.enumerate()}
    assert not names & {"event-relay-leader", "event-relay-reader", "event-relay-lease"}
