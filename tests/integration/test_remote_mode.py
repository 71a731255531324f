"""The SDK in remote mode (LEDGERFLOW_TRACKING_URI=http://gateway) against a real gateway:
the same API, read-your-writes, the spool while the gateway is down, and clear errors."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sqlite3
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events import codec
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import Conflict, InvalidInput, NotFound, Unavailable
from ledgerflow.events.settings import load_settings
from ledgerflow.remote import RemoteBackend
from ledgerflow.remote.http import GatewayHTTP
from ledgerflow.remote.shipper import Shipper
from ledgerflow.remote.spool import Claim, Spool, folder_for
from ledgerflow.services.bootstrap import Backend, bootstrap
from tests.conftest import PYTHON, ROOT, free_port, python_env
from tests.integration.gateway_fixture import GatewayProcess, GatewayThread


def _spool_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.db"))


def test_the_fluent_api_and_client_work_unchanged_over_the_gateway(remote, tmp_path):
    lf.set_experiment("remote")
    with lf.start_run(run_name="first", tags={"team": "cv"}) as run:
        lf.log_param("lr", 0.01)
        lf.log_params({"layers": 3})
        for step in range(20):
            lf.log_metric("loss", 1 / (step + 1), step=step)
        lf.log_metric("odd", math.nan)
        lf.set_tag("phase", "train")
        lf.log_dict({"a": 1}, "cfg/config.json")
    rid = run.info.run_id
    c = lf.Client()
    got = c.get_run(rid)
    assert got.info.status == "FINISHED" and got.info.run_name == "first"
    assert got.data.params == {"lr": "0.01", "layers": "3"}
    assert got.data.metrics["loss"] == pytest.approx(1 / 20) and math.isnan(got.data.metrics["odd"])
    assert got.data.tags["team"] == "cv" and got.data.tags["phase"] == "train"
    assert [m.step for m in c.get_metric_history(rid, "loss")] == list(range(20))
    assert len(c.get_metric_history(rid, "loss", max_points=4)) == 4
    assert [f.path for f in c.list_artifacts(rid, "cfg")] == ["cfg/config.json"]
    local = c.download_artifacts(rid, "cfg/config.json", tmp_path)
    assert json.loads(Path(local).read_text()) == {"a": 1}
    found = lf.search_runs(filter_string="params.lr = '0.01'", output_format="list")
    assert [r.info.run_id for r in found] == [rid]
    page = c.search_runs(["remote"], max_results=1, order_by=["metrics.loss ASC"])
    assert len(page) == 1 and page.token is None
    assert c.get_experiment_by_name("remote").experiment_id == got.info.experiment_id
    assert c.get_experiment_by_name("absent") is None


def test_experiment_searches_send_the_whole_filter_and_order_to_the_gateway(remote):
    c = lf.Client()
    for name, team in (("remote-a", "cv"), ("remote-b", "nlp"), ("remote-c", "cv")):
        c.create_experiment(name, tags={"team": team})
    found = c.search_experiments(filter_string="tags.team = 'cv'", order_by=["name DESC"])
    assert [e.name for e in found] == ["remote-c", "remote-a"]
    found = c.search_experiments(filter_string="name LIKE 'remote-%'", order_by=["name"])
    assert [e.name for e in found] == ["remote-a", "remote-b", "remote-c"]
    with pytest.raises(InvalidInput, match="position 7"):
        c.search_experiments(filter_string="name = ")


def test_an_experiment_tag_is_deleted_through_the_gateway(remote):
    c = lf.Client()
    eid = c.create_experiment("remote-tagged", tags={"owner": "me"})
    c.delete_experiment_tag(eid, "owner")
    assert c.get_experiment(eid).tags == {}
    with pytest.raises(NotFound, match="has no tag 'owner'"):
        c.delete_experiment_tag(eid, "owner")


def test_a_process_reads_its_own_logged_writes_immediately(remote):
    c = lf.Client()
    exp = c.create_experiment("ryw")
    rid = c.create_run(exp).info.run_id
    for i in range(50):
        c.log_metric(rid, "m", i, step=i)
        c.set_tag(rid, "i", i)
        assert c.get_run(rid).data.tags["i"] == str(i)
    c.log_param(rid, "p", "x")
    c.delete_tag(rid, "i")  # a straight call sees the tag shipped from the spool before it
    c.set_terminated(rid, "KILLED")
    run = c.get_run(rid)
    assert run.info.status == "KILLED" and "i" not in run.data.tags
    assert len(c.get_metric_history(rid, "m")) == 50
    actors = {i.event.type: i.event.actor for i in remote.backend.log.read(limit=10_000)}
    assert actors["run.started"] == actors["run.tags_set"] == actors["run.finished"] == c._actor


def test_changing_a_param_this_process_logged_is_a_conflict_at_once(remote):
    with lf.start_run():
        lf.log_param("lr", 1)
        with pytest.raises(Conflict, match="param 'lr'.*already '1'"):
            lf.log_param("lr", 2)
        lf.log_param("lr", 1)  # the same value again is fine


def test_errors_come_back_as_the_embedded_modes_exceptions(remote):
    c = lf.Client()
    with pytest.raises(NotFound, match="no run with id 'nope'") as missing:
        c.get_run("nope")
    assert missing.value.kind == "run"
    with pytest.raises(NotFound):
        c.log_param("nope", "a", 1)
    rid = c.create_run(c.create_experiment("errors")).info.run_id
    with pytest.raises(InvalidInput) as bad:
        c.get_metric_history(rid, "m", max_points=1)
    assert bad.value.field == "max_points"
    with pytest.raises(InvalidInput) as bad_filter:
        c.search_runs([c.get_run(rid).info.experiment_id], "metrics.m >> 1")
    assert (bad_filter.value.field, bad_filter.value.position) == ("filter", 11)
    assert bad_filter.value.token == ">"
    with pytest.raises(InvalidInput, match="param name") as bad_key:
        c.log_param(rid, "bad key!", 1)
    assert bad_key.value.field == "param"
    with pytest.raises(InvalidInput, match="filter"):
        c.search_runs(["errors"], "metrics.x >")


def test_a_read_with_the_gateway_unreachable_is_unavailable_naming_the_url(spool_dir):
    url = f"http://127.0.0.1:{free_port()}"
    c = lf.Client(url)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=f"cannot reach the Ledgerflow gateway at {url}"):
        c.get_run("any")
    assert time.monotonic() - started < 10
    session.reset()


def test_an_unreachable_object_store_behind_a_presigned_url_is_named_not_the_gateway(
    tmp_path: Path,
) -> None:
    """A presigned upload or download whose object store is down (the fault suite's S3
    cut) is Unavailable naming the store, not the gateway the caller reached fine."""
    gateway = f"http://127.0.0.1:{free_port()}"
    store = f"http://127.0.0.1:{free_port()}"
    http = GatewayHTTP(gateway)
    presigned = f"{store}/bucket/run/artifacts/a.txt?X-Amz-Signature=abc"
    for call in (lambda: http.upload(presigned, b"bytes"),
                 lambda: http.download(presigned, tmp_path / "a.txt")):  # fmt: skip
        with pytest.raises(Unavailable, match=f"cannot reach the artifact store at {store}") as e:
            call()
        assert "gateway at" not in e.value.message
    assert not (tmp_path / "a.txt.part").exists()


def test_a_command_waits_out_a_gateway_restart_and_a_read_does_not(remote, caplog):
    with lf.start_run() as run:
        lf.log_text("weights", "model/weights.txt")
    client = lf.Client()
    client.get_run(run.info.run_id)  # everything shipped: the read below waits for nothing
    remote.stop()
    back = threading.Timer(5.0, remote.start)  # an operator restarting it
    back.start()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="cannot reach the Ledgerflow gateway"):
            client.get_run(run.info.run_id)  # a read: the caller hears of it at once
        assert time.monotonic() - started < 4
        with caplog.at_level(logging.WARNING, logger="ledgerflow.remote"):
            version = lf.register_model(f"runs:/{run.info.run_id}/model", "waited")
        assert version.version == 1 and time.monotonic() - started >= 5
        assert "retrying POST" in caplog.text and "LEDGERFLOW_GATEWAY_WAIT_S" in caplog.text
    finally:
        back.join()


def test_a_command_gives_up_on_an_unreachable_gateway_after_its_wait(spool_dir, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_GATEWAY_WAIT_S", "2")
    url = f"http://127.0.0.1:{free_port()}"
    c = lf.Client(url)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"in \d s \(LEDGERFLOW_GATEWAY_WAIT_S\)"):
        c.create_experiment("never")
    assert 2 <= time.monotonic() - started < 10
    session.reset()


def test_jobs_and_log_commands_through_a_gateway_url_say_to_run_where_the_log_is(spool_dir):
    url = f"http://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(InvalidInput, match="jobs record their lifecycle on the event log"):
            lf.jobs.list_jobs(tracking_uri=url)
        with pytest.raises(InvalidInput, match="jobs record their lifecycle on the event log"):
            lf.jobs.submit("echo hi", tracking_uri=url)
        backend = session.backend_for(load_settings(tracking_uri=url))
        with pytest.raises(InvalidInput, match="is a gateway; this command works on the event"):
            backend.embedded()
    finally:
        session.reset()


def test_the_registry_over_the_gateway_keeps_read_your_writes(remote):
    c = lf.Client()
    with lf.start_run() as run:
        lf.log_text("weights", "model/w.txt")
    mv = lf.register_model(f"runs:/{run.info.run_id}/model", "remote-model")
    assert mv.version == 1 and mv.run_id == run.info.run_id
    assert lf.register_model(f"runs:/{run.info.run_id}/model", "remote-model").version == 2
    c.set_registered_model_alias("remote-model", "champion", 1)
    assert c.get_model_version_by_alias("remote-model", "champion").version == 1
    assert c.resolve_model_version("models:/remote-model@champion").version == 1
    assert c.resolve_model_version("models:/remote-model/latest").version == 2
    c.transition_model_version_stage("remote-model", 2, "Production")
    assert [v.version for v in c.get_latest_versions("remote-model", ["Production"])] == [2]
    c.set_model_version_tag("remote-model", 1, "k", "v")
    c.update_registered_model("remote-model", "digits")
    model = c.get_registered_model("remote-model")
    assert model.aliases == {"champion": 1} and model.description == "digits"
    page = c.search_model_versions("name = 'remote-model'", max_results=1)
    assert len(page) == 1 and page.token
    assert len(c.search_model_versions("name = 'remote-model'", page_token=page.token)) == 1
    assert [m.name for m in c.search_registered_models("name LIKE 'remote%'")] == ["remote-model"]
    c.rename_registered_model("remote-model", "renamed")
    assert c.get_model_version("renamed", 1).tags == {"k": "v"}
    with pytest.raises(NotFound):
        c.get_registered_model("remote-model")
    with pytest.raises(InvalidInput, match="reserved"):
        c.set_registered_model_alias("renamed", "latest", 1)


def test_the_bundle_policy_is_set_and_cleared_through_the_gateway_and_builds_are_refused(
    remote,
):
    c = lf.Client()
    c.create_registered_model("policy-remote")
    lf.bundles.set_policy("policy-remote", on_alias=["champion"], targets=["onnx"])
    tags = c.get_registered_model("policy-remote").tags
    assert tags == {"ledgerflow.bundle.on_alias": "champion", "ledgerflow.bundle.targets": "onnx"}
    assert c.set_bundle_policy("policy-remote", ["prod"]) == {"ledgerflow.bundle.on_alias": "prod"}
    assert c.get_registered_model("policy-remote").tags == {"ledgerflow.bundle.on_alias": "prod"}
    with pytest.raises(InvalidInput, match="choose from") as e:
        c.set_bundle_policy("policy-remote", ["prod"], ["tflite"])
    assert e.value.field == "targets"
    with pytest.raises(NotFound):
        lf.bundles.set_policy("no-such-model", on_alias=["champion"])
    lf.bundles.clear_policy("policy-remote")
    lf.bundles.clear_policy("policy-remote")  # nothing left: nothing to do
    assert c.get_registered_model("policy-remote").tags == {}
    with pytest.raises(InvalidInput, match="bundles are built next to the event log"):
        lf.bundles.build("models:/policy-remote/1")


def test_logging_carries_on_into_the_spool_while_the_gateway_is_down(data_dir, spool_dir):
    g = GatewayThread(load_settings(tracking_uri=str(data_dir))).start()
    backend = RemoteBackend(load_settings(tracking_uri=g.url, gateway_wait_s=1), exit_wait_s=1)
    t = backend.tracking
    rid = t.create_run(
        t.execute(tc.CreateExperiment(name="down"), actor="u:t"), user_id="u", actor="u:t"
    ).run_id
    g.stop()
    slowest = 0.0
    for i in range(100):
        started = time.monotonic()
        t.log_metric_points(rid, [("m", float(i), 1000 + i, i)], actor="u:t")
        t.log_params(rid, {f"p{i}": i}, actor="u:t")
        t.set_tags(rid, {"last": i}, actor="u:t")
        slowest = max(slowest, time.monotonic() - started)
    t.finish_run(rid, actor="u:t")
    assert slowest < 0.5  # a blocked call would wait for connection retries: seconds
    assert backend.shipper.pending() == 301
    with pytest.raises(Unavailable):
        backend.queries.get_run(rid)
    g = GatewayThread(load_settings(tracking_uri=str(data_dir)), port=g.port).start()
    try:
        run = backend.queries.get_run(rid)
        assert run.info.status == "FINISHED" and len(run.data.params) == 100
        assert run.data.tags["last"] == "99"
        assert [m.step for m in backend.queries.get_metric_history(rid, "m")] == list(range(100))
        assert backend.shipper.pending() == 0
    finally:
        backend.close()
        g.stop()
    assert _spool_files(spool_dir) == []  # shipped and removed


def test_a_spool_left_by_a_dead_process_is_shipped_by_the_next_one(remote, spool_dir):
    rid = lf.Client().create_run(lf.Client().create_experiment("orphan")).info.run_id
    folder = folder_for(spool_dir, remote.url)
    claim = Claim.new(folder)  # what a process that died leaves: an unlocked spool file
    spool = Spool(claim.db)
    spool.append([Event.of(p.RunTagsSet(run_id=rid, tags={"from": "dead"}), actor="user:x")])
    spool.close()
    claim.release(remove=False)
    held = Claim.new(folder)  # a living process's spool is left alone
    Spool(held.db).append([Event.of(p.RunTagsSet(run_id=rid, tags={"alive": "1"}), actor="x")])
    try:
        backend = RemoteBackend(load_settings(tracking_uri=remote.url), exit_wait_s=1)
        deadline = time.monotonic() + 20
        while claim.db.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not claim.db.exists()
        tags = backend.queries.get_run(rid).data.tags
        assert tags["from"] == "dead" and "alive" not in tags
        assert held.db.exists()
        backend.close()
    finally:
        held.release(remove=True)


def test_an_event_the_gateway_refuses_is_set_aside_and_the_rest_still_ship(remote, spool_dir):
    c = lf.Client()
    rid = c.create_run(c.create_experiment("refused")).info.run_id
    backend = session.backend_for(load_settings(tracking_uri=remote.url))
    assert isinstance(backend, RemoteBackend)
    good = Event.of(p.RunTagsSet(run_id=rid, tags={"ok": "1"}), actor="x")
    wrong_stream = Event(type=good.type, stream="run:elsewhere", data=good.data, actor="x")
    backend.shipper.append([wrong_stream, good])
    assert c.get_run(rid).data.tags["ok"] == "1"
    [line] = (folder_for(spool_dir, remote.url) / "refused.jsonl").read_text().splitlines()
    refused = json.loads(line)
    assert refused["id"] == wrong_stream.id and "does not match its payload" in refused["reason"]
    assert backend.shipper.pending() == 0


def test_events_tail_reads_a_gateways_log_over_its_event_stream(remote):
    from typer.testing import CliRunner

    from ledgerflow.cli.app import app

    c = lf.Client()
    rid = c.create_run(c.create_experiment("tail")).info.run_id
    c.set_tag(rid, "seen", "yes")
    assert c.get_run(rid).data.tags["seen"] == "yes"  # shipped from this process's spool
    result = CliRunner().invoke(
        app, ["--tracking-uri", remote.url, "events", "tail", "--json", "-n", "2"]
    )
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.output.splitlines()]
    assert [d["type"] for d in docs] == ["run.started", "run.tags_set"]
    assert docs[1]["data"]["tags"] == {"seen": "yes"}


def test_replay_and_dead_letters_say_they_need_the_log_not_a_gateway(remote):
    from typer.testing import CliRunner

    from ledgerflow.cli.app import app

    result = CliRunner().invoke(app, ["--tracking-uri", remote.url, "replay"])
    assert result.exit_code == 1 and "is a gateway" in result.output


def test_sync_with_the_gateway_unreachable_fails_clearly_and_keeps_the_spool(spool_dir):
    from typer.testing import CliRunner

    from ledgerflow.cli.app import app

    url = f"http://127.0.0.1:{free_port()}"
    claim = Claim.new(folder_for(spool_dir, url))
    Spool(claim.db).append([Event.of(p.RunTagsSet(run_id="r", tags={"a": "1"}), actor="x")])
    claim.release(remove=False)
    result = CliRunner().invoke(app, ["--tracking-uri", url, "sync"])
    assert result.exit_code == 1
    assert f"cannot reach the Ledgerflow gateway at {url}" in " ".join(result.output.split())
    assert Spool(claim.db).pending() == 1


def test_a_spool_folder_that_cannot_be_written_is_unavailable_naming_the_setting(
    gateway,
    tmp_path,
    monkeypatch,
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LEDGERFLOW_SPOOL_DIR", str(blocker / "spool"))
    backend = RemoteBackend(load_settings(tracking_uri=gateway.url), exit_wait_s=1)
    t = backend.tracking
    rid = t.create_run(
        t.execute(tc.CreateExperiment(name="nospool"), actor="a"), user_id="u", actor="a"
    ).run_id
    with pytest.raises(Unavailable, match="LEDGERFLOW_SPOOL_DIR"):
        t.log_params(rid, {"a": 1}, actor="a")
    backend.close()


# starting runs while the gateway is down -------------------------------------------------
def _starts(backend: Backend) -> dict[str, int]:
    """How many run.started events the log holds for each run."""
    counts: dict[str, int] = {}
    for item in backend.log.read(limit=100_000):
        if item.event.type == "run.started":
            run_id = item.event.stream.removeprefix("run:")
            counts[run_id] = counts.get(run_id, 0) + 1
    return counts


def test_a_run_started_while_the_gateway_is_down_arrives_whole_and_once(data_dir, spool_dir):
    with contextlib.closing(bootstrap(load_settings(tracking_uri=str(data_dir)))) as b:
        known = b.tracking.execute(tc.CreateExperiment(name="offline"), actor="user:t")
    port = free_port()
    lf.set_tracking_uri(f"http://127.0.0.1:{port}")  # nothing listens there yet
    began = time.monotonic()
    experiment = lf.set_experiment("offline")
    with lf.start_run(run_name="first", tags={"team": "cv"}) as run:
        lf.log_params({"lr": 0.01, "layers": 3})
        for step in range(50):
            lf.log_metric("loss", 1 / (step + 1), step=step)
        lf.set_tag("phase", "train")
        lf.log_dict({"a": 1}, "cfg/config.json")
        with lf.start_run(run_name="child", nested=True) as child:
            lf.log_metric("acc", 0.9)
    assert time.monotonic() - began < 5  # nothing waited for the gateway
    assert experiment.experiment_id == "pending:offline"
    info = run.info  # what this process knows: the gateway has not seen the run yet
    assert (info.run_name, info.status, info.artifact_uri) == ("first", "RUNNING", "")
    assert info.experiment_id == "pending:offline" and len(info.run_id) == 32
    assert abs(info.start_time - time.time() * 1000) < 60_000

    g = GatewayThread(load_settings(tracking_uri=str(data_dir)), port=port).start()
    try:
        c = lf.Client()
        got = c.get_run(info.run_id)  # ships the spool first, the run's start ahead
        assert got.info.experiment_id == known  # the experiment of that name, not a new one
        assert got.info.start_time == info.start_time and got.info.run_name == "first"
        assert got.info.status == "FINISHED" and got.info.artifact_uri.endswith("/artifacts")
        assert got.data.params == {"lr": "0.01", "layers": "3"}
        assert got.data.tags["team"] == "cv" and got.data.tags["phase"] == "train"
        assert [m.step for m in c.get_metric_history(info.run_id, "loss")] == list(range(50))
        assert [f.path for f in c.list_artifacts(info.run_id, "cfg")] == ["cfg/config.json"]
        nested = c.get_run(child.info.run_id)
        assert nested.data.tags["mlflow.parentRunId"] == info.run_id
        assert nested.data.metrics == {"acc": 0.9} and nested.info.experiment_id == known
        assert [e.name for e in c.search_experiments()] == ["offline"]
        assert g.backend is not None
        assert _starts(g.backend) == {info.run_id: 1, child.info.run_id: 1}
        assert g.backend.projector.dead_letters() == []
        assert lf.start_run().info.experiment_id == known  # the name resolved from now on
        lf.end_run()
    finally:
        session.reset()
        g.stop()
    assert _spool_files(spool_dir) == [] and list(spool_dir.glob("*/*.files/*")) == []


def test_a_spool_keeps_calls_in_order_among_events_and_reads_files_from_before_kinds(
    tmp_path,
):
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old)) as conn:
        conn.execute("CREATE TABLE pending (seq INTEGER PRIMARY KEY, id TEXT, body BLOB)")
        before = Event.of(p.RunTagsSet(run_id="r", tags={"a": "1"}), actor="x")
        conn.execute(
            "INSERT INTO pending (id, body) VALUES (?, ?)", (before.id, codec.encode(before))
        )
        conn.commit()
    spool = Spool(old)
    after = Event.of(p.RunTagsSet(run_id="r", tags={"b": "2"}), actor="x")
    spool.append_entry("run.upload", "u1", b"{}")
    spool.append([after])
    rows = spool.peek()
    assert [(r.id, r.kind) for r in rows] == [(before.id, "event")]
    spool.ack([r.seq for r in rows])
    [call] = spool.peek()
    assert (call.id, call.kind) == ("u1", "run.upload")
    spool.ack([call.seq])
    assert [r.id for r in spool.peek()] == [after.id]
    name = spool.stage(b"bytes")
    assert spool.staged(name).read_bytes() == b"bytes" and spool.files == tmp_path / "old.files"
    spool.close()


class LosingHTTP(GatewayHTTP):
    """The gateway starts the first run it is sent, and its answer is lost on the way."""

    lost = 0

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = super().request(method, path, **kwargs)
        if (method, path) == ("POST", "/api/v1/runs") and not self.lost:
            self.lost += 1
            raise Unavailable(f"{method} {path}: the gateway did not answer; it may have")
        return answer


def test_a_start_sent_again_after_its_answer_was_lost_makes_one_run(data_dir, spool_dir):
    url = f"http://127.0.0.1:{free_port()}"
    offline = RemoteBackend(load_settings(tracking_uri=url, gateway_wait_s=0), exit_wait_s=0)
    t = offline.tracking
    experiment = t.get_or_create_experiment("lost-answer", actor="user:t")
    rid = t.create_run(experiment.experiment_id, user_id="u", actor="user:t").run_id
    t.log_params(rid, {"p": 1}, actor="user:t")
    t.log_metric_points(rid, [("m", float(i), 1000 + i, i) for i in range(10)], actor="user:t")
    t.finish_run(rid, actor="user:t")
    offline.close()  # the process ends; what it logged stays in its spool
    [left] = _spool_files(spool_dir)

    g = GatewayThread(load_settings(tracking_uri=str(data_dir)), port=int(url.rsplit(":", 1)[1]))
    g.start()
    http = LosingHTTP(url)
    try:
        shipper = Shipper(http, left.parent)
        with pytest.raises(Unavailable, match="did not answer"):
            shipper.ship_orphans()  # the run was started; we did not hear so
        assert http.lost == 1 and left.exists()
        assert shipper.ship_orphans()[1:] == (4, 0)  # the start again, then the rest
        assert g.backend is not None
        g.backend.refresh()  # shipped without waiting for projection, as a dead process's spool is
        assert _starts(g.backend) == {rid: 1} and g.backend.projector.dead_letters() == []
        run = g.backend.queries.get_run(rid)
        assert run.info.status == "FINISHED" and run.data.params == {"p": "1"}
        assert len(g.backend.queries.get_metric_history(rid, "m")) == 10
    finally:
        http.close()
        g.stop()
    assert not left.exists()


def test_a_start_the_gateway_refuses_is_set_aside_with_what_was_logged_to_it(data_dir, spool_dir):
    url = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(tracking_uri=str(data_dir))
    with contextlib.closing(bootstrap(settings)) as b:
        doomed = b.tracking.execute(tc.CreateExperiment(name="doomed"), actor="user:t")
    backend = RemoteBackend(load_settings(tracking_uri=url, gateway_wait_s=0), exit_wait_s=1)
    t = backend.tracking
    rid = t.create_run(doomed, user_id="u", actor="user:t").run_id  # the gateway is down
    t.log_params(rid, {"p": 1}, actor="user:t")
    with contextlib.closing(bootstrap(settings)) as b:  # meanwhile, someone deletes it
        b.tracking.execute(tc.DeleteExperiment(experiment_id=doomed), actor="user:t")
    g = GatewayThread(settings, port=int(url.rsplit(":", 1)[1])).start()
    try:
        with pytest.raises(
            Conflict, match=f"the start of run {rid}, made .* was refused: .*is deleted"
        ):
            backend.refresh()
        backend.refresh()  # said once
        assert backend.shipper.pending() == 0
        lines = (folder_for(spool_dir, url) / "refused.jsonl").read_text().splitlines()
        start, params = (json.loads(line) for line in lines)
        assert start["run.start"]["run"]["run_id"] == rid and "is deleted" in start["reason"]
        assert params["event"]["type"] == "run.params_logged"
        assert params["reason"].startswith(f"run {rid} was not started")
        with pytest.raises(NotFound):
            backend.queries.get_run(rid)
    finally:
        backend.close()
        g.stop()


JOB = textwrap.dedent("""
    import sys
    import ledgerflow as lf

    lf.set_experiment("offline-job")
    with lf.start_run(run_name="job") as run:
        lf.log_params({"lr": 0.1, "epochs": 3})
        for step in range(300):
            lf.log_metric("loss", 1.0 / (step + 1), step=step)
        lf.log_text("weights", "model/weights.txt")
    print(run.info.run_id, run.info.experiment_id, run.info.artifact_uri or "-", flush=True)
    sys.stdin.readline()  # the gateway is started meanwhile; at exit the spool ships
