"""The whole MLflow workflow with MLflow's own client and CLI against `ledgerflow server`,
and the model it registered served by Ledgerflow and by `mlflow models serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ledgerflow as lf
from tests.conftest import PYTHON, ROOT, free_port, python_env
from tests.e2e.test_serve_process import serving
from tests.integration.gateway_fixture import GatewayProcess

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "tests" / "e2e" / "scripts" / "mlflow_workflow.py"
MLFLOW = Path(PYTHON).parent / "mlflow"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("mlflow-workflow")
    s = GatewayProcess(root / "data", root / "server.log", command="server").start()
    yield s
    s.stop()


def mlflow_env(server: GatewayProcess) -> dict[str, str]:
    """A child's environment: this server, and no MLflow state of the test process."""
    env = {k: v for k, v in python_env().items() if not k.startswith("MLFLOW_")}
    return env | {"MLFLOW_TRACKING_URI": server.url}


@pytest.fixture(scope="module")
def workflow(server: GatewayProcess) -> dict[str, Any]:
    name = f"iris-{uuid.uuid4().hex[:8]}"
    env = mlflow_env(server)
    done = subprocess.run(
        [PYTHON, str(SCRIPT), name], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Encountered unexpected error" not in done.stderr, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"name": name}


def test_autolog_register_alias_and_load_by_alias_work_unchanged(workflow: dict[str, Any]) -> None:
    assert workflow["version"] == "1"
    assert len(workflow["predictions"]) == 5
    assert "max_iter" in workflow["params"]
    assert "training_accuracy_score" in workflow["metrics"]
    assert workflow["datasets"]  # autolog's training set, as a run input
    assert len(workflow["outputs"]) == 1  # the autologged model, as the run's output


def test_the_version_mlflow_registered_is_ledgerflows_too(
    server: GatewayProcess, workflow: dict[str, Any], tmp_path: Path
) -> None:
    client = lf.Client(tracking_uri=server.url)
    version = client.get_model_version(workflow["name"], 1)
    assert version.run_id == workflow["run_id"]
    assert client.get_model_version_by_alias(workflow["name"], "champion").version == 1
    uri = f"models:/{workflow['name']}@champion"
    with serving(server.data_dir, tmp_path / "serve.log", "-m", uri) as url:
        answer = httpx.post(f"{url}/invocations", json={"inputs": workflow["inputs"]}).json()
    assert [int(p) for p in answer["predictions"]] == workflow["predictions"]


def test_mlflow_models_serve_serves_the_model_by_its_alias(
    server: GatewayProcess, workflow: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    path = f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # its uvicorn
    env = mlflow_env(server) | {"PATH": path}
    uri = f"models:/{workflow['name']}@champion"
    log = tmp_path / "mlflow-serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MLFLOW), "models", "serve", "-m", uri, "-p", str(port), "--env-manager",
             "local", "--host", "127.0.0.1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        answer = httpx.post(f"{url}/invocations", json={"inputs": workflow["inputs"]}).json()
        assert [int(p) for p in answer["predictions"]] == workflow["predictions"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its uvicorn is in its process group
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
