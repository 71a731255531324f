"""Parser for the search ``filter`` and ``order_by`` languages of every entity.

Turns text such as ``metrics.acc > 0.9 AND params.opt IN ('adam', 'sgd')`` into a
small frozen AST (:class:`Comparison`, :class:`And`, :class:`Or`, :class:`Not`) and
checks it against the types of each field. Runs, experiments, registered models and
model versions share the grammar; a :class:`~.filter_fields.Fields` names the fields
of each (runs by default). It only parses: building a query from the AST is
:mod:`.search`'s job. Positions in error messages are 0-based offsets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector.filter_fields import (
    RUN_ATTRIBUTES,
    RUN_FIELDS,
    RUN_STATUSES,
    Fields,
)

__all__ = [
    "ATTRIBUTES", "MAX_COMPARISONS", "MAX_DEPTH", "MAX_ORDER_KEYS", "STATUSES", "And",
    "Comparison", "Fields", "Node", "Not", "Or", "OrderKey", "Scalar", "Value",
    "parse_filter", "parse_order_by",
]  # fmt: skip

MAX_COMPARISONS = 200
MAX_DEPTH = 50
MAX_ORDER_KEYS = 10

ATTRIBUTES = RUN_ATTRIBUTES  # the run attributes and their types
STATUSES = RUN_STATUSES

_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"})
_OPS = ("<=", ">=", "<>", "!=", "=", "<", ">")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./:]*")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SIGNED_INF = re.compile(r"[+-]infinity(?![A-Za-z0-9_\-./:])", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+", re.ASCII)
_JUNK = re.compile(r"[A-Za-z0-9_\-./:+]*")
_INT64 = range(-(2**63), 2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")

Scalar: TypeAlias = int | float | str
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``entity.key op value``; ``value`` is a tuple for IN and None for IS NULL. A
    metric's values are floats, as the values they compare with: an int beside them
    would have SQLAlchemy bind the comparison as INTEGER on PostgreSQL, which fails for
    NaN and infinities ("integer out of range")."""

    entity: str
    key: str
    op: str
    value: Value

    def __post_init__(self) -> None:
        if self.entity != "metric":
            return
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            object.__setattr__(self, "value", float(self.value))
        elif isinstance(self.value, tuple) and any(type(v) is int for v in self.value):
            floats = tuple(float(v) if type(v) is int else v for v in self.value)
            object.__setattr__(self, "value", floats)


def split_nan(values: Sequence[Scalar]) -> tuple[tuple[Scalar, ...], bool]:
    """An IN list's values other than NaN, and whether it named NaN. NaN metric points
    are stored as NULL (``metrics.x = NaN`` is ``IS NULL``), so ``metrics.x IN (1, NaN)``
    is ``= 1 OR IS NULL`` and ``NOT IN (1, NaN)`` is ``!= 1 AND IS NOT NULL``: a NaN
    bound into the list would match nothing (SQLite binds it as NULL)."""
    kept = tuple(v for v in values if not (isinstance(v, float) and math.isnan(v)))
    return kept, len(kept) < len(values)


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items`` hold (two or more, in the order written)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of ``items`` holds (two or more, in the order written)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """``item`` does not hold."""

    item: Node