""")


def test_a_job_process_runs_through_with_no_gateway_and_its_run_arrives_once_it_starts(
    data_dir, spool_dir, tmp_path
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = python_env() | {"LEDGERFLOW_TRACKING_URI": url, "LEDGERFLOW_SPOOL_DIR": str(spool_dir)}
    job = subprocess.Popen(
        [PYTHON, "-c", JOB], env=env, cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert job.stdout is not None and job.stdin is not None
    line = job.stdout.readline().split()
    assert len(line) == 3, job.stderr.read() if job.stderr else ""
    run_id, experiment_id, artifact_uri = line
    assert experiment_id == "pending:offline-job" and artifact_uri == "-"
    gateway = GatewayProcess(data_dir, tmp_path / "gateway.log", port=port).start()
    try:
        job.stdin.write("go\n")
        job.stdin.close()
        assert job.wait(60) == 0
        c = lf.Client(url)
        run = c.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1", "epochs": "3"}
        assert c.get_experiment(run.info.experiment_id).name == "offline-job"
        assert len(c.get_metric_history(run_id, "loss")) == 300
        local = c.download_artifacts(run_id, "model/weights.txt", tmp_path)
        assert Path(local).read_text() == "weights"
        assert len(c.search_runs(["offline-job"])) == 1
    finally:
        session.reset()
        gateway.stop()
    with contextlib.closing(bootstrap(load_settings(tracking_uri=str(data_dir)))) as b:
        assert _starts(b) == {run_id: 1} and b.projector.dead_letters() == []
    assert _spool_files(spool_dir) == []


def test_register_model_with_the_gateway_down_says_what_it_needs_and_works_once_it_is_up(
    data_dir, spool_dir, monkeypatch
):
    monkeypatch.setenv("LEDGERFLOW_GATEWAY_WAIT_S", "2")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lf.set_tracking_uri(url)
    g = GatewayThread(load_settings(tracking_uri=str(data_dir)), port=port)
    try:
        with lf.start_run() as run:  # started, and its model logged, in the spool
            lf.log_text("weights", "model/weights.txt")
        model_uri = f"runs:/{run.info.run_id}/model"
        began = time.monotonic()
        with pytest.raises(Unavailable) as e:
            lf.register_model(model_uri, "offline-model")
        assert 2 <= time.monotonic() - began < 15
        message = str(e.value)
        assert message.startswith("register_model('offline-model') needs the gateway's answer")
        assert re.search(rf"cannot reach the Ledgerflow gateway at {url} in \d+ s", message)
        assert "LEDGERFLOW_GATEWAY_WAIT_S" in message and "stays in the spool" in message
        g.start()
        version = lf.register_model(model_uri, "offline-model")
        assert version.version == 1 and version.run_id == run.info.run_id
        assert lf.Client().get_run(run.info.run_id).info.experiment_id == "0"  # Default
    finally:
        session.reset()
        g.stop()
