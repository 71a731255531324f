"""Keyset paging for every search: the ORDER BY, the "rows after this one" condition,
and the opaque page token that carries the last row's sort values.

A token is tied to its search by a fingerprint of the query (filter, order, scope), so
a token from one search is refused by another instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, or_, true

from ledgerflow.events.errors import InvalidInput

__all__ = ["SortKey", "after_cursor", "decode_cursor", "encode_cursor", "fingerprint", "order"]


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY column. With ``nulls_last``, rows without a value sort after every
    row with one, in either direction (a run without that metric comes last)."""

    column: Any
    descending: bool = False
    nulls_last: bool = True


def _null_flag(col: Any) -> Any:
    return case((col.is_(None), 1), else_=0)


def order(keys: Sequence[SortKey]) -> list[Any]:
    """The ORDER BY clauses for ``keys``."""
    clauses: list[Any] = []
    for key in keys:
        if key.nulls_last:
            clauses.append(_null_flag(key.column))
        clauses.append(key.column.desc() if key.descending else key.column.asc())
    return clauses


def after_cursor(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after the row whose sort values are ``values``, in ``order(keys)``."""
    comps: list[tuple[ColumnElement[bool], ColumnElement[bool]]] = []
    for key, v in zip(keys, values, strict=True):
        col = key.column
        if key.nulls_last:
            flag, fv = _null_flag(col), 1 if v is None else 0
            comps.append((flag > fv, flag == fv))
        if v is None:
            comps.append((false(), true()))
        else:
            comps.append(((col < v) if key.descending else (col > v), col == v))
    ors = []
    for i, (gt, _) in enumerate(comps):
        ors.append(and_(*(eq for _, eq in comps[:i]), gt))
    return or_(*ors)


def fingerprint(query: object) -> str:
    """A short digest of what a search asked for (``repr`` of its parts)."""
    return hashlib.sha256(repr(query).encode()).hexdigest()[:12]


def encode_cursor(values: Sequence[Any], fingerprint: str) -> str:
    raw = json.dumps({"v": list(values), "q": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str, width: int) -> list[Any]:
    """The sort values in ``token``; InvalidInput unless this search issued it."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        values, fp = doc["v"], doc["q"]
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: [[[[...
        raise InvalidInput(
            "page_token is not a token this server issued", field="page_token"
        ) from None
    if fp != fingerprint:
        raise InvalidInput(
            "page_token belongs to a different search (filter, order or scope changed); "
            "start again without a token",
            field="page_token",
        )
    if not isinstance(values, list) or len(values) != width:
        raise InvalidInput("page_token does not match this search", field="page_token")
    if not all(_sort_value(v) for v in values):  # edited by hand: SQL could not bind it
        raise InvalidInput("page_token is not a token this server issued", field="page_token")
    return values


def _sort_value(value: object) -> bool:
    """What a row's sort column holds: text, a number that fits 64 bits, or nothing."""
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)  # UTF-8 has no lone surrogate
    return value is None or isinstance(value, float)
