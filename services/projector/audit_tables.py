"""The audit index: one row per event the views fold, and per denied request
(`auth.denied`), saying who did what, when, through which token, on what, and for the
changes that replace a value (an alias moved, a grant changed, traffic shifted) the
value before and after.

The facts are all on the log already; this view exists so that "who touched
model:digits-cnn last week" is an index range scan instead of a read of the whole log.
Like every view it is folded by the projector and rebuilt by `ledgerflow replay`.

Metric batches (`run.metrics_logged`, thousands a second on a busy server) are rolled up:
one row per run, identity and minute, counting the batches and points and naming the
keys, so the index grows with the runs being logged to, not with their traffic.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class AuditEntryRow(SQLModel, table=True):
    __tablename__ = "audit_entries"
    # Newest first by (time, id) everywhere: each filter has its own range, and the
    # integer tie-breaker keeps the entries small (an index entry is written per row).
    __table_args__ = (
        Index("audit_by_time", "time", "id"),
        Index("audit_by_stream", "stream", "time", "id"),
        Index("audit_by_resource", "resource", "time", "id"),
        Index("audit_by_actor", "actor", "time", "id"),
        Index("audit_by_type", "type", "time", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: str
    partition: str = Field(sa_column=Column(Text, nullable=False))
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    time: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str
    stream: str
    """The event's stream, the entity it changed: `model:digits-cnn`, `run:<id>`..."""
    resource: str | None = None
    """`kind:key` of the resource whose READ shows the entry (a run's experiment, a
    bundle's model); None: admins only (identities, and what names no resource)."""
    actor: str
    """The user (or service) that acted, without the token."""
    token_id: str | None = None
    summary: str = Field(sa_column=Column(Text, nullable=False))
    before: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON: a refused request's particulars."""
    events: int = 1
    """How many events the row stands for: 1, or a rollup's batches."""
    # a rollup of metric batches
    rollup: str | None = None
    """`<stream>|<actor>|<minute>`: what folds into it (found through the stream index:
    a rollup's time is in its minute)."""
    points: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_time: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    metric_keys: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON: the metric keys logged, sorted."""


AUDIT_ENTRIES = table(AuditEntryRow)

ROLLUP_KEYS = 50
"""A rollup's summary names at most this many metric keys (and counts the others)."""


def rollup_summary(
    keys: Sequence[str], events: int | None = None, points: int | None = None
) -> str:
    """`metrics acc, loss` (stored), or with the counts `120 points in 12 batches: acc,
    loss` (as read: the counts change with every batch, the stored line only with a new
    key)."""
    named = ", ".join(keys[:ROLLUP_KEYS])
    if len(keys) > ROLLUP_KEYS:
        named += f" and {len(keys) - ROLLUP_KEYS} more"
    if events is None or points is None:
        return f"metrics {named}"
    return f"{points} points in {events} batch{'es' if events != 1 else ''}: {named}"
