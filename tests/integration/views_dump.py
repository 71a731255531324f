"""Compare view databases: every view row, as plain sorted values, whatever the engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from ledgerflow.services.projector import projector  # noqa: F401 - defines every view table
from ledgerflow.services.projector.tables import view_tables


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    return value


LEFT_OUT = {
    "auth_generation": {"epoch", "n"},  # a cache generation: new after every rebuild, on purpose
    "audit_entries": {"partition", "position"},  # where the event is on this log, not another
}
"""Columns left out, by table; a table left with no column is left out."""


def dump_views(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of every view table, sorted; surrogate `id` columns and what depends on the
    particular log or rebuild (LEFT_OUT) left out, so views folded from two logs holding the
    same events compare equal."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in view_tables():
            skip = {"id", *LEFT_OUT.get(table.name, ())}
            cols = [c for c in table.columns if c.name not in skip]
            if not cols:
                continue
            rows = conn.execute(select(*cols)).all()
            out[table.name] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    return out
