"""The embedded event log: an append-only table in a SQLite file (WAL mode).

Positions are SQLite rowids with AUTOINCREMENT: writers are serialized by
SQLite's write lock, so position order is commit order and a reader never sees
a gap that later fills. `synchronous=FULL` makes an append durable when it
returns. Several processes may append to the same file at once; lock waits are
absorbed by a busy timeout and a retry, never shown to the user.

Each row carries the hash chain (`ledgerflow.events.chain`): `prev`, the hash of
its stream's previous row, read inside the same write transaction that assigns the
position, and `hash`. Appends are serialized, so a stream's chain never forks.
The two columns come before `data`, so reading a stream's last hash stays on the
first page of its row whatever the payload's size. Files from before the chain get
them (after `data`) on open; their old rows keep NULL there, and `verify` reports
them as written before the chain.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ledgerflow.events.chain import GENESIS, StoredEvent, StoredLog, chain_hash, document
from ledgerflow.events.codec import REGISTRY, EventRegistry, decode_columns, encode_data
from ledgerflow.events.envelope import Event, Position, Recorded, stored_record
from ledgerflow.events.errors import CorruptEvent, InvalidInput, Timeout, Unavailable
from ledgerflow.events.group_commit import GroupCommit
from ledgerflow.events.log import After, Checkpoint, CorruptRecord, Item, TypeMatcher
from ledgerflow.events.notify import Notifier

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT    NOT NULL UNIQUE,
    type     TEXT    NOT NULL,
    stream   TEXT    NOT NULL,
    time     INTEGER NOT NULL,
    v        INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    trace    TEXT,
    prev     TEXT,
    hash     TEXT,
    data     TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_stream ON events (stream, position);
"""

_COLUMNS = "position, id, type, stream, time, v, actor, trace, data"
_CHAIN_COLUMNS = (("prev", "TEXT"), ("hash", "TEXT"))
LOCK_RETRY_SECONDS = 120.0
STOP_CHECK_S = 0.1
"""How late an idle follower may notice its `stop` (appends wake it at once): a
gateway, server or dispatcher stopping waits this long for each of its followers."""
T = TypeVar("T")


def connect(path: Path, *, busy_ms: int = 30_000) -> sqlite3.Connection:
    """A connection tuned for many writers on one machine: WAL, FULL sync, long busy wait."""
    conn = sqlite3.connect(
        path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def retry_locked(fn: Callable[[], T], what: str, deadline_s: float = LOCK_RETRY_SECONDS) -> T:
    """Run `fn`, retrying while SQLite reports the file locked or busy.

    The busy timeout already waits inside SQLite; this outer loop covers the cases
    where SQLite gives up at once (a deadlock-avoidance SQLITE_BUSY in WAL mode).
    """
    deadline = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            msg = str(e).lower()
            if "locked" not in msg and "busy" not in msg:
                raise Unavailable(f"{what} failed: {e}") from e
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{what}: the SQLite file stayed locked by another process for "
                    f"{deadline_s:.0f}s; is a process stuck holding a write transaction?"
                ) from e
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        except sqlite3.DatabaseError as e:  # e.g. "file is not a database"
            raise Unavailable(f"{what} failed: {e}; is the file really a Ledgerflow log?") from e


