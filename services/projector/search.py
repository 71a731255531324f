"""Compiles parsed filters and orderings to SQLAlchemy expressions, and runs one page of
a keyset-paged search, for every searchable entity.

A :class:`Searchable` says where an entity's fields live: its table, the column of each
attribute, and its key/value tables (metrics, params, tags). Values always travel as
bound parameters; nothing from the filter text is ever concatenated into SQL. Key/value
conditions are subqueries over the indexed (key, value) tables, so they combine freely
under AND, OR, NOT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Table,
    and_,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector import cursor, search_plan
from ledgerflow.services.projector.cursor import SortKey
from ledgerflow.services.projector.filter_fields import (
    EXPERIMENT_FIELDS,
    MODEL_VERSION_FIELDS,
    REGISTERED_MODEL_FIELDS,
    RUN_FIELDS,
    Fields,
)
from ledgerflow.services.projector.filters import (
    And,
    Comparison,
    Node,
    Not,
    Or,
    OrderKey,
    split_nan,
)
from ledgerflow.services.projector.registry_tables import (
    MODEL_VERSION_TAGS,
    MODEL_VERSIONS,
    REGISTERED_MODEL_TAGS,
    REGISTERED_MODELS,
)
from ledgerflow.services.projector.search_plan import Group
from ledgerflow.services.projector.sql import fetch_all
from ledgerflow.services.projector.tables import (
    EXPERIMENT_TAGS,
    EXPERIMENTS,
    LATEST_METRICS,
    PARAMS,
    RUNS,
    TAGS,
)


@dataclass(frozen=True)
class Searchable:
    """Where one entity's fields live in the views."""

    fields: Fields
    table: Table  # one row per entity
    columns: Mapping[str, str]  # attribute -> column of `table`
    owner: tuple[str, ...]  # the entity's key; the key/value tables carry the same columns
    key_values: Mapping[str, Table]  # entity ("metric", "param", "tag") -> (owner, key, value)
    tie_break: tuple[SortKey, ...]  # the owner columns, last in every order
    default_order: tuple[OrderKey, ...] = ()

    def column(self, attribute: str) -> Any:
        return self.table.c[self.columns[attribute]]


def compile_filter(
    node: Node | None, target: Searchable, estimates: Mapping[Group, int] | None = None
) -> ColumnElement[bool]:
    """``node`` as a WHERE clause on ``target``. In each AND, one group of key/value
    comparisons drives (an ``owner IN (subquery)`` list over the (key, value, owner)
    index): the group with the fewest rows by ``estimates`` (see :func:`estimate`), else
    the first equality. Groups matching few rows more are lists too; the other
    comparisons become primary-key probes of the candidates left."""
    if node is None:
        return true()
    if isinstance(node, And):
        return _compile_and(node, target, estimates)
    if isinstance(node, Or):
        return or_(*(compile_filter(n, target, estimates) for n in node.items))
    if isinstance(node, Not):
        return not_(compile_filter(node.item, target, estimates))
    return _comparison(node, target)


def _compile_and(
    node: And, target: Searchable, estimates: Mapping[Group, int] | None
) -> ColumnElement[bool]:
    single = len(target.owner) == 1
    lists, rest = search_plan.plan_and(node, estimates) if single else ([], list(node.items))
    parts = [_driving(g, target) for g in lists]
    for n in rest:
        if lists and isinstance(n, Comparison) and n.entity != "attribute":
            parts.append(_comparison(n, target, probe=True))
        else:
            parts.append(compile_filter(n, target, estimates))
    return and_(*parts)


def _driving(group: Group, target: Searchable) -> ColumnElement[bool]:
    """``owner IN (owners having the group's key with a value passing all its tests)``."""
    table, [own] = target.key_values[group.entity], target.owner
    tests = (_apply_op(table.c.value, c.op, c.value) for c in group.items)
    return target.table.c[own].in_(select(table.c[own]).where(table.c.key == group.key, *tests))


