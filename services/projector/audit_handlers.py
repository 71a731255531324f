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
from functools import cache, lru_cache
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, select

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.payloads import Payload
from ledgerflow.events.permissions import token_of, user_of
from ledgerflow.services.auth.visibility import resource_of
from ledgerflow.services.projector.audit_changes import change_of
from ledgerflow.services.projector.audit_tables import rollup_summary
from ledgerflow.services.projector.bundle_tables import BUNDLES as B
from ledgerflow.services.projector.handlers import (
    EveryEvent,
    RunFacts,
    _data,
    every_event,
    handles,
)
from ledgerflow.services.projector.job_tables import JOBS as J
from ledgerflow.services.projector.sql import execute_many, fetch_all, fetch_in
from ledgerflow.services.projector.webhook_tables import WEBHOOKS as W

ROLLUP_MS = 60_000
"""Metric batches of one run and identity fold into one row per this many milliseconds."""
SUMMARY_LENGTH = 240
_SECRET = frozenset({"password_hash", "token_hash", "secret", "sealed_secret", "secret_key_id"})
"""Never in a summary (the log keeps them; the audit index need not show them)."""
_BULKY = frozenset({"manifest", "log_tail", "points", "records"})
_STREAM_KEYS = frozenset(
    {"name", "run_id", "experiment_id", "id", "job_id", "deployment", "kind", "key", "group"}
)
"""Payload fields that name the stream's aggregate: the stream column says them already."""
_COLUMNS = (
    "event_id", "partition", "position", "time", "type", "stream", "resource", "actor",
    "token_id", "summary", "before", "after", "detail", "events", "rollup", "points",
    "last_time", "metric_keys",
)  # fmt: skip
_MARKS = ", ".join("?" for _ in _COLUMNS)
_INSERT = f"INSERT INTO audit_entries ({', '.join(_COLUMNS)}) VALUES ({_MARKS})"
_BARE, _CHANGE = 10, 12
"""An entry may leave off its trailing columns when they hold what most entries hold:
after its first 10 (`_BARE`: no before and after either) or 12 (`_CHANGE`), the rest are
detail None, events 1 and no rollup (`_REST`): one event's entry without a refused
request's particulars, most entries by far."""
_REST = (None, None, None, 1, None, None, None, None)
_NUMBERED = {
    n: f"INSERT INTO audit_entries (id, {', '.join(_COLUMNS[:n])}, events) "
    f"VALUES (?, {', '.join('?' for _ in range(n))}, 1)"
    for n in (_BARE, _CHANGE)
} | {len(_COLUMNS): f"INSERT INTO audit_entries (id, {', '.join(_COLUMNS)}) VALUES (?, {_MARKS})"}
_NEXT_ID = "SELECT COALESCE(MAX(id), 0) + 1 FROM audit_entries"
_RUN_EXPERIMENT = "SELECT experiment_id FROM runs WHERE run_id = ?"
_RUN_EXPERIMENTS = "SELECT run_id, experiment_id FROM runs WHERE run_id IN ({})"
_FIND_ROLLUPS = (
    "SELECT rollup, id, events, points, last_time, metric_keys FROM audit_entries "
    "WHERE rollup IS NOT NULL AND time >= {since} AND stream IN ({{}})"
)
_GROW = "UPDATE audit_entries SET events = ?, points = ?, last_time = ? WHERE id = ?"
_GROW_KEYS = (
    "UPDATE audit_entries SET events = ?, points = ?, last_time = ?, metric_keys = ?, "
    "summary = ? WHERE id = ?"
)


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
    if prefix == "run":  # one per params, tags, artifact...: the driver's cursor, not select()
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
    if type(value) is int:
        return str(value)  # as json.dumps writes it
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, dict):  # params, tags: key:value,...
        try:
            return ",".join(map(":".join, value.items()))
        except TypeError:  # a key or a value that is not text
            if all(isinstance(v, str) for v in value.values()):
                return ",".join([f"{k}:{v}" for k, v in value.items()])
    plain = to_jsonable_python(value, exclude_none=True)
    return json.dumps(plain, separators=(",", ":"), sort_keys=True, default=str)


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


