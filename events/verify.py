"""`ledgerflow verify`: walk a log's hash chain and name the first event that breaks it.

The walk needs no payload decoding and keeps, per stream, only its last hash and a few
before it, so it runs at the speed of reading the log. What it can and cannot prove is
in docs/security.md; in short:

- an event whose content changed no longer matches its hash: **altered**;
- an event whose predecessor is not in the log at all: **dropped** (or the predecessor
  was altered and its hash re-written to match, which reads the same);
- an event whose predecessor comes later in the log, or (where appends are serialized)
  is not the event just before it in its stream: **reordered** (or one was inserted);
- an event without a hash after its stream's chain began: **unhashed** (written around
  the log's appender);
- a log that no longer matches an anchor kept elsewhere: **anchor** (a rewrite that
  re-computed every hash from some point on, or a truncated end).

Each partition also gets a digest of everything in it, in order (`Anchor`): keep the
one printed today somewhere the log's writers cannot reach, and a later run with
`--expect-head` proves the log up to that position is unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ledgerflow.events.chain import GENESIS, StoredEvent, StoredLog, link
from ledgerflow.events.errors import InvalidInput

ALTERED = "altered"
DROPPED = "dropped"
REORDERED = "reordered"
INSERTED = "inserted"
UNHASHED = "unhashed"
ANCHOR = "anchor"

MAX_PROBLEMS = 100
"""Problems kept in detail; more are only counted."""
RECENT_SERIAL = 8
"""Earlier hashes kept per stream where appends are serialized: enough to tell a
reordered event from a dropped one."""
RECENT_FORKING = 256
"""Where appenders race (Kafka), how far back in its stream a racing event's
predecessor may be. An appender catches its partition up until it is quiet before it
writes, so a race spans the few records others write during one produce round trip."""
PROGRESS_EVERY = 1 << 16
_GENESIS_KEY = -1
_NO_KEY = -2


def _key(hash_: str) -> int:
    """A hash as a 64-bit int: what the per-stream window stores (a quarter of the memory
    of the hex string; a forger gains nothing from a prefix collision, since `prev` is a
    field they write anyway)."""
    if hash_ == GENESIS:
        return _GENESIS_KEY
    try:
        return int(hash_[:16], 16)
    except ValueError:
        return _NO_KEY


@dataclass(frozen=True)
class Problem:
    """One event (or anchor) that breaks the chain, and how."""

    kind: str
    partition: str
    position: int
    id: str
    stream: str
    detail: str

    def where(self) -> str:
        part = f"partition {self.partition}, " if self.partition else ""
        if self.kind == ANCHOR:
            return f"{part}position {self.position}"
        return f"{part}position {self.position} (event {self.id}, stream {self.stream})"

    def describe(self) -> str:
        return f"{self.where()}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Anchor:
    """The digest of one partition up to a position: `[PARTITION@]POSITION:DIGEST`."""

    partition: str
    position: int
    digest: str

    @classmethod
    def parse(cls, token: str) -> Anchor:
        text = token.strip()
        partition, _, rest = text.rpartition("@")
        position, sep, digest = rest.partition(":")
        digest = digest.lower()
        digits = position.isascii() and position.isdigit() and len(position) <= 20
        if (
            not sep
            or not digits  # int() reads "²" and "٣" too, and refuses 4300 digits
            or int(position) >= 2**63
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise InvalidInput(
                f"bad anchor {token!r}: expected [PARTITION@]POSITION:DIGEST as "
                "`ledgerflow verify` prints it (POSITION: a 64-bit number, DIGEST: 64 hex "
                "digits)",
                field="expect_head",
            )
        return cls(partition, int(position), digest)

    def encode(self) -> str:
        part = f"{self.partition}@" if self.partition else ""
        return f"{part}{self.position}:{self.digest}"


@dataclass
class PartitionReport:
    """What the walk saw in one partition."""

    name: str
    events: int = 0
    legacy: int = 0
    """Events written before events carried a hash: not protected by the chain."""
    first_chained: int | None = None
    last_position: int | None = None
    forks: int = 0
    """Events that chained onto an earlier event of their stream because another
    appender's event got in first (Kafka only; each is checked like any other link)."""
    duplicates: int = 0
    """Second copies of an event (Kafka's at-least-once delivery), identical to the first."""
    continued: int = 0
    """Streams whose first event here follows one that retention deleted."""
    trimmed_from: int | None = None
    digest: str = "0" * 64

    def anchor(self) -> Anchor | None:
        if self.last_position is None:
            return None
        return Anchor(self.name, self.last_position, self.digest)


