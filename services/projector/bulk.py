"""Replaying into empty views: the indexes only queries use are built once at the end.

A replay from offset zero (a new views database, `ledgerflow replay`) inserts every row
of the views. Each secondary index is a b-tree written at random keys for every row;
building it once from the finished table is a sort, several times cheaper in all. The
indexes deferred are those no handler reads through (searches, charts and the audit
pages do), so folding is not slowed by their absence; the rest stay.

A replay stopped halfway leaves them missing: the next projector that opens the views
creates them again (`Projector._create`), and a query without one is slow, never wrong.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Index

from ledgerflow.services.projector.tables import METADATA

DEFERRED = frozenset(
    {
        "points_by_run_key_time",
        "params_by_key_value_run",
        "tags_by_key_value_run",
        "latest_by_key_value_run",
        "audit_by_time",
        "audit_by_resource",
        "audit_by_actor",
        "audit_by_type",
    }
)
"""Indexes no handler reads through (audit_by_stream is: metric batches find their
audit rollup row by it; points_by_run_key_step is: a metric without rollups has its
points counted by it, and read when it gets rollups)."""
BULK_EVENTS = 20_000
"""A catch-up from offset zero over at least this many events defers the indexes."""
BULK_BATCH = 20_000
"""Events per transaction while deferring: fewer commits, each page written fewer times
(rows land at random keys, so each transaction rewrites much of every b-tree)."""


def deferred_indexes() -> list[Index]:
    return sorted(
        (i for t in METADATA.sorted_tables for i in t.indexes if i.name in DEFERRED),
        key=lambda i: str(i.name),
    )


def drop_indexes(conn: Connection) -> None:
    for index in deferred_indexes():
        conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')


def create_indexes(conn: Connection) -> None:
    """Create the deferred indexes that are missing."""
    for index in deferred_indexes():
        index.create(conn, checkfirst=True)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one bulk transaction. The transaction's
    events and rows live until it ends, so the collector's passes over them find nothing
    to free and cost about a tenth of a replay's CPU; it runs again between transactions."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
