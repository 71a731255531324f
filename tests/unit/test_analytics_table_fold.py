"""The fold the Faust worker runs, over a plain dict as its table: redelivered records are
not counted twice, a fresh worker continues from the table, undecodable records are
counted, and deployments whose partition moved away are forgotten."""

from __future__ import annotations

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