_EMPTY = (str, tuple, dict)
"""Types whose empty values a summary leaves out ("", (), {}; 0 and False are shown)."""


@cache
def _shown(cls: type[Payload]) -> tuple[tuple[str, bool, bool], ...]:
    """(name, secret, may name the stream) of each field of `cls` a summary may show."""
    return tuple(
        (name, name in _SECRET, name in _STREAM_KEYS)
        for name in cls.model_fields
        if name not in _BULKY
    )


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
    stream_parts = ev.stream.split(":")[1:]
    parts: list[str] = []
    length = 0
    fields = data.__dict__
    for name, secret, names_stream in _shown(type(data)):  # written until the line is full
        value = fields[name]
        if value is None or (not value and isinstance(value, _EMPTY)):
            continue
        if secret:
            text = f"{name}=(set)"
        elif names_stream and str(value) in stream_parts:
            continue
        else:
            text = f"{name}={_text(value)}"
        parts.append(text)
        length += len(text) + 1
        if length > SUMMARY_LENGTH:
            break
    return _short(" ".join(parts))


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
"""What `json.dumps(..., sort_keys=True, separators=(",", ":"))` writes, without making
an encoder per call."""


def _json(side: dict[str, Any] | None) -> str | None:
    if side is None:
        return None
    if len(side) == 1:  # {"status": "FINISHED"}: a run's before and after
        ((key, value),) = side.items()
        if key.__class__ is str and value.__class__ is str:
            return f"{{{encode_basestring_ascii(key)}:{encode_basestring_ascii(value)}}}"
    return _ENCODE(side)


def _keys_json(keys: list[str]) -> str:
    """`json.dumps(keys)` of a list of text, as the C encoder writes each item."""
    return "[" + ", ".join(map(encode_basestring_ascii, keys)) + "]"


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

    def row(self, experiments: dict[str, str]) -> tuple[Any, ...]:
        """The new row of a rollup the index does not hold yet."""
        ev, item = self.item.event, self.item
        experiment = experiments.get(ev.stream.partition(":")[2])
        keys = sorted(self.keys)
        return (
            ev.id, item.partition, item.position, ev.time, ev.type, ev.stream,
            None if experiment is None else f"experiment:{experiment}", *_who(ev.actor),
            _short(rollup_summary(keys)), None, None, None, self.events,
            self.key, self.points, self.last_time, _keys_json(keys),
        )  # fmt: skip

    def grown(self, stored: tuple[Any, ...]) -> tuple[tuple[Any, ...], bool]:
        """The update of the stored row (id, events, points, last_time, metric_keys) that
        adds these batches after it, and whether its keys change."""
        row_id, events, points, last_time, keys_json = stored
        counts = (events + self.events, points + self.points, max(last_time, self.last_time))
        keys = json.loads(keys_json)
        if self.keys.issubset(keys):
            return (*counts, row_id), False
        both = sorted(self.keys.union(keys))
        return (*counts, _keys_json(both), _short(rollup_summary(both)), row_id), True


def _minute(ev: Event) -> int:
    return ev.time // ROLLUP_MS * ROLLUP_MS


def _rollup_key(ev: Event) -> str:
    return f"{ev.stream}|{ev.actor}|{_minute(ev)}"


def _stored(conn: Connection, rollups: Iterable[_Rollup]) -> list[tuple[Any, ...]]:
    """The rows of these rollups (and maybe others of the same runs) the index holds: a
    range of the stream index per run, from the batch's earliest minute on."""
    streams = {r.item.event.stream for r in rollups}
    since = min(_minute(r.item.event) for r in rollups)
    return fetch_in(conn, _FIND_ROLLUPS.format(since=int(since)), sorted(streams))


# the view --------------------------------------------------------------------------------


def note(conn: Connection, item: Recorded) -> tuple[Any, ...] | Recorded:
    """The row of a single event (without the trailing columns most entries hold, see
    `_BARE`); a metric batch only as itself (`write` folds it)."""
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
    row = (
        ev.id, item.partition, item.position, ev.time, ev.type, ev.stream,
        audit_resource(conn, ev), user_of(ev.actor), token, summarize(ev),
    )  # fmt: skip
    if detail is not None:
        return (*row, _json(before), _json(after), _json(detail), 1, None, None, None, None)
    return row if change is None else (*row, _json(before), _json(after))


