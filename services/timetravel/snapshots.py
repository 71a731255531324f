"""The views as they were at a past point of the log (docs/time-travel.md).

A `Snapshot` is the view tables folded, by the same `Projector` the live views use,
from the log up to one checkpoint (a `LogPrefix`, so the fold cannot read past it)
into a private in-memory SQLite database. It never changes once made, so any number
of readers share it.

`TimeTravel` resolves an `AsOf` to a checkpoint and keeps the last few snapshots by
checkpoint. A point later than a kept snapshot starts from a copy of it and folds only
the events in between; anything else folds from the start of the log. A snapshot
lives as long as the cache or a backend reading it holds it (its database goes with
the last reference).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
import weakref
from collections import OrderedDict

from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from ledgerflow.events.as_of import AsOf
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Checkpoint, EventLog
from ledgerflow.events.log_prefix import LogPrefix
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import DEDUPE_WINDOW, Projector

BATCH = 2000
"""Events per transaction when folding a snapshot (nobody else writes to it)."""


class Snapshot:
    """The views folded up to `checkpoint`, read through `engine`."""

    _keeper: sqlite3.Connection

    def __init__(
        self,
        log: EventLog,
        checkpoint: Checkpoint,
        *,
        start: Snapshot | None = None,
        dedupe_window: int = DEDUPE_WINDOW,
    ) -> None:
        self.checkpoint = checkpoint
        uri = f"file:ledgerflow-as-of-{uuid.uuid4().hex}?mode=memory&cache=shared"
        # The database lives while a connection to it is open: this one, for our life.
        keeper = sqlite3.connect(uri, uri=True, check_same_thread=False)
        if start is not None:
            start._keeper.backup(keeper)
        self._keeper = keeper
        url = f"sqlite:///{uri}&uri=true"
        self.writer = make_engine(url, writer=True, poolclass=QueuePool)
        self.engine = make_engine(url, writer=False, poolclass=QueuePool)
        weakref.finalize(self, _release, keeper, self.writer, self.engine)
        self.projector = Projector(
            LogPrefix(log, checkpoint), self.writer, batch=BATCH, dedupe_window=dedupe_window
        )
        began = time.perf_counter()
        self.folded = self.projector.catch_up()
        self.fold_s = time.perf_counter() - began
        self.started_from = None if start is None else start.checkpoint


def _release(keeper: sqlite3.Connection, *engines: Engine) -> None:
    for engine in engines:
        engine.dispose()
    keeper.close()


class TimeTravel:
    """Snapshots of one log's views, the `keep` most recently used kept for reuse."""

    def __init__(self, log: EventLog, *, keep: int = 4, dedupe_window: int = DEDUPE_WINDOW) -> None:
        self.dedupe_window = dedupe_window  # as the live views'; the past folds the same
        self.log = log
        self.keep = keep
        self._cache: OrderedDict[Checkpoint, Snapshot] = OrderedDict()
        self._lock = threading.Lock()  # the cache
        self._folding = threading.Lock()  # one fold at a time: it is CPU-bound anyway

    def resolve(self, point: AsOf) -> Checkpoint:
        """The checkpoint `point` names: a position as given (refused past the head), a
        time as `EventLog.checkpoint_at` finds it."""
        if point.checkpoint is None:
            return self.log.checkpoint_at(point.time_ms or 0)
        head = self.log.head()
        if not head.covers(point.checkpoint):
            raise InvalidInput(
                f"as_of {point.describe()} is past the head of this log "
                f"({head.encode() or 'empty'}) or names partitions it does not have; pass a "
                "token /api/v1/events/head gave, or a time",
                field="as_of",
            )
        return point.checkpoint

    def snapshot(self, point: AsOf) -> Snapshot:
        checkpoint = self.resolve(point)
        found = self._cached(checkpoint)
        if found is not None:
            return found
        with self._folding:
            found = self._cached(checkpoint)  # folded while we waited
            if found is not None:
                return found
            made = Snapshot(
                self.log, checkpoint, start=self._nearest_before(checkpoint),
                dedupe_window=self.dedupe_window,
            )  # fmt: skip
        with self._lock:
            self._cache[checkpoint] = made
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return made

    def _cached(self, checkpoint: Checkpoint) -> Snapshot | None:
        with self._lock:
            found = self._cache.get(checkpoint)
            if found is not None:
                self._cache.move_to_end(checkpoint)
            return found

    def _nearest_before(self, checkpoint: Checkpoint) -> Snapshot | None:
        """The kept snapshot latest in the log that `checkpoint` covers, to extend."""
        with self._lock:
            earlier = [s for s in self._cache.values() if checkpoint.covers(s.checkpoint)]
        return max(earlier, key=lambda s: s.checkpoint.total(), default=None)

    def cached(self) -> list[Checkpoint]:
        """The checkpoints of the kept snapshots, least recently used first."""
        with self._lock:
            return list(self._cache)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
