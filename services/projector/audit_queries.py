"""Reading the audit index: newest first, filtered, in pages (keyset on time, then the
order entries were indexed in),
and, for a reader who is not an admin, only the entries they may see.

Each filter has an index (stream or resource, actor, time), so a search reads the range
it asks for, not the whole trail. A non-admin's pages are filtered as they are read: a
page may hold fewer than `max_results` entries (none, when a long stretch is hidden)
and still have a next page; follow `next_page_token` until it is None.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, or_, select

from ledgerflow.events.audit_entities import MAX_RESULTS, AuditEntry, AuditQuery
from ledgerflow.events.auth_payloads import AuthDenied
from ledgerflow.events.entities import PagedList
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector import cursor
from ledgerflow.services.projector.audit_tables import AUDIT_ENTRIES as AU
from ledgerflow.services.projector.audit_tables import rollup_summary

SCAN_LIMIT = 5_000
"""Rows one call reads at most for a reader who may see few of them; the page then ends
early, with a token to go on."""
_ORDER = (
    cursor.SortKey(AU.c.time, descending=True, nulls_last=False),
    cursor.SortKey(AU.c.id, descending=True, nulls_last=False),
)


@dataclass(frozen=True)
class Reader:
    """Who is reading, when not an admin: `may_see(resource, stream)` says whether they
    may see an entry on that resource (see `ledgerflow.services.auth.visibility`); their
    own refused requests they always see."""

    user: str
    may_see: Callable[[str, str], bool]


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _match(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    """`column` matches the glob: equal without `*`; on SQLite, whose LIKE uses no index,
    `prefix*` (`deployment.*`) as the index range of the prefix (its text sorts by code
    point there, not by a locale as it may on PostgreSQL); LIKE otherwise."""
    star = pattern.find("*")
    if star < 0:
        return column == pattern  # type: ignore[no-any-return]
    prefix = pattern[:star]
    if dialect == "sqlite" and star == len(pattern) - 1 and prefix:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return and_(column >= prefix, column < upper)
    return column.like(_like(pattern), escape="\\")  # type: ignore[no-any-return]


def _where(query: AuditQuery, reader: Reader | None, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.entity:
        where.append(
            or_(
                _match(AU.c.stream, query.entity, dialect),
                _match(AU.c.resource, query.entity, dialect),
            )
        )
    if query.actor:
        where.append(_match(AU.c.actor, query.actor, dialect))
    if query.token:
        where.append(AU.c.token_id == query.token)
    if query.type:
        where.append(_match(AU.c.type, query.type, dialect))
    if query.since is not None:
        where.append(AU.c.time >= query.since)
    if query.until is not None:
        where.append(AU.c.time < query.until)
    if reader is not None:  # what names no resource is theirs to see only if they were refused
        own = and_(AU.c.type == AuthDenied.TYPE, AU.c.actor == reader.user)
        where.append(or_(AU.c.resource.is_not(None), own))
    return where


def _entry(row: Any) -> AuditEntry:
    def doc(text: str | None) -> dict[str, Any] | None:
        return None if text is None else dict(json.loads(text))

    summary, detail = row.summary, doc(row.detail)
    if row.rollup is not None:  # its counts, as of now
        keys = json.loads(row.metric_keys)
        summary = rollup_summary(keys, row.events, row.points)
        detail = {"points": row.points, "keys": keys, "last_time": row.last_time}
    return AuditEntry(
        event_id=row.event_id, time=row.time, type=row.type, stream=row.stream,
        actor=row.actor, token_id=row.token_id, summary=summary, before=doc(row.before),
        after=doc(row.after), resource=row.resource, partition=row.partition,
        position=row.position, events=row.events, detail=detail,
    )  # fmt: skip


def _visible(reader: Reader | None, entry: AuditEntry) -> bool:
    if reader is None:
        return True
    if entry.type == AuthDenied.TYPE and entry.actor == reader.user:
        return True
    return entry.resource is not None and reader.may_see(entry.resource, entry.stream)


class AuditQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def search(
        self,
        query: AuditQuery | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        reader: Reader | None = None,
    ) -> PagedList[AuditEntry]:
        """Entries matching `query`, newest first; with a `reader`, only theirs to see."""
        query = query or AuditQuery()
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not (
            1 <= max_results <= MAX_RESULTS
        ):  # fmt: skip
            raise InvalidInput(
                f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}",
                field="max_results",
            )
        if query.since is not None and query.until is not None and query.until <= query.since:
            raise InvalidInput("until must be after since", field="until")
        scope = (query, None if reader is None else reader.user)
        fp = cursor.fingerprint(scope)
        where = _where(query, reader, self.engine.dialect.name)
        after = cursor.decode_cursor(page_token, fp, 2) if page_token else None
        found: list[AuditEntry] = []
        scanned = 0
        chunk = max_results + 1 if reader is None else max(2 * max_results, 200)
        with self.engine.connect() as conn:
            while True:
                stmt = select(AU).where(*where)
                if after is not None:
                    stmt = stmt.where(cursor.after_cursor(_ORDER, after))
                rows = conn.execute(stmt.order_by(*cursor.order(_ORDER)).limit(chunk)).all()
                for i, row in enumerate(rows):
                    more = i + 1 < len(rows) or len(rows) == chunk
                    scanned += 1
                    after = [row.time, row.id]
                    entry = _entry(row)
                    if _visible(reader, entry):
                        found.append(entry)
                        if len(found) == max_results:
                            return PagedList(
                                found, cursor.encode_cursor(after, fp) if more else None
                            )
                    if scanned >= SCAN_LIMIT and more:
                        return PagedList(found, cursor.encode_cursor(after, fp))
                if len(rows) < chunk:
                    return PagedList(found, None)
