"""A run's telemetry folded a stretch at a time (services/projector/run_batch.py) gives
the rows the per-event handlers give, rejects and dead-letters exactly the events they
do, on SQLite and PostgreSQL views; a replay from zero that defers the views' indexes
(services/projector/bulk.py) ends with them built."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, inspect, select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.schema import CreateTable

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.log import Item
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.projector import bulk
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.tables import (
    APPLIED_EVENTS,
    DEAD_LETTERS,
    LATEST_METRICS,
    PARAMS,
    TAGS,
)
from tests.integration.test_projection_replay import every_row, payload
from tests.integration.views_dump import dump_views


class OneByOne(Projector):
    """Every event through its own handler, as before stretches were folded."""

    def apply_all(self, conn: Connection, items: Sequence[Item]) -> None:
        self._apply(conn, items, careful=True)


def _project(cls: type[Projector], log: SQLiteEventLog, url: str, batch: int) -> Projector:
    projector = cls(log, make_engine(url, writer=True), batch=batch)
    projector.catch_up()
    return projector


def _dead(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        cols = (DEAD_LETTERS.c.position, DEAD_LETTERS.c.event_id, DEAD_LETTERS.c.reason)
        return sorted(conn.execute(select(*cols)).all())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(payload.filter(lambda x: x != "corrupt"), max_size=40), st.integers(1, 12))
def test_folding_stretches_gives_the_rows_of_applying_events_one_by_one(seq, batch):
    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteEventLog(Path(tmp) / "events.db")
        try:
            log.append([Event.of(x, actor="alice#token:01") for x in seq])
            folded = _project(Projector, log, f"sqlite:///{tmp}/folded.db", batch)
            single = _project(OneByOne, log, f"sqlite:///{tmp}/single.db", batch)

            assert every_row(folded.engine) == every_row(single.engine)
            for projector in (folded, single):
                projector.engine.dispose()
        finally:
            log.close()


def _telemetry(rng: random.Random, runs: int, events: int) -> list[Event]:
    """Runs started, logged to and finished in shuffled order, with some events the
    handlers reject: a param changed, a run started twice, telemetry of an unknown run."""
    out = [Event.of(p.ExperimentCreated(experiment_id="e", name="e", artifact_location="/a"))]
    ids = [f"run{i}" for i in range(runs)]
    for _ in range(events):
        run = rng.choice(ids + ["ghost"])
        kind = rng.randrange(6)
        if kind == 0:
            d: p.Payload = p.RunStarted(run_id=run, experiment_id="e", run_name=run,
                                        start_time=1, user_id="u", artifact_uri="/a",
                                        tags={"mlflow.runName": run})  # fmt: skip
        elif kind == 1:
            d = p.RunParamsLogged(
                run_id=run, params={f"p{rng.randrange(3)}": str(rng.randrange(2))}
            )
        elif kind == 2:
            pts = tuple((f"m{rng.randrange(2)}", rng.random(), rng.randrange(5), rng.randrange(4))
                        for _ in range(rng.randrange(1, 5)))  # fmt: skip
            d = p.RunMetricsLogged(run_id=run, points=pts)
        elif kind == 3:
            d = p.RunTagsSet(
                run_id=run, tags={rng.choice(["a", "mlflow.runName"]): str(rng.random())}
            )
        elif kind == 4:
            d = p.RunFinished(run_id=run, status=rng.choice(["FINISHED", "FAILED"]), end_time=9)
        else:
            d = p.RunDeleted(run_id=run)  # another type: ends a stretch
        out.append(Event.of(d, actor="bob#token:02"))
    return out


def test_folded_postgresql_views_equal_sqlite_views_applied_one_by_one(
    postgres_url: str, tmp_path: Path
) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    try:
        log.append(_telemetry(random.Random(7), runs=12, events=600))
        folded = _project(Projector, log, postgres_url, batch=50)
        single = _project(OneByOne, log, f"sqlite:///{tmp_path}/single.db", batch=50)
        assert _dead(single.engine), "the log should hold events the handlers reject"
        assert _dead(folded.engine) == _dead(single.engine)
        assert dump_views(folded.engine) == dump_views(single.engine)
        for projector in (folded, single):
            projector.engine.dispose()
    finally:
        log.close()


def test_a_large_replay_from_zero_builds_the_indexes_it_deferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log past the bulk threshold (lowered here: what is tested is what happens past
    it, not how long 20,000 events take one by one) is replayed with deferred indexes."""
    monkeypatch.setattr(bulk, "BULK_EVENTS", 2_000)
    monkeypatch.setattr(bulk, "BULK_BATCH", 700)  # several batches of a deferred catch-up
    log = SQLiteEventLog(tmp_path / "events.db")
    rng = random.Random(3)
    events = _telemetry(rng, runs=200, events=bulk.BULK_EVENTS)
    try:
        log.append(events)
        deferred = _project(Projector, log, f"sqlite:///{tmp_path}/views.db", batch=500)
        small = _project(OneByOne, log, f"sqlite:///{tmp_path}/single.db", batch=500)
        names = {
            i["name"]
            for t in inspect(deferred.engine).get_table_names()
            for i in inspect(deferred.engine).get_indexes(t)
        }
        assert names >= bulk.DEFERRED
        assert dump_views(deferred.engine) == dump_views(small.engine)
        deferred.rebuild()  # in one transaction, indexes deferred inside it
        assert dump_views(deferred.engine) == dump_views(small.engine)
        for projector in (deferred, small):
            projector.engine.dispose()
    finally:
        log.close()


def test_views_made_before_keyed_tables_keep_their_rowid_tables_and_fold_the_same(
    tmp_path: Path,
) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    keyed = (PARAMS, TAGS, LATEST_METRICS, APPLIED_EVENTS)
    before = tmp_path / "before.db"
    with sqlite3.connect(before) as conn:  # the tables as versions before WITHOUT ROWID made them
        for table in keyed:
            ddl = str(CreateTable(table).compile(dialect=sqlite_dialect()))
            conn.execute(ddl.replace("WITHOUT ROWID", ""))
    try:
        log.append(_telemetry(random.Random(5), runs=10, events=400))
        old = _project(Projector, log, f"sqlite:///{before}", batch=40)
        new = _project(Projector, log, f"sqlite:///{tmp_path}/new.db", batch=40)

        def layout(engine: Engine) -> set[str]:
            with engine.connect() as conn:
                sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE ?"
                return set(conn.exec_driver_sql(sql, ("%WITHOUT ROWID%",)).scalars())

        assert layout(old.engine) == set() and layout(new.engine) >= {t.name for t in keyed}
        assert _dead(old.engine) and _dead(old.engine) == _dead(new.engine)
        assert every_row(old.engine) == every_row(new.engine)
        for projector in (old, new):
            projector.engine.dispose()
    finally:
        log.close()
