"""The dispatcher's own state: one cursor per webhook and its recent delivery attempts.

These tables sit in the views database but are not views: they record what
receivers acknowledged, which the log cannot tell. They live in their own
metadata so `ledgerflow replay` (which drops and refolds the views) never resets
a cursor and so never redelivers or skips anything.

An acknowledgement moves the cursor and records the delivery in one transaction,
and only if the cursor is still where this worker read it: two dispatchers on
one database cannot both advance it.

Several dispatchers may run on one database (for availability): each webhook is
delivered by the one holding its lease (`ledgerflow.services.leases`, kind `webhook`),
renewed every scan; another dispatcher takes it once it has expired (its holder died
or stalled), and the old holder's next write (it carries its fencing token) is refused,
so it stops. A delivery in
flight when a holder died may reach the receiver twice, with the same `webhook-id`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from ledgerflow.events.errors import Conflict
from ledgerflow.events.webhook_entities import WebhookDelivery
from ledgerflow.services.leases import LEASES, Lease, LeaseLost, Leases, held, holding
from ledgerflow.services.projector.database import retry
from ledgerflow.services.webhooks.checkpoint import Cursor

KEEP_DELIVERIES = 100
"""Attempts kept per webhook for `ledgerflow webhooks deliveries`; older ones are pruned."""

DISPATCH = MetaData()
CURSORS = Table(
    "webhook_cursors",
    DISPATCH,
    Column("webhook_id", Text, primary_key=True),
    Column("position", Text, nullable=True),  # delivered through here; None = nothing yet
    Column("pending_event_id", Text, nullable=True),  # the event `attempts` counts for
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_time", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_time", BigInteger, nullable=False),
)
DELIVERIES = Table(
    "webhook_deliveries",
    DISPATCH,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Text, nullable=False),
    Column("delivery_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("position", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("time", BigInteger, nullable=False),
    Index("webhook_deliveries_by_webhook", "webhook_id", "seq"),
)


_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class CursorState:
    position: Cursor
    pending_event_id: str | None = None
    attempts: int = 0
    next_attempt_time: int | None = None
    last_error: str | None = None


def ensure_tables(engine: Engine) -> None:
    """Create the dispatcher's tables once per engine (cheap to call again)."""
    if engine not in _READY:
        retry(lambda: DISPATCH.create_all(engine), "creating the webhook cursor tables")
        _READY.add(engine)


def _at(position: Cursor) -> ColumnElement[bool]:
    col = CURSORS.c.position
    return col.is_(None) if position is None else col == position


