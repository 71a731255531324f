"""Crash safety, concurrent writers, and dead-lettering, with real processes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

import ledgerflow as lf
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.exceptions import Conflict
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.projector.tables import PARAMS
from tests.conftest import PYTHON, ROOT, python_env

pytestmark = pytest.mark.slow


def test_after_flush_returns_a_sigkill_loses_nothing(tmp_path: Path):
    data = tmp_path / "data"
    code = textwrap.dedent("""
        import sys, time
        import ledgerflow as lf
        run = lf.start_run()
        for i in range(20_000):
            lf.log_metric("loss", 1.0 / (i + 1), step=i)
        lf.flush()
        print(run.info.run_id, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen(
        [PYTHON, "-c", code], env=python_env(data), cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    history = lf.Client(str(data)).get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(20_000))
    assert lf.Client(str(data)).get_run(run_id).info.status == "RUNNING"


def test_points_appended_but_not_projected_by_a_killed_process_appear_on_read(
    tmp_path: Path, backend
):
    """The log is the truth: a reader projects what a dead writer left behind."""
    run_id = "r" * 32
    exp = backend.tracking.execute(tc.CreateExperiment(name="e"), actor="t")
    backend.tracking.create_run(exp, user_id="u", actor="t", run_id=run_id)
    backend.log.append([Event.of(p.RunMetricsLogged(run_id=run_id, points=(("m", 1.0, 1, 0),)))])
    client = lf.Client(str(backend.settings.data_dir))
    assert client.get_run(run_id).data.metrics == {"m": 1.0}


def test_four_processes_logging_into_one_data_directory_lose_nothing(tmp_path: Path):
    data = tmp_path / "data"
    code = textwrap.dedent("""
        import sys
        import ledgerflow as lf
        worker = int(sys.argv[1])
        lf.set_experiment("sweep")
        for r in range(3):
            with lf.start_run(run_name=f"w{worker}-r{r}") as run:
                lf.log_params({"worker": worker, "lr": 0.1 * (r + 1)})
                for i in range(2000):
                    lf.log_metric("loss", 1.0 / (i + 1), step=i)
                    if i % 500 == 0:
                        lf.set_tag(f"t{i}", i)
                lf.log_text(f"run {r}", "note.txt")
        print("ok")
    """)
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", code, str(w)],
            env=python_env(data),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    outs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
        assert "locked" not in err.lower()
    client = lf.Client(str(data))
    runs = client.search_runs(["sweep"], max_results=100)
    assert sorted(r.info.run_name for r in runs) == sorted(
        f"w{w}-r{r}" for w in range(4) for r in range(3)
    )
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 2000
        assert set(run.data.params) == {"worker", "lr"}
        assert {"t0", "t500", "t1000", "t1500"} <= set(run.data.tags)
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    assert len(client.search_experiments()) == 1  # all four agreed on one "sweep"


def test_a_corrupt_event_is_dead_lettered_and_the_projector_keeps_going(backend):
    exp = backend.tracking.execute(tc.CreateExperiment(name="e"), actor="t")
    run = backend.tracking.create_run(exp, user_id="u", actor="t")
    conn = sqlite3.connect(backend.settings.data_dir / "events.db")
    rows = [
        ("bad-json", "run.tags_set", "{not json"),
        ("bad-type", "run.teleported", "{}"),
        ("bad-payload", "run.params_logged", json.dumps({"run_id": run.run_id})),
    ]
    for id_, type_, data in rows:
        conn.execute(
            "INSERT INTO events (id, type, stream, time, v, actor, data) "
            "VALUES (?, ?, ?, 0, 1, 'x', ?)",
            (id_, type_, f"run:{run.run_id}", data),
        )
    conn.commit()
    conn.close()
    backend.tracking.log_params(run.run_id, {"after": "corruption"}, actor="t")
    letters = {d["event_id"]: d for d in backend.projector.dead_letters()}
    assert set(letters) == {"bad-json", "bad-type", "bad-payload"}
    assert "undecodable" in letters["bad-json"]["reason"]
    assert "unknown event type 'run.teleported'" in letters["bad-type"]["reason"]
    assert "params" in letters["bad-payload"]["reason"]
    assert all(d["kind"] == "corrupt" for d in letters.values())
    assert backend.queries.get_run(run.run_id).data.params == {"after": "corruption"}


def test_a_param_conflict_that_lost_a_race_is_rejected_by_the_projector(backend):
    """Two writers both saw no param and both appended; the stream order decides."""
    exp = backend.tracking.execute(tc.CreateExperiment(name="e"), actor="t")
    run = backend.tracking.create_run(exp, user_id="u", actor="t")
    first = Event.of(p.RunParamsLogged(run_id=run.run_id, params={"lr": "0.1"}))
    second = Event.of(p.RunParamsLogged(run_id=run.run_id, params={"lr": "0.2"}))
    backend.log.append([first, second])
    backend.projector.catch_up()
    with backend.projector.engine.connect() as conn:
        assert conn.execute(select(PARAMS.c.value)).scalars().all() == ["0.1"]
    [letter] = backend.projector.dead_letters()
    assert letter["event_id"] == second.id and letter["kind"] == "rejected"
    assert "'0.1'" in letter["reason"] and "'0.2'" in letter["reason"]
    with pytest.raises(Conflict, match="cannot change"):
        backend.tracking.commit([p.RunParamsLogged(run_id=run.run_id, params={"lr": "0.3"})], "t")


def test_interpreter_exit_writes_buffered_points_and_ends_the_run(tmp_path: Path):
    data = tmp_path / "data"
    code = textwrap.dedent("""
        import ledgerflow as lf
        run = lf.start_run()
        for i in range(3000):
            lf.log_metric("loss", float(i), step=i)
        print(run.info.run_id, flush=True)
    """)
    out = subprocess.run(
        [PYTHON, "-c", code],
        env=python_env(data),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = out.stdout.strip()
    client = lf.Client(str(data))
    assert len(client.get_metric_history(run_id, "loss")) == 3000
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_forked_child_logs_its_own_run_without_replaying_the_parents_buffer(tmp_path: Path):
    data = tmp_path / "data"
    code = textwrap.dedent("""
        import multiprocessing as mp
        import ledgerflow as lf

        def child(q):
            with lf.start_run(run_name="child", nested=True) as run:
                lf.log_metric("c", 1.0)
            lf.flush()  # must not write the parent's buffered points a second time
            q.put(run.info.run_id)

        with lf.start_run(run_name="parent") as parent:
            for i in range(100):
                lf.log_metric("p", float(i), step=i)  # buffered, not yet written
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            proc = ctx.Process(target=child, args=(q,))
            proc.start()
            child_id = q.get(timeout=60)
            proc.join(60)
        print(parent.info.run_id, child_id, proc.exitcode)
    """)
    out = subprocess.run(
        [PYTHON, "-c", code],
        env=python_env(data),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    parent_id, child_id, exitcode = out.stdout.split()
    assert exitcode == "0", out.stderr
    client = lf.Client(str(data))
    assert len(client.get_metric_history(parent_id, "p")) == 100  # once, not twice
    assert client.get_run(child_id).data.metrics == {"c": 1.0}
    assert client.get_run(child_id).info.status == "FINISHED"


class RedeliveringLog(SQLiteEventLog):
    """A log that delivers every event twice, as an at-least-once broker may."""

    def read(self, after=None, limit=1000, types=None):
        for item in super().read(after, limit, types):
            yield item
            yield item


def test_the_projector_applies_a_redelivered_event_once(tmp_path: Path):
    settings = load_settings(tracking_uri=str(tmp_path / "data"))
    log = RedeliveringLog(settings.data_dir / "events.db")
    b = bootstrap(settings, log=log)
    try:
        exp = b.tracking.execute(tc.CreateExperiment(name="e"), actor="t")
        run = b.tracking.create_run(exp, user_id="u", actor="t")
        b.tracking.log_metrics(run.run_id, [("m", 1.0, 1, 0), ("m", 2.0, 2, 1)], actor="t")
        b.tracking.log_params(run.run_id, {"p": "1"}, actor="t")
        assert len(b.queries.get_metric_history(run.run_id, "m")) == 2
        assert b.projector.dead_letters() == []
        b.projector.rebuild()
        assert len(b.queries.get_metric_history(run.run_id, "m")) == 2
    finally:
        b.close()
