"""Compiles parsed run filters and orderings to SQLAlchemy expressions, and pages with
an opaque keyset cursor.

Values always travel as bound parameters; nothing from the filter text is ever
concatenated into SQL. Metric, param and tag conditions are EXISTS subqueries
over the indexed (key, value) tables, so they combine freely under AND, OR, NOT.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    and_,
    case,
    exists,
    false,
    literal,
    not_,
    or_,
    select,
    true,
)

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector.filters import And, Comparison, Node, Not, Or, OrderKey
from ledgerflow.services.projector.tables import (
    LATEST_METRICS as LM,
)
from ledgerflow.services.projector.tables import (
    PARAMS as PA,
)
from ledgerflow.services.projector.tables import (
    RUNS as R,
)
from ledgerflow.services.projector.tables import (
    TAGS as T,
)

_KV_TABLES = {"metric": LM, "param": PA, "tag": T}


def compile_filter(node: Node | None) -> ColumnElement[bool]:
    if node is None:
        return true()
    if isinstance(node, And):
        # SQLite drives an AND from its first `run_id IN (...)` list. Equality tests on a
        # key are usually the selective ones, so they go first as IN lists, and the other
        # key/value tests of the same AND become probes of the (run_id, key) primary key
        # for the few runs left, instead of lists of their own.
        selective = [n for n in node.items if _is_selective(n)]
        rest = [n for n in node.items if not _is_selective(n)]
        probe = bool(selective)
        return and_(
            *(_comparison(n) for n in selective),  # type: ignore[arg-type]
            *(_comparison(n, probe=True) if probe and isinstance(n, Comparison)
              else compile_filter(n) for n in rest),
        )  # fmt: skip
    if isinstance(node, Or):
        return or_(*(compile_filter(n) for n in node.items))
    if isinstance(node, Not):
        return not_(compile_filter(node.item))
    return _comparison(node)


def _is_selective(node: Node) -> bool:
    return isinstance(node, Comparison) and node.entity != "attribute" and node.op in ("=", "IN")


def _apply_op(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, float) and math.isnan(value):
        # NaN metric points are stored as NULL.
        if op == "=":
            return col.is_(None)  # type: ignore[no-any-return]
        if op == "!=":
            return col.is_not(None)  # type: ignore[no-any-return]
        return false()
    match op:
        case "=":
            return col == value  # type: ignore[no-any-return]
        case "!=":
            return col != value  # type: ignore[no-any-return]
        case "<":
            return col < value  # type: ignore[no-any-return]
        case "<=":
            return col <= value  # type: ignore[no-any-return]
        case ">":
            return col > value  # type: ignore[no-any-return]
        case ">=":
            return col >= value  # type: ignore[no-any-return]
        case "IN":
            return col.in_(list(value))  # type: ignore[no-any-return]
        case "NOT IN":
            return col.not_in(list(value))  # type: ignore[no-any-return]
        case "LIKE":
            return col.like(value)  # type: ignore[no-any-return]
        case "NOT LIKE":
            return col.not_like(value)  # type: ignore[no-any-return]
        case "ILIKE":
            return col.ilike(value)  # type: ignore[no-any-return]
        case "NOT ILIKE":
            return col.not_ilike(value)  # type: ignore[no-any-return]
    raise InvalidInput(f"unsupported operator {op!r}")


def _comparison(c: Comparison, *, probe: bool = False) -> ColumnElement[bool]:
    if c.entity == "attribute":
        col = R.c[c.key]
        if c.op == "IS NULL":
            return col.is_(None)
        if c.op == "IS NOT NULL":
            return col.is_not(None)
        return _apply_op(col, c.op, c.value)
    table = _KV_TABLES[c.entity]
    if probe:  # correlated: one primary-key lookup per candidate run
        has_key = and_(table.c.run_id == R.c.run_id, table.c.key == c.key)
        if c.op == "IS NULL":
            return ~exists().where(has_key)
        if c.op == "IS NOT NULL":
            return exists().where(has_key)
        return exists().where(has_key, _apply_op(table.c.value, c.op, c.value))
    # `run_id IN (runs having such a key/value)`: the subquery runs once over the
    # (key, value) index instead of once per run, and still nests under OR and NOT.
    having_key = select(table.c.run_id).where(table.c.key == c.key)
    if c.op == "IS NULL":
        return R.c.run_id.not_in(having_key)
    if c.op == "IS NOT NULL":
        return R.c.run_id.in_(having_key)
    return R.c.run_id.in_(having_key.where(_apply_op(table.c.value, c.op, c.value)))


def order_sources(keys: tuple[OrderKey, ...]) -> tuple[list[tuple[Any, bool]], FromClause]:
    """The columns to order by, with `runs` LEFT JOINed to one alias per metric, param
    or tag key (a run without that key sorts last)."""
    source: FromClause = R
    columns: list[tuple[Any, bool]] = []
    for i, key in enumerate(keys):
        if key.entity == "attribute":
            columns.append((R.c[key.key], key.descending))
            continue
        alias = _KV_TABLES[key.entity].alias(f"order_{i}")
        source = source.outerjoin(alias, and_(alias.c.run_id == R.c.run_id, alias.c.key == key.key))
        columns.append((alias.c.value, key.descending))
    return columns, source


DEFAULT_ORDER = (OrderKey("attribute", "start_time", True),)


def encode_cursor(values: list[Any], run_id: str, fingerprint: str) -> str:
    raw = json.dumps({"v": values, "id": run_id, "q": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str) -> tuple[list[Any], str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        values, run_id, fp = doc["v"], doc["id"], doc["q"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            "page_token is not a token this server issued", field="page_token"
        ) from None
    if fp != fingerprint:
        raise InvalidInput(
            "page_token belongs to a different search (filter, order or experiments changed); "
            "start again without a token",
            field="page_token",
        )
    return list(values), str(run_id)


def after_cursor(
    columns: list[tuple[Any, bool]], values: list[Any], run_id: str
) -> ColumnElement[bool]:
    """Rows strictly after the cursor in (col1 dir1 NULLS LAST, ..., run_id ASC) order."""
    comps: list[tuple[ColumnElement[bool], ColumnElement[bool]]] = []
    for (col, desc), v in zip(columns, values, strict=True):
        flag = case((col.is_(None), 1), else_=0)
        fv = 1 if v is None else 0
        comps.append((flag > fv, flag == fv))
        if v is None:
            comps.append((false(), true()))
        else:
            comps.append(((col < v) if desc else (col > v), col == v))
    comps.append((R.c.run_id > run_id, R.c.run_id == literal(run_id)))
    ors = []
    for i, (gt, _) in enumerate(comps):
        ors.append(and_(*(eq for _, eq in comps[:i]), gt))
    return or_(*ors)


def order_by_clauses(columns: list[tuple[Any, bool]]) -> list[Any]:
    clauses: list[Any] = []
    for col, desc in columns:
        clauses.append(case((col.is_(None), 1), else_=0))
        clauses.append(col.desc() if desc else col.asc())
    clauses.append(R.c.run_id.asc())
    return clauses
