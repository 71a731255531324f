"""The test Redis on 127.0.0.1:6379 (or LEDGERFLOW_TEST_REDIS), with a random key
prefix per test so tests sharing it stay independent."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REDIS_ENV = "LEDGERFLOW_TEST_REDIS"


@pytest.fixture
def redis_url() -> str:
    """The test Redis; a test that needs it fails (never skips) when it is not there."""
    import redis

    url = os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        pytest.fail(
            f"no Redis at {url} ({e}); start one with `redis-server --daemonize yes --bind "
            f"127.0.0.1 --port 6379 --save '' --appendonly no` or set {REDIS_ENV}"
        )
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
