"""The dispatcher's own state: one cursor per webhook and its recent delivery attempts.

These tables sit in the views database but are not views: they record what
receivers acknowledged, which the log cannot tell. They live in their own
metadata so `ledgerflow replay` (which drops and refolds the views) never resets
a cursor and so never redelivers or skips anything.

An acknowledgement moves the cursor and records the delivery in one transaction,
and only if the cursor is still where this worker read it: two dispatchers on
one database cannot both advance it.

Several dispatchers may run on one database (for availability): each webhook is
delivered by the one holding its lease, a row naming the holder, until when, and a
fencing token that grows with every change of holder. The holder renews it every scan;
another dispatcher takes it once it has expired (its holder died or stalled), and the
old holder's next write (it carries its token) is refused, so it stops. A delivery in
flight when a holder died may reach the receiver twice, with the same `webhook-id`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

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
    case,
    delete,
    exists,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ledgerflow.events.errors import Conflict, Unavailable
from ledgerflow.events.webhook_entities import WebhookDelivery
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

LEASES = Table(
    "webhook_leases",
    DISPATCH,
    Column("webhook_id", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("token", BigInteger, nullable=False),  # fencing: +1 with every new holder
    Column("expires_time", BigInteger, nullable=False),  # epoch ms (the holders' clocks)
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lease:
    """`holder` delivers `webhook_id`'s events; its writes carry `token`."""

    webhook_id: str
    holder: str
    token: int


class LeaseLost(Conflict):
    """Another dispatcher took the webhook's lease: this one must stop delivering it."""


class _Taken(Exception):
    """Another dispatcher created the lease row first."""


_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class CursorState:
    position: Cursor
    pending_event_id: str | None = None
    attempts: int = 0
    next_attempt_time: int | None = None
    last_error: str | None = None


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
        """The lease on `webhook_id` for `holder` for `ttl_ms` more: taken when there is
        none or it has expired, renewed when `holder` has it; None while another holder's
        has not expired."""

        def run() -> Lease | None:
            now = _now_ms()
            this = LEASES.c.webhook_id == webhook_id
            mine_or_expired = or_(LEASES.c.holder == holder, LEASES.c.expires_time < now)
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(LEASES)
                    .where(this, mine_or_expired)
                    .values(  # SET sees the row as it was: same holder, same token
                        token=case(
                            (LEASES.c.holder == holder, LEASES.c.token), else_=LEASES.c.token + 1
                        ),
                        holder=holder,
                        expires_time=now + ttl_ms,
                    )
                )
                if taken.rowcount == 1:
                    token = conn.execute(select(LEASES.c.token).where(this)).scalar_one()
                    return Lease(webhook_id, holder, int(token))
                if conn.execute(select(LEASES.c.holder).where(this)).first() is not None:
                    return None  # another holder's, not expired
                try:
                    conn.execute(
                        insert(LEASES).values(
                            webhook_id=webhook_id, holder=holder, token=1,
                            expires_time=now + ttl_ms,
                        )
                    )  # fmt: skip
                except IntegrityError as e:
                    raise _Taken from e
                return Lease(webhook_id, holder, 1)

        try:
            return retry(run, "taking a webhook's lease")
        except _Taken:
            return None

    def renew(self, holder: str, ttl_ms: int) -> dict[str, int]:
        """Extend every lease `holder` has by `ttl_ms`: the webhooks it still holds, each
        with its token (one statement, however many webhooks)."""

        def run() -> dict[str, int]:
            mine = LEASES.c.holder == holder
            with self.engine.begin() as conn:
                conn.execute(update(LEASES).where(mine).values(expires_time=_now_ms() + ttl_ms))
                rows = conn.execute(select(LEASES.c.webhook_id, LEASES.c.token).where(mine))
                return {r.webhook_id: int(r.token) for r in rows}

        return retry(run, "renewing webhook leases")

    def release(self, leases: Collection[Lease]) -> None:
        """Give `leases` up (a dispatcher stopping), so others take them over at once."""

        def run() -> None:
            with self.engine.begin() as conn:
                for lease in leases:
                    conn.execute(delete(LEASES).where(_held(lease)))

        if leases:
            retry(run, "giving up webhook leases")

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
                    .where(CURSORS.c.webhook_id == webhook_id, _at(expected), _holding(lease))
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
                    .where(CURSORS.c.webhook_id == webhook_id, _at(expected), _holding(lease))
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
                conn.execute(delete(LEASES).where(LEASES.c.webhook_id.in_(webhook_ids)))

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


def _held(lease: Lease) -> ColumnElement[bool]:
    return (
        (LEASES.c.webhook_id == lease.webhook_id)
        & (LEASES.c.holder == lease.holder)
        & (LEASES.c.token == lease.token)
    )


def _holding(lease: Lease | None) -> ColumnElement[bool]:
    """True while `lease` is held (always without one: a lone dispatcher's worker)."""
    if lease is None:
        return true()
    return exists(select(LEASES.c.webhook_id).where(_held(lease)))


def _refused(conn: Connection, webhook_id: str, expected: Cursor, lease: Lease | None) -> Conflict:
    if (
        lease is not None
        and conn.execute(select(LEASES.c.holder).where(_held(lease))).first() is None
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
