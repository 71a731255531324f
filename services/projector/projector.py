"""The projector: folds the log into the view tables, exactly once per event.

`catch_up()` applies every event after the stored checkpoint. The checkpoint,
the applied-id set and the rows an event produces commit in one transaction,
so a crash anywhere leaves views that match some prefix of the log, and the
next catch-up resumes from there. Several processes may call it at once; the
database's write lock serializes them.

Dedupe is bounded: a copy of an event at most `dedupe_window` positions after its
first copy, in the same partition (copies share a stream, so a partition), is
skipped; the applied-id set forgets ids that fell behind the window. Whether a copy is
skipped depends only on the two positions, never on when pruning ran, so the views a
live projector builds equal a replay's. The Kafka log's append-side index keeps the
same window (`ledgerflow.events.kafka_log`), so copies farther apart than that are
not made by a retry it could have caught.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ledgerflow.events import tracing
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import Timeout, Unavailable
from ledgerflow.events.log import Checkpoint, CorruptRecord, EventLog, Item
from ledgerflow.services.projector import (  # noqa: F401 - they register handlers
    audit_handlers,
    auth_handlers,
    bulk,
    bundle_handlers,
    deployment_handlers,
    job_handlers,
    logged_model_handlers,
    registry_handlers,
    rollups,
    run_batch,
    webhook_handlers,
)
from ledgerflow.services.projector.handlers import EVERY_EVENT, HANDLERS, Handler, Rejected
from ledgerflow.services.projector.sql import execute_many, fetch_all
from ledgerflow.services.projector.tables import (
    APPLIED_EVENTS as AE,
)
from ledgerflow.services.projector.tables import (
    DEAD_LETTERS as DL,
)
from ledgerflow.services.projector.tables import (
    LATEST_METRICS,
    METADATA,
    METRIC_POINTS,
    PARAMS,
    RUNS,
    SEARCH_INDEXES_REPLACED,
    TAGS,
)

ANALYZE_EVERY = 5_000  # events applied between refreshes of SQLite's planner statistics
_APPLIED = 'INSERT INTO applied_events (event_id, "partition", position) VALUES (?, ?, ?)'
_SAVE_OFFSET = (
    'INSERT INTO projector_offsets (name, "partition", position) VALUES (?, ?, ?) '
    'ON CONFLICT (name, "partition") DO UPDATE SET position = excluded.position'
)
DEDUPE_WINDOW = 1_000_000
"""Positions per partition within which a second copy of an event is recognized
(LEDGERFLOW_DEDUPE_WINDOW)."""
OUTCOMES_KEPT = 10_000
"""Events whose outcome a projector remembers (`Projector.outcomes`)."""
Outcome = tuple[str, str] | None
"""What became of an applied event: None, or (its type, the reason) when dead-lettered."""
Outcomes = dict[str, Outcome]
Progress = Callable[[int, int | None], None]
"""Called with (events applied so far, None) by catch_up, and with (events applied,
roughly how many the log holds) by rebuild, so a progress bar can show how far it is."""


class Projector:
    def __init__(
        self,
        log: EventLog,
        engine: Engine,
        *,
        name: str = "views",
        batch: int = 500,
        inline: bool = True,
        reader: Engine | None = None,
        dedupe_window: int = DEDUPE_WINDOW,
    ) -> None:
        """`inline=False` is for processes beside a projector service (the gateway on
        Kafka): they wait for the service's progress instead of projecting themselves.
        `reader`: an engine on the same views for reads outside a write (the checkpoint a
        command waits for, dead letters), so they do not queue for SQLite's write lock as
        `engine`'s transactions (BEGIN IMMEDIATE) do."""
        self.log = log
        self.engine = engine
        self.reader = reader or engine
        self.name = name
        self.batch = batch
        self.inline = inline
        self.dedupe_window = dedupe_window
        self._since_analyze = 0
        # The threads of this process (request threads waiting for their events, the
        # projector service) catch up one at a time: a thread waiting here wakes as soon as
        # the one before commits, often to find its events applied by it, instead of
        # polling in SQLite's busy handler (sleeps of 1 to 100 ms) for the write lock.
        self._catching_up = threading.RLock()
        # The checkpoint this process last committed or read in a catch-up: the views hold
        # at least this much, so a command whose events it covers need not ask the database.
        self._reached = Checkpoint()
        # Oldest first; an OrderedDict drops its oldest entry in O(1). A dict's
        # `del kept[next(iter(kept))]` scans every entry deleted before it (they stay as
        # holes until the dict is resized): quadratic in a transaction's events, 1.4 s of
        # CPU in a 200,000-event replay (transactions of 20,000 events).
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()  # see _remember
        self._create()

    def _create(self) -> None:
        def create() -> None:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # processes starting together: one at a time
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7281)")
                existed = set(inspect(conn).get_table_names())
                METADATA.create_all(conn)
                _migrate(conn, existed)

        _retry(create, "creating the view tables")

    def checkpoint(self, conn: Connection | None = None) -> Checkpoint:
        if conn is None:
            with self.reader.connect() as c:
                return self.checkpoint(c)
        sql = 'SELECT "partition", position FROM projector_offsets WHERE name = ?'
        rows = fetch_all(conn, sql, (self.name,))  # plain: every command reads it, twice
        return Checkpoint({part: int(pos) for part, pos in rows})

    def holds(self, target: Checkpoint) -> bool:
        """Whether the views hold everything up to `target`: known without a read when
        this process projected that far, else from the stored checkpoint."""
        return self._reached.covers(target) or self.checkpoint().covers(target)

    def save_checkpoint(self, conn: Connection, before: Checkpoint, after: Checkpoint) -> None:
        """Store the offsets that moved, inside the caller's transaction."""
        moved = [
            (self.name, part, pos)
            for part, pos in after.partitions().items()
            if before.get(part) != pos
        ]
        execute_many(conn, _SAVE_OFFSET, moved)  # plain: every command's transaction saves it
        step = max(1, self.dedupe_window // 10)  # prune now and then, not every batch
        for part, pos in after.partitions().items():
            old = before.get(part)
            if (old is None or old // step != pos // step) and pos > self.dedupe_window:
                forgotten = AE.c.position < pos - self.dedupe_window
                conn.execute(delete(AE).where(AE.c.partition == part, forgotten))

    def catch_up(
        self, progress: Progress | None = None, *, unless: Checkpoint | None = None
    ) -> int:
        """Apply everything on the log that is not applied yet; return how many events.
        Nothing when the views already cover `unless` (another thread of this process
        applied it while this one waited for its turn)."""
        if unless is not None and self._reached.covers(unless):
            return 0  # seen without queueing behind a catch-up of later events
        with self._catching_up:
            if unless is not None and self._reached.covers(unless):
                return 0
            deferring = self._replaying_from_zero()
            limit = max(self.batch, bulk.BULK_BATCH) if deferring else self.batch
            if deferring:
                _retry(self._in_transaction(bulk.drop_indexes), "deferring the view indexes")
            total = 0
            paused = bulk.collector_paused if deferring else contextlib.nullcontext
            try:
                while True:
                    with paused():
                        n: int = _retry(lambda: self._apply_batch(limit), "projecting events")
                    total += n
                    if progress:
                        progress(total, None)
                    if n < limit:
                        break
            finally:
                if deferring:
                    _retry(self._in_transaction(bulk.create_indexes), "creating the view indexes")
            self._note_growth(total)
            return total

    def _replaying_from_zero(self) -> bool:
        """Whether this catch-up folds a large log into empty SQLite views (a new views
        file): then the indexes only queries use are built once at its end (bulk.py). Not
        on PostgreSQL, where projectors of a consumer group catch up side by side."""
        if self.engine.dialect.name != "sqlite" or self._reached.partitions():
            return False  # views this process already saw hold events: no read needed
        if self.checkpoint().partitions():
            return False
        return self.log.head().total() >= bulk.BULK_EVENTS

    def _in_transaction(self, fn: Callable[[Connection], None]) -> Callable[[], None]:
        def run() -> None:
            with self.engine.begin() as conn:
                fn(conn)

        return run

    def _note_growth(self, applied: int) -> None:
        """Refresh the query planner's statistics after the views grew a lot, so searches
        keep choosing the selective index (SQLite has no autovacuum to do it for us)."""
        self._since_analyze += applied
        if self._since_analyze < ANALYZE_EVERY or self.engine.dialect.name != "sqlite":
            return
        self._since_analyze = 0
        with self.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
            conn.exec_driver_sql("ANALYZE")

    def wait_for(self, target: Checkpoint, timeout: float) -> Checkpoint:
        """Read-your-writes: return once everything up to `target` is applied (projecting
        it ourselves when inline, else waiting for the projector service), with how far
        the views are known to be then (at least `target`)."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            if self.inline:
                self.catch_up(unless=target)
                reached = self._reached
                if reached.covers(target):
                    return reached
            held = self.checkpoint()
            if held.covers(target):
                return held
            if time.monotonic() > deadline:
                raise Timeout(
                    f"events up to {target.encode()!r} were not projected within "
                    f"{timeout:g} s; is the projector running?"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _apply_batch(self, limit: int | None = None) -> int:
        """One transaction: the next batch, its rows and the checkpoint. The batch is
        applied whole first, without a savepoint (on SQLite a savepoint copies every page
        it changes to a statement journal: a third of a command's page writes); if an
        event is rejected or a handler fails, that transaction rolls back and the batch is
        applied again one event at a time, so only the offending events are
        dead-lettered. Database errors propagate for a retry."""
        try:
            return self._apply_batch_once(limit, careful=False)
        except OperationalError:
            raise
        except Exception:
            return self._apply_batch_once(limit, careful=True)

    def _apply_batch_once(self, limit: int | None, *, careful: bool) -> int:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # queue behind another catch-up, as SQLite's
                conn.exec_driver_sql(  # BEGIN IMMEDIATE does, rather than race it
                    "SELECT pg_advisory_xact_lock(hashtext(%(name)s))", {"name": self.name}
                )
            start = self.checkpoint(conn)
            items = list(self.log.read(start, limit=limit or self.batch))
            reached = start.advance_all(items)
            outcomes: Outcomes = {}
            if items:
                outcomes = self._apply(conn, items, careful=careful)
                self.save_checkpoint(conn, start, reached)
        self._reached = reached  # committed
        self._remember(outcomes)
        return len(items)

    def _remember(self, outcomes: Outcomes) -> None:
        """Keep what became of the events this process applied (the last OUTCOMES_KEPT),
        under the catch-up lock: a command that waited for its events asks here first."""
        kept = self._outcomes
        kept.update(outcomes)
        for _ in range(len(kept) - OUTCOMES_KEPT):
            kept.popitem(last=False)  # the oldest

    def outcomes(self, event_ids: Sequence[str]) -> list[Outcome] | None:
        """What became of each of `event_ids` (None: applied; (type, reason): dead-lettered)
        when this process applied them all; None when it did not apply some (another
        process did, or long ago): ask the dead letters."""
        kept = self._outcomes
        found: list[Outcome] = []
        for event_id in event_ids:
            try:
                found.append(kept[event_id])
            except KeyError:
                return None
        return found

    def apply_all(self, conn: Connection, items: Sequence[Item]) -> None:
        """Apply a batch of log items inside the caller's transaction (a catch-up, which
        owns its transaction, skips the savepoint: `_apply_batch`).

        The fast path applies the whole batch under one savepoint. If any event is
        rejected or a handler fails, that savepoint is rolled back and the batch is
        applied again one event at a time, each under its own savepoint, so only the
        offending events are dead-lettered. Database errors propagate for a retry.
        """
        try:
            with conn.begin_nested():
                self._apply(conn, items, careful=False)
        except OperationalError:
            raise
        except Exception:
            self._apply(conn, items, careful=True)

    def _apply(self, conn: Connection, items: Sequence[Item], *, careful: bool) -> Outcomes:
        """Apply `items` in `conn`'s transaction; return what became of each event it
        applied or dead-lettered (not of copies it skipped)."""
        outcomes: Outcomes = {}
        ids = [i.event.id for i in items if isinstance(i, Recorded)]
        first: dict[str, int | None] = {}  # where an id was applied before this batch
        for chunk in range(0, len(ids), 500):
            some = tuple(ids[chunk : chunk + 500])
            marks = ", ".join("?" * len(some))
            sql = f"SELECT event_id, position FROM applied_events WHERE event_id IN ({marks})"
            first.update(fetch_all(conn, sql, some))
        stale: list[str] = []  # applied once, so long ago that this copy is applied again
        applied: list[tuple[str, str, int]] = []  # (event id, partition, position)
        notes: list[list[Any]] = [[] for _ in EVERY_EVENT]  # per view over every event
        foldable = frozenset() if careful else run_batch.foldable_types(HANDLERS, EVERY_EVENT)
        stretch: list[Recorded] = []  # consecutive run telemetry, folded at once

        def fold_stretch() -> None:
            if stretch:
                noted = run_batch.apply_stretch(conn, stretch, EVERY_EVENT)
                for kept, more in zip(notes, noted, strict=True):
                    kept += more
                stretch.clear()

        for item in items:
            if isinstance(item, CorruptRecord):
                self._dead_letter(
                    conn, item, item.id, item.type, item.stream, "corrupt", item.reason,
                    item.data,
                )  # fmt: skip
                outcomes[item.id] = (item.type, item.reason)
                continue
            ev = item.event
            handler = HANDLERS.get(ev.type)
            if handler is None:  # a type these views do not fold (another service owns it,
                continue  # e.g. traffic): nothing to apply, and no applied id to remember
            event_id = ev.id
            if event_id in first:
                if self._copy(first, event_id, item.position):
                    continue  # redelivered: already applied
                # a copy from beyond the window: an event again
                stale.append(event_id)
                applied = [a for a in applied if a[0] != event_id]  # its first, this batch
            first[event_id] = item.position
            applied.append((event_id, item.partition, item.position))
            outcomes[event_id] = None
            traced = ev.trace is not None and tracing.enabled()
            if traced:  # continue the producer's trace
                handler = _traced_handler(handler, item)
            elif ev.type in foldable:
                stretch.append(item)
                continue
            if not careful:
                fold_stretch()
                _keep(notes, [view.note(conn, item) for view in EVERY_EVENT])
                handler(conn, ev)
                continue
            savepoint = conn.begin_nested()
            try:
                pending = [view.note(conn, item) for view in EVERY_EVENT]
                handler(conn, ev)
            except OperationalError:
                savepoint.rollback()
                raise  # the database, not the event: retry the whole batch
            except Exception as e:
                savepoint.rollback()
                reason = str(e) if isinstance(e, Rejected) else f"{type(e).__name__}: {e}"
                self._dead_letter(
                    conn, item, ev.id, ev.type, ev.stream, "rejected", reason, _data_json(item)
                )  # fmt: skip
                outcomes[ev.id] = (ev.type, reason)
            else:
                savepoint.commit()
                _keep(notes, pending)
        fold_stretch()
        for view, kept in zip(EVERY_EVENT, notes, strict=True):
            if kept:
                view.write(conn, kept)
        if stale:
            conn.execute(delete(AE).where(AE.c.event_id.in_(stale)))
        execute_many(conn, _APPLIED, applied)
        return outcomes

    def _copy(self, first: dict[str, int | None], event_id: str, position: int) -> bool:
        """Whether the event at `position` is a copy of one applied before (its id at most
        `dedupe_window` positions back, or recorded before positions were kept)."""
        if event_id not in first:
            return False
        where = first[event_id]
        return where is None or position - where <= self.dedupe_window

    def _dead_letter(
        self,
        conn: Connection,
        item: Item,
        event_id: str,
        type_: str,
        stream: str,
        kind: str,
        reason: str,
        data: str,
    ) -> None:
        conn.execute(
            insert(DL).values(
                position=item.position,
                partition=item.partition,
                event_id=event_id,
                type=type_,
                stream=stream,
                kind=kind,
                reason=reason,
                data=data,
                time=time.time_ns() // 1_000_000,
            )
        )

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drop every view and fold the whole log again, in one transaction: a failed
        rebuild leaves the old views in place."""
        size = self.log.head().total()

        def run() -> int:
            applied = 0
            deferring = self.engine.dialect.name == "sqlite" and size >= bulk.BULK_EVENTS
            limit = max(self.batch, bulk.BULK_BATCH) if deferring else self.batch
            with self.engine.begin() as conn:
                for table in reversed(METADATA.sorted_tables):
                    conn.execute(delete(table))
                if deferring:
                    bulk.drop_indexes(conn)
                after = Checkpoint()
                while True:
                    items = list(self.log.read(after, limit=limit))
                    if not items:
                        break
                    with bulk.collector_paused():
                        self.apply_all(conn, items)
                    after = after.advance_all(items)
                    applied += len(items)
                    if progress:
                        progress(applied, size)
                if deferring:
                    bulk.create_indexes(conn)
                self.save_checkpoint(conn, Checkpoint(), after)
            return applied

        with self._catching_up:
            applied: int = _retry(run, "rebuilding the views")
            self._reached = Checkpoint()  # read again by the next catch-up
        self._note_growth(ANALYZE_EVERY)
        return applied

    def dead_letter_count(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(DL)).scalar_one())

    def dead_letters(self, limit: int = 100, *, newest_first: bool = False) -> list[dict[str, Any]]:
        order = DL.c.id.desc() if newest_first else DL.c.id
        with self.reader.connect() as conn:
            rows = conn.execute(select(DL).order_by(order).limit(limit)).mappings()
            return [dict(r) for r in rows]


def _keep(notes: list[list[Any]], pending: list[Any]) -> None:
    """Keep what each view over every event noted for an applied event (None: nothing)."""
    for kept, note in zip(notes, pending, strict=True):
        if note is not None:
            kept.append(note)


def _traced_handler(handler: Handler, item: Recorded) -> Handler:
    def run(conn: Connection, ev: Event) -> None:
        attributes = {
            "event.id": ev.id, "event.type": ev.type, "event.stream": ev.stream,
            "log.partition": item.partition, "log.position": item.position,
        }  # fmt: skip
        with tracing.span("ledgerflow.project", attributes, parent=ev.trace):
            handler(conn, ev)

    return run


def _migrate(conn: Connection, names: set[str]) -> None:
    """Bring view databases made by earlier versions up to this schema (`names`: the
    tables they held)."""
    for index in METRIC_POINTS.indexes:  # indexes added to a table that already existed
        index.create(conn, checkfirst=True)
    for name in SEARCH_INDEXES_REPLACED:  # (key, value) before the covering search indexes
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    for index in (*RUNS.indexes, *PARAMS.indexes, *TAGS.indexes, *LATEST_METRICS.indexes):
        index.create(conn, checkfirst=True)
    if "metric_rollups" not in names:  # metric points projected before rollups existed
        rollups.backfill(conn)
    if "partition" not in {c["name"] for c in inspect(conn).get_columns("dead_letters")}:
        conn.exec_driver_sql(
            "ALTER TABLE dead_letters ADD COLUMN \"partition\" TEXT NOT NULL DEFAULT ''"
        )
    if "projector_checkpoints" in names:  # one position per projector, before partitions
        conn.exec_driver_sql(
            'INSERT INTO projector_offsets (name, "partition", position) '
            "SELECT name, '', position FROM projector_checkpoints "
            "WHERE name NOT IN (SELECT name FROM projector_offsets)"
        )
        conn.exec_driver_sql("DROP TABLE projector_checkpoints")
    if "run_link" not in {c["name"] for c in inspect(conn).get_columns("model_versions")}:
        conn.exec_driver_sql("ALTER TABLE model_versions ADD COLUMN run_link TEXT")
    applied_columns = {c["name"] for c in inspect(conn).get_columns("applied_events")}
    if "position" not in applied_columns:  # ids kept forever, before the dedupe window
        conn.exec_driver_sql(
            "ALTER TABLE applied_events ADD COLUMN \"partition\" TEXT NOT NULL DEFAULT ''"
        )
        conn.exec_driver_sql("ALTER TABLE applied_events ADD COLUMN position BIGINT")
    for index in AE.indexes:
        index.create(conn, checkfirst=True)
    bulk.create_indexes(conn)  # a replay from zero stopped before it built them
    webhook_columns = {c["name"] for c in inspect(conn).get_columns("webhooks")}
    for column in ("sealed_secret", "secret_key_id"):  # secrets sealed with the server key
        if column not in webhook_columns:
            conn.exec_driver_sql(f"ALTER TABLE webhooks ADD COLUMN {column} TEXT")


def _data_json(item: Recorded) -> str:
    from ledgerflow.events.codec import encode_data

    return encode_data(item.event.data)


def _retry(fn: Callable[[], Any], what: str, deadline_s: float = 120.0) -> Any:
    """Run `fn`, retrying while the database is busy, and when another projector applied
    the same events first (a unique violation on applied ids: the next try starts from
    its checkpoint, which now covers them)."""
    deadline = time.monotonic() + deadline_s
    delay = 0.01
    races = 0
    while True:
        try:
            return fn()
        except OperationalError as e:
            msg = str(e).lower()
            if ("locked" not in msg and "busy" not in msg) or time.monotonic() > deadline:
                raise Unavailable(f"{what} failed: {e.orig}") from e
        except IntegrityError as e:
            races += 1
            if races > 20 or time.monotonic() > deadline:
                raise Unavailable(f"{what} failed: {e.orig}") from e
        except DBAPIError as e:  # not a database, permission denied, connection refused
            raise Unavailable(f"{what} failed: {e.orig}") from e
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
