"""What an as_of names: a log position or a time, parsed once and written back the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerflow.events.as_of import TIME_FROM, AsOf, read_only
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Checkpoint

DEC_1 = 1_796_119_200_000  # 2026-12-01T10:00:00Z


@pytest.mark.parametrize(
    "given_, expected",
    [
        ("42", AsOf(checkpoint=Checkpoint({"": 42}))),
        (42, AsOf(checkpoint=Checkpoint({"": 42}))),
        ("0", AsOf(checkpoint=Checkpoint())),
        (
            "lf.runs/0=7,lf.registry/0=3",
            AsOf(checkpoint=Checkpoint.parse("lf.runs/0=7,lf.registry/0=3")),
        ),
        ("2026-12-01T10:00Z", AsOf(time_ms=DEC_1)),
        ("2026-12-01T10:00:00", AsOf(time_ms=DEC_1)),  # no zone: UTC
        ("2026-12-01T11:00+01:00", AsOf(time_ms=DEC_1)),
        ("2026-12-01", AsOf(time_ms=DEC_1 - 10 * 3600_000)),
        (str(DEC_1), AsOf(time_ms=DEC_1)),
        (DEC_1, AsOf(time_ms=DEC_1)),
        (datetime(2026, 12, 1, 10, tzinfo=UTC), AsOf(time_ms=DEC_1)),
        (datetime(2026, 12, 1, 5, tzinfo=timezone(timedelta(hours=-5))), AsOf(time_ms=DEC_1)),
        (Checkpoint({"": 5}), AsOf(checkpoint=Checkpoint({"": 5}))),
    ],
)
def test_positions_and_times_are_told_apart(given_: object, expected: AsOf) -> None:
    assert AsOf.parse(given_) == expected  # type: ignore[arg-type]


def test_the_boundary_between_positions_and_times() -> None:
    assert AsOf.parse(TIME_FROM - 1).checkpoint == Checkpoint({"": TIME_FROM - 1})
    assert AsOf.parse(TIME_FROM).time_ms == TIME_FROM


@pytest.mark.parametrize("bad", ["", "  ", "yesterday", "-3", "12:00 tomorrow", True, 1.5, None])
def test_anything_else_is_refused_naming_the_forms(bad: object) -> None:
    with pytest.raises(InvalidInput) as e:
        AsOf.parse(bad)  # type: ignore[arg-type]
    assert e.value.field == "as_of"
    assert "ISO-8601" in e.value.message or "negative" in e.value.message


@given(
    st.one_of(
        st.integers(0, TIME_FROM - 1).map(lambda n: AsOf.parse(n)),
        st.integers(TIME_FROM, 4_102_444_800_000).map(lambda n: AsOf(time_ms=n)),
        st.dictionaries(
            st.sampled_from(["lf.runs/0", "lf.registry/1"]), st.integers(0, 10**6), min_size=1
        ).map(lambda d: AsOf(checkpoint=Checkpoint(d))),
    )
)
def test_the_text_form_reads_back_as_the_same_point(point: AsOf) -> None:
    assert AsOf.parse(point.encode()) == point


def test_a_time_is_described_in_utc_with_milliseconds() -> None:
    assert AsOf(time_ms=DEC_1 + 5).describe() == "2026-12-01T10:00:00.005Z"
    assert AsOf.parse("7").describe() == "position 7"


def test_the_read_only_error_says_what_to_do() -> None:
    e = read_only("log params")
    assert e.field == "as_of" and "read-only" in e.message and "drop as_of" in e.message
