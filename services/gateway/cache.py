"""A read-through cache for the hottest reads, kept correct by the events themselves.

Cached: a run by id (`get_run`: info, params, tags, latest metrics), a model version
by number (`get_model_version`) and by alias (`get_model_version_by_alias`, what every
`models:/name@alias` resolves through), for REST and gRPC reads alike. Entries live in
Redis when LEDGERFLOW_REDIS_URL is set, so all gateways share them, and in an
in-process LRU otherwise. `CachedQueries` and
`CachedRegistryQueries` subclass the query classes, so either drops in where the
plain one was.

Why it stays correct:
- Invalidation follows the views, not the log: the invalidator (a hub
  subscriber) waits until the projector has applied an event before it drops
  the keys the event touches (`run:<id>`, `model:<name>`, and an experiment's
  runs when it is deleted or restored). Dropping earlier would let a reader
  refill the entry from views that do not have the event yet.
- A fill that raced a drop is not stored (the stores' tickets).
- Read-your-writes: commands return once their event is projected. Until this
  gateway's invalidator has got past the projector's checkpoint, reads skip the
  cache (one small query), so a read after a write never sees what was there
  before it. A cache without a hub has no invalidator of its own: it relies on
  other gateways sharing its Redis, and its reads are only eventually fresh.
- Where the invalidators got to is kept in Redis; a starting one resumes there,
  or, when none has been alive for a while, clears the entries first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from ledgerflow.events.entities import ModelVersion, Run, RunData, RunInfo
from ledgerflow.events.errors import InvalidInput, LedgerflowError, Timeout
from ledgerflow.events.log import Checkpoint
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.cache_store import LruStore, RedisStore, Store
from ledgerflow.services.gateway.hub import Delivery, Hub, SubscriberTooSlow
from ledgerflow.services.gateway.items import item_stream
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.projector.tables import RUNS
from ledgerflow.services.watchdog import running

logger = logging.getLogger(__name__)
T = TypeVar("T")

INVALIDATING_TYPES = ["run.*", "model.*", "experiment.deleted", "experiment.restored"]
PROGRESS_MARKER = "invalidated-through"
PROGRESS_TTL_S = 120.0
PROGRESS_EVERY_S = 5.0


@dataclasses.dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    bypassed: int = 0  # read-your-writes: the invalidator was behind the views
    dropped: int = 0  # keys dropped by events


class ReadCache:
    """The cache's store and its invalidator. `start()` it, `close()` it."""

    def __init__(
        self,
        backend: Backend,
        hub: Hub | None,
        *,
        redis_url: str | None = None,
        prefix: str = "ledgerflow:",
        ttl_s: int = 600,
        lru_size: int = 10_000,
    ) -> None:
        self.backend = backend
        url = redis_url if redis_url is not None else backend.settings.redis_url
        if url:
            from ledgerflow.services.gateway.relay import connect

            self.store: Store = RedisStore(connect(url), prefix, ttl_s)
        else:
            if hub is None:
                raise InvalidInput(
                    "an in-process read cache needs a hub: nothing else would invalidate it",
                    field="hub",
                )
            self.store = LruStore(lru_size)
        self.stats = CacheStats()
        self._invalidator = Invalidator(self, hub) if hub is not None else None
        self._queries = CachedQueries(backend.queries, self)
        self._registry_queries = CachedRegistryQueries(backend.registry.queries, self)

    def start(self) -> ReadCache:
        if self._invalidator is not None:
            self._invalidator.start()
        return self

    def alive(self) -> bool:
        """False once its invalidator's thread died (what it holds may then be stale)."""
        return self._invalidator is None or self._invalidator.alive()

    def close(self) -> None:
        if self._invalidator is not None:
            self._invalidator.close()
        self.store.close()

    @property
    def read_your_writes(self) -> bool:
        return self._invalidator is not None

    def queries(self) -> CachedQueries:
        return self._queries

    def registry_queries(self) -> CachedRegistryQueries:
        return self._registry_queries

    def fresh(self) -> bool:
        """True if every projected event has been invalidated (always, when eventual)."""
        if self._invalidator is None:
            return True
        return self._invalidator.done.covers(self.backend.projector.checkpoint())

    def read(
        self, key: str, field: str, load: Callable[[], T], dump: Callable[[T], str],
        parse: Callable[[str], T],
    ) -> T:  # fmt: skip
        if self.fresh():
            hit = self.store.get(key, field)
            if hit is not None:
                self.stats.hits += 1
                return parse(hit)
            self.stats.misses += 1
        else:
            self.stats.bypassed += 1
        ticket = self.store.ticket(key)
        value = load()
        self.store.put(key, field, dump(value), ticket)
        return value

    def keys_of(self, delivery: Delivery) -> list[str]:
        """The cache keys an event makes stale."""
        stream = item_stream(delivery.item)
        kind, _, name = stream.partition(":")
        if kind in ("run", "model"):
            return [stream]
        if kind == "experiment":
            with self.backend.queries.engine.connect() as conn:
                rows = conn.execute(select(RUNS.c.run_id).where(RUNS.c.experiment_id == name))
                return [f"run:{row[0]}" for row in rows]
        return []


