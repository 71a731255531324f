"""The log as it stood at a checkpoint: what an as_of view is folded from and reads.

Reads stop at the checkpoint, its head is the checkpoint, and appends are refused,
since nothing can be added to the past. A projector over it folds exactly up to
there, whatever it asks for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

from ledgerflow.events.as_of import read_only
from ledgerflow.events.chain import StoredLog
from ledgerflow.events.envelope import Event, Position
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import After, Checkpoint, CorruptRecord, EventLog, Item, TypeMatcher

PAGE = 1000


class LogPrefix:
    """A read-only EventLog: `log` up to `end`."""

    def __init__(self, log: EventLog, end: Checkpoint) -> None:
        self.log = log
        self.end = end

    def append(self, events: Sequence[Event]) -> NoReturn:
        raise read_only(f"append {len(events)} events")

    def read(
        self,
        after: Checkpoint | Position | None = None,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        *,
        until: Checkpoint | None = None,
    ) -> Iterator[Item]:
        bound = self.end if until is None else until.meet(self.end)
        return self.log.read(after, limit, types, until=bound)

    def head(self) -> Checkpoint:
        return self.end

    def checkpoint_at(self, time_ms: int) -> Checkpoint:
        return self.log.checkpoint_at(time_ms).meet(self.end)

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]:
        """Replays up to the end and returns, followed or not: the past gets no more events."""
        seen = self.end if after == "latest" else Checkpoint.coerce(after)
        match = TypeMatcher(types)
        while not (stop is not None and stop.is_set()):
            page = list(self.read(seen, limit=PAGE))
            if not page:
                return
            for item in page:
                seen = seen.advance(item)
                if match(item.type if isinstance(item, CorruptRecord) else item.event.type):
                    yield item

    def stored(self) -> StoredLog:
        """Tamper evidence is checked on the log itself, never on a part of it."""
        raise InvalidInput("verify the whole event log (ledgerflow verify), not a prefix of it")

    def close(self) -> None:
        """The log belongs to whoever opened it."""
