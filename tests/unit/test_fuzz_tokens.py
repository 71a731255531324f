"""Fuzzing the tokens clients hand back: checkpoints (`after`), `as_of` points, verify
anchors (`expect_head`) and page tokens. Any text parses to something usable (positions
that fit 64 bits, a time that can be printed) or is refused with InvalidInput naming the
parameter; what the server issues reads back as itself."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from ledgerflow.events.as_of import TIME_FROM, AsOf
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Checkpoint
from ledgerflow.events.verify import Anchor
from ledgerflow.services.gateway.mlflow_api.endpoints import offset_of, token_of
from ledgerflow.services.projector.cursor import decode_cursor, encode_cursor
from tests.unit.fuzzing import (
    FUZZ,
    INT64_MAX,
    answers_or_refuses,
    any_text,
    long_digits,
    mutated,
    tricky_text,
    utf8,
)

positions = st.integers(-1, INT64_MAX)
kafka_partitions = st.builds(
    "{}/{}".format, st.from_regex(r"[A-Za-z0-9._\-]{1,20}", fullmatch=True), st.integers(0, 999)
)
checkpoints = st.one_of(
    st.builds(lambda p: Checkpoint({"": p}), positions),
    st.dictionaries(st.one_of(st.just(""), kafka_partitions), positions, max_size=4).map(
        Checkpoint
    ),
)
tokens = st.one_of(any_text, tricky_text, mutated(checkpoints.map(Checkpoint.encode)), long_digits)


def _fits(cp: Checkpoint) -> None:
    for partition, position in cp.partitions().items():
        assert isinstance(position, int) and -INT64_MAX - 1 <= position <= INT64_MAX, partition


# -- checkpoints ---------------------------------------------------------------------------


@FUZZ
@given(checkpoints)
def test_every_checkpoint_reads_back_from_its_token(cp: Checkpoint) -> None:
    assert Checkpoint.parse(cp.encode()) == cp


@FUZZ
@given(tokens)
@example("--5")
@example("\u00b2")
@example("lf.runs/0=\u00b2")
@example("9" * 5000)
@example("lf.runs/0=99999999999999999999")
@example(" lf.runs/0=1, lf.runs/1=2")
def test_any_checkpoint_token_reads_as_positions_that_fit_or_is_refused(token: str) -> None:
    cp = answers_or_refuses(lambda: Checkpoint.parse(token), InvalidInput, field="after")
    if cp is not None:
        _fits(cp)
        assert Checkpoint.parse(cp.encode()) == cp, cp.encode()


# -- as_of ---------------------------------------------------------------------------------

times_ms = st.integers(TIME_FROM, 253402300799999)  # up to the last millisecond of 9999
as_ofs = st.one_of(
    st.builds(lambda p: AsOf(checkpoint=Checkpoint({"": p}) if p else Checkpoint()),
              st.integers(0, TIME_FROM - 1)),
    st.builds(lambda ms: AsOf(time_ms=ms), times_ms),
    st.dictionaries(kafka_partitions, st.integers(0, INT64_MAX), min_size=1, max_size=3).map(
        lambda offsets: AsOf(checkpoint=Checkpoint(offsets))
    ),
)  # fmt: skip
as_of_texts = st.one_of(
    tokens,
    mutated(as_ofs.map(AsOf.encode)),
    mutated(st.sampled_from(["2026-12-01T10:00Z", "2026-12-01", "0001-01-01T00:00+23:59"])),
    st.datetimes().map(lambda d: d.isoformat()),
)


@FUZZ
@given(as_ofs)
def test_every_as_of_reads_back_from_its_text(point: AsOf) -> None:
    assert AsOf.parse(point.encode()) == point


@FUZZ
@given(as_of_texts)
@example("\u00b2")
@example("--1")
@example("99999999999999999999")
@example("9999-12-31T23:59:59-23:59")
def test_any_as_of_text_names_a_point_that_can_be_printed_or_is_refused(text: str) -> None:
    point = answers_or_refuses(lambda: AsOf.parse(text), InvalidInput, field="as_of")
    if point is not None:
        assert point.describe() and point.encode()
        if point.checkpoint is not None:
            _fits(point.checkpoint)


# -- verify anchors ------------------------------------------------------------------------

anchors = st.builds(
    Anchor,
    st.one_of(st.just(""), kafka_partitions),
    st.integers(0, INT64_MAX),
    st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
)


@FUZZ
@given(anchors)
def test_every_anchor_reads_back_from_its_text(anchor: Anchor) -> None:
    assert Anchor.parse(anchor.encode()) == anchor


@FUZZ
@given(st.one_of(tokens, mutated(anchors.map(Anchor.encode))))
@example("\u00b2:" + "0" * 64)
@example("p@" + "9" * 5000 + ":" + "0" * 64)
def test_any_anchor_text_parses_or_is_refused(text: str) -> None:
    anchor = answers_or_refuses(lambda: Anchor.parse(text), InvalidInput, field="expect_head")
    if anchor is not None:
        assert 0 <= anchor.position <= INT64_MAX


# -- page tokens ---------------------------------------------------------------------------

FP = "0123456789ab"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
sort_values = st.lists(  # as rows hold them: no lone surrogates
    st.none()
    | st.integers(-INT64_MAX - 1, INT64_MAX)
    | st.floats(allow_nan=False)
    | any_text.filter(utf8),
    min_size=1,
    max_size=3,
)


def _token(doc: Any) -> str:
    raw = json.dumps(doc).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


forged_tokens = st.one_of(
    st.builds(lambda v: _token({"v": v, "q": FP}), json_values),
    st.builds(lambda v: _token({"v": [v], "q": FP}), json_values),
    st.builds(lambda d: _token(d), json_values),
    mutated(sort_values.map(lambda v: encode_cursor(v, FP))),
)


def _bindable(value: object) -> bool:
    """What SQLite and Postgres take as a parameter."""
    if isinstance(value, int) and not isinstance(value, bool):
        return -INT64_MAX - 1 <= value <= INT64_MAX
    if isinstance(value, str):
        return utf8(value)
    return value is None or isinstance(value, float | bool)


@FUZZ
@given(sort_values)
def test_every_page_token_reads_back_as_its_sort_values(values: list[Any]) -> None:
    assert decode_cursor(encode_cursor(values, FP), FP, len(values)) == values


@FUZZ
@given(token=st.one_of(tokens, forged_tokens), width=st.integers(1, 3))
@example(token=_token({"v": [[1, 2]], "q": FP}), width=1)
@example(token=_token({"v": [{"a": 1}], "q": FP}), width=1)
@example(token=_token({"v": [2**64], "q": FP}), width=1)
@example(token=_token({"v": ["\ud800"], "q": FP}), width=1)
@example(token=base64.urlsafe_b64encode(b"[" * 100_000).decode(), width=1)
def test_any_page_token_gives_sort_values_sql_can_bind_or_is_refused(
    token: str, width: int
) -> None:
    values = answers_or_refuses(lambda: decode_cursor(token, FP, width), InvalidInput,
                                field="page_token")  # fmt: skip
    if values is not None:
        assert len(values) == width and all(_bindable(v) for v in values), values


@FUZZ
@given(st.integers(0, 10**12))
def test_every_offset_page_token_reads_back_as_its_offset(offset: int) -> None:
    assert offset_of(token_of(offset)) == offset


offset_tokens = st.one_of(
    tokens,
    st.integers().map(token_of),
    st.builds(lambda t: base64.urlsafe_b64encode(t.encode("utf-8", "surrogatepass")).decode(),
              st.one_of(any_text, tricky_text, long_digits)),
    mutated(st.builds(token_of, st.integers(0, 10**6))),
)  # fmt: skip


@FUZZ
@given(offset_tokens)
@example(token_of(-5))
@example(base64.urlsafe_b64encode(b"9" * 5000).decode())
@example(base64.urlsafe_b64encode(b"1_000").decode())
def test_any_offset_page_token_is_a_start_at_or_after_zero_or_is_refused(token: str) -> None:
    offset = answers_or_refuses(lambda: offset_of(token), InvalidInput, field="page_token")
    assert offset is None or 0 <= offset <= INT64_MAX
