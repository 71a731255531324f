"""What the fuzz tests of the parsers that take user text share (tests/unit/test_fuzz_*.py).

Each parser is fed arbitrary text and near-valid text (a valid input with a few edits),
and must either answer or refuse with its documented error, carrying a message and the
field it is about; anything else (IndexError, ValueError, RecursionError...) is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from hypothesis import settings
from hypothesis import strategies as st

from ledgerflow.events.errors import LedgerflowError

T = TypeVar("T")

FUZZ = settings(max_examples=150, deadline=None)
"""Small enough that every fuzz module runs in a couple of seconds with the unit tests."""

INT64_MAX = 2**63 - 1
"""The largest integer SQLite, Postgres (BIGINT) and Kafka offsets hold."""

TRICKY = (
    "0", "1", "9", "-", "+", "=", ",", ":", "/", "@", ".", "_", "'", '"', "`", "\\", "(",
    ")", " ", "\t", "\n", "\x00", "e", "E", "x", "é", "%", "\u00b2", "\u0663", "\uff11",
    "\u221e", "\ud800",
)  # fmt: skip
"""Characters that separate, quote or look like digits: where parsers usually slip."""

tricky_text = st.text(st.sampled_from(TRICKY), max_size=40)

any_text = st.lists(
    st.one_of(st.characters(exclude_categories=()), st.sampled_from(TRICKY)), max_size=80
).map("".join)
"""Any text at all, lone surrogates included (a JSON body can spell one as "\\ud800"),
with the tricky characters more often than chance would pick them (a list, because
`st.text` over that union all but never draws a surrogate)."""

long_digits = st.integers(min_value=15, max_value=5000).map(lambda n: "9" * n)
"""Digit runs past 64 bits, and past Python's 4300-digit limit on int()."""

_DIGITS = re.compile(r"[0-9]+")


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[str], edits: int = 3) -> str:
    """``valid`` text with up to ``edits`` insertions, deletions, duplications, or numbers
    made too long."""
    text = draw(valid)
    for _ in range(draw(st.integers(0, edits))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "repeat", "digits"]))
        if kind == "insert":
            piece = draw(st.one_of(st.sampled_from(TRICKY), any_text.filter(bool)))
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 4)) :]
        elif kind == "repeat":
            text = text[:at] + text[at : at + draw(st.integers(1, 6))] * 2 + text[at:]
        else:  # a number grown past 64 bits, or long digits somewhere
            number = _DIGITS.search(text, at) or _DIGITS.search(text)
            start, end = number.span() if number else (at, at)
            text = text[:start] + draw(long_digits) + text[end:]
    return text


def utf8(text: str) -> bool:
    """Whether ``text`` can be stored or sent: UTF-8 has no lone surrogates."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def answers_or_refuses(
    parse: Callable[[], T], error: type[LedgerflowError], *, field: str | None = None
) -> T | None:
    """What ``parse()`` returns, or None if it refused with ``error`` as it documents:
    a message that says something, about ``field``, that can be sent back and stored.
    Any other exception escapes."""
    try:
        return parse()
    except error as e:
        sendable(e)
        if field is not None:
            assert getattr(e, "field", None) == field, (e.message, getattr(e, "field", None))
        return None


def sendable(e: LedgerflowError) -> None:
    """An error the gateway can answer with and a dead-letter store can keep: a message,
    and no text (quoted from the input) that UTF-8 cannot encode."""
    assert e.message.strip(), f"{type(e).__name__} without a message"
    for name in ("message", "field", "token", "key"):
        text = getattr(e, name, None)
        assert text is None or utf8(text), f"{name} {text!r} cannot be sent"
