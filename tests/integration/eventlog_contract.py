"""The contract every EventLog adapter passes. Subclass and implement `make_log` (and
`rewrite`, for the tamper-evidence tests it inherits from eventlog_tamper_contract.py).

Later adapters (Kafka) subclass this same class; nothing here knows SQLite.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.log import Checkpoint, EventLog
from ledgerflow.events.verify import verify
from tests.integration.eventlog_tamper_contract import TamperEvidenceContract


def tag_event(run: str, n: int, *, time_ms: int | None = None) -> Event:
    ev = Event.of(p.RunTagsSet(run_id=run, tags={"n": str(n)}), actor="test")
    return ev if time_ms is None else dataclasses.replace(ev, time=time_ms)


class EventLogContract(TamperEvidenceContract):
    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[EventLog]:
        log = self.make_log(tmp_path)
        yield log
        log.close()

    def make_log(self, tmp_path: Path) -> EventLog:
        raise NotImplementedError

    def reopen(self, tmp_path: Path) -> EventLog:
        """A second, independent handle on the same log."""
        return self.make_log(tmp_path)

    def test_an_empty_log_has_no_head_and_reads_nothing(self, log: EventLog):
        assert not log.head()
        assert list(log.read()) == []

    def test_appended_events_read_back_in_order_and_equal(self, log: EventLog):
        events = [tag_event("a", i) for i in range(5)]
        recorded = log.append(events)
        assert [r.event for r in recorded] == events
        positions = [r.position for r in recorded]
        assert positions == sorted(positions)  # one stream: one partition, in order
        got = list(log.read())
        assert [r.event for r in got] == events  # type: ignore[union-attr]
        assert [(r.partition, r.position) for r in got] == [
            (r.partition, r.position) for r in recorded
        ]
        assert log.head() == Checkpoint.of(recorded)

    def test_reading_after_a_checkpoint_skips_everything_it_covers(self, log: EventLog):
        recorded = log.append([tag_event(f"s{i % 3}", i) for i in range(12)])
        seen = Checkpoint.of(recorded[:5])
        got = list(log.read(after=seen))
        assert {r.event.id for r in got} == {  # type: ignore[union-attr]
            r.event.id for r in recorded if not seen.includes(r)
        }
        assert Checkpoint.parse(seen.encode()) == seen  # the token round-trips

    def test_read_honours_the_limit_and_pages_through_everything(self, log: EventLog):
        recorded = log.append([tag_event(f"s{i % 4}", i) for i in range(10)])
        assert len(list(log.read(limit=3))) == 3
        after, ids = Checkpoint(), []
        while page := list(log.read(after, limit=3)):
            ids += [r.event.id for r in page]  # type: ignore[union-attr]
            after = after.advance_all(page)
        assert sorted(ids) == sorted(r.event.id for r in recorded)
        assert after == log.head()

    def test_reading_until_a_checkpoint_stops_exactly_there(self, log: EventLog):
        recorded = log.append([tag_event(f"s{i % 3}", i) for i in range(12)])
        until = Checkpoint.of(recorded[:7])
        after, got = Checkpoint(), []
        while page := list(log.read(after, limit=2, until=until)):
            got += page
            after = after.advance_all(page)
        assert sorted(r.event.id for r in got) == sorted(  # type: ignore[union-attr]
            r.event.id for r in recorded if until.includes(r)
        )
        assert after == until
        assert list(log.read(until=Checkpoint())) == []  # names no partition: nothing

    def test_checkpoint_at_a_time_ends_before_the_first_event_stamped_later(self, log: EventLog):
        times = [1_000, 2_000, 1_500, 3_000, 2_500, 4_000]  # one stream: one partition
        recorded = log.append([tag_event("a", i, time_ms=t) for i, t in enumerate(times)])
        for at, count in [(999, 0), (1_000, 1), (1_999, 1), (2_000, 3), (2_700, 3), (3_000, 5),
                          (9_999, 6)]:  # fmt: skip
            assert log.checkpoint_at(at) == Checkpoint.of(recorded[:count]), at

    def test_checkpoint_at_a_time_cuts_every_partition_by_its_own_events(self, log: EventLog):
        early = log.append([tag_event(f"s{i}", i, time_ms=1_000 + i) for i in range(6)])
        log.append([tag_event(f"s{i}", i, time_ms=5_000 + i) for i in range(6)])
        assert log.checkpoint_at(2_000) == Checkpoint.of(early)
        assert log.checkpoint_at(99_999) == log.head()
        assert not log.checkpoint_at(0)

    def test_reappending_a_known_id_is_a_no_op_returning_its_position(self, log: EventLog):
        ev = tag_event("a", 1)
        first = log.append([ev])
        again = log.append([ev, tag_event("a", 2)])
        assert (again[0].partition, again[0].position) == (first[0].partition, first[0].position)
        assert len(list(log.read())) == 2

    def test_concurrent_appenders_each_get_their_own_events_stored_once(self, log: EventLog):
        """Threads appending at once share writes (group commit): each still gets its own
        events' positions, each event is stored once, and every stream's chain holds."""
        batches = [[tag_event(f"s{t % 3}", t * 10 + i) for i in range(3)] for t in range(12)]
        got: dict[int, list[Recorded]] = {}
        start = threading.Barrier(len(batches))

        def append(t: int) -> None:
            start.wait()
            got[t] = log.append(batches[t])

        threads = [threading.Thread(target=append, args=(t,)) for t in range(len(batches))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stored = {(r.partition, r.position): r.event for r in log.read(limit=1000)}  # type: ignore[union-attr]
        assert len(stored) == sum(len(b) for b in batches)
        for t, batch in enumerate(batches):
            assert [stored[(r.partition, r.position)] for r in got[t]] == batch
        assert verify(log, []).ok

    def test_order_within_a_stream_is_append_order(self, log: EventLog):
        for i in range(20):
            log.append([tag_event("a" if i % 2 else "b", i)])
        a = [r.event.data.tags["n"] for r in log.read() if r.event.stream == "run:a"]  # type: ignore[union-attr]
        assert a == [str(i) for i in range(1, 20, 2)]

    def test_a_type_filter_selects_by_glob(self, log: EventLog):
        log.append([tag_event("a", 1), Event.of(p.RunDeleted(run_id="a"))])
        got = list(log.read(types=["run.del*"]))
        assert [r.event.type for r in got] == ["run.deleted"]  # type: ignore[union-attr]

    def test_appends_are_durable_and_visible_to_a_new_handle(self, log: EventLog, tmp_path: Path):
        events = [tag_event("a", i) for i in range(3)]
        log.append(events)
        other = self.reopen(tmp_path)
        try:
            assert [r.event for r in other.read()] == events  # type: ignore[union-attr]
        finally:
            other.close()

    def test_subscribe_replays_then_stops_at_the_head_without_follow(self, log: EventLog):
        log.append([tag_event("a", i) for i in range(3)])
        assert len(list(log.subscribe(follow=False))) == 3

    def test_subscribe_from_latest_sees_only_new_events(self, log: EventLog):
        log.append([tag_event("a", 0)])
        stop = threading.Event()
        it = log.subscribe("latest", stop=stop)
        got: list[Recorded] = []

        def consume() -> None:
            for item in it:
                got.append(item)  # type: ignore[arg-type]
                stop.set()

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.3)
        log.append([tag_event("a", 1)])
        t.join(10)
        assert [r.event.data.tags["n"] for r in got] == ["1"]  # type: ignore[attr-defined]

    def test_a_follower_wakes_on_append_instead_of_waiting_for_its_timer(self, log: EventLog):
        stop = threading.Event()
        arrived: list[float] = []

        def follow() -> None:
            for _ in log.subscribe("latest", stop=stop, idle_wait=30.0):
                arrived.append(time.monotonic())
                stop.set()

        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.3)
        sent = time.monotonic()
        log.append([tag_event("a", 1)])
        t.join(10)
        assert arrived, "the follower never saw the event"
        assert arrived[0] - sent < 5.0  # far below the 30 s fallback timer

    def test_subscribe_filters_types_but_keeps_its_place(self, log: EventLog):
        log.append([tag_event("a", 0), Event.of(p.RunDeleted(run_id="a")), tag_event("a", 1)])
        got = list(log.subscribe(types=["run.tags_set"], follow=False))
        assert [r.event.data.tags["n"] for r in got] == ["0", "1"]  # type: ignore[union-attr]
