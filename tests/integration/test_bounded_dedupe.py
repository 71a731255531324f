"""Bounded dedupe: what the projectors and the Kafka log's id index remember of event ids
is the last `dedupe_window` positions of a partition, not the whole log.

A copy of an event within the window of its first is skipped; a copy farther away is an
event again. Which it is depends on the two positions alone, so the views a projector
builds batch by batch equal a replay's, and the applied-id set stays small.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.kafka_log import TIPS_SWEEP_MIN, KafkaEventLog
from ledgerflow.events.log import Checkpoint, Item
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.events.verify import verify
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.tables import APPLIED_EVENTS
from tests.integration.eventlog_contract import tag_event
from tests.integration.views_dump import dump_views

WINDOW = 3


class CopyingLog(SQLiteEventLog):
    """A log holding, right after the event at (real) position `at`, a second copy of the
    event at position `of`, as two racing appends or a late retry leave them on Kafka.
    Positions are doubled to make room: the copy after `at` sits at 2*at + 1."""

    def __init__(self, path: Path, copies: dict[int, int]) -> None:
        super().__init__(path)
        self.copies = copies

    def read(
        self,
        after: Checkpoint | int | None = None,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        *,
        until: Checkpoint | None = None,
    ) -> Iterator[Item]:
        last = Checkpoint.coerce(after).get("")
        real = None if last is None else Checkpoint({"": last // 2})
        for item in super().read(real, limit, types, until=until):
            assert isinstance(item, Recorded)
            if last is None or 2 * item.position > last:
                yield Recorded(2 * item.position, item.event, "")
            of = self.copies.get(item.position)
            if of is not None and (last is None or 2 * item.position + 1 > last):
                [original] = super().read(Checkpoint({"": of - 1}), 1)
                assert isinstance(original, Recorded)
                yield Recorded(2 * item.position + 1, original.event, "")


def _history(run_id: str, steps: int) -> list[Event]:
    started = p.RunStarted(
        run_id=run_id, experiment_id="1", run_name=run_id, start_time=0, user_id="u",
        artifact_uri="x", tags={},
    )  # fmt: skip
    events = [
        Event.of(p.ExperimentCreated(experiment_id="1", name="dedupe", artifact_location="x")),
        Event.of(started),
    ]
    for s in range(steps):
        events.append(Event.of(p.RunMetricsLogged(run_id=run_id, points=(("m", s, 1000, s),))))
    return events


def _fold(
    tmp_path: Path, copies: dict[int, int], *, batch: int
) -> tuple[Projector, SQLiteEventLog]:
    log = CopyingLog(tmp_path / f"events-{uuid.uuid4().hex[:6]}.db", copies)
    engine = make_engine(f"sqlite:///{tmp_path / uuid.uuid4().hex[:6]}.db", writer=True)
    projector = Projector(log, engine, batch=batch, dedupe_window=WINDOW)
    return projector, log


@pytest.mark.parametrize("batch", [1, 4, 500])
def test_a_copy_within_the_window_is_skipped_and_one_beyond_it_applied_as_a_replay_would(
    tmp_path: Path, batch: int
) -> None:
    # positions: 1 experiment, 2 run, 3.. metrics at steps 0..; the step-0 point (3) is
    # copied right after itself (distance 1), the step-1 point (4) after position 9
    # (distance 2*9+1 - 2*4 = 11 > WINDOW)
    projector, log = _fold(tmp_path, {3: 3, 9: 4}, batch=batch)
    try:
        log.append(_history("r1", 12))
        projector.catch_up()
        with projector.engine.connect() as conn:
            live = dump_views(projector.engine)
            kept = conn.execute(select(func.count()).select_from(APPLIED_EVENTS)).scalar_one()
        steps = [row for row in live["metric_points"] if row[1] == "m"]
        assert len(steps) == 13  # 12 points, and step 1 once more: its copy is beyond the window
        assert kept <= 2 * WINDOW + 2  # the ids of the window, not of the log
        projector.rebuild()  # a replay, in one batch
        assert dump_views(projector.engine) == live
    finally:
        projector.engine.dispose()
        log.close()


def test_ids_recorded_before_positions_were_kept_still_count_as_applied(tmp_path: Path) -> None:
    projector, log = _fold(tmp_path, {}, batch=500)
    try:
        [first] = log.append([tag_event("r1", 1)])
        with projector.engine.begin() as conn:  # as an upgraded database holds it
            conn.execute(APPLIED_EVENTS.insert().values(event_id=first.event.id, position=None))
        projector.catch_up()
        with projector.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(APPLIED_EVENTS)).scalar_one() == 1
    finally:
        projector.engine.dispose()
        log.close()


@pytest.fixture
def prefix() -> str:
    return f"dedupe-{uuid.uuid4().hex[:10]}"


def _kafka(bootstrap: str, prefix: str) -> KafkaEventLog:
    return KafkaEventLog(
        bootstrap, topic_prefix=prefix, partitions=1, idempotent=False, dedupe_window=WINDOW
    )


def test_a_kafka_handle_opens_on_the_window_and_still_chains_onto_older_streams(
    kafka_bootstrap: str, prefix: str
) -> None:
    log = _kafka(kafka_bootstrap, prefix)
    try:
        old = tag_event("quiet", 1)
        log.append([old])
        recent = [tag_event("busy", n) for n in range(10)]
        log.append(recent)
    finally:
        log.close()
    again = _kafka(kafka_bootstrap, prefix)
    try:
        [same] = again.append([recent[-1]])  # within the window: known, not written twice
        assert same.position == 10
        [copy] = again.append([old])  # beyond it: this handle cannot tell, a new record
        assert copy.position == 11
        again.append([tag_event("quiet", 2)])  # a stream last written before the window
        report = verify(again)
        assert report.ok, report.problems
        assert report.checked == 13
    finally:
        again.close()


def test_the_kafka_log_batches_appends_only_where_the_broker_reports_batches_right(
    kafka_bootstrap: str, prefix: str
) -> None:
    log = _kafka(kafka_bootstrap, prefix)
    try:
        assert log.batches is False  # Tansu: a batch's end comes back as its base + 1
        placed = log.append([tag_event("one", n) for n in range(5)])  # one request each
        assert [r.position for r in placed] == [0, 1, 2, 3, 4]
        assert [r.position for r in log.read()] == [0, 1, 2, 3, 4]
    finally:
        log.close()


def test_a_kafka_handle_forgets_the_hashes_of_streams_that_left_the_window(
    kafka_bootstrap: str, prefix: str
) -> None:
    """Every run is a stream of its own, so a long-lived handle must not keep the last
    hash of every stream it ever saw (bench/soak.py's server grew by one a run): those of
    streams behind the window go, and appending to one again still chains onto it."""
    log = _kafka(kafka_bootstrap, prefix)
    try:
        log.append([tag_event("first", 1)])
        n = TIPS_SWEEP_MIN + 100
        for start in range(0, n, 200):
            log.append([tag_event(f"run-{i}", 0) for i in range(start, min(n, start + 200))])
        assert len(log._tips) < TIPS_SWEEP_MIN  # swept once they reached it, not kept
        log.append([tag_event("first", 2)])  # looked up behind the window
        report = verify(log)
        assert report.ok, report.problems
        assert report.checked == n + 2
    finally:
        log.close()
