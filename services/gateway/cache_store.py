"""Where the read cache keeps its entries: in this process (LRU) or in Redis (shared).

Both stores solve the read-through race the same way. A fill takes a `ticket`
before it reads the views and `put`s the value only if the key was not dropped
since: otherwise a slow fill could store a value read just before an event
changed it, after that event's invalidation, and keep it stale for good.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # redis is an optional extra; only RedisStore needs it
    import redis

GEN_TTL_S = 86_400
"""How long Redis keeps a key's invalidation counter: far longer than any fill takes."""


class Store(Protocol):
    shared: bool
    """True when other gateway processes see the same entries."""

    def get(self, key: str, field: str) -> str | None: ...

    def ticket(self, key: str) -> str:
        """Taken before reading the views; `put` with it stores only if `key` has not
        been dropped since."""
        ...

    def put(self, key: str, field: str, value: str, ticket: str) -> bool: ...

    def drop(self, keys: Sequence[str]) -> None: ...

    def clear(self) -> None: ...

    def get_marker(self, name: str) -> str | None: ...

    def set_marker(self, name: str, value: str, ttl_s: float) -> None: ...

    def close(self) -> None: ...


class LruStore:
    """Entries in this process, the least recently used evicted past `size` keys."""

    shared = False

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()
        # Drop times by key, bounded; a key evicted from here counts as dropped at
        # `_floor`, so an old ticket is refused (a spurious miss, never a stale value).
        self._clock = 0
        self._dropped: OrderedDict[str, int] = OrderedDict()
        self._floor = 0
        self._markers: dict[str, str] = {}

    def get(self, key: str, field: str) -> str | None:
        with self._lock:
            fields = self._entries.get(key)
            if fields is None or field not in fields:
                return None
            self._entries.move_to_end(key)
            return fields[field]

    def ticket(self, key: str) -> str:
        with self._lock:
            return str(self._clock)

    def put(self, key: str, field: str, value: str, ticket: str) -> bool:
        with self._lock:
            if self._dropped.get(key, self._floor) > int(ticket):
                return False
            self._entries.setdefault(key, {})[field] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
            return True

    def drop(self, keys: Sequence[str]) -> None:
        with self._lock:
            self._clock += 1
            for key in keys:
                self._entries.pop(key, None)
                self._dropped[key] = self._clock
                self._dropped.move_to_end(key)
            while len(self._dropped) > 4 * self._size:
                _, at = self._dropped.popitem(last=False)
                self._floor = max(self._floor, at)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get_marker(self, name: str) -> str | None:
        return self._markers.get(name)

    def set_marker(self, name: str, value: str, ttl_s: float) -> None:
        self._markers[name] = value

    def close(self) -> None:
        self.clear()


_PUT = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RedisStore:
    """Entries in Redis, shared by every gateway: one hash per run or model (so a model's
    aliases go with one DEL), each with a TTL as a backstop, and a counter per key that
    a drop bumps (the ticket)."""

    shared = True

    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int = 600) -> None:
        self._r = client
        self._prefix = f"{prefix}cache:"
        self._ttl_s = ttl_s
        self._put = client.register_script(_PUT)

    def _key(self, key: str) -> str:
        return f"{self._prefix}e:{key}"

    def _gen(self, key: str) -> str:
        return f"{self._prefix}g:{key}"

    def get(self, key: str, field: str) -> str | None:
        raw = self._r.hget(self._key(key), field)
        return None if raw is None else _text(raw)

    def ticket(self, key: str) -> str:
        raw = self._r.get(self._gen(key))
        return "0" if raw is None else _text(raw)

    def put(self, key: str, field: str, value: str, ticket: str) -> bool:
        done = self._put(
            keys=[self._key(key), self._gen(key)], args=[ticket, field, value, self._ttl_s]
        )
        return bool(done)

    def drop(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.incr(self._gen(key))
            pipe.expire(self._gen(key), GEN_TTL_S)
            pipe.delete(self._key(key))
        pipe.execute()

    def clear(self) -> None:
        batch: list[bytes] = []
        for name in self._r.scan_iter(match=f"{self._prefix}e:*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                self._r.unlink(*batch)
                batch.clear()
        if batch:
            self._r.unlink(*batch)

    def get_marker(self, name: str) -> str | None:
        raw = self._r.get(f"{self._prefix}m:{name}")
        return None if raw is None else _text(raw)

    def set_marker(self, name: str, value: str, ttl_s: float) -> None:
        self._r.set(f"{self._prefix}m:{name}", value, px=int(ttl_s * 1000))

    def close(self) -> None:
        self._r.close()


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode()
