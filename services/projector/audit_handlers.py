"""How every folded event, and every denied request, becomes a row of the audit index.

Through the projector's view over every event (`EveryEvent`): each event is noted before
its handler runs (so a change's old value is still in the views), and the batch's notes
are written at its end, in log order.

Metric batches are the exception: one row per run, identity and minute stands for all
the batches logged in it (`rollup`), counting them and their points and naming the keys.
A batch folds into its rollup row the same way whatever projector batch it arrives in,
so a replay gives the same rows.

`auth.denied` has no other view: its handler here only lets the projector apply it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, select

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.permissions import token_of, user_of
from ledgerflow.services.auth.visibility import resource_of
from ledgerflow.services.projector.audit_changes import change_of
from ledgerflow.services.projector.audit_tables import AUDIT_ENTRIES as AU
from ledgerflow.services.projector.bundle_tables import BUNDLES as B
from ledgerflow.services.projector.handlers import EveryEvent, _data, every_event, handles
from ledgerflow.services.projector.job_tables import JOBS as J
from ledgerflow.services.projector.sql import (
    bulk_insert,
    execute_many,
    fetch_all,
    fetch_in,
    fetch_many,
)
from ledgerflow.services.projector.webhook_tables import WEBHOOKS as W

ROLLUP_MS = 60_000
"""Metric batches of one run and identity fold into one row per this many milliseconds."""
ROLLUP_KEYS = 50
"""A rollup names at most this many metric keys (and says how many more there were)."""
SUMMARY_LENGTH = 240
_SECRET = frozenset({"password_hash", "token_hash", "secret"})
"""Never in a summary (the log keeps them; the audit index need not show them)."""
_BULKY = frozenset({"manifest", "log_tail", "points", "records"})
_STREAM_KEYS = frozenset(
    {"name", "run_id", "experiment_id", "id", "job_id", "deployment", "kind", "key", "group"}
)
"""Payload fields that name the stream's aggregate: the stream column says them already."""
_COLUMNS = (
    "event_id", "partition", "position", "time", "type", "stream", "resource", "actor",
    "token_id", "summary", "before", "after", "events", "rollup", "detail",
)  # fmt: skip
_RUN_EXPERIMENT = "SELECT experiment_id FROM runs WHERE run_id = ?"
_RUN_EXPERIMENTS = "SELECT run_id, experiment_id FROM runs WHERE run_id IN ({})"
_FIND_ROLLUPS = (
    "SELECT id, rollup, events, detail FROM audit_entries "
    "WHERE stream = ? AND time >= ? AND rollup IS NOT NULL"
)
_GROW_ROLLUP = "UPDATE audit_entries SET events = ?, summary = ?, detail = ? WHERE id = ?"


# where an entry belongs ------------------------------------------------------------------


def _scalar(conn: Connection, column: Any, *where: Any) -> Any:
    return conn.execute(select(column).where(*where)).scalar()


def audit_resource(conn: Connection, ev: Event) -> str | None:
    """`kind:key` of the resource whose READ shows the entry, as `resource_of` decides for
    event streams, with what the views know added: a run's, a job's experiment, a
    bundle's model, a webhook's name, and the resource of a grant (shown with MANAGE on
    it). None: admins only."""
    prefix, _, key = ev.stream.partition(":")
    found = resource_of(ev)
    if found is not None and found[0] != "run":
        return f"{found[0]}:{found[1]}"
    if prefix == "run":  # often (metric rollups): the driver's cursor, not a select()
        rows = fetch_all(conn, _RUN_EXPERIMENT, (key,))
        return f"experiment:{rows[0][0]}" if rows else None
    if prefix == "job":
        experiment = _scalar(conn, J.c.experiment_id, J.c.job_id == key)
        return None if experiment is None else f"experiment:{experiment}"
    if prefix == "bundle":
        model = _scalar(conn, B.c.name, B.c.id == key)
        return None if model is None else f"model:{model}"
    if prefix == "webhook":
        name = getattr(ev.data, "name", None) or _scalar(conn, W.c.name, W.c.id == key)
        return None if name is None else f"webhook:{name}"
    if prefix == "permission":
        return key  # "model:m": the grants on a resource
    return None


# what it says ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


def summarize(ev: Event) -> str:
    """One short line: the payload's fields but the stream's own key, secrets and bulk."""
    data = ev.data
    if isinstance(data, a.AuthDenied):
        text = f"{data.status} {data.method} {data.path}"
        if data.needs:
            text += f": needs {data.needs}"
        if data.claimed_user:
            text += f" (as {data.claimed_user!r})"
        if data.suppressed:
            text += f"; {data.suppressed} more like it not recorded"
        return _short(text)
    stream_parts = set(ev.stream.split(":")[1:])
    fields = data.model_dump(mode="json", exclude=set(_SECRET | _BULKY))
    parts = [
        f"{k}={_text(v)}"
        for k, v in fields.items()
        if v not in (None, "", [], {}) and not (k in _STREAM_KEYS and str(v) in stream_parts)
    ]
    parts += [f"{k}=(set)" for k in sorted(_SECRET) if getattr(data, k, None)]
    return _short(" ".join(parts))


def _json(side: dict[str, Any] | None) -> str | None:
    return None if side is None else json.dumps(side, sort_keys=True, separators=(",", ":"))


# metric rollups --------------------------------------------------------------------------


