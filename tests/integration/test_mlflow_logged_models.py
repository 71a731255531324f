"""MLflow 3 logged models on `ledgerflow server`: the real `mlflow` client's `log_model`,
`search_logged_models`, tags and params, `models:/<model_id>` loading, and the run's
outputs, all kept as events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from ledgerflow.events.sqlite_log import SQLiteEventLog
from tests.integration.gateway_fixture import GatewayProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("mlflow-logged-models")
    s = GatewayProcess(root / "data", root / "server.log", command="server").start()
    yield s
    s.stop()


@pytest.fixture
def client(server: GatewayProcess) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(server.url)
    yield MlflowClient(tracking_uri=server.url)
    mlflow.set_tracking_uri(None)


REQUIREMENTS = ["scikit-learn"]
"""Given, so MLflow does not infer them (which imports every framework installed)."""


def _experiment() -> str:
    return mlflow.set_experiment(f"logged-models-{uuid.uuid4().hex[:8]}").experiment_id


def _tiny() -> LinearRegression:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    return LinearRegression().fit(x, 2 * x[:, 0] + 1)


def test_a_model_logged_in_a_run_is_ready_with_its_files_and_is_the_runs_output(
    client: MlflowClient,
) -> None:
    exp = _experiment()
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("acc", 0.75)
        info = mlflow.sklearn.log_model(_tiny(), name="model", pip_requirements=REQUIREMENTS)
    model = client.get_logged_model(info.model_id)
    assert model.status == LoggedModelStatus.READY
    assert (model.name, model.source_run_id, model.experiment_id) == ("model", run.info.run_id, exp)
    assert model.model_id.startswith("m-") and info.model_uri == f"models:/{model.model_id}"
    assert model.artifact_location == f"mlflow-artifacts:/{exp}/models/{model.model_id}/artifacts"
    assert model.params["alpha"] == "0.5"
    # the client copies the run's points of the step to the model: the run keeps one
    assert [(m.key, m.value, m.run_id) for m in model.metrics] == [("acc", 0.75, run.info.run_id)]
    assert len(client.get_metric_history(run.info.run_id, "acc")) == 1
    files = {f.path for f in client.list_logged_model_artifacts(model.model_id)}
    assert {"MLmodel", "requirements.txt"} <= files and any(f.startswith("model.") for f in files)
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(model.model_id, 0)]
    found = client.search_runs([exp])[0]
    assert [o.model_id for o in found.outputs.model_outputs] == [model.model_id]


def test_a_logged_model_loads_from_its_models_uri_and_predicts(client: MlflowClient) -> None:
    _experiment()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(_tiny(), name="model", pip_requirements=REQUIREMENTS)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert loaded.predict(np.array([[10.0]]))[0] == pytest.approx(21.0)


def test_a_model_whose_upload_failed_is_upload_failed(client: MlflowClient) -> None:
    _experiment()

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context: object, model_input: list[str]) -> list[str]:
            return model_input

    with mlflow.start_run(), pytest.raises(MlflowException):
        mlflow.pyfunc.log_model(
            name="broken",
            python_model=Broken(),
            artifacts={"missing": "/no/such/file"},
            pip_requirements=REQUIREMENTS,
        )
    model_id = mlflow.last_logged_model().model_id
    assert client.get_logged_model(model_id).status == LoggedModelStatus.FAILED
    r = httpx.get(f"{mlflow.get_tracking_uri()}/api/2.0/mlflow/logged-models/{model_id}")
    assert r.json()["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"


def test_search_finds_logged_models_by_name_run_status_and_tags_in_order(
    client: MlflowClient,
) -> None:
    exp = _experiment()
    run = client.create_run(exp)
    rid = run.info.run_id
    a = client.create_logged_model(exp, name="alpha", source_run_id=rid, tags={"team": "cv"})
    b = client.create_logged_model(exp, name="beta", tags={"team": "nlp"})
    c = client.create_logged_model(exp, name="alpha", params={"lr": "0.1"})
    client.finalize_logged_model(a.model_id, LoggedModelStatus.READY)

    def ids(filter_string: str | None = None, **kw: object) -> list[str]:
        found = client.search_logged_models([exp], filter_string=filter_string, **kw)  # type: ignore[arg-type]
        return [m.model_id for m in found]

    assert ids() == [c.model_id, b.model_id, a.model_id]  # newest first
    assert ids("name = 'alpha'") == [c.model_id, a.model_id]
    assert ids(f"source_run_id = '{rid}'") == [a.model_id]
    assert ids("status = 'READY'") == [a.model_id]
    assert ids("tags.team = 'nlp'") == [b.model_id]
    assert ids("params.lr = '0.1'") == [c.model_id]
    assert ids("name LIKE 'al%' AND status = 'PENDING'") == [c.model_id]
    order = [{"field_name": "name", "ascending": True}, {"field_name": "creation_timestamp"}]
    assert ids(order_by=order) == [a.model_id, c.model_id, b.model_id]
    first = client.search_logged_models([exp], max_results=2)
    rest = client.search_logged_models([exp], max_results=2, page_token=first.token)
    assert [m.model_id for m in [*first, *rest]] == ids() and rest.token is None
    point = Metric("acc", 0.9, 1, 0, model_id=b.model_id, dataset_name="d", dataset_digest="x")
    client.log_batch(rid, metrics=[point])
    assert ids("metrics.acc > 0.5") == [b.model_id]
    assert client.get_metric_history(rid, "acc")[0].value == 0.9  # the run has it too
    with pytest.raises(MlflowException, match="ordering logged models by a metric"):
        ids(order_by=[{"field_name": "metrics.acc"}])


def test_register_models_lookup_of_a_runs_model_finds_it_through_search(
    client: MlflowClient,
) -> None:
    from mlflow.tracking._model_registry.fluent import _get_logged_models_from_run

    _experiment()
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(_tiny(), name="model", pip_requirements=REQUIREMENTS)
    found = _get_logged_models_from_run(client.get_run(run.info.run_id), "model")
    assert [m.model_id for m in found] == [info.model_id]
    # the run itself holds no files at "model": MLflow then registers models:/<model_id>
    listed = httpx.get(
        f"{mlflow.get_tracking_uri()}/api/2.0/mlflow/artifacts/list",
        params={"run_id": run.info.run_id, "path": "model"},
    ).json()
    assert "files" not in listed
    # and MLflow's client finds the model's files through the run's URI
    files = {f.path for f in client.list_artifacts(run.info.run_id, "model")}
    assert "model/MLmodel" in files


def test_tags_and_params_of_a_logged_model_change_by_events(
    client: MlflowClient, server: GatewayProcess
) -> None:
    exp = _experiment()
    model = client.create_logged_model(exp, name="m", tags={"a": "1"}, params={"p": "x"})
    client.set_logged_model_tags(model.model_id, {"b": "2", "a": "3"})
    client.delete_logged_model_tag(model.model_id, "b")
    client.log_model_params(model.model_id, {"q": "y"})
    got = client.get_logged_model(model.model_id)
    assert got.tags == {"a": "3"} and got.params == {"p": "x", "q": "y"}
    with pytest.raises(MlflowException, match="already"):
        client.log_model_params(model.model_id, {"p": "changed"})
    with pytest.raises(MlflowException, match="No tag"):
        client.delete_logged_model_tag(model.model_id, "nope")
    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException, match="not found"):
        client.get_logged_model(model.model_id)
    assert client.search_logged_models([exp]) == []

    log = SQLiteEventLog(server.data_dir / "events.db")
    try:
        types = [
            r.event.type for r in log.read() if r.event.stream == f"logged_model:{model.model_id}"
        ]
    finally:
        log.close()
    assert types == [
        "logged_model.created", "logged_model.tags_set", "logged_model.tag_deleted",
        "logged_model.params_logged", "logged_model.deleted",
    ]  # fmt: skip


def test_files_put_under_a_logged_models_root_are_recorded_and_served(
    client: MlflowClient, tmp_path: Path
) -> None:
    exp = _experiment()
    model = client.create_logged_model(exp, name="files")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.txt").write_text("weights")
    client.log_model_artifacts(model.model_id, str(tmp_path / "m"))
    assert [f.path for f in client.list_logged_model_artifacts(model.model_id)] == ["w.txt"]
    out = mlflow.artifacts.download_artifacts(
        f"{model.artifact_location}/w.txt", dst_path=str(tmp_path / "o")
    )
    assert Path(out).read_text() == "weights"


def test_a_metric_of_a_model_logged_in_a_run_makes_the_model_the_runs_input(
    client: MlflowClient, server: GatewayProcess
) -> None:
    exp = _experiment()
    model = client.create_logged_model(exp, name="used")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.25, model_id=model.model_id)
    got = client.get_run(run.info.run_id)
    assert [m.model_id for m in got.inputs.model_inputs] == [model.model_id]
    assert [m.key for m in client.get_logged_model(model.model_id).metrics] == ["loss"]
    datasets = {"run_id": run.info.run_id, "datasets": [{"dataset": {"name": "d"}}]}
    r = httpx.post(f"{server.url}/api/2.0/mlflow/runs/log-inputs", json=datasets)
    assert r.status_code == 400 and "digest" in r.json()["message"]
    datasets["datasets"][0]["dataset"]["digest"] = "abc"
    r = httpx.post(f"{server.url}/api/2.0/mlflow/runs/log-inputs", json=datasets)
    assert r.status_code == 200, r.text
    inputs = client.get_run(run.info.run_id).inputs
    assert [d.dataset.digest for d in inputs.dataset_inputs] == ["abc"]
    assert [m.model_id for m in inputs.model_inputs] == [model.model_id]
