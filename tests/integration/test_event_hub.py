"""The event hub on the SQLite log: one follower, many subscribers, no gaps."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.log import Item
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.gateway.hub import Delivery, Feed, Hub, SubscriberTooSlow
from tests.integration.event_hub_helpers import positions, tags, take
from tests.integration.eventlog_contract import tag_event


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SQLiteEventLog]:
    log = SQLiteEventLog(tmp_path / "events.db")
    yield log
    log.close()


@pytest.fixture
def hub(log: SQLiteEventLog) -> Iterator[Hub]:
    hub = Hub(log).start()
    yield hub
    hub.close()


def test_a_subscriber_replays_history_then_goes_live_without_a_gap_or_duplicate(
    log: SQLiteEventLog, hub: Hub
):
    log.append(tags("a", 0, 700))  # more than one replay batch
    sub = hub.subscribe()

    def write_while_it_reads() -> None:
        for start in range(700, 1000, 10):
            log.append(tags("a", start, 10))
            time.sleep(0.001)

    writer = threading.Thread(target=write_while_it_reads)
    writer.start()
    got = take(sub, 1000)
    writer.join()

    assert positions(got) == list(range(1, 1001))
    assert got[-1].token == "1000"
    assert hub.subscribers == 1  # it ended up on the live feed, not re-reading the log
    log.append(tags("a", 1000, 1))
    assert positions(take(sub, 1)) == [1001]
    sub.close()


class AppendsWhileAttaching(Hub):
    """Appends an event, and lets the follower fan it out, just before (or just after)
    a subscriber's feed is attached: the worst moments for the hand-over from replay
    to live. Before, the event is only on the log; after, on the log and in the feed."""

    def __init__(self, log: SQLiteEventLog, *, before: bool) -> None:
        super().__init__(log)
        self.before = before
        self.dispatched = threading.Condition()
        self.last = 0

    def _dispatch(self, item: Item) -> None:
        super()._dispatch(item)
        with self.dispatched:
            self.last = item.position
            self.dispatched.notify_all()

    def _attach(self, size: int, internal: bool = False) -> Feed:
        if self.before:
            self._append_one()
        feed = super()._attach(size, internal)
        if not self.before:
            self._append_one()
        return feed

    def _append_one(self) -> None:
        [stored] = self.log.append(tags("b", self.last, 1))
        with self.dispatched:  # generous: a loaded CI machine once took over 10 s here
            assert self.dispatched.wait_for(lambda: self.last >= stored.position, 30)


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_an_event_fanned_out_as_a_subscriber_attaches_comes_exactly_once(
    log: SQLiteEventLog, before: bool
):
    log.append(tags("a", 0, 3))
    hub = AppendsWhileAttaching(log, before=before).start()
    try:
        sub = hub.subscribe()
        assert positions(take(sub, 4)) == [1, 2, 3, 4]
        assert sub.next(0.3) is None  # not 4 again
        log.append(tags("a", 3, 1))
        assert positions(take(sub, 1)) == [5]
    finally:
        hub.close()


def test_many_subscribers_share_one_log_follower_and_see_the_same_events(
    log: SQLiteEventLog, hub: Hub
):
    subs = [hub.subscribe("latest") for _ in range(5)]
    for sub in subs:
        assert sub.next(0.05) is None  # attached to the live feed
    log.append(tags("a", 0, 30))
    seen = [positions(take(sub, 30)) for sub in subs]
    assert all(s == list(range(1, 31)) for s in seen)
    followers = [t for t in threading.enumerate() if t.name == "event-hub-follower"]
    assert len(followers) == 1


def test_a_subscriber_that_falls_behind_is_disconnected_with_a_token_to_resume_from(
    log: SQLiteEventLog,
):
    hub = Hub(log, queue_size=5).start()
    try:
        slow, fast = hub.subscribe("latest"), hub.subscribe("latest", queue_size=100)
        assert slow.next(0.05) is None and fast.next(0.05) is None
        log.append(tags("a", 0, 20))
        assert positions(take(fast, 20)) == list(range(1, 21))  # others are not held up

        kept = take(slow, 5)  # what its inbox held is still delivered
        with pytest.raises(SubscriberTooSlow, match="fell more than 5 events behind") as err:
            slow.next(1.0)
        assert slow.closed
        assert err.value.token == kept[-1].token == "5"

        resumed = hub.subscribe(after=err.value.token)
        assert positions(take(resumed, 15)) == list(range(6, 21))
    finally:
        hub.close()


def test_types_filter_and_latest_select_what_a_subscriber_gets(log: SQLiteEventLog, hub: Hub):
    log.append(tags("a", 0, 3))
    only_params = hub.subscribe(types=["run.params_*"])
    only_new = hub.subscribe("latest", types=["run.*"])
    log.append([Event.of(p.RunParamsLogged(run_id="a", params={"lr": "0.1"}), actor="t")])
    log.append(tags("a", 3, 1))

    got = take(only_params, 1)
    assert [d.type for d in got] == ["run.params_logged"]
    assert got[0].token == "4"
    assert [d.type for d in take(only_new, 2)] == ["run.params_logged", "run.tags_set"]
    # Skipped types still move the checkpoint, so a resume does not re-scan them.
    assert only_params.next(0.3) is None
    assert only_params.checkpoint.encode() == "5"


def test_a_token_past_the_head_or_a_type_that_matches_nothing_is_refused(
    log: SQLiteEventLog, hub: Hub
):
    log.append(tags("a", 0, 2))
    with pytest.raises(InvalidInput, match="past the end of this event log"):
        hub.subscribe(after="7")
    with pytest.raises(InvalidInput, match="bad checkpoint"):
        hub.subscribe(after="x=y")
    with pytest.raises(InvalidInput, match="'rn.\\*' matches no event type"):
        hub.subscribe(types=["rn.*"])


def test_close_wakes_a_waiting_subscriber_and_the_closed_hub_takes_no_more(
    log: SQLiteEventLog,
):
    hub = Hub(log).start()
    sub = hub.subscribe("latest")
    returned = threading.Event()

    def wait_long() -> None:
        sub.next(60.0)
        returned.set()

    waiter = threading.Thread(target=wait_long)
    waiter.start()
    time.sleep(0.2)
    sub.close()
    assert returned.wait(5.0), "close() did not wake the waiting next()"
    waiter.join()

    other = hub.subscribe("latest")
    assert other.next(0.05) is None
    hub.close()
    assert other.next(0.05) is None and other.closed
    with pytest.raises(Unavailable, match="closed"):
        hub.subscribe()


def test_on_kafka_each_stream_keeps_its_order_across_partitions_and_resumes_exactly(
    kafka_bootstrap: str,
):
    from ledgerflow.events.kafka_log import KafkaEventLog

    prefix = f"test-hub-{uuid.uuid4().hex[:12]}"
    log = KafkaEventLog(kafka_bootstrap, topic_prefix=prefix, partitions=3, idempotent=False)
    hub = Hub(log).start()
    try:
        runs = [f"r{i}" for i in range(6)]  # spread over the partitions
        log.append([tag_event(r, n) for n in range(5) for r in runs])
        sub = hub.subscribe()
        first = take(sub, 30)
        assert sub.next(0.5) is None and hub.subscribers == 1  # on the live feed
        log.append([tag_event(r, n) for n in range(5, 10) for r in runs])  # now live
        second = take(sub, 30)

        def tag_order(got: list[Delivery]) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for d in got:
                assert isinstance(d.item, Recorded)
                out.setdefault(d.item.event.stream, []).append(d.item.event.data.tags["n"])
            return out

        assert tag_order(first + second) == {f"run:{r}": [str(n) for n in range(10)] for r in runs}
        assert len({d.item.event.id for d in first + second}) == 60  # type: ignore[union-attr]
        assert "/" in first[-1].token  # per-partition offsets

        resumed = hub.subscribe(after=first[-1].token)
        rest = take(resumed, 30)
        assert sorted(d.item.event.id for d in rest) == sorted(  # type: ignore[union-attr]
            d.item.event.id
            for d in second  # type: ignore[union-attr]
        )
        assert resumed.next(0.5) is None
    finally:
        hub.close()
        log.close()
