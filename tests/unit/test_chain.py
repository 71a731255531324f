"""The hash chain and the verifier's judgement, on records built in memory (no log).

The adapters' side (that each stores and returns these records, and that tampering
with a real file or topic is caught) is in tests/integration/eventlog_tamper_contract.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.chain import GENESIS, StoredEvent, StoredLog, chain_hash, document
from ledgerflow.events.codec import encode, encode_data
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.verify import (
    ANCHOR,
    INSERTED,
    REORDERED,
    Anchor,
    Report,
    verify,
)


class MemoryLog:
    """A log for `verify` (its `Verifiable` port): stored records handed over as they are."""

    def __init__(
        self,
        records: list[StoredEvent],
        *,
        forks: bool = False,
        trimmed: dict[str, int] | None = None,
    ) -> None:
        self.records, self.forks, self.trimmed = records, forks, trimmed or {}

    def stored(self) -> StoredLog:
        return StoredLog(iter(self.records), forks=self.forks, trimmed=self.trimmed)


def check(
    records: list[StoredEvent], *, forks: bool = False, trimmed: dict[str, int] | None = None
) -> Report:
    return verify(MemoryLog(records, forks=forks, trimmed=trimmed))


def chained(streams: str, *, partition: str = "") -> Iterator[StoredEvent]:
    """One event per letter, each letter a stream ("aab" = two on a, then one on b),
    chained as an appender would."""
    tips: dict[str, str] = {}
    for position, s in enumerate(streams, start=1):
        doc = document(f"id{position}", "t", s, 0, 1, "me", None, b'{"n":%d}' % position)
        prev = tips.get(s, GENESIS)
        tips[s] = chain_hash(prev, doc)
        yield StoredEvent(partition, position, f"id{position}", s, doc, prev, tips[s])


def test_the_hashed_document_is_the_json_document_the_codec_writes() -> None:
    ev = Event.of(p.RunTagsSet(run_id="r", tags={"ключ": 'välue "q"'}), actor="user:zoë")
    ev2 = Event(type=ev.type, stream=ev.stream, data=ev.data, trace="00-ab-cd-01")
    for e in (ev, ev2):
        old_form = json.dumps(e.envelope(), separators=(",", ":"))[:-1]
        assert encode(e) == (old_form + ',"data":' + encode_data(e.data) + "}").encode()


def test_the_hash_covers_the_predecessor_and_every_byte_of_the_document() -> None:
    doc = document("i", "t", "s", 1, 1, "a", None, b"{}")
    assert chain_hash("x", doc) != chain_hash("y", doc)
    assert chain_hash("x", doc) != chain_hash("x", document("i", "t", "s", 2, 1, "a", None, b"{}"))


def test_a_field_of_the_wrong_type_cannot_pass_for_an_event() -> None:
    with pytest.raises(ValueError):
        document("i", "t", "s", "1", 1, "a", None, b"{}")


def test_a_chained_log_verifies_and_counts_its_streams() -> None:
    report = check(list(chained("aabab")))
    assert report.ok and report.checked == 5 and report.streams == 2
    assert report.partitions[""].first_chained == 1


def test_where_appends_are_serialized_a_second_successor_is_named() -> None:
    a1, a2 = chained("aa")
    doc = document("x", "t", "a", 0, 1, "me", None, b"{}")
    inserted = StoredEvent("", 3, "x", "a", doc, a1.hash, chain_hash(a1.hash or "", doc))
    report = check([a1, a2, inserted])
    assert [(pr.kind, pr.id) for pr in report.problems] == [(REORDERED, "x")]
    assert "position 1" in report.problems[0].detail


def test_where_appenders_race_a_fork_is_counted_not_named() -> None:
    a1, a2 = chained("aa")
    doc = document("x", "t", "a", 0, 1, "me", None, b"{}")
    raced = StoredEvent("p", 3, "x", "a", doc, a1.hash, chain_hash(a1.hash or "", doc))
    report = check([a1._replace(partition="p"), a2._replace(partition="p"), raced], forks=True)
    assert report.ok and report.partitions["p"].forks == 1


def test_two_racing_first_events_of_a_stream_are_a_fork_too() -> None:
    docs = [document(f"x{i}", "t", "a", 0, 1, "me", None, b"{}") for i in range(2)]
    records = [
        StoredEvent("p", i, f"x{i}", "a", d, GENESIS, chain_hash(GENESIS, d))
        for i, d in enumerate(docs)
    ]
    assert check(records, forks=True).ok
    assert check(records).problems[0].kind == REORDERED


def test_a_duplicate_record_is_counted_where_delivery_is_at_least_once() -> None:
    a1, a2 = chained("aa")
    report = check([a1, a2, a2._replace(position=3)], forks=True)
    assert report.ok and report.partitions[""].duplicates == 1
    assert check([a1, a2, a2._replace(position=3)]).problems[0].kind == INSERTED


def test_a_partition_trimmed_by_retention_starts_its_streams_unchecked() -> None:
    records = list(chained("aab", partition="p"))[1:]
    assert not check(records).ok
    report = check(records, trimmed={"p": 2})
    assert report.ok and report.partitions["p"].continued == 1
    assert report.partitions["p"].trimmed_from == 2


def test_a_swap_of_a_streams_first_two_events_is_one_problem() -> None:
    a1, a2, a3 = chained("aaa")
    report = check([a2._replace(position=1), a1._replace(position=2), a3])
    assert [(pr.kind, pr.id) for pr in report.problems] == [(REORDERED, "id2")]


def test_anchors_round_trip_and_a_bad_one_is_refused_with_the_form() -> None:
    anchor = Anchor("ledgerflow.runs/2", 41, "ab" * 32)
    assert Anchor.parse(anchor.encode()) == anchor
    assert Anchor.parse(f"7:{'C' * 64}") == Anchor("", 7, "c" * 64)
    with pytest.raises(InvalidInput, match=r"\[PARTITION@\]POSITION:DIGEST"):
        Anchor.parse("7:beef")


def test_an_anchor_fails_past_the_end_and_on_a_partition_the_log_lacks() -> None:
    records = list(chained("aaa"))
    head = check(records).partitions[""].anchor()
    assert head is not None and head.position == 3
    mid = verify(MemoryLog(records), [Anchor("", 2, check(records[:2]).partitions[""].digest)])
    assert mid.ok and mid.anchors_checked == 1
    report = verify(
        MemoryLog(records[:2]),
        [head, Anchor("elsewhere", 1, head.digest)],
    )
    assert [pr.kind for pr in report.problems] == [ANCHOR, ANCHOR]
    details = " / ".join(pr.detail for pr in report.problems)
    assert "ends at position 2" in details and "does not have" in details


def test_an_anchored_event_deleted_mid_log_is_a_mismatch_not_an_early_end() -> None:
    records = list(chained("abab"))
    anchor = check(records[:3]).partitions[""].anchor()
    assert anchor is not None and anchor.position == 3
    report = verify(MemoryLog(records[:2] + records[3:]), [anchor])
    problems = [pr for pr in report.problems if pr.kind == ANCHOR]
    assert [pr.position for pr in problems] == [3]
    assert "not what the anchor recorded" in problems[0].detail
