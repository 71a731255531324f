"""A run search's page query as SQL text with bound values.

A search answering a few runs spent more of its time building SQLAlchemy expressions and
compiling them than in the database (docs/benchmarks.md, "Searches of every shape and
size"), so ``Queries.search_runs`` writes its page query as text, as :func:`.search.estimate`
and the data loads already do. The plan is :func:`.search.compile_filter`'s (the groups of
each AND that drive it, from :func:`.search_plan.plan_and`: lists, then primary-key probes
of the candidates left) and the order, keyset and token are :func:`.search.search_page`'s;
tests check both give the same runs for any filter. Values always travel as bound
parameters (``?``, turned into the driver's marks by :func:`.sql.fetch_all`); table and
column names come from the tables' definitions, never from the filter text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from sqlalchemy import Connection

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector import cursor, search_plan
from ledgerflow.services.projector.filters import (
    And,
    Comparison,
    Node,
    Not,
    Or,
    OrderKey,
    split_nan,
)
from ledgerflow.services.projector.search import Page, Searchable
from ledgerflow.services.projector.search_plan import Group
from ledgerflow.services.projector.sql import fetch_all

Sql: TypeAlias = tuple[str, tuple[Any, ...]]
"""SQL text with ``?`` marks and the values bound to them, in order."""
FALSE: Sql = ("1 = 0", ())
_PLAIN_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE"})


def where_sql(
    node: Node | None,
    target: Searchable,
    estimates: Mapping[Group, int] | None = None,
    *,
    native_ilike: bool = False,
) -> Sql | None:
    """``node`` as a condition on ``target``'s table (None for no filter), compiled as
    :func:`.search.compile_filter` compiles it. ``native_ilike``: the database has ILIKE
    (PostgreSQL); elsewhere it is ``lower(x) LIKE lower(pattern)``, as SQLAlchemy writes it."""
    if node is None:
        return None
    return _Compiler(target, estimates, native_ilike).node(node)


class _Compiler:
    def __init__(
        self, target: Searchable, estimates: Mapping[Group, int] | None, native_ilike: bool
    ) -> None:
        self.target = target
        self.name = target.table.name
        self.estimates = estimates
        self.native_ilike = native_ilike

    def node(self, node: Node) -> Sql:
        if isinstance(node, And):
            return self.and_(node)
        if isinstance(node, Or):
            return _join(" OR ", [self.node(n) for n in node.items])
        if isinstance(node, Not):
            text, values = self.node(node.item)
            return f"NOT ({text})", values
        return self.comparison(node)

    def and_(self, node: And) -> Sql:
        single = len(self.target.owner) == 1
        lists, rest = (
            search_plan.plan_and(node, self.estimates) if single else ([], list(node.items))
        )
        parts = [self.driving(g) for g in lists]
        for n in rest:
            if lists and isinstance(n, Comparison) and n.entity != "attribute":
                parts.append(self.comparison(n, probe=True))
            else:
                parts.append(self.node(n))
        return _join(" AND ", parts)

    def driving(self, group: Group) -> Sql:
        """``owner IN (owners having the group's key with a value passing all its tests)``."""
        table = self.target.key_values[group.entity].name
        [own] = self.target.owner
        tests, values = [f"{table}.key = ?"], [group.key]
        for c in group.items:
            test, bound = self.apply_op(f"{table}.value", c.op, c.value)
            tests.append(test)
            values += bound
        where = " AND ".join(tests)
        return f"{self.name}.{own} IN (SELECT {table}.{own} FROM {table} WHERE {where})", tuple(
            values
        )

    def comparison(self, c: Comparison, *, probe: bool = False) -> Sql:
        target, name = self.target, self.name
        if c.entity == "attribute":
            col = f"{name}.{target.columns[c.key]}"
            if c.op == "IS NULL":
                return f"{col} IS NULL", ()
            if c.op == "IS NOT NULL":
                return f"{col} IS NOT NULL", ()
            return self.apply_op(col, c.op, c.value)
        table, owner = target.key_values[c.entity].name, target.owner
        if probe or len(owner) > 1:  # correlated: one primary-key lookup per candidate row
            same = " AND ".join(f"{table}.{o} = {name}.{o}" for o in owner)
            has_key = f"SELECT * FROM {table} WHERE {same} AND {table}.key = ?"
            if c.op == "IS NULL":
                return f"NOT (EXISTS ({has_key}))", (c.key,)
            if c.op == "IS NOT NULL":
                return f"EXISTS ({has_key})", (c.key,)
            test, values = self.apply_op(f"{table}.value", c.op, c.value)
            return f"EXISTS ({has_key} AND {test})", (c.key, *values)
        [own] = owner
        having_key = f"SELECT {table}.{own} FROM {table} WHERE {table}.key = ?"
        if c.op == "IS NULL":
            return f"{name}.{own} NOT IN ({having_key})", (c.key,)
        if c.op == "IS NOT NULL":
            return f"{name}.{own} IN ({having_key})", (c.key,)
        test, values = self.apply_op(f"{table}.value", c.op, c.value)
        return f"{name}.{own} IN ({having_key} AND {test})", (c.key, *values)

    def apply_op(self, col: str, op: str, value: Any) -> Sql:
        if isinstance(value, float) and math.isnan(value):
            # NaN metric points are stored as NULL.
            if op == "=":
                return f"{col} IS NULL", ()
            if op == "!=":
                return f"{col} IS NOT NULL", ()
            return FALSE
        if op in _PLAIN_OPS:
            return f"{col} {op} ?", (value,)
        if op in ("IN", "NOT IN"):
            values, nan = split_nan(value)
            marks = ", ".join("?" * len(values))
            if op == "IN":
                test = f"{col} IN ({marks})" if values else "1 = 0"
                return (f"({test} OR {col} IS NULL)" if nan else test), values
            test = f"{col} NOT IN ({marks})" if values else "1 = 1"
            return (f"({test} AND {col} IS NOT NULL)" if nan else test), values
        if op in ("ILIKE", "NOT ILIKE"):
            if self.native_ilike:
                return f"{col} {op} ?", (value,)
            return f"lower({col}) {op[:-5]}LIKE lower(?)", (value,)
        raise InvalidInput(f"unsupported operator {op!r}")


def _join(sep: str, parts: Sequence[Sql]) -> Sql:
    if len(parts) == 1:
        return parts[0]
    values: tuple[Any, ...] = ()
    for _, bound in parts:
        values += bound
    return "(" + sep.join(text for text, _ in parts) + ")", values


# pages ------------------------------------------------------------------------------------
_Sort: TypeAlias = tuple[str, bool, bool]  # column, descending, missing values last


def _null_flag(col: str) -> str:
    return f"CASE WHEN {col} IS NULL THEN 1 ELSE 0 END"


def _after(sort: Sequence[_Sort], values: Sequence[Any]) -> Sql:
    """Rows strictly after the row whose sort values are ``values``, as
    :func:`.cursor.after_cursor` writes it."""
    comps: list[tuple[Sql | None, Sql]] = []  # (after: None never, same: "" always)
    for (col, descending, nulls_last), v in zip(sort, values, strict=True):
        if nulls_last:
            flag, fv = _null_flag(col), 1 if v is None else 0
            comps.append(((f"{flag} > {fv}", ()), (f"{flag} = {fv}", ())))
        if v is None:
            comps.append((None, ("", ())))
        else:
            comps.append(((f"{col} {'<' if descending else '>'} ?", (v,)), (f"{col} = ?", (v,))))
    ors: list[Sql] = []
    for i, (gt, _) in enumerate(comps):
        if gt is None:
            continue
        terms = [eq for _, eq in comps[:i] if eq[0]] + [gt]
        ors.append(_join(" AND ", terms))
    return _join(" OR ", ors) if ors else FALSE


def search_page_sql(
    conn: Connection,
    target: Searchable,
    where: Sequence[Sql],
    order: tuple[OrderKey, ...],
    *,
    limit: int,
    page_token: str | None = None,
    query: object = None,
    columns: Sequence[str] = (),
) -> Page:
    """:func:`.search.search_page` with the conditions ``where`` (ANDed) and ``columns``
    (of the entity's table) as SQL text: up to ``limit`` rows in ``order``, after
    ``page_token``, with the values of ``columns``."""
    name, owner = target.table.name, target.owner
    joins, join_values, sort = "", list[Any](), list[_Sort]()
    for i, key in enumerate(order or target.default_order):
        if key.entity == "attribute":
            sort.append((f"{name}.{target.columns[key.key]}", key.descending, True))
            continue
        alias, table = f"order_{i}", target.key_values[key.entity].name
        on = " AND ".join(f"{alias}.{o} = {name}.{o}" for o in owner)
        joins += f" LEFT OUTER JOIN {table} AS {alias} ON {on} AND {alias}.key = ?"
        join_values.append(key.key)
        sort.append((f"{alias}.value", key.descending, True))
    sort += [(f"{name}.{k.column.name}", k.descending, k.nulls_last) for k in target.tie_break]
    conditions = list(where)
    fp = cursor.fingerprint(query)
    if page_token:
        conditions.append(_after(sort, cursor.decode_cursor(page_token, fp, len(sort))))
    selected = [f"{col} AS k{i}" for i, (col, _, _) in enumerate(sort)]
    selected += [f"{name}.{c} AS c{i}" for i, c in enumerate(columns)]
    ordering = []
    for col, descending, nulls_last in sort:
        if nulls_last:
            ordering.append(_null_flag(col))
        ordering.append(f"{col} {'DESC' if descending else 'ASC'}")
    text, values = _join(" AND ", conditions) if conditions else ("1 = 1", ())
    sql = (
        f"SELECT {', '.join(selected)} FROM {name}{joins} WHERE {text} "
        f"ORDER BY {', '.join(ordering)} LIMIT ?"
    )
    rows = fetch_all(conn, sql, (*join_values, *values, limit + 1))
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = cursor.encode_cursor(list(rows[-1][: len(sort)]), fp)
    width, n = len(target.tie_break), len(sort)
    return Page([r[n - width : n] for r in rows], token, [r[n:] for r in rows])
