"""The audit trail's records, its search, and how the answers travel.

An `AuditEntry` says who did what, when, through which token, on what, with the value
before and after for the changes that replace one; the services build them from the
audit index, the gateway writes them (`AuditEntryOut`), the SDK reads them back as the
same frozen objects.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.wire import RecordOut, from_record

MAX_RESULTS = 1000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    event_id: str
    time: int
    """Epoch ms of the event (of the first batch, for a rollup of metric batches)."""
    type: str
    stream: str
    """The stream the event is on, the entity it changed: `model:digits-cnn`, `run:<id>`,
    `audit:denied`..."""
    actor: str
    """The user (or service) that acted; `anonymous` for a refused request without an
    identity."""
    token_id: str | None
    """The API token it acted through, if any."""
    summary: str
    before: dict[str, Any] | None = None
    """What the change replaced (`{"version": 2}`), where it replaces a value."""
    after: dict[str, Any] | None = None
    resource: str | None = None
    """`kind:key` of the resource whose READ shows the entry (None: admins only)."""
    partition: str = ""
    position: int = 0
    """Where the event is on the log."""
    events: int = 1
    """How many events the entry stands for: more than 1 for a rollup of metric batches
    (one entry per run, identity and minute)."""
    detail: dict[str, Any] | None = None
    """For a rollup: points, keys, last_time. For a refused request (`auth.denied`): status,
    method, path, route, needs, reason, claimed_user, credential, client, suppressed."""


@from_record(
    AuditEntry,
    defaults=True,
    descriptions={
        "time": "epoch ms",
        "stream": "the event's stream (the entity it changed), e.g. model:digits-cnn",
        "before": "what the change replaced, where it replaces a value",
        "after": "the new value, where it replaces one",
        "events": "more than 1: a rollup of metric batches (run, identity, minute)",
    },
)
class AuditEntryOut(RecordOut[AuditEntry]):
    """One audit entry."""


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_page_token: str | None = Field(
        None, description="pass as page_token for the next page; None: no more"
    )


@dataclass(frozen=True)
class AuditQuery:
    """What to search the audit trail for; every part is optional and they all apply.

    `entity`, `actor` and `type` may hold `*` wildcards (`deployment.*`). `entity` matches
    the event's stream or the resource the entry is on (`experiment:1` finds its runs' too).
    `since` and `until` are epoch ms (see `instant` for the forms people type).
    """

    entity: str | None = None
    actor: str | None = None
    token: str | None = None
    type: str | None = None
    since: int | None = None
    until: int | None = None

    def params(self) -> dict[str, Any]:
        """The query as the REST route's parameters."""
        return {
            "entity": self.entity, "actor": self.actor, "token": self.token,
            "type": self.type, "since": self.since, "until": self.until,
        }  # fmt: skip


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def instant(value: Any, *, field: str = "since", now_ms: int | None = None) -> int | None:
    """Epoch milliseconds from what people write for a point in time:

    - an epoch in milliseconds (a number, or its digits);
    - an ISO-8601 date or time (`2026-12-03`, `2026-12-03T14:00`, `...Z`, `...+01:00`);
      without a zone, UTC;
    - a time ago: `90s`, `15m`, `1h`, `2d`, `1w`;
    - a `datetime` (naive: UTC) or `date`.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a time, got {value!r}", field=field)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, dt.date):
        return instant(dt.datetime(value.year, value.month, value.day), field=field)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    ago = _RELATIVE.match(text)
    if ago:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return now - int(float(ago.group(1)) * _UNIT_MS[ago.group(2).lower()])
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidInput(
            f"{field} {text!r} is not a time: give epoch milliseconds, an ISO-8601 date or "
            "time (2026-12-03, 2026-12-03T14:00Z), or a time ago (30m, 1h, 2d, 1w)",
            field=field,
        ) from None
    return instant(parsed, field=field)