Node: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One ``order_by`` entry: sort by ``entity.key``."""

    entity: str
    key: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # word | ident | num | str | op | ( | ) | , | eof
    text: str
    pos: int
    value: object = None


def _number(literal: str) -> int | float:
    """An integer literal as an int while SQL can bind it (64 bits), any other number as
    a float: a comparison with 1e20 means what one with 100000000000000000000 does, and
    a literal too large even for a float compares as infinity."""
    if _INT.fullmatch(literal) and len(literal) <= 20 and int(literal) in _INT64:
        return int(literal)
    return float(literal)


def _clip(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def _describe(tok: _Tok) -> str:
    if tok.kind == "eof":
        return "end of input"
    return f"string {tok.text}" if tok.kind == "str" else f"'{tok.text}'"


class _Parser:
    """Recursive-descent parser over one piece of text; raises InvalidInput."""

    def __init__(self, text: str, what: str, field: str, fields: Fields) -> None:
        self.text, self.what, self.field, self.fields = text, what, field, fields
        self.i = self.count = self.depth = 0
        self.toks = self._tokenize()

    def fail(self, pos: int, msg: str) -> NoReturn:
        raise InvalidInput(
            f"Invalid {self.what} at position {pos}: {msg}",
            field=self.field,
            position=pos,
            token=self._token_at(pos),
        )

    def _token_at(self, pos: int) -> str:
        """The token that starts at `pos` ("" at the end of the text); while tokenizing,
        the run of word characters there, or the one character."""
        toks: list[_Tok] = getattr(self, "toks", [])
        for tok in toks:
            if tok.pos == pos:
                return tok.text
        found = _JUNK.match(self.text, pos)
        return found.group() if found and found.group() else self.text[pos : pos + 1]

    def expected(self, tok: _Tok, what: str) -> NoReturn:
        self.fail(tok.pos, f"expected {what} but found {_describe(tok)}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += tok.kind != "eof"
        return tok

    def is_kw(self, tok: _Tok, *words: str) -> bool:
        return tok.kind == "word" and tok.text.upper() in words

    # -- lexing -------------------------------------------------------------
    def _quoted(self, start: int) -> tuple[str, int]:
        """Read a quoted run at ``start``; quotes escape by doubling or backslash."""
        text, q, buf, i = self.text, self.text[start], [], start + 1
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text) and text[i + 1] in (q, "\\"):
                buf.append(text[i + 1])
                i += 2
            elif c == q and text.startswith(q, i + 1):
                buf.append(q)
                i += 2
            elif c == q:
                found = "".join(buf)
                if _SURROGATE.search(found):  # from a JSON body's "\ud800": SQL cannot take it
                    what = "quoted name" if q == "`" else "string"
                    self.fail(start, f"{what} starting with {q} is not valid Unicode (it holds "
                              "a lone surrogate, such as \\ud800)")  # fmt: skip
                return found, i + 1
            else:
                buf.append(c)
                i += 1
        what = "quoted name" if q == "`" else "string"
        self.fail(start, f"unterminated {what} starting with {q}; expected a closing {q}")

    def _tokenize(self) -> list[_Tok]:
        text, toks, i = self.text, [], 0
        while i < len(text):
            c = text[i]
            if c.isspace():
                i += 1
                continue
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            word = _WORD.match(text, i)
            num = _NUMBER.match(text, i) or _SIGNED_INF.match(text, i)
            if c in "(),":
                toks.append(_Tok(c, c, i))
                j = i + 1
            elif op:
                toks.append(_Tok("op", op, i))
                j = i + len(op)
            elif c in "'\"`":
                s, j = self._quoted(i)
                ident = c == "`"
                toks.append(
                    _Tok("ident" if ident else "str", text[i:j], i, ("", s) if ident else s)
                )
            elif word:
                w, j = word.group(), word.end()
                if w.endswith(".") and j < len(text) and text[j] in '`"':
                    key, j = self._quoted(j)
                    toks.append(_Tok("ident", text[i:j], i, (w[:-1], key)))
                elif w.upper() in ("NAN", "INFINITY"):
                    toks.append(_Tok("num", w, i, float(w)))
                else:
                    toks.append(_Tok("word", w, i))
            elif num:
                lit, j = num.group(), num.end()
                if j < len(text) and (text[j].isalnum() or text[j] in "_-./:"):
                    bad = text[i : _JUNK.match(text, j).end()]  # type: ignore[union-attr]
                    self.fail(i, f"malformed number '{bad}'; expected e.g. 42, -1.5 or 1e-3")
                toks.append(_Tok("num", lit, i, _number(lit)))
            else:
                self.fail(i, f"unexpected character {c!r}")
            i = j
        toks.append(_Tok("eof", "", len(text)))
        return toks

    # -- grammar ------------------------------------------------------------
    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_kw(self.peek(), "OR"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_kw(self.peek(), "AND"):
            self.next()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        tok = self.peek()
        if not (tok.kind == "(" or self.is_kw(tok, "NOT")):
            return self.comparison()
        self.next()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(tok.pos, f"'{tok.text}' nests deeper than {MAX_DEPTH} levels")
        if tok.kind == "(":
            node: Node = self.or_expr()
            close = self.next()
            if close.kind != ")":
                self.expected(close, f"')' to close the '(' at position {tok.pos}")
        else:
            node = Not(self.not_expr())
        self.depth -= 1
        return node

    def ident(self) -> tuple[str, str, str]:
        """Parse a field; return (entity, normalized key, text as written)."""
        tok = self.next()
        if tok.kind == "ident" and isinstance(tok.value, tuple):
            prefix, key = tok.value
            bare = not prefix
        elif tok.kind == "word" and tok.text.upper() not in _KEYWORDS:
            prefix, dot, key = tok.text.partition(".")
            bare, key = (not dot), (key if dot else prefix)
        else:
            self.expected(tok, self.fields.example)
        fields, attrs = self.fields, ", ".join(self.fields.attributes)
        if bare:
            attr = fields.attribute(key)
            if attr is None:
                bad = f"unknown {fields.noun} '{key}'"
                hint = (
                    f"write {key}.<key>"
                    if key.lower() in fields.entities
                    else f"use {fields.example}"
                )
                self.fail(tok.pos, f"{bad}; {hint} (attributes: {attrs})")
            return "attribute", attr, tok.text
        entity = fields.entities.get(prefix.lower())
        if entity is None:
            self.fail(tok.pos, f"unknown entity '{prefix}' in '{tok.text}'; "
                      f"expected {fields.prefixes}")  # fmt: skip
        if not key:
            self.fail(tok.pos + len(prefix) + 1, f"expected a key name after '{prefix}.'")
        if entity == "attribute":
            attr = fields.attribute(key)
            if attr is None:
                self.fail(tok.pos, f"unknown attribute '{key}' in '{tok.text}'; "
                          f"valid attributes are {attrs}")  # fmt: skip
            key = attr
        return entity, key, tok.text

    def comparison(self) -> Comparison:
        start = self.peek()
        entity, key, name = self.ident()
        self.count += 1
        if self.count > MAX_COMPARISONS:
            self.fail(start.pos, f"too many comparisons at '{name}'; at most {MAX_COMPARISONS}")
        tok = self.next()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(entity, key, op, self.value(tok, entity, key, name, op))
        neg = ""
        if self.is_kw(tok, "NOT"):
            neg, tok = "NOT ", self.next()
            if not self.is_kw(tok, "IN", "LIKE", "ILIKE"):
                self.expected(tok, "IN, LIKE or ILIKE after NOT")
        word = tok.text.upper() if tok.kind == "word" else ""
        if word == "IN":
            paren = self.next()
            if paren.kind != "(":
                self.expected(paren, f"'(' after {neg}IN")
            values = [self.value(paren, entity, key, name, neg + word)]
            while (sep := self.next()).kind == ",":
                values.append(self.value(sep, entity, key, name, neg + word))
            if sep.kind != ")":
                self.expected(sep, f"',' or ')' in the {neg}IN list")
            return Comparison(entity, key, neg + word, tuple(values))
        if word in ("LIKE", "ILIKE"):
            if self.fields.numeric(entity, key):
                self.fail(tok.pos, f"{word} cannot be used with {name}, which is compared as a "
                          "number; use =, !=, <, <=, >, >=, IN or IS NULL")  # fmt: skip
            pat = self.next()
            if not isinstance(pat.value, str) or pat.kind != "str":
                self.expected(pat, f"a quoted pattern after {word}")
            return Comparison(entity, key, neg + word, pat.value)
        if word == "IS":
            op = "IS NOT NULL" if self.is_kw(self.peek(), "NOT") else "IS NULL"
            self.i += op == "IS NOT NULL"
            if not self.is_kw(null := self.next(), "NULL"):
                self.expected(null, f"NULL after {op.removesuffix(' NULL')}")
            return Comparison(entity, key, op, None)
        self.expected(
            tok, f"an operator (=, !=, <, <=, >, >=, IN, LIKE, ILIKE or IS) after '{name}'"
        )

    def value(self, after: _Tok, entity: str, key: str, name: str, op: str) -> Scalar:
        """Read one literal and check it against the field's type; return it normalized."""
        tok = self.next()
        if tok.kind not in ("num", "str"):
            self.expected(tok, f"a value after '{after.text}'")
        if self.fields.numeric(entity, key):
            if isinstance(tok.value, str):
                raw = tok.value.strip()
                if not (self.fields.quoted_numbers and _INT.fullmatch(raw)):
                    hint = (
                        f"; write {name} {op} {raw} without quotes"
                        if _NUMBER.fullmatch(raw)
                        else ""
                    )
                    self.fail(tok.pos, f"{name} is compared as a number but found {tok.text}{hint}")
                number = _number(raw)
            else:
                assert isinstance(tok.value, int | float)
                number = tok.value
            if entity != "metric" and not math.isfinite(number):
                if tok.kind == "num" and tok.text.lstrip("+-").upper() in ("NAN", "INFINITY"):
                    self.fail(tok.pos, f"'{tok.text}' is only allowed for metrics, not {name}")
                self.fail(tok.pos, f"{_clip(tok.text)} is too large a number for {name}")
            return number  # a metric's as a float (Comparison)
        if not isinstance(tok.value, str):
            fix = f"quote it: '{tok.text}'" if "IN" in op else f"write {name} {op} '{tok.text}'"
            self.fail(tok.pos, f"{name} is compared as a string; {fix}")
        choices = self.fields.choices.get(key) if entity == "attribute" else None
        if choices is not None and op in ("=", "!=", "IN", "NOT IN"):
            if tok.value.upper() not in choices:
                self.fail(
                    tok.pos, f"invalid {name} {tok.text}; expected one of {', '.join(choices)}"
                )
            return tok.value.upper()
        return tok.value