class CursorStore:
    def __init__(self, engine: Engine, keep: int = KEEP_DELIVERIES) -> None:
        self.engine = engine
        self.keep = keep
        self.leases = Leases(engine, "webhook")
        ensure_tables(engine)

    def load(self, webhook_id: str, start: Cursor) -> CursorState:
        """The webhook's cursor, created at `start` the first time it is asked for."""

        def run() -> CursorState:
            with self.engine.begin() as conn:
                row = conn.execute(select(CURSORS).where(CURSORS.c.webhook_id == webhook_id))
                found = row.mappings().first()
                if found is None:
                    conn.execute(
                        insert(CURSORS).values(
                            webhook_id=webhook_id, position=start, attempts=0,
                            updated_time=_now_ms(),
                        )
                    )  # fmt: skip
                    return CursorState(start)
                return CursorState(
                    found["position"], found["pending_event_id"], found["attempts"],
                    found["next_attempt_time"], found["last_error"],
                )  # fmt: skip

        return retry(run, "reading a webhook cursor")

    def claim(self, webhook_id: str, holder: str, ttl_ms: int) -> Lease | None:
        """The lease on delivering `webhook_id` (`ledgerflow.services.leases`)."""
        return self.leases.claim(webhook_id, holder, ttl_ms)

    def renew(self, holder: str, ttl_ms: int) -> dict[str, int]:
        """Extend every webhook lease `holder` has: the ids it still holds, with tokens."""
        return self.leases.renew(holder, ttl_ms)

    def release(self, leases: Collection[Lease]) -> None:
        self.leases.release(leases)

    def acknowledge(
        self,
        webhook_id: str,
        expected: Cursor,
        new: str,
        attempt: WebhookDelivery,
        lease: Lease | None = None,
    ) -> None:
        """The receiver took the event: move the cursor past it and record the delivery
        (only while `lease`, when given, is still held)."""

        def run() -> None:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(CURSORS)
                    .where(CURSORS.c.webhook_id == webhook_id, _at(expected), holding(lease))
                    .values(
                        position=new, pending_event_id=None, attempts=0,
                        next_attempt_time=None, last_error=None, updated_time=attempt.time,
                    )
                )  # fmt: skip
                if moved.rowcount != 1:
                    raise _refused(conn, webhook_id, expected, lease)
                self._record(conn, webhook_id, attempt)

        retry(run, "recording a webhook delivery")

    def fail(
        self,
        webhook_id: str,
        expected: Cursor,
        attempt: WebhookDelivery,
        next_attempt_time: int,
        lease: Lease | None = None,
    ) -> None:
        """The attempt failed: count it against the pending event, note when to retry."""

        def run() -> None:
            with self.engine.begin() as conn:
                noted = conn.execute(
                    update(CURSORS)
                    .where(CURSORS.c.webhook_id == webhook_id, _at(expected), holding(lease))
                    .values(
                        pending_event_id=attempt.event_id, attempts=attempt.attempt,
                        next_attempt_time=next_attempt_time, last_error=attempt.error,
                        updated_time=attempt.time,
                    )
                )  # fmt: skip
                if noted.rowcount != 1:
                    raise _refused(conn, webhook_id, expected, lease)
                self._record(conn, webhook_id, attempt)

        retry(run, "recording a failed webhook delivery")

    def _record(self, conn: Connection, webhook_id: str, d: WebhookDelivery) -> None:
        conn.execute(
            insert(DELIVERIES).values(
                webhook_id=webhook_id, delivery_id=d.delivery_id, event_id=d.event_id,
                event_type=d.event_type, position=d.position, attempt=d.attempt, ok=d.ok,
                status_code=d.status_code, error=d.error, duration_ms=d.duration_ms,
                time=d.time,
            )
        )  # fmt: skip
        oldest_kept = (
            select(DELIVERIES.c.seq)
            .where(DELIVERIES.c.webhook_id == webhook_id)
            .order_by(DELIVERIES.c.seq.desc())
            .limit(1)
            .offset(self.keep)
            .scalar_subquery()
        )
        conn.execute(
            delete(DELIVERIES).where(
                DELIVERIES.c.webhook_id == webhook_id, DELIVERIES.c.seq <= oldest_kept
            )
        )

    def forget(self, webhook_ids: Collection[str]) -> None:
        """Drop the state of deleted webhooks (paused ones keep theirs)."""
        if not webhook_ids:
            return

        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(CURSORS).where(CURSORS.c.webhook_id.in_(webhook_ids)))
                conn.execute(delete(DELIVERIES).where(DELIVERIES.c.webhook_id.in_(webhook_ids)))
                conn.execute(
                    delete(LEASES).where(LEASES.c.kind == "webhook", LEASES.c.key.in_(webhook_ids))
                )

        retry(run, "dropping the cursors of deleted webhooks")


def read_deliveries(conn: Connection, webhook_id: str, limit: int) -> list[WebhookDelivery]:
    rows = conn.execute(
        select(DELIVERIES)
        .where(DELIVERIES.c.webhook_id == webhook_id)
        .order_by(DELIVERIES.c.seq.desc())
        .limit(limit)
    ).mappings()
    return [
        WebhookDelivery(
            delivery_id=r["delivery_id"], event_id=r["event_id"], event_type=r["event_type"],
            position=r["position"], attempt=r["attempt"], ok=bool(r["ok"]),
            status_code=r["status_code"], error=r["error"], duration_ms=r["duration_ms"],
            time=r["time"],
        )
        for r in rows
    ]  # fmt: skip


def _refused(conn: Connection, webhook_id: str, expected: Cursor, lease: Lease | None) -> Conflict:
    if (
        lease is not None
        and conn.execute(select(LEASES.c.holder).where(held(lease))).first() is None
    ):
        return LeaseLost(
            f"webhook {webhook_id}: another dispatcher took over its deliveries (this one "
            f"stalled past its lease); this one stops delivering it"
        )
    return _moved(webhook_id, expected)


def _moved(webhook_id: str, expected: Cursor) -> Conflict:
    return Conflict(
        f"webhook {webhook_id}: its cursor moved away from {expected!r} under this "
        "dispatcher; is a second `ledgerflow webhooks run` working on the same database?"
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
