"""Bulk writes the projector needs, portable across SQLite and PostgreSQL.

Statements are built once per (dialect, table) and executed with many parameter
sets, so SQLAlchemy compiles them once instead of once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, insert, or_
from sqlalchemy.exc import DBAPIError, StatementError


def bulk_insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows through the driver's executemany, skipping SQLAlchemy's per-row
    parameter processing: metric points are where that cost dominates."""
    style = conn.dialect.paramstyle
    if style not in ("qmark", "format", "pyformat"):
        conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    marks = ", ".join("?" if style == "qmark" else "%s" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


def fetch_all(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run `sql` (written with ? placeholders) on the raw driver cursor and return plain
    tuples: for reads of many rows, SQLAlchemy's Row objects cost more than the query."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    try:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _as_sqlalchemy(conn, sql, params, e) from e


def _as_sqlalchemy(conn: Connection, sql: str, params: Any, error: Exception) -> StatementError:
    """A driver error raised on the raw cursor as SQLAlchemy would have raised it (an
    `OperationalError` for a lost connection or a locked file), so the retries and the
    "views unavailable" answers that handle SQLAlchemy's errors handle it too."""
    return DBAPIError.instance(
        sql, params, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
    )


def _dialect_insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


@cache
def _upsert_statement(dialect: str, table: Table, keys: tuple[str, ...], newer_only: bool) -> Any:
    stmt = _dialect_insert(dialect)(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    where: ColumnElement[bool] | None = None
    if newer_only:  # latest metrics: only a point with a larger (step, timestamp) wins
        ex, cur = stmt.excluded, table.c
        where = or_(ex.step > cur.step, and_(ex.step == cur.step, ex.timestamp >= cur.timestamp))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=updates, where=where)


def upsert(
    conn: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: list[dict[str, Any]],
    *,
    newer_only: bool = False,
) -> None:
    """Insert rows, or update the row with the same `keys` (every other column)."""
    if rows:
        conn.execute(_upsert_statement(conn.dialect.name, table, keys, newer_only), rows)


def execute_many(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run one statement (written with ? placeholders) for each of `rows`, through the
    driver's executemany: for the projector's hot path, where SQLAlchemy's own work per
    row costs more than the database's."""
    if not rows:
        return
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    try:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _as_sqlalchemy(conn, sql, rows, e) from e


def fetch_in(
    conn: Connection, sql: str, values: Sequence[Any], chunk: int = 500
) -> list[tuple[Any, ...]]:
    """`sql` ending in `IN ({})` for every value, asked in chunks, rows as plain tuples."""
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(values), chunk):
        part = tuple(values[start : start + chunk])
        out += fetch_all(conn, sql.format(", ".join("?" for _ in part)), part)
    return out