def estimate(conn: Connection, node: Node | None, target: Searchable) -> dict[Group, int]:
    """How many key/value rows each group of a driving choice matches (counted on the
    (key, value, owner) index, up to :data:`search_plan.ESTIMATE_CAP`), in one statement
    for the whole filter; only ANDs with a choice to make are counted. Written as SQL
    text with bound values: a few tiny counts, where building SQLAlchemy expressions
    would cost more than running them."""
    todo = search_plan.choices(node) if len(target.owner) == 1 else []
    if not todo:
        return {}
    counts: list[str] = []
    params: list[Any] = []
    for i, g in enumerate(todo):
        tests = ["key = ?"]
        params.append(g.key)
        for c in g.items:
            test, values = _value_test(c)
            tests.append(test)
            params += values
        counts.append(
            f"(SELECT count(*) FROM (SELECT 1 FROM {target.key_values[g.entity].name} "
            f"WHERE {' AND '.join(tests)} LIMIT {search_plan.ESTIMATE_CAP}) AS e{i})"
        )
    [row] = fetch_all(conn, f"SELECT {', '.join(counts)}", tuple(params))
    return dict(zip(todo, map(int, row), strict=True))


def _value_test(c: Comparison) -> tuple[str, tuple[Any, ...]]:
    """``c`` (an operator of search_plan.DRIVING_OPS) on the ``value`` column as SQL text
    and its bound values; as :func:`_apply_op`, a NaN metric is NULL."""
    if isinstance(c.value, float) and math.isnan(c.value):
        return ("value IS NULL", ()) if c.op == "=" else ("1 = 0", ())
    if c.op == "IN":
        listed = c.value if isinstance(c.value, tuple) else (c.value,)
        values, nan = split_nan([v for v in listed if v is not None])
        test = f"value IN ({', '.join('?' * len(values))})" if values else "1 = 0"
        return (f"({test} OR value IS NULL)" if nan else test), values
    if c.op not in search_plan.DRIVING_OPS:
        raise InvalidInput(f"unsupported operator {c.op!r}")
    return f"value {c.op} ?", (c.value,)


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
            values, nan = split_nan(value)
            listed = col.in_(list(values)) if values else false()
            return or_(listed, col.is_(None)) if nan else listed
        case "NOT IN":
            values, nan = split_nan(value)
            unlisted = col.not_in(list(values)) if values else true()
            return and_(unlisted, col.is_not(None)) if nan else unlisted
        case "LIKE":
            return col.like(value)  # type: ignore[no-any-return]
        case "NOT LIKE":
            return col.not_like(value)  # type: ignore[no-any-return]
        case "ILIKE":
            return col.ilike(value)  # type: ignore[no-any-return]
        case "NOT ILIKE":
            return col.not_ilike(value)  # type: ignore[no-any-return]
    raise InvalidInput(f"unsupported operator {op!r}")


def _comparison(c: Comparison, target: Searchable, *, probe: bool = False) -> ColumnElement[bool]:
    if c.entity == "attribute":
        col = target.column(c.key)
        if c.op == "IS NULL":
            return col.is_(None)  # type: ignore[no-any-return]
        if c.op == "IS NOT NULL":
            return col.is_not(None)  # type: ignore[no-any-return]
        return _apply_op(col, c.op, c.value)
    table, owner = target.key_values[c.entity], target.owner
    if probe or len(owner) > 1:  # correlated: one primary-key lookup per candidate row
        has_key = and_(*(table.c[o] == target.table.c[o] for o in owner), table.c.key == c.key)
        if c.op == "IS NULL":
            return ~exists().where(has_key)
        if c.op == "IS NOT NULL":
            return exists().where(has_key)
        return exists().where(has_key, _apply_op(table.c.value, c.op, c.value))
    # `id IN (rows having such a key/value)`: the subquery runs once over the (key, value)
    # index instead of once per row, and still nests under OR and NOT.
    [own] = owner
    having_key = select(table.c[own]).where(table.c.key == c.key)
    if c.op == "IS NULL":
        return target.table.c[own].not_in(having_key)
    if c.op == "IS NOT NULL":
        return target.table.c[own].in_(having_key)
    where = having_key.where(_apply_op(table.c.value, c.op, c.value))
    return target.table.c[own].in_(where)


