"""What an `as_of` names: a point of the log to read the views at (docs/time-travel.md).

Either a log position, given as the checkpoint token `/api/v1/events/head` and
`ledgerflow events head` give (`42` on the SQLite log, `topic/partition=N,...` on
Kafka), or a time: ISO-8601 (`2026-12-01T10:00Z`; without a zone it is UTC), epoch
milliseconds, or a `datetime`. A bare integer below `TIME_FROM` is a position (0: the
start of any log), at or above it a time: no log holds a hundred billion events, and no
event predates 1973.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Checkpoint

TIME_FROM = 100_000_000_000
"""Bare integers from here up are epoch milliseconds (1973-03-03T09:46:40Z onwards)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TIMES = range(
    (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MS,
    (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MS + 1,
)
"""Epoch milliseconds a `datetime` can show: years 1 to 9999."""
_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also reads "²" and "٣"
FORMS = (
    "a log position (a token from /api/v1/events/head, e.g. 42), an ISO-8601 time "
    "(e.g. 2026-12-01T10:00Z) or epoch milliseconds"
)

_DAY = r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
_ZONE = r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_EPOCH_MS = r"(?:[0-9]{1,14}|1[0-9]{14}|2[0-4][0-9]{13})"
"""Numbers up to the year 9892 in epoch milliseconds (times end with the year 9999)."""
PATTERN = rf"^(?:{_EPOCH_MS}|{_DAY}(?:{_TIME}{_ZONE}?)?)$"
"""The forms the API document states (JSON Schema): a position or epoch milliseconds, or
an ISO-8601 day or time. A subset of what `parse` reads (it also takes the 29th-31st,
and Kafka's PARTITION=N tokens), so every string it describes is accepted."""
TIME_PATTERN = PATTERN
"""A time as the API document states it: epoch milliseconds, or an ISO-8601 day or time."""


@dataclass(frozen=True, slots=True)
class AsOf:
    """A point of the log: exactly one of `checkpoint` and `time_ms` is set."""

    checkpoint: Checkpoint | None = None
    time_ms: int | None = None

    @classmethod
    def parse(cls, value: AsOf | Checkpoint | datetime | int | str) -> AsOf:
        if isinstance(value, AsOf):
            return value
        if isinstance(value, Checkpoint):
            return cls(checkpoint=value)
        if isinstance(value, datetime):
            return cls._time(_epoch_ms(value), value.isoformat())
        if isinstance(value, int) and not isinstance(value, bool):
            return cls._number(value, str(value))
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"as_of={value!r}: expected {FORMS}", field="as_of")
        text = value.strip()
        if _INTEGER.fullmatch(text):
            if len(text) > 20:  # past 64 bits; int() refuses 4300 digits and more
                raise InvalidInput(
                    f"as_of={_clip(text)}: out of range; expected {FORMS}", field="as_of"
                )
            return cls._number(int(text), text)
        if "=" in text:  # a token naming partitions (Kafka)
            try:
                return cls(checkpoint=Checkpoint.parse(text))
            except InvalidInput as e:
                raise InvalidInput(f"as_of: {e.message}", field="as_of") from None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"as_of={value!r}: expected {FORMS}", field="as_of") from None
        return cls._time(_epoch_ms(moment), text)

    @classmethod
    def _number(cls, number: int, text: str) -> AsOf:
        if number < 0:
            raise InvalidInput(f"as_of={text}: a position or a time is not negative", field="as_of")
        if number >= TIME_FROM:
            return cls._time(number, text)
        return cls(checkpoint=Checkpoint({"": number} if number else {}))  # 0: the start

    @classmethod
    def _time(cls, ms: int, text: str) -> AsOf:
        if ms not in _TIMES:
            raise InvalidInput(
                f"as_of={_clip(text)}: a time must fall in the years 1 to 9999 (UTC)",
                field="as_of",
            )
        return cls(time_ms=ms)

    def encode(self) -> str:
        """The text form, which `parse` reads back as the same point (for `?as_of=`)."""
        if self.checkpoint is not None:
            return self.checkpoint.encode() or "0"
        return self.describe()

    def describe(self) -> str:
        if self.checkpoint is not None:
            return f"position {self.encode()}"
        moment = _EPOCH + (self.time_ms or 0) * _MS
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:40]}..."


def _epoch_ms(moment: datetime) -> int:
    """From the exact timedelta: `timestamp() * 1000` is a millisecond short for some
    times, and then a time `describe()` printed would not read back as itself."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((moment - _EPOCH) / _MS)


def read_only(what: str) -> InvalidInput:
    """The error every write through an as_of view raises."""
    return InvalidInput(
        f"as_of views are read-only: cannot {what}; drop as_of to change the present",
        field="as_of",
    )
