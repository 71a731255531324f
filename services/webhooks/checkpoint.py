"""The one place where webhook cursors meet log positions.

A cursor is the text of a log `Checkpoint` (one offset per partition; a plain
number on the single-partition SQLite log), or None for "from the start".
"""

from __future__ import annotations

from ledgerflow.events.errors import CorruptEvent, InvalidInput
from ledgerflow.events.log import Checkpoint, EventLog, Item

Cursor = str | None
"""Where a webhook's deliveries resume: after this checkpoint, or from the start if None."""


def parse(cursor: Cursor) -> Checkpoint | None:
    """The `after` argument for `EventLog.subscribe`/`read`."""
    if cursor is None:
        return None
    try:
        return Checkpoint.parse(cursor)
    except InvalidInput:
        raise CorruptEvent(f"webhook cursor {cursor!r} is not a log checkpoint") from None


def advance(cursor: Cursor, item: Item) -> str:
    """The cursor once `item` (read after `cursor`) is delivered."""
    return (parse(cursor) or Checkpoint()).advance(item).encode()


def head(log: EventLog) -> Cursor:
    """The cursor that skips everything already on the log."""
    position = log.head()
    return position.encode() if position else None