def order_sources(
    keys: tuple[OrderKey, ...], target: Searchable
) -> tuple[list[SortKey], FromClause]:
    """The sort keys for ``keys`` (or the default order) then the tie-break, with the
    entity's table LEFT JOINed to one alias per key/value field (missing values sort
    last)."""
    source: FromClause = target.table
    sort: list[SortKey] = []
    for i, key in enumerate(keys or target.default_order):
        if key.entity == "attribute":
            sort.append(SortKey(target.column(key.key), key.descending))
            continue
        alias = target.key_values[key.entity].alias(f"order_{i}")
        on = (alias.c[o] == target.table.c[o] for o in target.owner)
        source = source.outerjoin(alias, and_(*on, alias.c.key == key.key))
        sort.append(SortKey(alias.c.value, key.descending))
    return [*sort, *target.tie_break], source


@dataclass(frozen=True)
class Page:
    """One page of a search: each row's owner values and its ``columns``, in order, and
    the next token."""

    owners: list[tuple[Any, ...]]
    token: str | None
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def search_page(
    conn: Connection,
    target: Searchable,
    where: ColumnElement[bool],
    order: tuple[OrderKey, ...],
    *,
    limit: int,
    page_token: str | None = None,
    query: object = None,
    columns: Sequence[Any] = (),
) -> Page:
    """Up to ``limit`` rows matching ``where`` in ``order``, after ``page_token``, with
    the values of ``columns`` (of the entity's table) read in the same statement.
    ``query`` is what the search asked for: a token only resumes the same query."""
    keys, source = order_sources(order, target)
    fp = cursor.fingerprint(query)
    if page_token:
        values = cursor.decode_cursor(page_token, fp, len(keys))
        where = and_(where, cursor.after_cursor(keys, values))
    stmt = (
        select(
            *(k.column.label(f"k{i}") for i, k in enumerate(keys)),
            *(c.label(f"c{i}") for i, c in enumerate(columns)),
        )
        .select_from(source)
        .where(where)
        .order_by(*cursor.order(keys))
        .limit(limit + 1)
    )
    rows = [tuple(r) for r in conn.execute(stmt)]
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = cursor.encode_cursor(list(rows[-1][: len(keys)]), fp)
    width, n = len(target.tie_break), len(keys)
    return Page([r[n - width : n] for r in rows], token, [r[n:] for r in rows])


def _same_names(names: tuple[str, ...]) -> dict[str, str]:
    return {name: name for name in names}


RUN_SEARCH = Searchable(
    RUN_FIELDS,
    RUNS,
    _same_names(tuple(RUN_FIELDS.attributes)),
    ("run_id",),
    {"metric": LATEST_METRICS, "param": PARAMS, "tag": TAGS},
    (SortKey(RUNS.c.run_id, nulls_last=False),),
    (OrderKey("attribute", "start_time", True),),
)
EXPERIMENT_SEARCH = Searchable(
    EXPERIMENT_FIELDS,
    EXPERIMENTS,
    _same_names(tuple(EXPERIMENT_FIELDS.attributes)),
    ("experiment_id",),
    {"tag": EXPERIMENT_TAGS},
    (SortKey(EXPERIMENTS.c.experiment_id, nulls_last=False),),
    (OrderKey("attribute", "creation_time", True),),
)
_TIMES = {"creation_timestamp": "creation_time", "last_updated_timestamp": "last_updated_time"}
REGISTERED_MODEL_SEARCH = Searchable(
    REGISTERED_MODEL_FIELDS,
    REGISTERED_MODELS,
    {"name": "name", **_TIMES},
    ("name",),
    {"tag": REGISTERED_MODEL_TAGS},
    (SortKey(REGISTERED_MODELS.c.name, nulls_last=False),),
)
MODEL_VERSION_SEARCH = Searchable(
    MODEL_VERSION_FIELDS,
    MODEL_VERSIONS,
    {**_same_names(("name", "version", "run_id", "source", "user_id")), **_TIMES,
     "current_stage": "stage"},
    ("name", "version"),
    {"tag": MODEL_VERSION_TAGS},
    (SortKey(MODEL_VERSIONS.c.name, nulls_last=False),
     SortKey(MODEL_VERSIONS.c.version, descending=True, nulls_last=False)),
)  # fmt: skip
