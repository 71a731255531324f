"""Group commit: appends that meet share one write, and each caller keeps its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from ledgerflow.events.group_commit import GroupCommit


class Store:
    """A write that records each call, can be held open, and refuses any event "bad"."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.rows: list[str] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def write(self, events: Sequence[str]) -> list[int]:
        self.calls.append(list(events))
        self.entered.set()
        self.hold.wait(10)
        if "bad" in events:
            raise ValueError("bad event")
        start = len(self.rows)
        self.rows += events
        return list(range(start, start + len(events)))


def test_a_lone_caller_writes_at_once_and_gets_its_positions() -> None:
    store = Store()
    group = GroupCommit(store.write)
    assert group.append(["a", "b"]) == [0, 1]
    assert group.append(["c"]) == [2]
    assert store.calls == [["a", "b"], ["c"]]


def _meet(
    group: GroupCommit[str, int], store: Store, batches: list[list[str]]
) -> dict[int, object]:
    """The first batch's write held open while the others queue behind it; each caller's
    result or error, by batch index."""
    out: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            out[i] = group.append(batches[i])
        except Exception as e:
            out[i] = e

    store.hold.clear()
    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert store.entered.wait(5)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, len(batches))]
    for t in others:
        t.start()
    while group.appends < len(batches):  # every caller queued behind the open write
        threading.Event().wait(0.005)
    store.hold.set()
    for t in [first, *others]:
        t.join(10)
    return out


def test_callers_that_meet_a_write_in_progress_share_the_next_one() -> None:
    store = Store()
    group = GroupCommit(store.write)
    out = _meet(group, store, [["first"], ["a1", "a2"], ["b1"], ["c1", "c2", "c3"]])
    assert len(store.calls) == 2  # the held write, then everyone else's in one
    assert sorted(store.calls[1]) == sorted(["a1", "a2", "b1", "c1", "c2", "c3"])
    assert out[0] == [0]
    for i, batch in ((1, ["a1", "a2"]), (2, ["b1"]), (3, ["c1", "c2", "c3"])):
        positions = out[i]
        assert isinstance(positions, list)
        assert [store.rows[p] for p in positions] == batch  # each caller's own positions
    assert group.writes == 2 and group.appends == 4


def test_a_callers_bad_events_fail_that_caller_alone() -> None:
    store = Store()
    group = GroupCommit(store.write)
    out = _meet(group, store, [["first"], ["a1"], ["bad"], ["c1"]])
    assert isinstance(out[2], ValueError)
    assert isinstance(out[1], list) and [store.rows[p] for p in out[1]] == ["a1"]
    assert isinstance(out[3], list) and [store.rows[p] for p in out[3]] == ["c1"]
    assert "bad" not in store.rows


def test_a_failing_write_reaches_its_caller_and_the_next_write_goes_on() -> None:
    store = Store()
    group = GroupCommit(store.write)
    with pytest.raises(ValueError, match="bad event"):
        group.append(["bad"])
    assert group.append(["ok"]) == [0]


class Down(Exception):
    """The log itself failing (unreachable): every caller's, not one's."""


def test_an_error_of_the_log_itself_reaches_every_caller_without_writing_again() -> None:
    store = Store()
    calls_before_failing = [1]

    def write(events: Sequence[str]) -> list[int]:
        if calls_before_failing[0] == 0:
            store.calls.append(list(events))
            raise Down("the log is unreachable")
        calls_before_failing[0] -= 1
        return store.write(events)

    group = GroupCommit(write, shared=(Down,))
    out = _meet(group, store, [["first"], ["a1"], ["b1"]])
    assert out[0] == [0]
    assert isinstance(out[1], Down) and isinstance(out[2], Down)
    assert store.calls[1:] == [["a1", "b1"]]  # one shared try, not one more per caller