@dataclass
class Report:
    partitions: dict[str, PartitionReport] = field(default_factory=dict)
    streams: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    anchors_checked: int = 0

    @property
    def checked(self) -> int:
        return sum(p.events for p in self.partitions.values())

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "streams": self.streams,
            "anchors_checked": self.anchors_checked,
            "problem_count": self.problem_count,
            "problems": [p.__dict__ | {"message": p.describe()} for p in self.problems],
            "partitions": [
                {
                    "partition": p.name,
                    "events": p.events,
                    "legacy": p.legacy,
                    "first_chained": p.first_chained,
                    "last_position": p.last_position,
                    "forks": p.forks,
                    "duplicates": p.duplicates,
                    "continued": p.continued,
                    "trimmed_from": p.trimmed_from,
                    "digest": p.digest,
                    "anchor": a.encode() if (a := p.anchor()) else None,
                }
                for p in self.partitions.values()
            ],
        }


class _Stream:
    """Per stream: its last hash and position, and a window of earlier (key, position)
    pairs, flat, newest last."""

    __slots__ = ("recent", "started", "tip", "tip_position")

    def __init__(self) -> None:
        self.tip: str | None = None
        self.tip_position = -1
        self.started: int | None = None
        self.recent: list[int] = []

    def find(self, key: int) -> int | None:
        """The position of the earlier event with this hash key, if still in the window."""
        recent = self.recent
        for i in range(len(recent) - 2, -1, -2):
            if recent[i] == key:
                return recent[i + 1]
        return None


class Verifiable(Protocol):
    """What the walk needs of a log: every `EventLog` is one."""

    def stored(self) -> StoredLog: ...


