"""MLflow's dataset inputs (`runs/log-inputs`), and what the MLflow API says about the
calls it does not serve, with the real `mlflow` client against `ledgerflow server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

import ledgerflow as lf
from tests.integration.gateway_fixture import GatewayProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root: Path = tmp_path_factory.mktemp("mlflow-datasets")
    s = GatewayProcess(root / "data", root / "server.log", command="server").start()
    yield s
    s.stop()


@pytest.fixture
def client(server: GatewayProcess) -> mlflow.MlflowClient:
    mlflow.set_tracking_uri(server.url)
    return mlflow.MlflowClient(server.url)


def test_a_dataset_logged_as_input_is_on_the_run_with_its_context(
    client: mlflow.MlflowClient, server: GatewayProcess
) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train-set")
    mlflow.set_experiment("datasets-a")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # the same input again: one row
    found = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(found) == 1
    logged = found[0]
    assert logged.dataset.name == "train-set"
    assert logged.dataset.digest == dataset.digest
    assert logged.dataset.source_type == "s3"
    assert "train.csv" in logged.dataset.source
    assert '"x"' in logged.dataset.schema
    assert {t.key: t.value for t in logged.tags} == {"mlflow.data.context": "training"}
    searched = mlflow.search_runs(experiment_names=["datasets-a"], output_format="list")
    assert [r.inputs.dataset_inputs[0].dataset.digest for r in searched] == [dataset.digest]
    # the same event Ledgerflow's own client and subscribers see
    events = lf.Client(tracking_uri=server.url).get_run(run.info.run_id)
    assert events.info.run_id == run.info.run_id


def test_inputs_on_a_missing_run_are_refused_naming_it(client: mlflow.MlflowClient) -> None:
    frame = pd.DataFrame({"x": [1.0]})
    dataset = mlflow.data.from_pandas(frame, name="d")._to_mlflow_entity()
    inputs = [mlflow.entities.DatasetInput(dataset, [])]
    with pytest.raises(MlflowException, match="0" * 32) as e:
        client.log_inputs("0" * 32, inputs)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_an_mlflow_call_ledgerflow_does_not_serve_answers_501_naming_it(
    server: GatewayProcess,
) -> None:
    r = httpx.post(f"{server.url}/api/2.0/mlflow/traces/search", json={})
    assert r.status_code == 501
    assert r.json()["error_code"] == "NOT_IMPLEMENTED"
    assert "POST /api/2.0/mlflow/traces/search" in r.json()["message"]


def test_version_and_server_info_answer_what_mlflow_3_clients_probe(
    server: GatewayProcess,
) -> None:
    version = httpx.get(f"{server.url}/version")
    assert version.status_code == 200 and version.text.startswith("3.")
    info = httpx.get(f"{server.url}/api/3.0/mlflow/server-info").json()
    assert info == {"multipart_uploads_enabled": False, "multipart_downloads_enabled": False}