@dataclass
class _Rollup:
    """The metric batches of one run, identity and minute: what its row says."""

    key: str
    item: Recorded
    """The first batch: the row's event, position and time."""
    events: int = 0
    points: int = 0
    keys: set[str] = field(default_factory=set)
    last_time: int = 0

    def add_batch(self, item: Recorded) -> None:
        points = _data(item.event, p.RunMetricsLogged).points
        self.events += 1
        self.points += len(points)
        self.keys.update(map(itemgetter(0), points))
        self.last_time = max(self.last_time, item.event.time)

    def add_stored(self, events: int, detail: str) -> None:
        """Count what the row already holds (the earlier batches)."""
        old = json.loads(detail)
        self.events += events
        self.points += old["points"]
        self.keys.update(old["keys"])
        self.last_time = max(self.last_time, old["last_time"])

    def detail(self) -> str:
        doc = {"keys": sorted(self.keys), "last_time": self.last_time, "points": self.points}
        return json.dumps(doc, separators=(",", ":"))

    def summary(self) -> str:
        keys = sorted(self.keys)
        named = ", ".join(keys[:ROLLUP_KEYS]) + (
            f" and {len(keys) - ROLLUP_KEYS} more" if len(keys) > ROLLUP_KEYS else ""
        )
        batches = f"{self.events} batch{'es' if self.events != 1 else ''}"
        return _short(f"{self.points} points in {batches}: {named}")

    def row(self, experiments: dict[str, str]) -> tuple[Any, ...]:
        """The new row of a rollup the index does not hold yet."""
        ev, item = self.item.event, self.item
        experiment = experiments.get(ev.stream.partition(":")[2])
        return (
            ev.id, item.partition, item.position, ev.time, ev.type, ev.stream,
            None if experiment is None else f"experiment:{experiment}", user_of(ev.actor),
            token_of(ev.actor), self.summary(), None, None, self.events, self.key,
            self.detail(),
        )  # fmt: skip


def _minute(ev: Event) -> int:
    return ev.time // ROLLUP_MS * ROLLUP_MS


def _rollup_key(ev: Event) -> str:
    return f"{ev.stream}|{ev.actor}|{_minute(ev)}"


def _stored(conn: Connection, rollups: Iterable[_Rollup]) -> list[tuple[Any, ...]]:
    """The rows of these rollups (and maybe others of the same runs) the index holds:
    by run from the earliest minute on, an index range each."""
    since: dict[str, int] = {}
    for r in rollups:
        stream, minute = r.item.event.stream, _minute(r.item.event)
        since[stream] = min(since.get(stream, minute), minute)
    return fetch_many(conn, _FIND_ROLLUPS, list(since.items()))


# the view --------------------------------------------------------------------------------


def note(conn: Connection, item: Recorded) -> tuple[Any, ...] | Recorded:
    """The row of a single event; a metric batch only as itself (`write` folds it)."""
    ev = item.event
    if ev.type == p.RunMetricsLogged.TYPE:
        return item
    change = change_of(conn, ev)
    before, after = change if change is not None else (None, None)
    token = token_of(ev.actor)
    detail = None
    if isinstance(ev.data, a.AuthDenied):  # what a security review asks about a refusal
        detail = ev.data.model_dump(mode="json", exclude={"token_id"})
        token = token or ev.data.token_id  # a 401's presented (refused) token
    return (
        ev.id, item.partition, item.position, ev.time, ev.type, ev.stream,
        audit_resource(conn, ev), user_of(ev.actor), token, summarize(ev),
        _json(before), _json(after), 1, None, _json(detail),
    )  # fmt: skip


def write(conn: Connection, notes: Sequence[tuple[Any, ...] | Recorded]) -> None:
    """Insert the rows of single events and fold metric batches into their rollups, with
    a few statements per batch (the rollups it touches are read at once, grown with one
    executemany). New rows go in log order, a rollup where its first batch is, so row
    ids do not depend on how the log was cut into batches."""
    rollups: dict[str, _Rollup] = {}
    order: list[tuple[Any, ...] | _Rollup] = []
    for n in notes:
        if isinstance(n, Recorded):
            key = _rollup_key(n.event)
            r = rollups.get(key)
            if r is None:
                r = rollups[key] = _Rollup(key, n)
                order.append(r)
            r.add_batch(n)
        else:
            order.append(n)
    stored: dict[str, tuple[int, int, str]] = {}
    experiments: dict[str, str] = {}
    if rollups:
        for row_id, key, events, detail in _stored(conn, rollups.values()):
            if key in rollups:
                stored[key] = (row_id, events, detail)
        runs = {r.item.event.stream[len("run:") :] for k, r in rollups.items() if k not in stored}
        experiments = dict(fetch_in(conn, _RUN_EXPERIMENTS, sorted(runs))) if runs else {}
    rows: list[tuple[Any, ...]] = []
    grown: list[tuple[Any, ...]] = []
    for entry in order:
        if not isinstance(entry, _Rollup):
            rows.append(entry)
        elif entry.key in stored:
            row_id, events, detail = stored[entry.key]
            entry.add_stored(events, detail)
            grown.append((entry.events, entry.summary(), entry.detail(), row_id))
        else:
            rows.append(entry.row(experiments))
    if rows:
        bulk_insert(conn, AU, _COLUMNS, rows)
    execute_many(conn, _GROW_ROLLUP, grown)


every_event(EveryEvent(note, write))


@handles(a.AuthDenied)
def auth_denied(conn: Connection, ev: Event) -> None:
    """Nothing but the audit entry: a refused request changes no other view."""
    _data(ev, a.AuthDenied)
