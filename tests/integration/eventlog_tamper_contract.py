"""The tamper-evidence half of the EventLog contract (docs/security.md).

Every adapter's log verifies clean, and `verify` names an edited, a deleted and a
swapped event. The tampering goes around the adapter, as someone with write access to
the SQLite file or the Kafka broker would: each adapter's test class implements
`rewrite`, which puts exactly the given stored records (documents, prev and hash as
they are) into a log and returns a handle on it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledgerflow.events import payloads as p
from ledgerflow.events.chain import StoredEvent, chain_hash
from ledgerflow.events.envelope import Event
from ledgerflow.events.log import EventLog
from ledgerflow.events.verify import (
    ALTERED,
    ANCHOR,
    DROPPED,
    REORDERED,
    UNHASHED,
    Anchor,
    Report,
    verify,
)


def split_document(document: bytes) -> tuple[dict[str, Any], str]:
    """A stored document's envelope fields, and its data exactly as stored."""
    cut = document.find(b',"data":')
    head: dict[str, Any] = json.loads(document[:cut] + b"}")
    return head, document[cut + len(b',"data":') : -1].decode()


def tag(run: str, n: int) -> Event:
    return Event.of(p.RunTagsSet(run_id=run, tags={"n": str(n)}), actor="test")


class TamperEvidenceContract:
    def make_log(self, tmp_path: Path) -> EventLog:
        raise NotImplementedError

    def reopen(self, tmp_path: Path) -> EventLog:
        raise NotImplementedError

    def rewrite(self, log: EventLog, tmp_path: Path, records: list[StoredEvent]) -> EventLog:
        """A handle on a log that holds exactly `records`, in this order, written around
        the adapter (closing it is the caller's)."""
        raise NotImplementedError

    # helpers ---------------------------------------------------------------------------
    def two_streams(self, log: EventLog) -> tuple[list[StoredEvent], list[StoredEvent]]:
        """Six events on run:a interleaved with three on run:b; all records, and run:a's."""
        events, counts = [], {"a": 0, "b": 0}
        for i in range(9):
            run = "b" if i % 3 == 0 else "a"
            events.append(tag(run, counts[run]))
            counts[run] += 1
        log.append(events)
        records = list(log.stored().events)
        return records, [r for r in records if r.stream == "run:a"]

    def tampered(
        self,
        log: EventLog,
        tmp_path: Path,
        change: Callable[[list[StoredEvent]], list[StoredEvent]],
        anchors: list[Anchor] | None = None,
    ) -> tuple[Report, dict[str, tuple[str, int]]]:
        """Verify a rewritten copy; also where (partition, position) each event now is."""
        copy = self.rewrite(log, tmp_path, change(list(log.stored().events)))
        try:
            where = {r.id: (r.partition, r.position) for r in copy.stored().events}
            return verify(copy, anchors or []), where
        finally:
            copy.close()

    # the contract ----------------------------------------------------------------------
    def test_a_clean_log_verifies_and_gives_one_anchor_per_partition(self, log: EventLog):
        records, _ = self.two_streams(log)
        report = verify(log)
        assert report.ok, [pr.describe() for pr in report.problems]
        assert report.checked == 9 and report.streams == 2
        assert {r.partition for r in records} == set(report.partitions)
        anchors = [a for part in report.partitions.values() if (a := part.anchor())]
        again = verify(log, anchors)
        assert again.ok and again.anchors_checked == len(anchors)

    def test_a_faithful_copy_verifies_with_the_same_digests(self, log: EventLog, tmp_path: Path):
        self.two_streams(log)
        digests = sorted(part.digest for part in verify(log).partitions.values())
        report, _ = self.tampered(log, tmp_path, lambda records: records)
        assert report.ok, [pr.describe() for pr in report.problems]
        assert sorted(part.digest for part in report.partitions.values()) == digests

    def test_an_edited_event_is_named_as_altered(self, log: EventLog, tmp_path: Path):
        _, a = self.two_streams(log)
        victim = a[2]
        edited = victim._replace(document=victim.document.replace(b'"n":"2"', b'"n":"X"'))
        assert edited.document != victim.document
        report, where = self.tampered(
            log, tmp_path, lambda rs: [edited if r.id == victim.id else r for r in rs]
        )
        assert report.problem_count == 1
        first = report.problems[0]
        assert (first.kind, first.id, first.stream) == (ALTERED, victim.id, "run:a")
        assert first.position == where[victim.id][1]

    def test_a_deleted_event_is_named_as_dropped_by_the_next_of_its_stream(
        self, log: EventLog, tmp_path: Path
    ):
        _, a = self.two_streams(log)
        report, where = self.tampered(log, tmp_path, lambda rs: [r for r in rs if r.id != a[2].id])
        assert report.problem_count == 1
        first = report.problems[0]
        assert (first.kind, first.id, first.position) == (DROPPED, a[3].id, where[a[3].id][1])
        assert "dropped" in first.describe()

    def test_two_swapped_events_are_named_as_reordered(self, log: EventLog, tmp_path: Path):
        _, a = self.two_streams(log)

        def swap(records: list[StoredEvent]) -> list[StoredEvent]:
            i, j = records.index(a[2]), records.index(a[3])
            records[i], records[j] = records[j], records[i]
            return records

        report, where = self.tampered(log, tmp_path, swap)
        assert report.problem_count == 1, [pr.describe() for pr in report.problems]
        first = report.problems[0]
        assert (first.kind, first.id, first.position) == (REORDERED, a[3].id, where[a[3].id][1])
        assert f"event {a[2].id} at position {where[a[2].id][1]}" in first.detail

    def test_an_edit_with_its_hash_recomputed_breaks_the_link_after_it(
        self, log: EventLog, tmp_path: Path
    ):
        _, a = self.two_streams(log)
        doc = a[2].document.replace(b'"n":"2"', b'"n":"X"')
        forged = a[2]._replace(document=doc, hash=chain_hash(a[2].prev or "", doc))
        report, _ = self.tampered(
            log, tmp_path, lambda rs: [forged if r.id == forged.id else r for r in rs]
        )
        assert report.problem_count == 1
        first = report.problems[0]
        assert (first.kind, first.id) == (DROPPED, a[3].id)
        assert "re-written" in first.detail

    def test_a_chain_recomputed_from_an_edit_on_is_caught_only_by_an_anchor(
        self, log: EventLog, tmp_path: Path
    ):
        _, a = self.two_streams(log)
        before = verify(log).partitions[a[0].partition].anchor()
        assert before is not None
        forged: dict[str, StoredEvent] = {}
        prev = a[1].hash or ""
        for i, r in enumerate(a[2:]):
            doc = r.document.replace(b'"n":"2"', b'"n":"X"') if i == 0 else r.document
            forged[r.id] = r._replace(document=doc, prev=prev, hash=chain_hash(prev, doc))
            prev = forged[r.id].hash or ""

        def rechain(records: list[StoredEvent]) -> list[StoredEvent]:
            return [forged.get(r.id, r) for r in records]

        report, where = self.tampered(log, tmp_path, rechain)
        assert report.ok  # every hash was re-computed: the chain alone cannot tell
        anchor = Anchor(where[a[0].id][0], before.position, before.digest)  # the copy's name
        report, _ = self.tampered(log, tmp_path, rechain, [anchor])
        assert [(pr.kind, pr.position) for pr in report.problems] == [(ANCHOR, before.position)]

    def test_events_from_before_the_chain_are_counted_and_the_chain_starts_after_them(
        self, log: EventLog, tmp_path: Path
    ):
        log.append([tag("old", i) for i in range(3)])
        legacy = [r._replace(prev=None, hash=None) for r in log.stored().events]
        copy = self.rewrite(log, tmp_path, legacy)
        try:
            copy.append([tag("old", 3), tag("old", 4), tag("new", 0)])
            report = verify(copy)
            assert report.ok, [pr.describe() for pr in report.problems]
            assert sum(part.legacy for part in report.partitions.values()) == 3
            fourth = [r for r in copy.stored().events if r.stream == "run:old"][3]
            assert report.partitions[fourth.partition].first_chained == fourth.position
        finally:
            copy.close()

    def test_an_event_stripped_of_its_hash_after_the_chain_began_is_named(
        self, log: EventLog, tmp_path: Path
    ):
        _, a = self.two_streams(log)
        report, _ = self.tampered(
            log,
            tmp_path,
            lambda rs: [r._replace(prev=None, hash=None) if r.id == a[3].id else r for r in rs],
        )
        first = report.problems[0]
        assert (first.kind, first.id) == (UNHASHED, a[3].id)

    def test_two_handles_appending_to_one_stream_at_once_keep_a_verifiable_chain(
        self, log: EventLog, tmp_path: Path
    ):
        other = self.reopen(tmp_path)
        try:

            def append_25(handle: EventLog, k: int) -> None:
                for i in range(25):
                    handle.append([tag("shared", k * 100 + i)])

            threads = [
                threading.Thread(target=append_25, args=(handle, k))
                for k, handle in enumerate((log, other))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            report = verify(log)
            assert report.ok, [pr.describe() for pr in report.problems]
            assert report.checked == 50
        finally:
            other.close()