class CachedQueries(Queries):
    """`Queries` with `get_run` served from the cache."""

    def __init__(self, queries: Queries, cache: ReadCache) -> None:
        super().__init__(queries.engine)
        self._cache = cache

    def get_run(self, run_id: str) -> Run:
        return self._cache.read(
            f"run:{run_id}", "run", lambda: super(CachedQueries, self).get_run(run_id),
            _dump_run, _parse_run,
        )  # fmt: skip


class CachedRegistryQueries(RegistryQueries):
    """`RegistryQueries` with `get_model_version` and `get_model_version_by_alias` served
    from the cache."""

    def __init__(self, queries: RegistryQueries, cache: ReadCache) -> None:
        super().__init__(queries.engine)
        self._cache = cache

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        base = super().get_model_version
        return self._cache.read(
            f"model:{name}", f"version:{version}", lambda: base(name, version),
            _dump_version, _parse_version,
        )  # fmt: skip

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        base = super().get_model_version_by_alias
        return self._cache.read(
            f"model:{name}", f"alias:{alias}", lambda: base(name, alias),
            _dump_version, _parse_version,
        )  # fmt: skip


class Invalidator:
    """Drops the keys each event touches, once the views have applied it."""

    def __init__(self, cache: ReadCache, hub: Hub) -> None:
        self._cache = cache
        self._hub = hub
        self._projector = cache.backend.projector
        self._stop = threading.Event()
        self._projected = Checkpoint()
        self.done = Checkpoint()
        self._thread = threading.Thread(target=self._run, name="cache-invalidator", daemon=True)

    def start(self) -> None:
        self.done = self._start_point()
        self._save_progress()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._save_progress()

    def alive(self) -> bool:
        """False once its thread died: entries would no longer be dropped when stale."""
        return self._hub.closed or running(self._thread, self._stop)

    def _start_point(self) -> Checkpoint:
        store = self._cache.store
        saved = store.get_marker(PROGRESS_MARKER)
        if saved is not None:
            try:
                self._hub.subscribe(after=saved).close()  # checks it is a token of this log
                return Checkpoint.parse(saved)
            except InvalidInput as e:
                logger.warning("read cache: ignoring saved progress %r (%s)", saved, e)
        # Nobody has been invalidating: what is stored may be stale.
        store.clear()
        return self._projector.checkpoint()

    def _save_progress(self) -> None:
        try:
            self._cache.store.set_marker(PROGRESS_MARKER, self.done.encode(), PROGRESS_TTL_S)
        except Exception as e:  # Redis down: entries expire by TTL; the next save retries
            logger.warning("read cache: could not record invalidation progress (%s)", e)

    def _run(self) -> None:
        saved_at = 0.0
        while not self._stop.is_set():
            if self._hub.closed:
                return  # the gateway is shutting down
            try:
                sub = self._hub.subscribe(after=self.done, types=INVALIDATING_TYPES, internal=True)
            except LedgerflowError as e:
                logger.warning("read cache: cannot subscribe (%s); retrying", e)
                self._stop.wait(1.0)
                continue
            try:
                while not self._stop.is_set() and not sub.closed:
                    got = sub.next(0.5)
                    if got is None:
                        self.done = self.done.union(sub.checkpoint)
                    else:
                        self._apply(got)
                    if self._stop.wait(0) or time.monotonic() - saved_at > PROGRESS_EVERY_S:
                        self._save_progress()
                        saved_at = time.monotonic()
            except SubscriberTooSlow:
                pass  # resubscribe from `done`: nothing is skipped
            except Exception:
                logger.exception("read cache: invalidation failed; resubscribing")
                self._stop.wait(1.0)
            finally:
                sub.close()

    def _apply(self, delivery: Delivery) -> None:
        if not self._await_projection(delivery.checkpoint):
            return  # closing; the next invalidator starts from `done`, before this event
        keys = self._cache.keys_of(delivery)
        if keys:
            self._cache.store.drop(keys)
            self._cache.stats.dropped += len(keys)
        self.done = self.done.union(delivery.checkpoint)

    def _await_projection(self, target: Checkpoint) -> bool:
        while not self._projected.covers(target):
            if self._stop.is_set():
                return False
            try:
                self._projected = self._projector.wait_for(target, timeout=5.0)
            except Timeout:
                logger.warning("read cache: waiting for the projector to reach %s", target)
        return True


def _dump_run(run: Run) -> str:
    return json.dumps(run.to_dictionary())


def _parse_run(text: str) -> Run:
    doc = json.loads(text)
    return Run(RunInfo(**doc["info"]), RunData(**doc["data"]))


def _dump_version(version: ModelVersion) -> str:
    return json.dumps(dataclasses.asdict(version))


def _parse_version(text: str) -> ModelVersion:
    return ModelVersion(**json.loads(text))
