"""The one place where webhook cursors meet log positions.

A cursor is stored as opaque text. Today a position is an integer on every log
this code runs against; when the log port grows its `Checkpoint` token
(`parse`/`encode`/`advance`), these three functions become thin calls to it and
nothing else in the webhooks package changes.
"""

from __future__ import annotations

from ledgerflow.events.errors import CorruptEvent
from ledgerflow.events.log import EventLog, Item

Cursor = str | None
"""Where a webhook's deliveries resume: after this checkpoint, or from the start if None."""


def parse(cursor: Cursor) -> int | None:
    """The `after` argument for `EventLog.subscribe`/`read`."""
    if cursor is None:
        return None
    try:
        return int(cursor)
    except ValueError:
        raise CorruptEvent(f"webhook cursor {cursor!r} is not a log checkpoint") from None


def advance(cursor: Cursor, item: Item) -> str:
    """The cursor once `item` (read after `cursor`) is delivered."""
    return str(item.position)


def head(log: EventLog) -> Cursor:
    """The cursor that skips everything already on the log."""
    position = log.head()
    return None if position is None else str(position)