def notify_folder(path: Path) -> Path:
    """A short folder for wake-up sockets (Unix socket paths are limited to ~100 bytes)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "ledgerflow-notify" / digest


class SQLiteEventLog:
    """EventLog adapter over one SQLite file."""

    def __init__(self, path: str | Path, registry: EventRegistry = REGISTRY) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InvalidInput(f"cannot create the event log folder {self.path.parent}: {e}") from e
        self.registry = registry
        self._local = threading.local()
        self._notifier = Notifier(notify_folder(self.path))
        self._closed = False
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        # The threads of this process append one group at a time (one transaction, one
        # fsync for all that queued while the one before wrote), waking as soon as it
        # commits rather than meeting in SQLite's busy handler, which polls with sleeps
        # of 1 to 100 ms; other processes still wait there.
        self._group: GroupCommit[Event, Recorded] = GroupCommit(
            self._append_now, shared=(Unavailable, Timeout)
        )
        retry_locked(lambda: self._conn().executescript(_SCHEMA), "creating the event log")
        retry_locked(self._add_chain_columns, "adding the hash chain to the event log")

    def _add_chain_columns(self) -> None:
        """Give a log file from before the hash chain its two columns (once, whoever of
        several processes opening it first gets the write lock)."""
        conn = self._conn()

        def missing() -> list[tuple[str, str]]:
            have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
            return [col for col in _CHAIN_COLUMNS if col[0] not in have]

        if not missing():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name, kind in missing():
                conn.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self.path)
            except sqlite3.Error as e:
                raise Unavailable(f"cannot open the event log {self.path}: {e}") from e
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def append(self, events: Sequence[Event]) -> list[Recorded]:
        if not events:
            return []
        return self._group.append(events)

    def _append_now(self, events: Sequence[Event]) -> list[Recorded]:
        rows = [
            (e.id, e.type, e.stream, e.time, e.v, e.actor, e.trace, encode_data(e.data))
            for e in events
        ]
        docs = [document(*row[:7], row[7].encode()) for row in rows]
        conn = self._conn()

        def write() -> list[Position]:
            positions: list[Position] = []
            tips: dict[str, str] = {}  # stream -> the hash of its last row, in this transaction
            conn.execute("BEGIN IMMEDIATE")
            try:
                for row, doc in zip(rows, docs, strict=True):
                    stream = row[2]
                    prev = tips.get(stream)
                    if prev is None:
                        last = conn.execute(
                            "SELECT hash FROM events WHERE stream = ? ORDER BY position DESC "
                            "LIMIT 1",
                            (stream,),
                        ).fetchone()
                        prev = (last[0] if last else None) or GENESIS
                    hash_ = chain_hash(prev, doc)
                    cur = conn.execute(
                        "INSERT INTO events (id, type, stream, time, v, actor, trace, data, "
                        "prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (id) DO NOTHING",
                        (*row, prev, hash_),
                    )
                    if cur.rowcount == 1:
                        tips[stream] = hash_
                        positions.append(int(cur.lastrowid or 0))
                    else:
                        found = conn.execute(
                            "SELECT position FROM events WHERE id = ?", (row[0],)
                        ).fetchone()
                        positions.append(int(found[0]))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return positions

        positions = retry_locked(write, "appending to the event log")
        self._notifier.notify({e.type for e in events})
        return [Recorded(pos, ev) for pos, ev in zip(positions, events, strict=True)]

    def read(
        self,
        after: Checkpoint | Position | None = None,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        *,
        until: Checkpoint | None = None,
    ) -> Iterator[Item]:
        match = TypeMatcher(types)
        rows = self._rows(_start(after), limit, until)
        decode = self._decode
        if match.everything:  # a projector's catch-up: no type to test per row
            for row in rows:
                yield decode(row)
            return
        for row in rows:
            if match(row[2]):
                yield decode(row)

    def _rows(
        self, start: Position, limit: int, until: Checkpoint | None = None
    ) -> list[tuple[Any, ...]]:
        """Up to `limit` rows after position `start`, undecoded (their type is row[2])."""
        sql, params = f"SELECT {_COLUMNS} FROM events WHERE position > ?", [start]
        if until is not None:
            sql, params = sql + " AND position <= ?", [*params, _start(until)]
        rows: list[tuple[Any, ...]] = retry_locked(
            lambda: (
                self._conn()
                .execute(sql + " ORDER BY position LIMIT ?", (*params, limit))
                .fetchall()
            ),
            "reading the event log",
        )
        return rows

    def _decode(self, row: tuple[Any, ...]) -> Item:
        position, id_, type_, stream, time_, v, actor, trace, data = row
        try:
            event = decode_columns(id_, type_, stream, time_, v, actor, trace, data, self.registry)
        except CorruptEvent as e:
            return CorruptRecord(position, id_, type_, stream, data, e.message)
        return stored_record(position, event)

    def stored(self) -> StoredLog:
        """Every row as stored, in position order, for `verify`: one read transaction
        (a consistent snapshot while writers go on), streamed, payloads never decoded."""
        return StoredLog(self._stored(), forks=False)

    def _stored(self) -> Iterator[StoredEvent]:
        conn = retry_locked(lambda: connect(self.path), "opening the event log to verify it")

        def rows_after(start: Position) -> sqlite3.Cursor:
            return conn.execute(
                "SELECT position, id, type, stream, time, v, actor, trace, CAST(data AS BLOB), "
                "prev, hash FROM events WHERE position > ? ORDER BY position",
                (start,),
            )

        last = 0
        try:
            while True:
                rows = retry_locked(functools.partial(rows_after, last), "reading the event log")
                try:
                    for row in rows:
                        last = row[0]
                        yield _stored_event(row)
                    return
                except sqlite3.OperationalError as e:
                    if "decode" not in str(e) or conn.text_factory is not str:
                        raise
                    # Text that is not UTF-8 must come back as a mismatch, not stop the walk;
                    # decoding leniently costs, so only from the row that needs it on.
                    conn.text_factory = _lenient_text
        except sqlite3.Error as e:
            raise Unavailable(f"reading the event log {self.path} failed: {e}") from e
        finally:
            conn.close()

    def head(self) -> Checkpoint:
        row = retry_locked(
            lambda: self._conn().execute("SELECT MAX(position) FROM events").fetchone(),
            "reading the event log head",
        )
        return Checkpoint() if row[0] is None else Checkpoint({"": int(row[0])})

    def checkpoint_at(self, time_ms: int) -> Checkpoint:
        """Positions order the whole log, so this is everything before the first event
        stamped after `time_ms` (a scan from the start that stops there)."""
        row = retry_locked(
            lambda: (
                self._conn()
                .execute(
                    "SELECT position FROM events WHERE time > ? ORDER BY position LIMIT 1",
                    (time_ms,),
                )
                .fetchone()
            ),
            "finding a time in the event log",
        )
        if row is None:
            return self.head()
        last = int(row[0]) - 1
        return Checkpoint({"": last}) if last > 0 else Checkpoint()

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        batch: int = 1000,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]:
        position = _start(self.head() if after == "latest" else after)
        match = TypeMatcher(types)
        with self._notifier.listener(None if match.everything else match) as listener:
            while not (stop is not None and stop.is_set()):
                rows = self._rows(position, batch)
                for row in rows:  # decoded only when the follower wants its type
                    position = row[0]
                    if match(row[2]):
                        yield self._decode(row)
                if len(rows) == batch:
                    continue
                if not follow or (stop is not None and stop.is_set()):
                    return
                # Appends wake us at once; the slices only bound how late we notice `stop`.
                deadline = time.monotonic() + idle_wait
                while not (stop is not None and stop.is_set()):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or listener.wait(min(remaining, STOP_CHECK_S)):
                        break

    def heads(
        self, *, stop: threading.Event | None = None, idle_wait: float = 1.0
    ) -> Iterator[Checkpoint]:
        """The log's head now, then again each time it moves (an append by any process),
        without reading or decoding events: for a follower that only needs to know there
        is more, as a projector that reads the log itself does."""
        last: Checkpoint | None = None
        with self._notifier.listener() as listener:
            while not (stop is not None and stop.is_set()):
                head = self.head()
                if head != last:
                    last = head
                    yield head
                deadline = time.monotonic() + idle_wait
                while not (stop is not None and stop.is_set()):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or listener.wait(min(remaining, STOP_CHECK_S)):
                        break

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._all_conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all_conns.clear()
        self._local = threading.local()


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    position, id_, type_, stream, time_, v, actor, trace, data, prev, hash_ = row
    try:
        doc = document(id_, type_, stream, time_, v, actor, trace, data)
    except (TypeError, ValueError):  # a column of the wrong type: no appender wrote this row
        doc = repr(row).encode()
    return StoredEvent("", position, str(id_), str(stream), doc, prev, hash_)


def _lenient_text(raw: bytes) -> str:
    return raw.decode(errors="replace")


def _start(after: Checkpoint | Position | str | None) -> Position:
    """The position to read after; the SQLite log is one partition, named ""."""
    checkpoint = Checkpoint.coerce(after)
    foreign = set(checkpoint.partitions()) - {""}
    if foreign:
        raise InvalidInput(
            f"checkpoint {checkpoint.encode()!r} names partitions of another log "
            f"({', '.join(sorted(foreign))}); this SQLite log has one partition",
            field="after",
        )
    return checkpoint.get("") or 0
