"""`lf.subscribe` in remote mode, over a real gateway's Server-Sent Events: the same
items as the embedded log, resumed across dropped connections with no gap and no
duplicate."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.log import Checkpoint, CorruptRecord, Item
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend
from tests.conftest import free_port
from tests.integration.eventlog_contract import tag_event
from tests.integration.gateway_fixture import GatewayThread
from tests.waiting import wait_until


def log_history() -> str:
    """A few events of several kinds, logged through the remote SDK (the spool)."""
    lf.set_experiment("subscribed")
    with lf.start_run() as run:
        lf.log_param("lr", 0.1)
        for step in range(3):
            lf.log_metric("loss", 1 / (step + 1), step=step)
        lf.set_tag("team", "cv")
    lf.Client().get_run(run.info.run_id)  # a read ships the spool: the log has it all
    return run.info.run_id


def embedded(backend: Backend, types: list[str] | None = None) -> list[Item]:
    return list(backend.log.subscribe(None, types, follow=False))


def ids(items: list[Item]) -> list[str]:
    return [i.event.id if isinstance(i, Recorded) else i.id for i in items]


def the_backend(gw: GatewayThread) -> Backend:
    assert gw.backend is not None
    return gw.backend


class Collector:
    """Follows `lf.subscribe` on a thread, as an application would."""

    def __init__(self, **kwargs: object) -> None:
        self.items: list[Item] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._kwargs = kwargs
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Collector:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            for item in lf.subscribe(stop=self.stop, **self._kwargs):  # type: ignore[arg-type]
                self.items.append(item)
        except BaseException as e:
            self.error = e

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Item]:
        wait_until(lambda: len(self.items) >= n or self.error is not None, timeout,
                   what=f"{n} events (got {len(self.items)})")  # fmt: skip
        if self.error is not None:
            raise self.error
        return self.items

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the subscription did not stop"


@pytest.fixture
def collectors() -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(**kwargs: object) -> Collector:
        made.append(Collector(**kwargs).start())
        return made[-1]

    yield make
    for c in made:
        c.stop.set()
        c.thread.join(10)


def test_a_remote_subscription_replays_the_log_and_follows_it_as_the_embedded_one(
    remote,
    collectors,
):
    run_id = log_history()
    backend = the_backend(remote)
    history = embedded(backend)
    follower = collectors()
    got = follower.wait_for(len(history))
    assert got == history  # positions, partitions and the events themselves

    c = lf.Client()
    c.set_tag(run_id, "phase", "live")  # spooled, then shipped
    c.get_run(run_id)  # a read ships the spool first
    backend.tracking.finish_run(run_id, "KILLED", actor="t")
    everything = embedded(backend)
    assert follower.wait_for(len(everything)) == everything
    assert [i.event.type for i in everything[-2:]] == ["run.tags_set", "run.finished"]
    follower.finish()
    assert len(follower.items) == len(everything)


def test_a_process_sees_its_own_spooled_events_in_a_subscription_at_once(remote):
    lf.set_experiment("own")
    with lf.start_run():
        lf.log_metric("m", 1.0)  # spooled, not yet shipped
        got = list(lf.subscribe(types=["run.metrics_logged"], follow=False))
    assert [i.event.data.points[0][:2] for i in got] == [("m", 1.0)]


def test_the_types_filter_gives_what_the_embedded_log_gives(remote):
    log_history()
    backend = the_backend(remote)
    for types in (["run.*"], ["run.params_logged", "experiment.*"], ["run.tags_set"]):
        assert list(lf.subscribe(types=types, follow=False)) == embedded(backend, types)


def test_follow_false_stops_at_the_head_as_of_the_call(remote):
    run_id = log_history()
    backend = the_backend(remote)
    history = embedded(backend)
    items = lf.subscribe(follow=False)
    first = next(items)  # the call: the head is taken now
    backend.log.append([tag_event(run_id, 0)])
    assert [first, *items] == history
    assert list(lf.subscribe(after="latest", follow=False)) == []


def test_follow_false_ends_even_when_the_last_events_are_filtered_out(remote):
    log_history()
    backend = the_backend(remote)
    backend.log.append([tag_event("other", n) for n in range(50)])  # none of them matches
    done = threading.Event()
    got: list[Item] = []

    def read() -> None:
        got.extend(lf.subscribe(types=["experiment.*"], follow=False))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(20), "follow=False did not stop at the head"
    assert got == embedded(backend, ["experiment.*"]) and len(got) == 1


def test_after_takes_a_checkpoint_its_token_or_latest(remote, collectors):
    log_history()
    backend = the_backend(remote)
    history = embedded(backend)
    middle = Checkpoint.of(history[:4])
    assert list(lf.subscribe(after=middle, follow=False)) == history[4:]
    assert list(lf.subscribe(after=middle.encode(), follow=False)) == history[4:]
    assert list(lf.subscribe(after=history[-1].position, follow=False)) == []

    follower = collectors(after="latest")
    wait_until(lambda: remote.hub.subscribers == 1, what="the subscriber to go live")
    backend.log.append([tag_event("x", 1)])
    [new] = follower.wait_for(1)
    assert new == embedded(backend)[-1]


def test_bad_arguments_are_refused_naming_them(remote):
    log_history()
    with pytest.raises(InvalidInput, match="matches no event type") as bad_types:
        next(lf.subscribe(types=["rn.*"]))
    assert bad_types.value.field == "types"
    with pytest.raises(InvalidInput, match="bad checkpoint") as bad_token:
        next(lf.subscribe(after="a=b=c,"))
    assert bad_token.value.field == "after"
    with pytest.raises(InvalidInput, match="past the end of this event log") as beyond:
        next(lf.subscribe(after="999"))
    assert beyond.value.field == "after"


def test_a_subscription_resumes_across_a_gateway_restart_with_no_gap_or_duplicate(
    remote,
    collectors,
):
    run_id = log_history()
    follower = collectors()
    follower.wait_for(len(embedded(the_backend(remote))))

    remote.stop()  # every connection drops; the subscriber retries with its token
    c = lf.Client()
    c.set_tag(run_id, "while", "down")  # spooled until the gateway is back
    remote.start()
    backend = the_backend(remote)
    backend.log.append([tag_event(run_id, n) for n in range(5)])
    c.get_run(run_id)  # ships the spool
    everything = embedded(backend)
    assert ids(follower.wait_for(len(everything))) == ids(everything)
    time.sleep(0.5)  # nothing more may come: a duplicate would show up here
    assert follower.items == everything


@pytest.fixture
def impatient_gateway(data_dir: Path, spool_dir: Path) -> Iterator[GatewayThread]:
    """A gateway whose hub ends any subscriber more than 5 events behind."""
    gw = GatewayThread(load_settings(tracking_uri=str(data_dir)), queue_size=5).start()
    lf.set_tracking_uri(gw.url)
    yield gw
    session.reset()
    gw.stop()


def test_a_subscriber_the_gateway_ends_for_being_slow_resumes_where_it_was_told(
    impatient_gateway: GatewayThread, collectors, caplog: pytest.LogCaptureFixture
):
    gw = impatient_gateway
    backend = the_backend(gw)
    backend.log.append([tag_event("a", 0)])
    follower = collectors(after="latest")
    wait_until(lambda: gw.hub is not None and gw.hub.subscribers == 1, what="going live")
    with caplog.at_level(logging.INFO, logger="ledgerflow"):
        backend.log.append([tag_event("a", n) for n in range(1, 301)])  # one burst
        got = follower.wait_for(300)
    assert "fell more than 5 events behind" in caplog.text  # it was ended, and resumed
    assert got == embedded(backend)[1:]


def test_setting_stop_ends_a_quiet_subscription_promptly(remote):
    stop = threading.Event()
    done = threading.Event()

    def follow() -> None:
        for _ in lf.subscribe(after="latest", stop=stop):
            pass
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    wait_until(lambda: remote.hub.subscribers == 1, what="the subscriber to go live")
    stop.set()
    assert done.wait(5), "stop was not honoured"
    wait_until(lambda: remote.hub.subscribers == 0, what="the gateway to end the subscription")


def test_an_undecodable_stored_event_comes_through_as_a_corrupt_record(remote):
    backend = the_backend(remote)
    backend.log.append([tag_event("a", 0)])
    with sqlite3.connect(Path(remote.settings.data_dir) / "events.db") as conn:
        conn.execute(
            "INSERT INTO events (id, type, stream, time, v, actor, data) "
            "VALUES ('bad-1', 'run.tags_set', 'run:a', 0, 1, 'x', '{not json')"
        )
    remote_log = session.backend().log
    items = list(remote_log.subscribe(follow=False))
    assert items == embedded(backend)
    assert isinstance(items[1], CorruptRecord) and items[1].position == 2
    assert items[1].id == "bad-1" and items[1].data == "{not json"
    assert [i.position for i in lf.subscribe(follow=False)] == [1]  # skipped, with a warning


def test_subscribing_to_an_unreachable_gateway_is_unavailable_naming_the_url(spool_dir):
    url = f"http://127.0.0.1:{free_port()}"
    lf.set_tracking_uri(url)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=f"cannot reach the Ledgerflow gateway at {url}"):
            next(lf.subscribe())
        assert time.monotonic() - started < 10
    finally:
        session.reset()
