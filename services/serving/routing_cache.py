"""Deployments' routing state cached in Redis, so replicas start routing at once.

A replica folds its deployment from the log's `deployment.*` events. On a long
Kafka log that first fold means reading the deployments topic from its start; with
LEDGERFLOW_REDIS_URL set, replicas share the latest fold instead: each stores the
state it folded together with the log checkpoint it folded through, and a starting
replica takes the newest one and follows the log from that checkpoint. The log stays
the source of truth: a stale or missing entry costs only a longer catch-up, and an
entry is only ever replaced by one of a later version (a Lua compare-and-set), so a
slow replica cannot move the cache back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import Unavailable
from ledgerflow.events.log import Checkpoint
from ledgerflow.services.deployments.state import Deployment

if TYPE_CHECKING:
    import redis

KEY_PREFIX = "ledgerflow:routing:"
_STORE_NEWER = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'state', ARGV[2], 'checkpoint', ARGV[3])
return 1
"""


class RoutingCache:
    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._store = client.register_script(_STORE_NEWER)

    @classmethod
    def from_url(cls, url: str, prefix: str = KEY_PREFIX) -> RoutingCache:
        try:
            import redis
        except ImportError:
            raise Unavailable(
                "LEDGERFLOW_REDIS_URL is set but the redis package is missing: "
                "pip install 'ledgerflow[redis]'"
            ) from None
        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5), prefix)

    def load(self, name: str) -> tuple[Deployment, Checkpoint] | None:
        """The newest cached state of `name` and the checkpoint it was folded through."""
        import redis

        try:
            found: dict[bytes, bytes] = self.client.hgetall(self.prefix + name)  # type: ignore[assignment]
        except redis.RedisError:
            return None  # the log alone will do
        if not found or b"state" not in found:
            return None
        doc: dict[str, Any] = json.loads(found[b"state"])
        return Deployment.from_dict(doc), Checkpoint.parse(found[b"checkpoint"].decode())

    def store(self, dep: Deployment, checkpoint: Checkpoint) -> bool:
        """Cache `dep` unless a state of the same or a later version is there already."""
        import redis

        state = json.dumps(dep.to_dict(), sort_keys=True)
        try:
            return bool(self._store(keys=[self.prefix + dep.name],
                                    args=[dep.version, state, checkpoint.encode()]))  # fmt: skip
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.client.close()
