"""MLflow's artifact API on `ledgerflow server`: the real `mlflow` client logs, lists and
downloads a run's files through the gateway's artifact proxy, and reads files logged by
Ledgerflow's own SDK."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

import ledgerflow as lf
from ledgerflow import session
from tests.integration.gateway_fixture import GatewayProcess

ARTIFACTS = "/api/2.0/mlflow-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("mlflow-artifacts")
    # request bodies above 2 MB are refused, but artifact uploads stream past the limit
    env = {"LEDGERFLOW_MAX_REQUEST_MB": "2"}
    s = GatewayProcess(root / "data", root / "server.log", command="server", env=env).start()
    yield s
    s.stop()


@pytest.fixture
def client(server: GatewayProcess) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(server.url)
    yield MlflowClient(tracking_uri=server.url)
    mlflow.set_tracking_uri(None)


def _run(client: MlflowClient) -> tuple[str, str]:
    exp = client.create_experiment(f"artifacts-{uuid.uuid4().hex[:8]}")
    return exp, client.create_run(exp).info.run_id


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_logged_with_log_artifact_and_log_artifacts_are_listed_and_downloaded(
    client: MlflowClient, tmp_path: Path
) -> None:
    exp, run_id = _run(client)
    single = tmp_path / "notes.txt"
    single.write_text("hello")
    folder = tmp_path / "folder"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "deep" / "b.bin").write_bytes(os.urandom(3000))
    client.log_artifact(run_id, str(single))
    client.log_artifacts(run_id, str(folder), artifact_path="data")

    root = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in root] == [("data", True), ("notes.txt", False)]
    assert root[1].file_size == 5
    data = client.list_artifacts(run_id, "data")
    assert [(f.path, f.is_dir, f.file_size) for f in data] == [
        ("data/a.csv", False, 8),
        ("data/deep", True, None),
    ]
    assert client.list_artifacts(run_id, "missing") == []

    got = Path(client.download_artifacts(run_id, "notes.txt", str(tmp_path / "one")))
    assert got.read_text() == "hello"
    whole = Path(client.download_artifacts(run_id, "data", str(tmp_path / "two")))
    assert _tree(whole) == _tree(folder)
    assert client.get_run(run_id).info.artifact_uri == f"mlflow-artifacts:/{exp}/{run_id}/artifacts"


def test_uploads_are_recorded_on_the_run_as_the_native_api_records_them(
    client: MlflowClient, server: GatewayProcess, tmp_path: Path
) -> None:
    _, run_id = _run(client)
    file = tmp_path / "weights.bin"
    file.write_bytes(os.urandom(1000))
    client.log_artifact(run_id, str(file), artifact_path="model")
    entries = httpx.get(f"{server.url}/api/v1/runs/{run_id}/artifacts/entries").json()
    assert entries == [{"path": "model/weights.bin", "size": 1000, "sha256": _sha(file)}]


def test_mlflows_artifacts_list_endpoint_names_files_from_the_runs_root(
    client: MlflowClient, server: GatewayProcess, tmp_path: Path
) -> None:
    exp, run_id = _run(client)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("abc")
    client.log_artifacts(run_id, str(tmp_path / "d"), artifact_path="sub")
    answer = httpx.get(
        f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "sub"}
    ).json()
    assert answer == {
        "root_uri": f"mlflow-artifacts:/{exp}/{run_id}/artifacts",
        "files": [{"path": "sub/f.txt", "is_dir": False, "file_size": 3}],
    }


def test_a_run_logged_by_ledgerflows_sdk_is_read_by_mlflows_client(
    client: MlflowClient, server: GatewayProcess, tmp_path: Path, spool_dir: Path
) -> None:
    lf.set_tracking_uri(server.url)
    try:
        lf.set_experiment(f"sdk-{uuid.uuid4().hex[:8]}")
        with lf.start_run() as run:
            lf.log_text("from ledgerflow", "reports/summary.txt")
            lf.log_dict({"k": 1}, "reports/config.json")
    finally:
        session.reset()
    run_id = run.info.run_id
    listed = client.list_artifacts(run_id, "reports")
    assert [f.path for f in listed] == ["reports/config.json", "reports/summary.txt"]
    folder = Path(client.download_artifacts(run_id, "reports", str(tmp_path / "out")))
    assert (folder / "summary.txt").read_text() == "from ledgerflow"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/reports/config.json") == {"k": 1}


def test_multipart_uploads_answer_501_and_a_large_file_still_uploads_in_one_put(
    client: MlflowClient,
    server: GatewayProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exp, run_id = _run(client)
    for step in ("create", "complete", "abort"):
        r = httpx.post(
            f"{server.url}{ARTIFACTS}/mpu/{step}/{exp}/{run_id}/artifacts/big.bin",
            json={"path": "big.bin", "num_parts": 2},
        )
        assert r.status_code == 501 and r.json()["error_code"] == "NOT_IMPLEMENTED"
    # make the client try multipart first: it falls back to one PUT
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1024")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    client.log_artifact(run_id, str(big))
    back = Path(client.download_artifacts(run_id, "big.bin", str(tmp_path / "back")))
    assert _sha(back) == _sha(big)
    # other bodies that large are refused: the upload went past the server's limit
    r = httpx.post(f"{server.url}/api/2.0/mlflow/runs/log-batch", content=b" " * (3 << 20))
    assert r.status_code == 413


def test_deleting_an_artifact_is_refused_and_the_file_stays(
    client: MlflowClient, server: GatewayProcess, tmp_path: Path
) -> None:
    exp, run_id = _run(client)
    (tmp_path / "keep.txt").write_text("keep")
    client.log_artifact(run_id, str(tmp_path / "keep.txt"))
    r = httpx.delete(f"{server.url}{ARTIFACTS}/artifacts/{exp}/{run_id}/artifacts/keep.txt")
    assert r.status_code == 501 and "no event removes one" in r.json()["message"]
    assert [f.path for f in client.list_artifacts(run_id)] == ["keep.txt"]


def test_paths_outside_a_run_or_a_wrong_run_are_refused_with_mlflows_errors(
    client: MlflowClient, server: GatewayProcess
) -> None:
    exp, run_id = _run(client)
    r = httpx.put(f"{server.url}{ARTIFACTS}/artifacts/{exp}/elsewhere.txt", content=b"x")
    assert r.status_code == 501 and r.json()["error_code"] == "NOT_IMPLEMENTED"
    r = httpx.put(f"{server.url}{ARTIFACTS}/artifacts/{exp}/nope/artifacts/a.txt", content=b"x")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = httpx.get(f"{server.url}{ARTIFACTS}/artifacts/{exp}/{run_id}/artifacts/absent.txt")
    assert r.status_code == 404
    r = httpx.get(f"{server.url}{ARTIFACTS}/artifacts", params={"path": f"{exp}/../x/artifacts"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_with_auth_on_reading_needs_read_and_uploading_or_changing_models_needs_edit(
    tmp_path: Path,
) -> None:
    from tests.integration.test_auth_gateway import PASSWORD, basic, running_world

    with running_world(tmp_path / "data") as world:
        url, exp, run = world.gateway.url, world.experiment, world.run
        file = f"{url}{ARTIFACTS}/artifacts/{exp}/{run}/artifacts/f.txt"
        listing = f"{url}{ARTIFACTS}/artifacts"
        models = f"{url}/api/2.0/mlflow/logged-models"

        def as_(user: str) -> dict[str, str]:
            return basic(user, PASSWORD)

        assert httpx.put(file, content=b"x").status_code == 401
        assert httpx.put(file, content=b"x", headers=as_("reader")).status_code == 403
        assert httpx.put(file, content=b"x", headers=as_("editor")).status_code == 200
        params = {"path": f"{exp}/{run}/artifacts"}
        assert httpx.get(listing, params=params, headers=as_("nobody")).status_code == 403
        files = httpx.get(listing, params=params, headers=as_("reader")).json()["files"]
        assert files == [{"path": "f.txt", "is_dir": False, "file_size": 1}]
        assert httpx.get(file, headers=as_("nobody")).status_code == 403
        assert httpx.get(file, headers=as_("reader")).content == b"x"

        body = {"experiment_id": exp, "name": "m"}
        assert httpx.post(models, json=body, headers=as_("reader")).status_code == 403
        model = httpx.post(models, json=body, headers=as_("editor")).json()["model"]
        one = f"{models}/{model['info']['model_id']}"
        assert httpx.get(one, headers=as_("nobody")).status_code == 403
        assert httpx.get(one, headers=as_("reader")).status_code == 200
        key = f"{exp}/models/{model['info']['model_id']}/artifacts/w.bin"
        put = f"{url}{ARTIFACTS}/artifacts/{key}"
        assert httpx.put(put, content=b"w", headers=as_("reader")).status_code == 403
        assert httpx.put(put, content=b"w", headers=as_("editor")).status_code == 200
        assert httpx.request("DELETE", one, json={}, headers=as_("editor")).status_code == 403
        assert httpx.request("DELETE", one, json={}, headers=as_("manager")).status_code == 200
