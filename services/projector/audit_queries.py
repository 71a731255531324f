"""Reading the audit index: newest first, filtered, in pages (keyset on time, then the
order entries were indexed in),
and, for a reader who is not an admin, only the entries they may see.

Each filter has an index (stream or resource, actor, time), so a search reads the range
it asks for, not the whole trail. What a reader who is not an admin may see is part of
the query too (the resources they may READ, the grants on those they MANAGE, their own
refused requests), so every page holds `max_results` entries while more remain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, false, or_, select

from ledgerflow.events.audit_entities import MAX_RESULTS, AuditEntry, AuditQuery
from ledgerflow.events.auth_payloads import AuthDenied
from ledgerflow.events.entities import PagedList
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector import cursor
from ledgerflow.services.projector.audit_tables import AUDIT_ENTRIES as AU
from ledgerflow.services.projector.audit_tables import rollup_summary
from ledgerflow.services.projector.readable import Readable

_ORDER = (
    cursor.SortKey(AU.c.time, descending=True, nulls_last=False),
    cursor.SortKey(AU.c.id, descending=True, nulls_last=False),
)


@dataclass(frozen=True)
class Reader:
    """Who is reading, when not an admin: the keys of each kind they may READ (entries on
    those resources) and MANAGE (the grants on them), as
    `ledgerflow.services.auth.visibility.audit_reader` works them out; their own refused
    requests they always see."""

    user: str
    read: Mapping[str, Readable]
    manage: Mapping[str, Readable]


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
    if reader is not None:
        where.append(_shown_to(reader, dialect))
    return where


def _resources(readable: Mapping[str, Readable], dialect: str) -> ColumnElement[bool]:
    """The entry's resource (`kind:key`) is one of these."""
    return or_(
        false(),
        *(
            and_(
                _match(AU.c.resource, f"{kind}:*", dialect),
                keys.prefixed(f"{kind}:").where(AU.c.resource),
            )
            for kind, keys in readable.items()
        ),
    )


def _shown_to(reader: Reader, dialect: str) -> ColumnElement[bool]:
    """What names no resource is theirs to see only if they were refused; a grant, if
    they MANAGE what it is on; anything else, if they may READ its resource."""
    own = and_(AU.c.type == AuthDenied.TYPE, AU.c.actor == reader.user)
    grant = _match(AU.c.stream, "permission:*", dialect)
    return or_(
        own,
        and_(AU.c.resource.is_not(None), grant, _resources(reader.manage, dialect)),
        and_(AU.c.resource.is_not(None), ~grant, _resources(reader.read, dialect)),
    )


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
        stmt = select(AU).where(*where)
        if after is not None:
            stmt = stmt.where(cursor.after_cursor(_ORDER, after))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(*cursor.order(_ORDER)).limit(max_results + 1)).all()
        token = None
        if len(rows) > max_results:
            rows = rows[:max_results]
            token = cursor.encode_cursor([rows[-1].time, rows[-1].id], fp)
        return PagedList([_entry(r) for r in rows], token)
