"""Audit entries are numbered in log order whatever the batches: on SQLite the projector
numbers them itself (so plain entries go through a statement that writes their constant
columns, services/projector/audit_handlers.py), as SQLite would; on PostgreSQL a sequence
numbers them. Both give every entry the same id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.projector.audit_tables import AUDIT_ENTRIES as AU
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector

T0 = 1_800_000_000_000  # a minute boundary


def _events() -> list[Event]:
    """Plain entries, refused requests (entries with particulars), and metric batches that
    fold into rollups: two in one minute, one in the next, some a few events apart."""
    out = [Event.of(p.ExperimentCreated(experiment_id="e", name="e", artifact_location="/a"))]
    for i in range(6):
        run = f"run{i}"
        for k, d in enumerate([
            p.RunStarted(run_id=run, experiment_id="e", run_name=run, start_time=T0,
                         user_id="u", artifact_uri="/a", tags={"mlflow.runName": run}),
            p.RunMetricsLogged(run_id=run, points=(("loss", 0.5, T0, 0),)),
            a.AuthDenied(status=403, method="GET", path=f"/runs/{run}", reason="no",
                         credential="token", client="10.0.0.7"),
            p.RunParamsLogged(run_id=run, params={"lr": "0.1"}),
            p.RunMetricsLogged(run_id=run, points=(("acc", 0.9, T0 + 5, 1),)),
            p.RunMetricsLogged(run_id=run, points=(("acc", 0.95, T0 + 60_000, 2),)),
            p.RunFinished(run_id=run, status="FINISHED", end_time=T0 + 70_000),
        ]):  # fmt: skip
            ev = Event.of(d, actor="alice#token:01")
            out.append(Event(id=ev.id, type=ev.type, stream=ev.stream, data=d, actor=ev.actor,
                             time=T0 + 60_000 * (k // 5) + k))  # fmt: skip
    return out


def _entries(engine: Engine) -> list[tuple[Any, ...]]:
    cols = (AU.c.id, AU.c.event_id, AU.c.position, AU.c.events, AU.c.points, AU.c.detail)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).order_by(AU.c.id))]


def _projected(log: SQLiteEventLog, url: str, batch: int) -> list[tuple[Any, ...]]:
    engine = make_engine(url, writer=True)
    try:
        projector = Projector(log, engine, batch=batch)
        assert projector.catch_up() == len(_events())
        assert projector.dead_letter_count() == 0
        return _entries(engine)
    finally:
        engine.dispose()


def test_entries_are_numbered_in_log_order_as_postgresql_numbers_them(
    postgres_url: str, tmp_path: Path
) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    try:
        log.append(_events())
        numbered = _projected(log, postgres_url, batch=4)
        assert [r[0] for r in numbered] == list(range(1, len(numbered) + 1))
        assert [r[2] for r in numbered] == sorted(r[2] for r in numbered)  # log order
        assert any(r[5] is not None for r in numbered) and any(r[3] > 1 for r in numbered)
        for batch in (1, 4, 7, 500):  # one transaction, or rollups grown in a later one
            assert _projected(log, f"sqlite:///{tmp_path}/views-{batch}.db", batch) == numbered
    finally:
        log.close()
