"""Engines for the view database: SQLite on the embedded default, PostgreSQL when distributed."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ledgerflow.events.errors import InvalidInput, Unavailable

CACHE_KIB = 64 * 1024
"""Page cache per SQLite connection (an upper bound, allocated as used)."""
WAL_PAGES = 10_000
"""Pages written to the views' WAL between automatic checkpoints (40 MiB)."""
POSTGRES_CONNECT = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
"""libpq settings for PostgreSQL connections, unless the URL's query sets them: a server
that does not answer fails a connect in 10 s (libpq waits forever by default), and one
that went away under an open connection is noticed in about a minute (TCP keepalives)
rather than after the kernel's retransmissions give up (about 15 minutes)."""


def make_engine(url: str, *, writer: bool, **options: Any) -> Engine:
    """An engine for `url`. SQLite writers take the write lock when a transaction begins
    (BEGIN IMMEDIATE), so concurrent projectors queue instead of failing on upgrade.
    `options` go to SQLAlchemy's `create_engine` (e.g. a pool class)."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise InvalidInput(f"LEDGERFLOW_VIEWS_DB {url!r} is not a database URL: {e}") from None
    if parsed.get_backend_name() == "postgresql":
        given = {k: v for k, v in POSTGRES_CONNECT.items() if k not in parsed.query}
        connect_args = {**given, **options.pop("connect_args", {})}
        return create_engine(
            url, pool_pre_ping=True, future=True, connect_args=connect_args, **options
        )
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True, **options)
    if parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        # Views can always be rebuilt from the log and the checkpoint commits with
        # the rows, so NORMAL (consistent, maybe not the last commit) is enough.
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA busy_timeout = 30000")
        # SQLite's default page cache is 2 MiB; views of thousands of runs are hundreds of
        # MiB written at random keys (run ids), so the projector re-read most pages from
        # the OS on every statement. Pages are only allocated as they are used.
        cur.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        cur.execute("PRAGMA case_sensitive_like = ON")  # LIKE as in PostgreSQL; ILIKE for the rest
        # Checkpoint the WAL every WAL_PAGES pages, not SQLite's 1,000: each checkpoint
        # writes every page changed since the last, so the pages every command touches
        # (offsets, applied ids, index roots) are written once per 40 MiB, not per 4.
        cur.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
        cur.close()

    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver's connection: SQLAlchemy's statement machinery around a fixed
        # statement cost more than the BEGIN itself, once per transaction.
        driver = conn.connection.driver_connection
        try:
            driver.execute(begin)
        except sqlite3.Error as e:  # as SQLAlchemy raises it: a locked file is retried
            raise DBAPIError.instance(begin, (), e, sqlite3.Error, dialect=conn.dialect) from e

    return engine


T = TypeVar("T")


def retry(fn: Callable[[], T], what: str, deadline_s: float = 60.0) -> T:
    """Run `fn`, waiting out a locked SQLite file; other database errors become Unavailable."""
    deadline = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        try:
            return fn()
        except OperationalError as e:
            msg = str(e).lower()
            if ("locked" not in msg and "busy" not in msg) or time.monotonic() > deadline:
                raise Unavailable(f"{what} failed: {e.orig}") from e
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        except DBAPIError as e:
            raise Unavailable(f"{what} failed: {e.orig}") from e


def unavailable(error: OperationalError) -> Unavailable:
    """A views database that cannot be used right now (restarting, cut off, a SQLite file
    locked past its timeout) as the error it is: one to try again, not an internal one."""
    reason = (str(error.orig or error).strip().splitlines() or ["no reason given"])[0]
    return Unavailable(f"the views database is unavailable ({reason}); try again shortly")
