"""View snapshots (services/projector/view_snapshots.py, `ledgerflow views …`): a copy of
SQLite views with its log position; views started from it and caught up equal a full
replay; restoring over views that hold events, or a snapshot of another log, is refused;
PostgreSQL views answer that pg_dump is the way."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgerflow.cli.app import app
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import Conflict, InvalidInput
from ledgerflow.events.log import Checkpoint
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.projector import view_snapshots
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from tests.conftest import PYTHON, python_env
from tests.integration.test_projection_replay import every_row
from tests.waiting import wait_until


def _runs(first: int, count: int, experiment: str = "e") -> list[Event]:
    """Runs with params, metrics, tags, a finish, a deletion, and one rejected event."""
    out: list[Event] = []
    for i in range(first, first + count):
        run = f"run{i}"
        out += [
            Event.of(p.RunStarted(run_id=run, experiment_id=experiment, run_name=run,
                                  start_time=i, user_id="u", artifact_uri="/a")),
            Event.of(p.RunParamsLogged(run_id=run, params={"lr": str(i % 3)})),
            Event.of(p.RunMetricsLogged(run_id=run, points=tuple(
                ("loss", 1 / (s + 1), 1_000 * i + s, s) for s in range(3)))),
            Event.of(p.RunTagsSet(run_id=run, tags={"mlflow.runName": f"n{i}"})),
            Event.of(p.RunFinished(run_id=run, status="FINISHED", end_time=i + 5)),
        ]  # fmt: skip
    out.append(Event.of(p.RunParamsLogged(run_id=f"run{first}", params={"lr": "changed"})))
    out.append(Event.of(p.RunDeleted(run_id=f"run{first + 1}")))
    return out


def _created(name: str = "e") -> Event:
    return Event.of(p.ExperimentCreated(experiment_id=name, name=name, artifact_location="/a"))


def _views(log: SQLiteEventLog, path: Path) -> Projector:
    return Projector(log, make_engine(f"sqlite:///{path}", writer=True))


def test_views_started_from_a_snapshot_and_caught_up_equal_a_full_replay(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    log.append([_created(), *_runs(0, 20)])
    live = _views(log, tmp_path / "views.db")
    live.catch_up()
    taken = view_snapshots.take(live.engine, tmp_path / "snap" / "views.snapshot")
    assert taken == live.checkpoint()
    log.append(_runs(20, 20))  # after the snapshot

    position = view_snapshots.restore(
        tmp_path / "snap" / "views.snapshot", f"sqlite:///{tmp_path}/new/views.db", log
    )
    assert position == taken
    started = _views(log, tmp_path / "new" / "views.db")
    assert started.checkpoint() == taken
    assert started.catch_up() == log.head().total() - taken.total()
    replayed = _views(log, tmp_path / "replayed.db")
    replayed.catch_up()
    assert started.dead_letter_count() == 2  # one param change in each part of the log
    assert every_row(started.engine) == every_row(replayed.engine)
    for projector in (live, started, replayed):
        projector.engine.dispose()
    log.close()


def test_a_snapshot_is_restored_only_into_views_that_hold_no_event(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    log.append([_created(), *_runs(0, 3)])
    live = _views(log, tmp_path / "views.db")
    live.catch_up()
    snap = tmp_path / "views.snapshot"
    view_snapshots.take(live.engine, snap)
    with pytest.raises(Conflict, match="already exists"):
        view_snapshots.take(live.engine, snap)
    with pytest.raises(Conflict, match="already hold events"):
        view_snapshots.restore(snap, f"sqlite:///{tmp_path}/views.db", log)
    empty = _views(log, tmp_path / "empty.db")  # views made but never fed
    empty.engine.dispose()
    assert view_snapshots.restore(snap, f"sqlite:///{tmp_path}/empty.db", log) == live.checkpoint()

    other = SQLiteEventLog(tmp_path / "other.db")  # shorter than the snapshot's position
    other.append([_created("x")])
    with pytest.raises(InvalidInput, match="another log"):
        view_snapshots.restore(snap, f"sqlite:///{tmp_path}/fresh.db", other)
    with pytest.raises(InvalidInput, match="pg_dump"):
        view_snapshots.restore(snap, "postgresql+psycopg://u@h/views", log)
    live.engine.dispose()
    log.close()
    other.close()
    assert view_snapshots.checkpoint_of(snap) == Checkpoint({"": 3 * 5 + 3})


def test_postgresql_views_are_not_snapshotted_and_the_error_says_use_pg_dump(
    postgres_url: str, tmp_path: Path
) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    projector = Projector(log, make_engine(postgres_url, writer=True))
    with pytest.raises(InvalidInput, match="pg_dump"):
        view_snapshots.take(projector.engine, tmp_path / "views.snapshot")
    assert not (tmp_path / "views.snapshot").exists()
    projector.engine.dispose()
    log.close()
    out = CliRunner().invoke(
        app,
        ["--tracking-uri", str(tmp_path), "views", "snapshot", str(tmp_path / "s")],
        env={"LEDGERFLOW_VIEWS_DB": postgres_url},
    )
    assert out.exit_code == 1
    assert "pg_dump" in out.output


def test_the_cli_snapshots_the_views_and_restores_them_into_a_new_location(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    log = SQLiteEventLog(data / "events.db")
    log.append([_created(), *_runs(0, 5)])
    log.close()
    runner = CliRunner()
    root = ["--tracking-uri", str(data)]
    snap = tmp_path / "views.snapshot"
    taken = runner.invoke(app, [*root, "views", "snapshot", str(snap), "--json"])
    assert taken.exit_code == 0, taken.output
    assert json.loads(taken.output) == {"path": str(snap), "position": "28"}

    log = SQLiteEventLog(data / "events.db")
    log.append(_runs(5, 2))
    log.close()
    new = {"LEDGERFLOW_VIEWS_DB": f"sqlite:///{tmp_path}/new-views.db"}
    restored = runner.invoke(app, [*root, "views", "restore", str(snap), "--json"], env=new)
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output) == {"position": "28", "applied": 12}
    again = runner.invoke(app, [*root, "views", "restore", str(snap)], env=new)
    assert again.exit_code == 1
    assert "already hold events" in again.output


def test_a_projector_started_from_a_snapshot_catches_up_and_keeps_views_it_already_has(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    log = SQLiteEventLog(data / "events.db")
    log.append([_created(), *_runs(0, 4)])
    live = _views(log, tmp_path / "live.db")
    live.catch_up()
    snap = tmp_path / "views.snapshot"
    taken = view_snapshots.take(live.engine, snap)
    log.append(_runs(4, 3))
    head = log.head()
    views = f"sqlite:///{tmp_path}/new.db"

    def projector() -> str:
        env = {**python_env(data), "LEDGERFLOW_VIEWS_DB": views}
        proc = subprocess.Popen(
            [PYTHON, "-m", "ledgerflow.cli", "projector", "--from-snapshot", str(snap)],
            env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        said: list[str] = []
        try:
            assert proc.stderr is not None
            for line in proc.stderr:  # until it runs (or stops: the lines end)
                said.append(line)
                if line.startswith("projecting"):
                    break
            wait_until(lambda: view_snapshots.applied(views).covers(head), what="the catch-up")
        finally:
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate(timeout=60)
        return "".join(said) + rest

    first = projector()
    assert f"views started from {snap} at log position {taken.encode()}" in first
    replayed = _views(log, tmp_path / "replayed.db")
    replayed.catch_up()
    started = _views(log, tmp_path / "new.db")
    assert every_row(started.engine) == every_row(replayed.engine)
    again = projector()  # a restart: its views hold events, the snapshot is not used
    assert "not used" in again
    for projector_ in (live, replayed, started):
        projector_.engine.dispose()
    log.close()
