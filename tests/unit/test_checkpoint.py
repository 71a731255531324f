"""Checkpoints: a reader's progress, one offset per partition, as a token and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Checkpoint

partitions = st.sampled_from(["", "lf.runs/0", "lf.runs/1", "lf.registry/0", "a=b/2"])
checkpoints = st.dictionaries(partitions, st.integers(min_value=-1, max_value=10**12)).map(
    Checkpoint
)


def item(position: int, partition: str = "") -> Recorded:
    return Recorded(position, Event.of(p.RunDeleted(run_id="r")), partition)


@given(checkpoints)
def test_every_checkpoint_survives_its_token(cp: Checkpoint) -> None:
    assert Checkpoint.parse(cp.encode()) == cp


def test_a_single_partition_log_writes_a_plain_number() -> None:
    assert Checkpoint({"": 42}).encode() == "42"
    assert Checkpoint.parse("42") == Checkpoint.coerce(42) == Checkpoint({"": 42})
    assert Checkpoint.coerce(None) == Checkpoint.parse("") == Checkpoint()
    assert not Checkpoint()


def test_advancing_keeps_the_furthest_position_of_each_partition() -> None:
    cp = Checkpoint().advance_all([item(3, "a/0"), item(1, "a/1"), item(2, "a/0")])
    assert cp == Checkpoint({"a/0": 3, "a/1": 1})
    assert cp.includes(item(3, "a/0")) and not cp.includes(item(4, "a/0"))
    assert not cp.includes(item(0, "b/0"))


def test_covering_is_per_partition_and_union_takes_the_later_of_each() -> None:
    seen = Checkpoint({"a/0": 5, "a/1": 2})
    assert seen.covers(Checkpoint({"a/0": 5})) and seen.covers(Checkpoint())
    assert not seen.covers(Checkpoint({"a/1": 3})) and not seen.covers(Checkpoint({"b/0": 0}))
    assert seen.union(Checkpoint({"a/1": 7, "b/0": 1})) == Checkpoint(
        {"a/0": 5, "a/1": 7, "b/0": 1}
    )
    assert seen.total() == 7


@pytest.mark.parametrize("bad", ["a/0", "a/0=x", "a/0=1,,", "forty-two"])
def test_a_malformed_token_is_refused_naming_the_expected_form(bad: str) -> None:
    with pytest.raises(InvalidInput, match="PARTITION=N"):
        Checkpoint.parse(bad)


def test_only_positions_and_tokens_are_accepted_as_after() -> None:
    with pytest.raises(InvalidInput, match="expected a position or a checkpoint token"):
        Checkpoint.coerce(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Checkpoint.coerce(True)


@given(checkpoints, checkpoints)
def test_meet_keeps_the_earlier_position_of_partitions_both_name(
    a: Checkpoint, b: Checkpoint
) -> None:
    met = a.meet(b)
    assert met == b.meet(a)
    assert a.covers(met) and b.covers(met)
    assert set(met.partitions()) == set(a.partitions()) & set(b.partitions())
