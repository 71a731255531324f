"""A backend whose artifacts live in S3: settings -> bootstrap -> SDK -> bucket and back."""

import uuid
from pathlib import Path

import pytest
from minio import Minio

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.settings import load_settings
from ledgerflow.services.artifacts.s3 import S3ArtifactStore
from ledgerflow.services.bootstrap import bootstrap
from tests.integration.s3_fixture import S3Endpoint

BUCKET = f"lf-backend-{uuid.uuid4().hex[:8]}"


def use_s3(monkeypatch: pytest.MonkeyPatch, ep: S3Endpoint, prefix: str) -> None:
    monkeypatch.setenv("LEDGERFLOW_ARTIFACTS", f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv("LEDGERFLOW_S3_ENDPOINT", ep.url)
    monkeypatch.setenv("LEDGERFLOW_S3_ACCESS_KEY", ep.access_key)
    monkeypatch.setenv("LEDGERFLOW_S3_SECRET_KEY", ep.secret_key)


class Double(pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * x for x in model_input]


def test_artifacts_logged_through_the_sdk_land_in_the_bucket_and_download_back(
    monkeypatch, s3_endpoint, tracking, tmp_path
):
    use_s3(monkeypatch, s3_endpoint, "team")
    (tmp_path / "model.txt").write_text("weights")
    folder = tmp_path / "plots"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "deep" / "b.bin").write_bytes(bytes(range(256)) * 1000)

    with lf.start_run() as run:
        lf.log_artifact(tmp_path / "model.txt")
        lf.log_artifacts(folder, "plots")
        lf.log_text("hello", "notes/hello.txt")
    run_id, exp_id = run.info.run_id, run.info.experiment_id

    client = lf.Client()
    info = client.get_run(run_id).info
    assert info.artifact_uri == f"s3://{BUCKET}/team/{exp_id}/{run_id}/artifacts"
    listed = {f.path: f.file_size for f in client.list_artifacts(run_id, "plots/deep")}
    assert listed == {"plots/deep/b.bin": 256_000}

    raw = Minio(s3_endpoint.url.split("://")[1], s3_endpoint.access_key,
                s3_endpoint.secret_key, secure=False)  # fmt: skip
    names = {o.object_name for o in raw.list_objects(BUCKET, f"team/{exp_id}/", recursive=True)}
    base = f"team/{exp_id}/{run_id}/artifacts/"
    assert names == {base + p for p in
                     ("model.txt", "plots/a.csv", "plots/deep/b.bin", "notes/hello.txt")}  # fmt: skip
    assert not (tracking / "artifacts").exists()

    out = Path(client.download_artifacts(run_id, "", tmp_path / "back"))
    assert (out / "model.txt").read_text() == "weights"
    assert (out / "plots" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (out / "plots" / "deep" / "b.bin").read_bytes() == bytes(range(256)) * 1000
    assert (out / "notes" / "hello.txt").read_text() == "hello"
    one = Path(client.download_artifacts(run_id, "plots/a.csv", tmp_path / "one"))
    assert one == tmp_path / "one" / "a.csv" and one.read_text() == "x,y\n1,2\n"


def test_a_model_in_s3_loads_back_by_run_and_registry_uri(monkeypatch, s3_endpoint, tracking):
    use_s3(monkeypatch, s3_endpoint, "models")
    with lf.start_run():
        info = pyfunc.log_model(name="double", python_model=Double(), registered_model_name="dbl")
    for uri in (info.model_uri, "models:/dbl/1"):
        assert list(pyfunc.load_model(uri).predict([1, 2])) == [2, 4]


def test_bootstrap_opens_an_s3_store_from_settings(s3_endpoint, tmp_path):
    settings = load_settings(
        tracking_uri=str(tmp_path / "d"), artifacts=f"s3://{BUCKET}/p/q",
        s3_endpoint=s3_endpoint.url, s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key, s3_region="us-east-1",
    )  # fmt: skip
    backend = bootstrap(settings)
    try:
        assert isinstance(backend.artifacts, S3ArtifactStore)
        assert backend.artifacts.uri("k") == f"s3://{BUCKET}/p/q/k"
    finally:
        backend.close()


def test_an_s3_artifact_root_without_an_endpoint_names_the_endpoint_setting(tmp_path):
    settings = load_settings(tracking_uri=str(tmp_path / "d"), artifacts="s3://bucket/x")
    with pytest.raises(InvalidInput, match="set LEDGERFLOW_S3_ENDPOINT") as e:
        bootstrap(settings)
    assert e.value.field == "LEDGERFLOW_S3_ENDPOINT"


@pytest.mark.parametrize(
    ("root", "says"), [("s3://", "names no bucket"), ("gs://b/x", "folder or s3://")]
)
def test_an_artifact_root_that_names_no_usable_store_is_refused(tmp_path, root, says):
    settings = load_settings(tracking_uri=str(tmp_path / "d"), artifacts=root,
                             s3_endpoint="http://127.0.0.1:1")  # fmt: skip
    with pytest.raises(InvalidInput, match=says):
        bootstrap(settings)