def verify(
    log: Verifiable,
    anchors: Iterable[Anchor] = (),
    *,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Walk `log.stored()` once and report; `anchors` are checked on the
    way (each when the walk passes its position, or at the end)."""
    stored: StoredLog = log.stored()
    return _Walk(stored, list(anchors), progress).run(stored.events)


class _Walk:
    def __init__(
        self,
        stored: StoredLog,
        anchors: list[Anchor],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.forks = stored.forks
        self.trimmed = dict(stored.trimmed)
        self.window = 2 * (RECENT_FORKING if stored.forks else RECENT_SERIAL)
        self.progress = progress
        self.report = Report()
        self.streams: dict[str, _Stream] = {}
        self.pending: dict[tuple[str, str], int] = {}  # (stream, missing hash) -> problem index
        self.anchors: dict[str, list[Anchor]] = {}
        for anchor in sorted(anchors, key=lambda a: a.position):
            self.anchors.setdefault(anchor.partition, []).append(anchor)

    def _partition(self, name: str) -> PartitionReport:
        part = self.report.partitions.get(name)
        if part is None:
            part = self.report.partitions[name] = PartitionReport(name)
            part.trimmed_from = self.trimmed.get(name)
        return part

    def run(self, events: Iterable[StoredEvent]) -> Report:
        streams = self.streams
        sha256 = hashlib.sha256
        part: PartitionReport | None = None
        digest = bytes(32)
        due: list[Anchor] = []
        n = 0
        for e in events:
            if part is None or e.partition != part.name:
                if part is not None:
                    part.digest = digest.hex()
                part = self._partition(e.partition)
                digest = bytes.fromhex(part.digest)
                due = self.anchors.get(part.name, [])
            while due and due[0].position < e.position:
                part.digest = digest.hex()
                self._check(part, due.pop(0))
            part.events += 1
            part.last_position = e.position
            n += 1
            if self.progress is not None and not n % PROGRESS_EVERY:
                self.progress(n)

            st = streams.get(e.stream)
            if st is None:
                st = streams[e.stream] = _Stream()
            if e.hash is None:
                digest = sha256(digest + link(GENESIS, e.document).digest()).digest()
                if st.started is not None:
                    self._problem(
                        UNHASHED, e,
                        f"it has no hash, but its stream's chain began at position {st.started}: "
                        "it was written around the log's appender (or by a Ledgerflow from "
                        "before the chain, still running)",
                    )  # fmt: skip
                else:
                    part.legacy += 1
                self._advance(st, None, e.position)
                continue
            computed = link(e.prev or GENESIS, e.document)
            digest = sha256(digest + computed.digest()).digest()
            # An event before it may have named it as predecessor (the two were swapped).
            swapped = self._resolve(e, e.hash) if self.pending else None
            if computed.hexdigest() != e.hash:
                self._problem(ALTERED, e, "its content no longer matches its hash")
            elif swapped is not None and swapped == st.tip_position:
                st.recent += (_key(e.hash), e.position)
                continue  # the stream goes on from the one it swapped with
            elif e.prev != (st.tip if st.tip is not None else GENESIS) and not self._broken_link(
                e, e.prev or GENESIS, e.hash, st, part
            ):
                continue  # a duplicate: the stream's tip stays where it is
            if st.started is None:
                st.started = e.position
                if part.first_chained is None:
                    part.first_chained = e.position
            self._advance(st, e.hash, e.position)
        if part is not None:
            part.digest = digest.hex()
        self.report.streams = len(streams)
        self._finish()
        return self.report

    def _advance(self, st: _Stream, hash_: str | None, position: int) -> None:
        recent = st.recent
        if st.tip is not None:
            recent += (_key(st.tip), st.tip_position)
        elif hash_ is not None:
            recent += (_GENESIS_KEY, position)  # a racing first event may also start here
        if len(recent) > 2 * self.window:
            del recent[: len(recent) - self.window]
        st.tip = hash_
        st.tip_position = position

    def _broken_link(
        self, e: StoredEvent, prev: str, hash_: str, st: _Stream, part: PartitionReport
    ) -> bool:
        """Judge an event whose `prev` is not its stream's last hash; False for a duplicate."""
        if hash_ == st.tip or st.find(_key(hash_)) is not None:
            if self.forks:
                part.duplicates += 1
                return False
            self._problem(INSERTED, e, "it is a second copy of an earlier event of its stream")
            return True
        earlier = st.find(_key(prev))
        if earlier is not None:
            if self.forks:
                part.forks += 1
            elif prev == GENESIS:
                self._problem(
                    REORDERED, e,
                    f"it starts its stream's chain, but the chain already began at position "
                    f"{st.started}: it was moved, or the events before it re-chained",
                )  # fmt: skip
            else:
                self._problem(
                    REORDERED, e,
                    f"its predecessor is the event at position {earlier}, but the event "
                    f"before it in its stream is at position {st.tip_position}: an event was "
                    "inserted, or the stream's events were reordered",
                )  # fmt: skip
            return True
        if st.started is None and e.partition in self.trimmed:
            part.continued += 1  # its predecessor went with the partition's deleted start
            return True
        now = f" (the event before it now is at position {st.tip_position})" if st.tip else ""
        index = self._problem(
            DROPPED, e,
            f"the event before it in its stream (hash {prev[:16]}…) is not in the log{now}: "
            "it was dropped, or altered and its hash re-written",
        )  # fmt: skip
        if index is not None:
            self.pending[(e.stream, prev)] = index
        return True

    def _resolve(self, e: StoredEvent, hash_: str) -> int | None:
        """If `e` is the predecessor an earlier event was missing, that one was reordered:
        say so, and return its position."""
        index = self.pending.pop((e.stream, hash_), None)
        if index is None:
            return None
        early = self.report.problems[index]
        self.report.problems[index] = Problem(
            REORDERED, early.partition, early.position, early.id, early.stream,
            f"it comes before its predecessor (event {e.id} at position {e.position})",
        )  # fmt: skip
        return early.position

    def _problem(self, kind: str, e: StoredEvent, detail: str) -> int | None:
        self.report.problem_count += 1
        if len(self.report.problems) >= MAX_PROBLEMS:
            return None
        self.report.problems.append(Problem(kind, e.partition, e.position, e.id, e.stream, detail))
        return len(self.report.problems) - 1

    def _check(self, part: PartitionReport, anchor: Anchor, *, at_end: bool = False) -> None:
        """Compare the partition's digest so far with `anchor`: during the walk, when the
        next event is past its position; at the end, with whatever the partition holds."""
        self.report.anchors_checked += 1
        if at_end and (part.last_position is None or part.last_position < anchor.position):
            end = "has no events" if part.last_position is None else (
                f"ends at position {part.last_position}"
            )  # fmt: skip
            detail = f"the log {end}, before the anchored position: events at its end were dropped"
        elif part.digest != anchor.digest:
            detail = (
                "the log up to this position is not what the anchor recorded: something at or "
                "before it was altered, dropped, inserted or reordered, and the chain "
                "re-written to hide it"
            )
        else:
            return
        self.report.problem_count += 1
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(ANCHOR, part.name, anchor.position, "", "", detail))

    def _finish(self) -> None:
        for name, left in self.anchors.items():
            part = self.report.partitions.get(name)
            for anchor in left:
                if part is None:
                    self.report.anchors_checked += 1
                    self.report.problem_count += 1
                    detail = f"the anchor names partition {name!r}, which this log does not have"
                    self.report.problems.append(
                        Problem(ANCHOR, name, anchor.position, "", "", detail)
                    )
                else:
                    self._check(part, anchor, at_end=True)
            left.clear()
