"""The fold the Faust worker runs, over a plain dict as its table: redelivered records are
not counted twice, a worker that stops or crashes at any point of its table writes and
restarts from what was written counts every record exactly once, undecodable records are
counted, and deployments whose partition moved away are forgotten."""

from __future__ import annotations

import random
from collections.abc import Iterator, MutableMapping

from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerflow.events.codec import decode, encode
from ledgerflow.events.deployment_payloads import (
    FeedbackRecorded,
    InferenceRecord,
    InferenceRecorded,
)
from ledgerflow.events.envelope import Event
from ledgerflow.services.analytics.table_fold import TableFold
from ledgerflow.services.analytics.window import TrafficStats


def _records(deployment: str, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        rec = InferenceRecord(request_id=f"q{i}", variant="ab"[i % 2], time=i * 300, latency_ms=3)
        out.append(
            encode(Event.of(InferenceRecorded(deployment=deployment, replica="r", records=(rec,))))
        )
        out.append(
            encode(
                Event.of(
                    FeedbackRecorded(
                        deployment=deployment, request_id=f"q{i}", value=1.0, time=i * 300
                    )
                )
            )
        )
    return out


def _expected(deployment: str, n: int) -> TrafficStats:
    fold = TrafficStats()
    fold.apply_all([decode(r).data for r in _records(deployment, n)])  # type: ignore[misc]
    return fold


def test_redelivered_records_are_skipped_and_a_fresh_fold_continues_from_the_table() -> None:
    records = _records("web", 10)
    table: dict[str, bytes] = {}
    first = TableFold(table)
    for offset, raw in enumerate(records[:12]):
        first.handle(raw, 3, offset)
    for offset, raw in enumerate(records[:12]):  # redelivered from an old commit
        first.handle(raw, 3, offset)
    assert first.applied_offset(3) == 11
    second = TableFold(table)  # another worker, or a restart: only the table survives
    for offset, raw in enumerate(records):
        second.handle(raw, 3, offset)
    assert second.stats.snapshot("web") == _expected("web", 10).snapshot("web")
    assert second.unpublished == {"web"}


def test_undecodable_records_are_counted_and_passed_over() -> None:
    fold = TableFold({})
    fold.handle(b"{not json", 0, 0)
    fold.handle(_records("web", 1)[0], 0, 1)
    assert fold.corrupt == 1 and fold.applied_offset(0) == 1
    assert fold.stats.snapshot("web")["a"].requests == 1


def test_deployments_of_partitions_that_moved_away_are_forgotten_and_reloaded() -> None:
    table: dict[str, bytes] = {}
    fold = TableFold(table)
    for offset, raw in enumerate(_records("one", 3)):
        fold.handle(raw, 0, offset)
    for offset, raw in enumerate(_records("two", 3)):
        fold.handle(raw, 1, offset)
    fold.keep_partitions({1})
    assert set(fold.stats.deployments) == {"two"} and "one" not in fold.unpublished
    more = _records("one", 4)
    fold.handle(more[6], 0, 6)  # partition 0 came back: its table is reloaded first
    snap = fold.stats.snapshot("one")
    assert (snap["a"].requests, snap["b"].requests) == (2, 2)  # q3 went to b


class Changelog(MutableMapping[str, bytes]):
    """A table that keeps its writes in order, as its changelog topic does."""

    def __init__(self, data: dict[str, bytes] | None = None) -> None:
        self.data = dict(data or {})
        self.writes: list[tuple[str, bytes | None]] = []

    def __getitem__(self, key: str) -> bytes:
        return self.data[key]

    def __setitem__(self, key: str, value: bytes) -> None:
        self.data[key] = value
        self.writes.append((key, value))

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.writes.append((key, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _recovered(writes: list[tuple[str, bytes | None]]) -> Changelog:
    """The table a worker recovers from what of the changelog was written."""
    data: dict[str, bytes] = {}
    for key, value in writes:
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return Changelog(data)


def _resumed(table: Changelog, records: list[bytes]) -> TableFold:
    """A worker taking partition 0 over from `table`, consuming from where it says."""
    fold = TableFold(table)
    for offset in range(fold.take([0])[0], len(records)):
        fold.handle(records[offset], 0, offset)
    return fold


def _joined_records(seed: int, n: int) -> list[bytes]:
    """Inference in batches of 3 requests; outcomes before and after their request,
    retried, and a few without any request."""
    rng = random.Random(seed)
    out: list[Event] = []
    late: list[FeedbackRecorded] = []
    for b in range(0, n, 3):
        records = tuple(
            InferenceRecord(request_id=f"q{i}", variant=rng.choice("ab"), time=i * 400, latency_ms=i % 9)
            for i in range(b, b + 3)
        )  # fmt: skip
        for r in records:
            fb = FeedbackRecorded(
                deployment="web", request_id=r.request_id, value=float(rng.random() < 0.5),
                time=r.time + 10,
            )  # fmt: skip
            if rng.random() < 0.2:
                out.append(Event.of(fb))
            else:
                late.append(fb)
            if rng.random() < 0.2:
                late.append(fb)
        if rng.random() < 0.2:
            late.append(FeedbackRecorded(deployment="web", request_id=f"x{b}", value=1, time=b))
        out.append(Event.of(InferenceRecorded(deployment="web", replica="r", records=records)))
        out += [Event.of(late.pop(0)) for _ in range(min(len(late), rng.randint(0, 4)))]
    return [encode(e) for e in out + [Event.of(f) for f in late]]


def _whole(records: list[bytes]) -> TrafficStats:
    fold = TrafficStats()
    fold.apply_all([decode(r).data for r in records])  # type: ignore[misc]
    return fold


def test_a_worker_that_crashes_at_any_write_and_restarts_from_the_table_counts_exactly() -> None:
    records = _joined_records(1, 24)
    expected = _whole(records).snapshot("web")
    live = Changelog()
    first = TableFold(live)
    for offset, raw in enumerate(records):
        first.handle(raw, 0, offset)
    assert first.stats.snapshot("web") == expected
    for cut in range(len(live.writes) + 1):  # the changelog as far as it was written
        resumed = _resumed(_recovered(live.writes[:cut]), records)
        assert resumed.stats.snapshot("web") == expected, f"crashed after {cut} writes"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), first_cut=st.floats(0, 1), second_cut=st.floats(0, 1))
def test_a_worker_that_crashes_again_while_catching_up_still_counts_exactly(
    seed: int, first_cut: float, second_cut: float
) -> None:
    records = _joined_records(seed, 15)
    live = Changelog()
    first = TableFold(live)
    for offset, raw in enumerate(records):
        first.handle(raw, 0, offset)
    written = live.writes[: int(first_cut * len(live.writes))]
    again = _recovered(written)
    _resumed(again, records)
    written += again.writes[: int(second_cut * len(again.writes))]
    assert _resumed(_recovered(written), records).stats.snapshot("web") == _whole(records).snapshot(
        "web"
    )
