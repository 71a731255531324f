"""View snapshots: a consistent copy of the views with the log position they reflect, so
a new views location starts from the copy and catches up from its position instead of
replaying the log from offset zero.

On SQLite the checkpoint (`projector_offsets`) lives in the views file and commits with
the rows, so one read transaction over the file sees rows and position together:
`VACUUM INTO` writes such a copy, compacted, while projectors keep writing. PostgreSQL
views are not copied here: `pg_dump` of the views database is that copy, restored with
`pg_restore` before the projector starts (docs/events.md#replays-and-view-snapshots).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from ledgerflow.events.errors import Conflict, InvalidInput, NotFound
from ledgerflow.events.log import Checkpoint, EventLog

NOT_SQLITE = (
    "view snapshots are taken of SQLite views only; for PostgreSQL views use pg_dump of "
    "the views database (and pg_restore into an empty one before the projector starts)"
)


def sqlite_file(views_url: str) -> Path:
    """The file of SQLite views at `views_url`; InvalidInput for any other database."""
    url = make_url(views_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise InvalidInput(NOT_SQLITE)
    return Path(str(url.database))


def take(engine: Engine, path: Path) -> Checkpoint:
    """Write a copy of the views behind `engine` to `path` (which must not exist) and
    return the log position it reflects."""
    if engine.dialect.name != "sqlite":
        raise InvalidInput(NOT_SQLITE)
    if path.exists():
        raise Conflict(f"{path} already exists; name a new file for the snapshot")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = engine.raw_connection()
    try:  # outside any transaction: VACUUM INTO reads in one of its own
        conn.driver_connection.execute("VACUUM INTO ?", (str(path),))  # type: ignore[union-attr]
    finally:
        conn.close()
    return checkpoint_of(path)


def checkpoint_of(path: Path, name: str = "views") -> Checkpoint:
    """The log position the snapshot at `path` reflects."""
    if not path.is_file():
        raise NotFound(f"no view snapshot at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                'SELECT "partition", position FROM projector_offsets WHERE name = ?', (name,)
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise InvalidInput(f"{path} is not a view snapshot ({e})") from None
    return Checkpoint({part: int(pos) for part, pos in rows})


def restore(path: Path, views_url: str, log: EventLog) -> Checkpoint:
    """Copy the snapshot at `path` into the SQLite views at `views_url`, which must hold
    no applied event (a new location, or views made but never fed), and return its
    position. Stop processes using those views first. The caller then catches up."""
    checkpoint = checkpoint_of(path)
    if not log.head().covers(checkpoint):
        raise InvalidInput(
            f"the snapshot {path} reflects log position {checkpoint.encode()!r}, past the "
            f"end of this log ({log.head().encode()!r}): it was taken of another log"
        )
    target = sqlite_file(views_url)
    held = applied(views_url)
    if held:
        raise Conflict(
            f"the views at {target} already hold events (up to {held.encode()!r}); "
            "restore into a new views location, or rebuild these with ledgerflow replay"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".restoring")
    part.write_bytes(path.read_bytes())
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    for suffix in ("-wal", "-shm"):  # an empty views file's, which must not replay over it
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(part, target)
    return checkpoint


def applied(views_url: str) -> Checkpoint:
    """How far the SQLite views at `views_url` have applied the log (empty: nothing, or
    no views there yet)."""
    target = sqlite_file(views_url)
    if not target.exists() or not _has_offsets(target):
        return Checkpoint()
    return checkpoint_of(target)


def _has_offsets(path: Path) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'projector_offsets'"
        ).fetchone()
        return found is not None
    except sqlite3.DatabaseError as e:
        raise InvalidInput(f"{path} is not a views database ({e})") from None
    finally:
        conn.close()
