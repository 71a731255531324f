"""Leases: one holder at a time for a piece of work that several processes could do.

A lease is a row in the views database (outside the views, so `ledgerflow replay` never
touches it) naming a kind of work and its key (`webhook`, a webhook id; `deployment`, a
deployment name), its holder, until when (epoch ms, the holders' clocks) and a fencing
token that grows with every change of holder. The holder renews it while it works;
another process takes it once it has expired (its holder died or stalled). Writes that
must only come from the holder carry the token (`holding`), so a holder that stalled
past its lease is refused when it wakes up, and stops.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
import weakref
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Engine,
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
from sqlalchemy.exc import IntegrityError

from ledgerflow.events.errors import Conflict
from ledgerflow.services.projector.database import retry

LEASING = MetaData()
LEASES = Table(
    "leases",
    LEASING,
    Column("kind", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("token", BigInteger, nullable=False),  # fencing: +1 with every new holder
    Column("expires_time", BigInteger, nullable=False),  # epoch ms (the holders' clocks)
)
_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class Lease:
    """`holder` does the `kind` work on `key`; its fenced writes carry `token`."""

    kind: str
    key: str
    holder: str
    token: int


class LeaseLost(Conflict):
    """Another process took the lease: this one must stop doing that work."""


class _Taken(Exception):
    """Another holder created the lease row first."""


class Leases:
    """The leases of one kind of work, on `engine`'s database."""

    def __init__(self, engine: Engine, kind: str) -> None:
        self.engine = engine
        self.kind = kind
        if engine not in _READY:
            retry(lambda: LEASING.create_all(engine), "creating the lease table")
            _READY.add(engine)

    def claim(self, key: str, holder: str, ttl_ms: int) -> Lease | None:
        """The lease on `key` for `holder` for `ttl_ms` more: taken when there is none or
        it has expired, renewed when `holder` has it; None while another holder's has not
        expired."""

        def run() -> Lease | None:
            now = _now_ms()
            this = (LEASES.c.kind == self.kind) & (LEASES.c.key == key)
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
                    return Lease(self.kind, key, holder, int(token))
                if conn.execute(select(LEASES.c.holder).where(this)).first() is not None:
                    return None  # another holder's, not expired
                try:
                    conn.execute(
                        insert(LEASES).values(
                            kind=self.kind, key=key, holder=holder, token=1,
                            expires_time=now + ttl_ms,
                        )
                    )  # fmt: skip
                except IntegrityError as e:
                    raise _Taken from e
                return Lease(self.kind, key, holder, 1)

        try:
            return retry(run, f"taking a {self.kind}'s lease")
        except _Taken:
            return None

    def renew(self, holder: str, ttl_ms: int) -> dict[str, int]:
        """Extend every lease of this kind `holder` has by `ttl_ms`: the keys it still
        holds, each with its token (one statement, however many)."""

        def run() -> dict[str, int]:
            mine = (LEASES.c.kind == self.kind) & (LEASES.c.holder == holder)
            with self.engine.begin() as conn:
                conn.execute(update(LEASES).where(mine).values(expires_time=_now_ms() + ttl_ms))
                rows = conn.execute(select(LEASES.c.key, LEASES.c.token).where(mine))
                return {r.key: int(r.token) for r in rows}

        return retry(run, f"renewing {self.kind} leases")

    def release(self, leases: Collection[Lease]) -> None:
        """Give `leases` up (a holder stopping), so others take them over at once."""

        def run() -> None:
            with self.engine.begin() as conn:
                for lease in leases:
                    conn.execute(delete(LEASES).where(held(lease)))

        if leases:
            retry(run, f"giving up {self.kind} leases")


def holder_name() -> str:
    """A name for this process's holder: host, pid and a random part (a restarted process
    is a new holder, whatever its pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def held(lease: Lease) -> ColumnElement[bool]:
    """True while `lease` is still its holder's, with the same token."""
    return (
        (LEASES.c.kind == lease.kind)
        & (LEASES.c.key == lease.key)
        & (LEASES.c.holder == lease.holder)
        & (LEASES.c.token == lease.token)
    )


def holding(lease: Lease | None) -> ColumnElement[bool]:
    """For a fenced write's WHERE: true while `lease` is held (always without one: a
    process working alone)."""
    if lease is None:
        return true()
    return exists(select(LEASES.c.key).where(held(lease)))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
