"""The projector service on Kafka: a consumer group writing PostgreSQL views."""

from __future__ import annotations

import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.events.log import Checkpoint
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.metrics import exposition
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.service import ProjectorService
from tests.integration.views_dump import dump_views
from tests.metrics_text import sample
from tests.waiting import wait_until


@pytest.fixture
def log(kafka_bootstrap: str) -> Iterator[KafkaEventLog]:
    log = KafkaEventLog(
        kafka_bootstrap, topic_prefix=f"svc-{uuid.uuid4().hex[:10]}", partitions=3,
        idempotent=False,
    )  # fmt: skip
    yield log
    log.close()


def history(runs: int, steps: int, *, prefix: str = "run", experiment: bool = True) -> list[Event]:
    """An experiment, runs with params, tags and metrics, finished: many streams."""
    events = []
    if experiment:
        events.append(
            Event.of(p.ExperimentCreated(experiment_id="1", name="svc", artifact_location="x"))
        )
    for r in range(runs):
        rid = f"{prefix}{r:03d}"
        started = p.RunStarted(
            run_id=rid, experiment_id="1", run_name=rid, start_time=r, user_id="u",
            artifact_uri="x", tags={},
        )  # fmt: skip
        events.append(Event.of(started))
        events.append(Event.of(p.RunParamsLogged(run_id=rid, params={"lr": str(r)})))
        for s in range(steps):
            pts = (("loss", 1.0 / (s + 1), 1000 + s, s), ("acc", s / steps, 1000 + s, s))
            events.append(Event.of(p.RunMetricsLogged(run_id=rid, points=pts)))
        events.append(Event.of(p.RunTagsSet(run_id=rid, tags={"rank": str(r % 4)})))
        events.append(Event.of(p.RunFinished(run_id=rid, status="FINISHED", end_time=2000 + r)))
    return events


def embedded_replay(log: KafkaEventLog, tmp_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """The same events copied onto a SQLite log and folded by an embedded projector."""
    local = SQLiteEventLog(tmp_path / "replay-events.db")
    after = Checkpoint()
    while page := list(log.read(after, limit=500)):
        local.append([i.event for i in page if hasattr(i, "event")])  # type: ignore[union-attr]
        after = after.advance_all(page)
    engine = make_engine(f"sqlite:///{tmp_path / 'replay-views.db'}", writer=True)
    Projector(local, engine).rebuild()
    try:
        return dump_views(engine)
    finally:
        engine.dispose()
        local.close()


def test_two_members_share_the_partitions_and_the_views_equal_an_embedded_replay(
    log: KafkaEventLog, postgres_url: str, tmp_path: Path
) -> None:
    stop = threading.Event()
    members = []
    for _ in range(2):
        projector = Projector(log, make_engine(postgres_url, writer=True), inline=False)
        members.append(ProjectorService(log, projector, group=f"g-{uuid.uuid4().hex[:6]}"))
    members[1].group = members[0].group
    threads = [threading.Thread(target=m.run, args=(stop,)) for m in members]
    for t in threads:
        t.start()
    try:
        log.append(history(runs=12, steps=5))
        head = log.head()
        wait_until(lambda: members[0].projector.checkpoint().covers(head))
        wait_until(lambda: all(m.stats.assigned for m in members))
        assert set(members[0].stats.assigned).isdisjoint(members[1].stats.assigned)
        log.append(history(runs=6, steps=3, prefix="late", experiment=False))  # group settled
        head = log.head()
        wait_until(lambda: members[0].projector.checkpoint().covers(head))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert sum(m.stats.applied for m in members) == len(list(log.read(limit=10_000)))
    assert members[0].projector.dead_letter_count() == 0
    assert dump_views(members[0].projector.engine) == embedded_replay(log, tmp_path)
    for m in members:
        m.projector.engine.dispose()


def test_a_redelivered_batch_changes_nothing(log: KafkaEventLog, postgres_url: str) -> None:
    projector = Projector(log, make_engine(postgres_url, writer=True), inline=False)
    service = ProjectorService(log, projector)
    log.append(history(runs=2, steps=3))
    items = list(log.read())
    assert service.apply(items) == len(items)
    before = dump_views(projector.engine)
    assert service.apply(items) == 0  # what the stored offsets cover is skipped
    assert dump_views(projector.engine) == before
    projector.engine.dispose()


def test_the_metrics_endpoint_reports_lag_applied_events_and_dead_letters(
    log: KafkaEventLog, postgres_url: str
) -> None:
    projector = Projector(log, make_engine(postgres_url, writer=True), inline=False)
    service = ProjectorService(log, projector)
    log.append([Event.of(p.RunTagsSet(run_id="nobody", tags={"a": "1"}))])  # no such run
    service.apply(list(log.read()))
    server = exposition.serve("127.0.0.1", 0, service.stats.metrics.registry)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        projector.engine.dispose()
    assert sample(text, "ledgerflow_projector_events_applied_total") == 1
    assert sample(text, "ledgerflow_projector_dead_letters") == 1
    service.stats.note_lag({"t/0": 0})
    assert (
        sample(
            exposition.render(service.stats.metrics.registry)[0].decode(),
            "ledgerflow_projector_lag",
            partition="t/0",
        )
        == 0
    )


def test_processes_catching_up_at_once_on_postgresql_each_apply_an_event_once(
    postgres_url: str, tmp_path: Path
) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    log.append(history(runs=30, steps=4))
    projectors = [
        Projector(log, make_engine(postgres_url, writer=True), batch=25) for _ in range(3)
    ]
    errors: list[BaseException] = []

    def catch_up(projector: Projector) -> None:
        try:
            projector.catch_up()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=catch_up, args=(p,)) for p in projectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        assert projectors[0].checkpoint().covers(log.head())
        assert projectors[0].dead_letter_count() == 0
        reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}", writer=True)
        Projector(log, reference).rebuild()
        assert dump_views(projectors[0].engine) == dump_views(reference)
        reference.dispose()
    finally:
        for p in projectors:
            p.engine.dispose()
        log.close()
