"""The event envelope (DESIGN.md section 4) and the ids and clocks it uses."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerflow.events.payloads import Payload

Position = int
"""An offset within one partition of a log. The SQLite log has one partition (named "")
whose positions order the whole log; a Kafka log has many, ordered only inside each.
Readers track how far they got with a `ledgerflow.events.log.Checkpoint`."""


def uuid7() -> str:
    """A UUIDv7 string: 48 bits of epoch milliseconds, then randomness.

    Sorts by creation time, so ids double as a rough clock in logs and indexes.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return _uuid_text(value)


def named_id(type_: str, identity: str) -> str:
    """The id of the one event of `type_` that `identity` names (`Payload.identity`): a
    UUIDv8 from their SHA-256, the same wherever and whenever it is computed."""
    digest = hashlib.sha256(f"ledgerflow\x1f{type_}\x1f{identity}".encode()).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & ~(0xF << 76)) | (0x8 << 76)  # version 8
    value = (value & ~(0b11 << 62)) | (0b10 << 62)  # variant
    return _uuid_text(value)


def _uuid_text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Event:
    """An immutable fact. `data` is the typed payload; `type` and `v` name its schema."""

    type: str
    stream: str
    data: Payload
    actor: str = "unknown"
    id: str = field(default_factory=uuid7)
    time: int = field(default_factory=now_ms)
    v: int = 1
    trace: str | None = None

    @classmethod
    def of(cls, payload: Payload, *, actor: str = "unknown", trace: str | None = None) -> Event:
        """Wrap a payload: type, version and stream come from the payload itself, and the
        id too where the payload names what makes it one of a kind."""
        identity = payload.identity()
        return cls(
            id=uuid7() if identity is None else named_id(payload.TYPE, identity),
            type=payload.TYPE,
            v=payload.VERSION,
            stream=payload.stream(),
            data=payload,
            actor=actor,
            trace=trace,
        )

    def envelope(self) -> dict[str, Any]:
        """Every field but `data`, as plain values."""
        return {
            "id": self.id,
            "type": self.type,
            "stream": self.stream,
            "time": self.time,
            "v": self.v,
            "actor": self.actor,
            "trace": self.trace,
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as it came back from a log, with where it was stored."""

    position: Position
    event: Event
    partition: str = ""


# Events as a log's reader makes them, one per stored row: the frozen dataclasses'
# __init__ sets each field through object.__setattr__, which costs about four times what
# setting the slots directly does. These make the same objects (equal, hashable, frozen)
# from values already checked; only a reader whose columns are checked may use them.
_EVENT_FIELDS = ("type", "stream", "data", "actor", "id", "time", "v", "trace")
_RECORDED_FIELDS = ("position", "event", "partition")
if (
    tuple(f.name for f in fields(Event)) != _EVENT_FIELDS
    or tuple(f.name for f in fields(Recorded)) != _RECORDED_FIELDS
):  # a field added or moved: the makers below must follow
    raise TypeError("stored_event/stored_record do not match Event's and Recorded's fields")
_new = object.__new__
_type, _stream, _data, _actor, _id, _time, _v, _trace = (
    Event.__dict__[name].__set__ for name in _EVENT_FIELDS
)
_position, _event, _partition = (Recorded.__dict__[name].__set__ for name in _RECORDED_FIELDS)


def stored_event(
    type_: str,
    stream: str,
    data: Payload,
    actor: str,
    id_: str,
    time_: int,
    v: int,
    trace: str | None,
) -> Event:
    """`Event(type_, stream, data, actor, id_, time_, v, trace)`, made without __init__."""
    event: Event = _new(Event)
    _type(event, type_)
    _stream(event, stream)
    _data(event, data)
    _actor(event, actor)
    _id(event, id_)
    _time(event, time_)
    _v(event, v)
    _trace(event, trace)
    return event


def stored_record(position: Position, event: Event, partition: str = "") -> Recorded:
    """`Recorded(position, event, partition)`, made without __init__."""
    record: Recorded = _new(Recorded)
    _position(record, position)
    _event(record, event)
    _partition(record, partition)
    return record
