"""The EventLog port: the one interface every log adapter (SQLite, Kafka) implements."""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ledgerflow.events.chain import StoredLog
from ledgerflow.events.envelope import Event, Position, Recorded
from ledgerflow.events.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class CorruptRecord:
    """A stored event that cannot be decoded. Consumers dead-letter it; nobody drops it."""

    position: Position
    id: str
    type: str
    stream: str
    data: str
    reason: str
    partition: str = ""


Item = Recorded | CorruptRecord

_POSITION = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also reads "²" and "٣"
_POSITIONS = range(-(2**63), 2**63)  # what SQLite, Postgres and Kafka store as a position


def _position(digits: str) -> Position:
    if len(digits) > 20 or int(digits) not in _POSITIONS:  # int() refuses 4300+ digits
        shown = digits if len(digits) <= 24 else f"{digits[:24]}..."
        raise InvalidInput(
            f"bad checkpoint: position {shown} does not fit in 64 bits; expected N or "
            "PARTITION=N[,PARTITION=N...] as the log gave it",
            field="after",
        )
    return int(digits)


class Checkpoint:
    """How far a reader has got: the last position consumed in each partition.

    Immutable. Logs are ordered only within a partition, so progress is one offset per
    partition; the SQLite log's single partition is named "". `encode()` gives the
    token a client stores and passes back (a plain integer for a single-partition
    log, so `--after 42` keeps working there), `parse()` reads it back.
    """

    __slots__ = ("_offsets",)

    def __init__(self, offsets: Mapping[str, Position] | None = None) -> None:
        self._offsets: dict[str, Position] = dict(sorted((offsets or {}).items()))

    @classmethod
    def of(cls, items: Iterable[Item]) -> Checkpoint:
        """The checkpoint just past `items` (the highest position seen per partition)."""
        return cls().advance_all(items)

    @classmethod
    def coerce(cls, after: Checkpoint | Position | str | None) -> Checkpoint:
        """Accept what callers pass as `after`: a checkpoint, its token, a bare position
        on a single-partition log, or None for the start."""
        if after is None:
            return cls()
        if isinstance(after, Checkpoint):
            return after
        if isinstance(after, str):
            return cls.parse(after)
        if isinstance(after, bool) or not isinstance(after, int):
            raise InvalidInput(f"after={after!r}: expected a position or a checkpoint token")
        return cls({"": after})

    @classmethod
    def parse(cls, token: str) -> Checkpoint:
        """The checkpoint `encode()` wrote as `token`; InvalidInput (field `after`) for any
        other text, or for a position past 64 bits (no log holds one, nor can query it)."""
        text = token.strip()
        if not text:
            return cls()
        if _POSITION.fullmatch(text):
            return cls({"": _position(text)})
        offsets: dict[str, Position] = {}
        for part in text.split(","):
            name, sep, offset = part.rpartition("=")
            if not sep or not _POSITION.fullmatch(offset.strip()):
                raise InvalidInput(
                    f"bad checkpoint {token!r}: expected N or PARTITION=N[,PARTITION=N...]",
                    field="after",
                )
            offsets[name.strip()] = _position(offset.strip())
        return cls(offsets)

    def encode(self) -> str:
        if set(self._offsets) == {""}:
            return str(self._offsets[""])
        return ",".join(f"{p}={o}" for p, o in self._offsets.items())

    def get(self, partition: str) -> Position | None:
        return self._offsets.get(partition)

    def partitions(self) -> dict[str, Position]:
        return dict(self._offsets)

    def advance(self, item: Item) -> Checkpoint:
        return self.advance_all((item,))

    def advance_all(self, items: Iterable[Item]) -> Checkpoint:
        offsets = dict(self._offsets)
        for item in items:
            if item.position > offsets.get(item.partition, -1):
                offsets[item.partition] = item.position
        return Checkpoint(offsets)

    def union(self, other: Checkpoint) -> Checkpoint:
        """The later position of each partition named by either."""
        offsets = dict(self._offsets)
        for part, pos in other._offsets.items():
            offsets[part] = max(pos, offsets.get(part, pos))
        return Checkpoint(offsets)

    def meet(self, other: Checkpoint) -> Checkpoint:
        """The earlier position of each partition named by both (as a bound on reading, a
        partition left out gives nothing)."""
        return Checkpoint(
            {
                p: min(pos, other._offsets[p])
                for p, pos in self._offsets.items()
                if p in other._offsets
            }
        )

    def includes(self, item: Item) -> bool:
        """True if `item` is at or before this checkpoint in its partition."""
        return item.position <= self._offsets.get(item.partition, -1)

    def covers(self, other: Checkpoint) -> bool:
        """True once this reader has consumed everything `other` names."""
        return all(self._offsets.get(p, -1) >= o for p, o in other._offsets.items())

    def total(self) -> int:
        """A rough size: the sum of positions (the event count on a single partition)."""
        return sum(self._offsets.values())

    def __bool__(self) -> bool:
        return bool(self._offsets)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and self._offsets == other._offsets

    def __hash__(self) -> int:
        return hash(tuple(self._offsets.items()))

    def __repr__(self) -> str:
        return f"Checkpoint({self.encode()!r})"


After = Checkpoint | Position | str | Literal["latest"] | None
"""Where a reader starts: after a checkpoint (or its token, or a single-partition
position), at the current head ("latest"), or from the beginning (None)."""


class EventLog(Protocol):
    """An append-only log of events, ordered within each partition; a stream always
    lives in one partition, so each stream is read back in append order. The appender
    chains each event to its stream's previous one by hash (`ledgerflow.events.chain`)."""

    def append(self, events: Sequence[Event]) -> Sequence[Recorded]:
        """Store events; durable when it returns. Re-appending a known id is a no-op
        that reports where it is already stored."""
        ...

    def read(
        self,
        after: Checkpoint | Position | None = None,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        *,
        until: Checkpoint | None = None,
    ) -> Iterator[Item]:
        """At most `limit` items after `after` (from the start when None), each partition
        in its order. With `until`, nothing past it is read: only items it includes (a
        partition it does not name gives nothing)."""
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

    def head(self) -> Checkpoint:
        """The last stored position of every partition (empty, and falsy, for an empty
        log): a reader whose checkpoint covers it has read everything."""
        ...

    def stored(self) -> StoredLog:
        """Every record as stored, with its hash chain, undecoded, up to the head as it is
        now: what `ledgerflow.events.verify` walks to find tampering."""
        ...

    def checkpoint_at(self, time_ms: int) -> Checkpoint:
        """Where the log stood at `time_ms` by its events' own times: in each partition,
        everything before its first event stamped later than `time_ms` (partitions with
        nothing before it are left out). An event stamped later was appended later, so
        nothing after it can have been there at `time_ms`."""
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