def parse_filter(text: str | None, fields: Fields = RUN_FIELDS) -> Node | None:
    """Parse a filter on ``fields`` (runs' by default); None for an empty filter,
    InvalidInput on errors."""
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"Invalid filter {text!r}: expected a string", field="filter")
    if text is None or not text.strip():
        return None
    parser = _Parser(text, "filter", "filter", fields)
    node = parser.or_expr()
    tok = parser.peek()
    if tok.kind == ")":
        parser.fail(tok.pos, "unmatched ')'; expected AND, OR or end of input")
    if tok.kind != "eof":
        parser.expected(tok, "AND, OR or end of input")
    return node


def parse_order_by(
    items: Sequence[str] | None, fields: Fields = RUN_FIELDS
) -> tuple[OrderKey, ...]:
    """Parse ``order_by`` entries like ``"metrics.acc DESC"`` on ``fields`` (runs' by
    default); ascending by default."""
    if not items:
        return ()
    items = [items] if isinstance(items, str) else items
    if len(items) > MAX_ORDER_KEYS:
        raise InvalidInput(f"Invalid order_by: {len(items)} keys given, at most "
                           f"{MAX_ORDER_KEYS} are allowed", field="order_by")  # fmt: skip
    keys = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"Invalid order_by item {item!r}: expected {fields.example}, "
                               "optionally followed by ASC or DESC", field="order_by")  # fmt: skip
        parser = _Parser(item, f"order_by item {item!r}", "order_by", fields)
        entity, key, _ = parser.ident()
        tok = parser.next()
        descending = parser.is_kw(tok, "DESC")
        if parser.is_kw(tok, "ASC", "DESC"):
            tok = parser.next()
        if tok.kind != "eof":
            parser.expected(tok, "ASC, DESC or end of item")
        keys.append(OrderKey(entity, key, descending))
    return tuple(keys)
