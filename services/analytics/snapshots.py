"""Per-deployment traffic aggregates in Redis, where the deployer and the gateway read
what the stream processor (the Faust app) computed.

One key per deployment, `ledgerflow:traffic:<deployment>`, holding the JSON of its
`DeploymentTraffic` (windows included, so readers can ask for statistics since a time)
and when it was published. The writer is the one stream worker that owns the
deployment's partition, so a plain SET is enough.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from ledgerflow.events.errors import CorruptEvent, Unavailable
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.series import DeploymentTraffic

KEY_PREFIX = "ledgerflow:traffic:"


def snapshot_key(deployment: str, prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}{deployment}"


def encode_snapshot(traffic: DeploymentTraffic, published_ms: int | None = None) -> str:
    doc: dict[str, Any] = {
        "published_ms": published_ms if published_ms is not None else int(time.time() * 1000),
        "traffic": traffic.to_dict(),
    }
    return json.dumps(doc, separators=(",", ":"))


def decode_snapshot(raw: str | bytes) -> tuple[DeploymentTraffic, int]:
    try:
        doc = json.loads(raw)
        return DeploymentTraffic.from_dict(doc["traffic"]), int(doc["published_ms"])
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptEvent(f"undecodable traffic snapshot: {e}") from None


class RedisTrafficSnapshots:
    """Read (and, for the stream worker, write) deployments' traffic aggregates in Redis."""

    def __init__(self, client: redis.Redis, *, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = KEY_PREFIX) -> RedisTrafficSnapshots:
        return cls(redis.Redis.from_url(url, socket_timeout=5), prefix=prefix)

    def publish(self, deployment: str, traffic: DeploymentTraffic) -> None:
        try:
            self.client.set(snapshot_key(deployment, self.prefix), encode_snapshot(traffic))
        except redis.RedisError as e:
            raise Unavailable(f"publishing traffic of {deployment!r} to Redis: {e}") from e

    def load(self, deployment: str) -> tuple[DeploymentTraffic, int] | None:
        """The deployment's aggregates and when they were published (epoch ms), if any."""
        try:
            raw = self.client.get(snapshot_key(deployment, self.prefix))
        except redis.RedisError as e:
            raise Unavailable(f"reading traffic of {deployment!r} from Redis: {e}") from e
        if raw is None:
            return None
        if not isinstance(raw, str | bytes):
            raise CorruptEvent(f"traffic snapshot of {deployment!r} is not a string")
        return decode_snapshot(raw)

    def snapshot(self, deployment: str, since_ms: int | None = None) -> dict[str, VariantStats]:
        found = self.load(deployment)
        return {} if found is None else found[0].snapshot(since_ms)

    def requests_since(self, deployment: str, variant: str, since_ms: int) -> int:
        found = self.load(deployment)
        return 0 if found is None else found[0].requests_since(variant, since_ms)

    def close(self) -> None:
        self.client.close()
