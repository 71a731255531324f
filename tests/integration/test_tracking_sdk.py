"""The tracking SDK on the embedded default, through the fluent API and the Client."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow.entities import Metric, Param, RunTag
from ledgerflow.exceptions import AlreadyExists, Conflict, InvalidInput, NotFound


@pytest.fixture
def client(tracking: Path) -> lf.Client:
    return lf.Client()


def test_the_readme_example_records_everything(tracking: Path, tmp_path: Path, client):
    png = tmp_path / "confusion.png"
    png.write_bytes(b"\x89PNG fake")
    exp = lf.set_experiment("fashion-cnn")
    with lf.start_run(run_name="baseline", tags={"team": "vision"}) as run:
        lf.log_param("epochs", 5)
        lf.log_params({"lr": 0.01, "batch_size": 64})
        for step in range(1000):
            lf.log_metric("loss", 1 / (step + 1), step=step)
        lf.log_metrics({"test_loss": 0.52, "test_accuracy": 0.87})
        lf.set_tag("stage", "dev")
        lf.log_artifact(str(png))
        lf.log_dict({"classes": 10}, "meta/classes.json")
        with lf.start_run(run_name="fold-1", nested=True) as child:
            lf.log_metric("acc", 0.9)
    r = client.get_run(run.info.run_id)
    assert r.info.status == "FINISHED" and r.info.end_time is not None
    assert r.info.experiment_id == exp.experiment_id
    assert r.data.params == {"epochs": "5", "lr": "0.01", "batch_size": "64"}
    assert r.data.metrics == {"loss": 0.001, "test_loss": 0.52, "test_accuracy": 0.87}
    assert r.data.tags["team"] == "vision" and r.data.tags["stage"] == "dev"
    assert r.data.tags["mlflow.runName"] == "baseline"
    assert r.data.tags["mlflow.user"] and r.data.tags["mlflow.source.name"]
    c = client.get_run(child.info.run_id)
    assert c.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert c.data.metrics == {"acc": 0.9} and c.info.status == "FINISHED"

    found = client.search_runs(
        ["fashion-cnn"],
        "metrics.test_accuracy > 0.8 and (params.lr = '0.01' or tags.team = 'vision')",
        order_by=["metrics.test_accuracy DESC"],
        max_results=50,
    )
    assert [x.info.run_id for x in found] == [run.info.run_id]

    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(1000))
    assert history[0].value == 1.0 and history[-1].value == 0.001

    names = {f.path: f for f in client.list_artifacts(run.info.run_id)}
    assert names["confusion.png"].file_size == len(b"\x89PNG fake")
    assert names["meta"].is_dir
    got = Path(client.download_artifacts(run.info.run_id, "meta/classes.json", tmp_path / "dl"))
    assert json.loads(got.read_text()) == {"classes": 10}

    types = [e.event.type for e in lf.subscribe(types=["run.*"], follow=False)]
    assert types.count("run.started") == 2 and types.count("run.finished") == 2
    assert "run.metrics_logged" in types and not any(t.startswith("experiment.") for t in types)


def test_a_run_left_by_an_exception_ends_failed(tracking, client):
    with pytest.raises(ZeroDivisionError), lf.start_run() as run:
        1 / 0  # noqa: B018
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert lf.active_run() is None


def test_a_second_run_without_nested_is_refused(tracking):
    with lf.start_run(), pytest.raises(InvalidInput, match="nested=True"):
        lf.start_run()


def test_an_ended_run_can_be_resumed_by_id(tracking, client):
    with lf.start_run() as run:
        lf.log_metric("m", 1.0, step=0)
    with lf.start_run(run_id=run.info.run_id):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        lf.log_metric("m", 2.0, step=1)
    r = client.get_run(run.info.run_id)
    assert r.info.status == "FINISHED" and r.data.metrics["m"] == 2.0


def test_logging_without_an_active_run_starts_one(tracking, client):
    lf.log_param("p", 1)
    active = lf.active_run()
    assert active is not None
    lf.end_run()
    assert client.get_run(active.info.run_id).data.params == {"p": "1"}


def test_changing_a_param_is_refused_and_names_both_values(tracking, client):
    with lf.start_run() as run:
        lf.log_param("lr", 0.1)
        lf.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(Conflict, match=r"'0\.1'.*'0\.2'"):
            lf.log_param("lr", 0.2)
    assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: lf.log_metric("m", "high"), "must be a number"),
        (lambda: lf.log_metric("m", None), "must be a number"),
        (lambda: lf.log_metric("k" * 251, 1.0), "limit is 250"),
        (lambda: lf.log_metric("bad\nname", 1.0), "not allowed"),
        (lambda: lf.log_metric("m", 1.0, step=0.5), "step must be an integer"),
        (lambda: lf.log_metric("m", 1.0, step=2**64), "does not fit in 64 bits"),
        (lambda: lf.log_metric("m", 10**400), "too large"),
        (lambda: lf.log_metric(["m"], 1.0), "must be a string"),
        (lambda: lf.log_params(["lr", 0.1]), "must be a dict"),
        (lambda: lf.set_tags("team=cv"), "must be a dict"),
        (lambda: lf.log_metrics([("m", 1.0)]), "must be a dict"),
        (
            lambda: lf.Client().log_batch(lf.active_run().info.run_id, [("m", 1.0, 0, 2**70)]),
            "does not fit",
        ),
        (
            lambda: lf.Client().log_batch(lf.active_run().info.run_id, [(["m"], 1.0, 0, 0)]),
            "must be a string",
        ),
        (lambda: lf.log_param("p", "x" * 6001), "limit is 6000"),
        (lambda: lf.log_param("k" * 251, 1), "limit is 250"),
        (lambda: lf.set_tag("t", "x" * 8001), "limit is 8000"),
        (lambda: lf.set_tag("", "x"), "must not be empty"),
        (lambda: lf.log_dict({"x": object()}, "a.json"), "not JSON-serializable"),
        (lambda: lf.log_text("x", "../escape.txt"), "escapes the run's artifact root"),
        (lambda: lf.log_text("x", "/etc/passwd"), "must be relative"),
        (lambda: lf.log_artifact("/no/such/file"), "does not exist"),
    ],
)
def test_bad_input_gets_a_clear_error_and_stores_nothing(tracking, client, call, match):
    with lf.start_run() as run:
        with pytest.raises(InvalidInput, match=match):
            call()
        lf.flush()
    r = client.get_run(run.info.run_id)
    assert r.data.metrics == {} and r.data.params == {}
    assert set(r.data.tags) <= {t for t in r.data.tags if t.startswith("mlflow.")}
    assert client.list_artifacts(run.info.run_id) == []


def test_nan_and_infinities_are_stored_and_returned_as_such(tracking, client):
    with lf.start_run() as run:
        lf.log_metric("m", float("nan"), step=0)
        lf.log_metric("m", float("inf"), step=1)
        lf.log_metric("m", float("-inf"), step=2)
        lf.log_metric("n", float("nan"))
    values = [m.value for m in client.get_metric_history(run.info.run_id, "m")]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]
    assert math.isnan(client.get_run(run.info.run_id).data.metrics["n"])


def test_client_log_batch_takes_entities_and_tuples(tracking, client):
    exp = client.create_experiment("batchy")
    run = client.create_run(exp, run_name="r")
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("a", 1.0, 5, 0), ("a", 2.0, 6, 1)],
        params=[Param("p", "1")],
        tags=[RunTag("t", "v")],
    )
    r = client.get_run(run.info.run_id)
    assert r.data.metrics == {"a": 2.0} and r.data.params == {"p": "1"}
    assert r.data.tags["t"] == "v" and r.info.status == "RUNNING"
    client.set_terminated(run.info.run_id, "KILLED")
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_client_log_batch_logs_all_or_nothing(tracking, client):
    exp = client.create_experiment("atomic batch")
    run = client.create_run(exp, run_name="r")
    rid = run.info.run_id
    assert run.data.tags["mlflow.runName"] == "r" and client.get_run(rid).data == run.data
    client.log_batch(rid, params=[Param("lr", "0.1")])
    with pytest.raises(Conflict, match="lr"):
        client.log_batch(
            rid, metrics=[Metric("loss", 1.0, 5, 0)], params=[Param("lr", "0.2")], tags=[("t", "v")]
        )
    with pytest.raises(InvalidInput, match="loss"):  # a bad metric: its params stay out too
        client.log_batch(rid, metrics=[("loss", "high", 5, 0)], params=[Param("seed", "7")])
    data = client.get_run(rid).data
    assert data.params == {"lr": "0.1"} and data.metrics == {} and "t" not in data.tags
    assert client.get_metric_history(rid, "loss") == []


def test_the_latest_metric_is_the_one_with_the_highest_step(tracking, client):
    with lf.start_run() as run:
        lf.log_metric("m", 5.0, step=10)
        lf.log_metric("m", 7.0, step=3)
    assert client.get_run(run.info.run_id).data.metrics["m"] == 5.0


def test_experiments_are_created_renamed_deleted_and_restored(tracking, client):
    eid = client.create_experiment("exp-a", tags={"owner": "me"})
    with pytest.raises(AlreadyExists, match="exp-a"):
        client.create_experiment("exp-a")
    assert client.get_experiment_by_name("exp-a").tags == {"owner": "me"}
    client.rename_experiment(eid, "exp-b")
    assert client.get_experiment(eid).name == "exp-b"
    assert client.get_experiment_by_name("exp-a") is None
    run = client.create_run(eid)
    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert "exp-b" not in [e.name for e in client.search_experiments()]
    assert "exp-b" in [e.name for e in client.search_experiments(view_type="DELETED_ONLY")]
    assert "exp-b" in [e.name for e in client.search_experiments(view_type="2")]  # MLflow's
    with pytest.raises(InvalidInput, match="run_view_type"):  # a digit to isdigit(), not int()
        client.search_experiments(view_type="\u00b2")
    with pytest.raises(Conflict, match="deleted"):
        client.create_run(eid)
    client.restore_experiment(eid)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
    with pytest.raises(NotFound):
        client.get_experiment("404")


def test_an_experiment_tag_is_deleted_and_a_missing_one_is_named(tracking, client):
    eid = client.create_experiment("tagged", tags={"owner": "me", "team": "cv"})
    client.delete_experiment_tag(eid, "owner")
    assert client.get_experiment(eid).tags == {"team": "cv"}
    with pytest.raises(NotFound, match=f"experiment {eid} has no tag 'owner'"):
        client.delete_experiment_tag(eid, "owner")
    with pytest.raises(NotFound):
        client.delete_experiment_tag("404", "team")


def test_experiments_are_searched_with_the_runs_filter_language(tracking, client):
    for name, team in (("vision-a", "cv"), ("vision-b", "nlp"), ("speech", "cv")):
        client.create_experiment(name, tags={"team": team})

    def names(text: str, order_by: list[str] | None = None) -> list[str]:
        return [e.name for e in client.search_experiments(filter_string=text, order_by=order_by)]

    assert names("name = 'vision-a'") == ["vision-a"]
    assert names("attributes.name LIKE 'vision%'", ["name"]) == ["vision-a", "vision-b"]
    assert names("tags.team = 'cv'", ["name DESC"]) == ["vision-a", "speech"]
    assert names("tags.team = 'nlp' OR name IN ('speech')", ["name"]) == ["speech", "vision-b"]
    assert names("NOT tags.team = 'cv' AND creation_time > 0 AND tags.x IS NULL") == ["vision-b"]
    with pytest.raises(InvalidInput, match="position 14: unknown entity 'metrics'"):
        names("name = 'a' OR metrics.acc > 1")


def test_runs_are_deleted_and_restored_and_refuse_logging_while_deleted(tracking, client):
    with lf.start_run() as run:
        pass
    rid = run.info.run_id
    client.delete_run(rid)
    assert client.search_runs([run.info.experiment_id]) == []
    assert len(client.search_runs([run.info.experiment_id], run_view_type="DELETED_ONLY")) == 1
    with pytest.raises(Conflict, match="deleted"):
        client.log_param(rid, "p", 1)
    client.restore_run(rid)
    client.log_param(rid, "p", 1)
    assert client.get_run(rid).data.params == {"p": "1"}


def test_tags_are_set_and_deleted(tracking, client):
    with lf.start_run() as run:
        lf.set_tags({"a": 1, "b": "two"})
        lf.delete_tag("a")
        with pytest.raises(NotFound, match="no tag 'zzz'"):
            lf.delete_tag("zzz")
    tags = client.get_run(run.info.run_id).data.tags
    assert "a" not in tags and tags["b"] == "two"


def test_metric_history_can_be_downsampled_for_charts(tracking, client):
    with lf.start_run() as run:
        for i in range(5000):
            lf.log_metric("loss", 1.0 if i == 2500 else 0.0, step=i)
    full = client.get_metric_history(run.info.run_id, "loss")
    small = client.get_metric_history(run.info.run_id, "loss", max_points=50)
    assert len(full) == 5000 and len(small) <= 50
    assert small[0].step == 0 and small[-1].step == 4999
    assert any(m.value == 1.0 for m in small)
    with pytest.raises(InvalidInput, match="max_points"):
        client.get_metric_history(run.info.run_id, "loss", max_points=1)
    with pytest.raises(NotFound):
        client.get_metric_history("no-such-run", "loss")


def test_log_artifacts_uploads_a_folder_tree(tracking, client, tmp_path):
    src = tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("bb")
    with lf.start_run() as run:
        lf.log_artifacts(str(src), "results")
        lf.log_text("hello", "notes/readme.md")
    rid = run.info.run_id
    assert [f.path for f in client.list_artifacts(rid)] == ["notes", "results"]
    assert [(f.path, f.file_size) for f in client.list_artifacts(rid, "results/sub")] == [
        ("results/sub/b.txt", 2)
    ]
    out = Path(client.download_artifacts(rid, "results", tmp_path / "dl"))
    assert (out / "sub" / "b.txt").read_text() == "bb" and (out / "a.txt").read_text() == "a"
    with pytest.raises(NotFound):
        client.download_artifacts(rid, "nothing-here", tmp_path / "dl2")


def test_system_tags_record_the_git_commit_of_the_source(tmp_path):
    import subprocess

    from tests.conftest import PYTHON, python_env

    repo = tmp_path / "proj"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@e", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    script = repo / "train.py"
    script.write_text(
        "import ledgerflow as lf\nwith lf.start_run() as r:\n    print(r.info.run_id)\n"
    )
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    data = tmp_path / "data"
    out = subprocess.run(
        [PYTHON, str(script)],
        cwd=repo,
        env=python_env(data),
        capture_output=True,
        text=True,
        check=True,
    )
    tags = lf.Client(str(data)).get_run(out.stdout.strip()).data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.name"] == str(script)


def test_the_experiment_can_come_from_the_environment(tmp_path):
    import subprocess

    from tests.conftest import PYTHON, ROOT, python_env

    data = tmp_path / "data"
    env = python_env(data) | {"LEDGERFLOW_EXPERIMENT_NAME": "from-env"}
    code = "import ledgerflow as lf\nwith lf.start_run() as r:\n    print(r.info.experiment_id)"
    out = subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert lf.Client(str(data)).get_experiment(out.stdout.strip()).name == "from-env"


def test_runs_without_an_experiment_go_to_default(tracking, client):
    with lf.start_run() as run:
        pass
    assert client.get_experiment(run.info.experiment_id).name == "Default"
    assert run.info.experiment_id == "0"


def test_logging_a_metric_to_an_unknown_run_fails_at_the_call(tracking):
    with pytest.raises(NotFound, match="no run with id 'nope'"):
        lf.log_metric("m", 1.0, run_id="nope")


def test_a_client_given_a_backend_works_on_it_not_on_the_sessions(tmp_path: Path, backend):
    from ledgerflow import session

    lf.set_tracking_uri(str(tmp_path / "elsewhere"))
    try:
        c = lf.Client(backend=backend)
        assert c._backend is backend and c.tracking_uri == backend.settings.tracking_uri
        exp_id = c.create_experiment("given")
        rid = c.create_run(exp_id).info.run_id
        c.log_metric(rid, "loss", 0.5)
        c.set_terminated(rid)
        assert backend.queries.get_run(rid).data.metrics == {"loss": 0.5}
        assert lf.get_experiment_by_name("given") is None  # the session's backend is another
        with pytest.raises(InvalidInput, match="a tracking_uri or a backend, not both"):
            lf.Client(str(tmp_path), backend=backend)
    finally:
        session.reset()


def test_resetting_the_session_ends_its_runs_writes_their_points_and_forgets_the_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ledgerflow import session

    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("LEDGERFLOW_TRACKING_URI", str(second))
    lf.set_tracking_uri(str(first))
    lf.set_experiment("kept")
    run = lf.start_run()
    lf.log_metric("loss", 0.25)
    session.reset()
    assert lf.active_run() is None and lf.get_tracking_uri() == str(second)
    got = lf.Client(str(first)).get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics == {"loss": 0.25}
    assert lf.get_experiment_by_name("kept") is None  # the environment's data directory
    session.reset()
