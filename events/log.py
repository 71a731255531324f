"""The EventLog port: the one interface every log adapter (SQLite, Kafka) implements."""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ledgerflow.events.envelope import Event, Position, Recorded

After = Position | Literal["latest"] | None


@dataclass(frozen=True, slots=True)
class CorruptRecord:
    """A stored event that cannot be decoded. Consumers dead-letter it; nobody drops it."""

    position: Position
    id: str
    type: str
    stream: str
    data: str
    reason: str


Item = Recorded | CorruptRecord


class EventLog(Protocol):
    """An append-only, totally ordered (per stream at least) log of events."""

    def append(self, events: Sequence[Event]) -> Sequence[Position]:
        """Store events; durable when it returns. Re-appending a known id is a no-op
        that returns the position it already has."""
        ...

    def read(
        self, after: Position | None = None, limit: int = 1000, types: Sequence[str] | None = None
    ) -> Iterator[Item]:
        """Events after `after` (from the start when None), in log order, at most `limit`."""
        ...

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]:
        """Replay from `after`, then keep yielding new events as they are appended,
        waking on appends rather than spinning, until `stop` is set (or, with
        follow=False, once the head is reached). `idle_wait` bounds how long a quiet
        follower sleeps before looking again even without a wake-up."""
        ...

    def head(self) -> Position | None:
        """Position of the last stored event, None for an empty log."""
        ...

    def close(self) -> None: ...


class TypeMatcher:
    """Matches event types against glob patterns such as `run.*` or `model.version_*`."""

    def __init__(self, patterns: Iterable[str] | None) -> None:
        pats = [p for p in (patterns or []) if p]
        self.everything = not pats or "*" in pats
        self._re = re.compile("|".join(fnmatch.translate(p) for p in pats)) if pats else None

    def __call__(self, type_: str) -> bool:
        return self.everything or bool(self._re and self._re.match(type_))