_IN_THEIR_RUN = (p.RunParamsLogged, p.RunTagsSet, p.RunFinished)
"""Run telemetry that names no experiment: its entry is shown with its run's."""


@lru_cache(maxsize=1024)
def _who(actor: str) -> tuple[str, str | None]:
    """(user, token) of an actor: a log's events come from a few actors, so a replay
    splits each actor once."""
    return user_of(actor), token_of(actor)


def known(item: Recorded, run: RunFacts | None) -> tuple[Any, ...] | Recorded:
    """What `note` gives for a run's telemetry event (services/projector/run_batch.py),
    from the run's experiment and status before the event instead of from the views."""
    ev = item.event
    if ev.type == p.RunMetricsLogged.TYPE:
        return item
    data = ev.data
    before = after = None
    if isinstance(data, p.RunFinished) and run is not None and run.status != data.status:
        before, after = _json({"status": run.status}), _json({"status": data.status})
    if isinstance(data, _IN_THEIR_RUN) and ev.stream.startswith("run:"):  # as resource_of says
        resource: str | None = None if run is None else f"experiment:{run.experiment_id}"
    elif (found := resource_of(ev)) is not None and found[0] != "run":
        resource = f"{found[0]}:{found[1]}"
    else:
        resource = None if run is None else f"experiment:{run.experiment_id}"
    user, token = _who(ev.actor)
    row = (
        ev.id, item.partition, item.position, ev.time, ev.type, ev.stream, resource, user,
        token, summarize(ev),
    )  # fmt: skip
    return row if before is None else (*row, before, after)


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
    stored: dict[str, tuple[Any, ...]] = {}
    experiments: dict[str, str] = {}
    if rollups:
        for key, *row in _stored(conn, rollups.values()):
            if key in rollups:
                stored[key] = tuple(row)
        runs = {r.item.event.stream[len("run:") :] for k, r in rollups.items() if k not in stored}
        experiments = dict(fetch_in(conn, _RUN_EXPERIMENTS, sorted(runs))) if runs else {}
    rows: list[tuple[Any, ...]] = []
    grown: list[tuple[Any, ...]] = []
    grown_keys: list[tuple[Any, ...]] = []
    for entry in order:
        if not isinstance(entry, _Rollup):
            rows.append(entry)
        elif entry.key in stored:
            update, new_keys = entry.grown(stored[entry.key])
            (grown_keys if new_keys else grown).append(update)
        else:
            rows.append(entry.row(experiments))
    _insert(conn, rows)
    execute_many(conn, _GROW, grown)
    execute_many(conn, _GROW_KEYS, grown_keys)


def _insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert entries (some without their trailing columns, see `_BARE`) in this order.

    On SQLite the rows are numbered here as SQLite would number them (the largest id
    plus one, then in order; the write transaction holds the lock), so that entries of
    each length go through a statement that writes the columns they leave off itself:
    sqlite3 binds a None through its adapter lookup, about a quarter of a microsecond
    each, and most entries had eight. Elsewhere the database numbers them (a sequence),
    in this order."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        full = [r if len(r) == len(_COLUMNS) else (*r, *_REST[len(r) - _BARE :]) for r in rows]
        execute_many(conn, _INSERT, full)
        return
    shaped: dict[int, list[tuple[Any, ...]]] = {n: [] for n in _NUMBERED}
    for number, row in enumerate(rows, fetch_all(conn, _NEXT_ID, ())[0][0]):
        shaped[len(row)].append((number, *row))
    for n, numbered in shaped.items():
        execute_many(conn, _NUMBERED[n], numbered)


every_event(EveryEvent(note, write, known))


@handles(a.AuthDenied)
def auth_denied(conn: Connection, ev: Event) -> None:
    """Nothing but the audit entry: a refused request changes no other view."""
    _data(ev, a.AuthDenied)
