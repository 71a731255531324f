"""`ledgerflow serve` as a real process: a registered model by alias over REST and gRPC, and a
bundle folder; readiness first, a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

import ledgerflow as lf
from tests.conftest import PYTHON, free_port
from tests.e2e.test_cli import cli_env
from tests.metrics_text import sample

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 90.0


@contextmanager
def serving(
    data_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """The server's URL once /ping answers 200; SIGTERM must then stop it gracefully."""
    with serving_all(data_dir, (log, args), env=env) as [url]:
        yield url


@contextmanager
def serving_all(
    data_dir: Path, *servers: tuple[Path, Sequence[str]], env: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """Several `ledgerflow serve` processes (log, args), started side by side; their URLs
    once each /ping answers 200. SIGTERM must then stop each gracefully."""
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for log, args in servers:
            port = free_port()
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [PYTHON, "-m", "ledgerflow.cli", "serve", "-p", str(port), *args],
                    env=cli_env(data_dir) | (env or {}), stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            procs.append((proc, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + START_TIMEOUT_S
        for proc, url, log in procs:
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"ledgerflow serve exited with {proc.returncode}:\n{log.read_text()}"
                    )
                try:
                    if httpx.get(url + "/ping", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"ledgerflow serve never got ready:\n{log.read_text()}")
                time.sleep(0.1)
        yield [url for _, url, _ in procs]
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _, log in procs:
            assert proc.wait(30) in (0, -signal.SIGTERM), log.read_text()  # uvicorn re-raises it
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def digits(tracking: Path) -> tuple[Any, np.ndarray, Path]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    with lf.start_run():
        lf.sklearn.log_model(
            model, name="model", input_example=x[:2], registered_model_name="digits"
        )
    lf.Client().set_registered_model_alias("digits", "champion", 1)
    return model, x, tracking


def test_a_registered_model_is_served_by_alias_over_rest_and_grpc(
    digits: tuple[Any, np.ndarray, Path], tmp_path: Path
) -> None:
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    model, x, data_dir = digits
    grpc_port = free_port()
    args = (
        "-m",
        "models:/digits@champion",
        "--grpc-port",
        str(grpc_port),
        "--max-batch-size",
        "32",
    )
    with serving(data_dir, tmp_path / "serve.log", *args) as url:
        r = httpx.post(url + "/invocations", json={"inputs": x[:4].tolist()})
        assert r.status_code == 200 and r.json() == {"predictions": model.predict(x[:4]).tolist()}
        r = httpx.post(url + "/invocations", json={"inputs": [[1, 2]]})
        assert r.status_code == 400 and "shape" in r.json()["message"]
        meta = httpx.get(url + "/v2/models/digits").json()
        assert meta["versions"] == ["1"]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerReady(pb.ServerReadyRequest()).ready
            t = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[2, 64])
            t.contents.fp64_contents.extend(x[:2].ravel().tolist())
            out = stub.ModelInfer(pb.ModelInferRequest(model_name="digits", inputs=[t]))
            assert list(out.outputs[0].contents.int64_contents) == model.predict(x[:2]).tolist()
        metrics = httpx.get(url + "/metrics").text
        labels = {"model": "digits", "version": "1", "variant": "", "protocol": "grpc"}
        assert sample(metrics, "ledgerflow_serving_requests_total", **labels) == 1


def test_with_auth_a_model_answers_only_those_who_may_read_it_over_rest_and_grpc(
    digits: tuple[Any, np.ndarray, Path], tmp_path: Path
) -> None:
    from ledgerflow.events import auth_commands as ac
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    model, x, data_dir = digits
    backend = bootstrap(load_settings(tracking_uri=str(data_dir)))
    try:
        for user in ("nobody", "reader"):
            backend.auth.execute(ac.CreateUser(name=user, password="password-123"), actor="t")
        grant = ac.SetPermission(kind="model", key="digits", principal="user:reader", level="READ")
        backend.auth.execute(grant, actor="t")
        token = backend.auth.execute(ac.CreateToken(user="reader"), actor="t").token
        other = backend.auth.execute(ac.CreateToken(user="nobody"), actor="t").token
    finally:
        backend.close()
    reader, nobody = f"Bearer {token}", f"Bearer {other}"
    grpc_port = free_port()
    args = ("-m", "models:/digits@champion", "--auth", "--grpc-port", str(grpc_port))
    env = {"LEDGERFLOW_AUTH_DEFAULT": "NO_PERMISSIONS"}
    with serving(data_dir, tmp_path / "auth.log", *args, env=env) as url:  # /ping: anyone
        body = {"inputs": x[:2].tolist()}
        anonymous = httpx.post(url + "/invocations", json=body)
        assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
        assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
        denied = httpx.post(url + "/invocations", json=body, headers={"Authorization": nobody})
        assert denied.status_code == 403 and "READ on model 'digits'" in denied.json()["message"]
        ok = httpx.post(url + "/invocations", json=body, headers={"Authorization": reader})
        assert ok.json() == {"predictions": model.predict(x[:2]).tolist()}
        assert httpx.get(url + "/v2/models/digits").status_code == 401
        meta = httpx.get(url + "/v2/models/digits", headers={"Authorization": reader})
        assert meta.json()["versions"] == ["1"]
        tf_url = url + "/v1/models/digits:predict"  # TF Serving's REST API, in its error shape
        rows = {"instances": x[:2].tolist()}
        for auth, code in ((None, 401), (nobody, 403), (reader, 200)):
            headers = {"Authorization": auth} if auth else {}
            r = httpx.post(tf_url, json=rows, headers=headers)
            assert r.status_code == code, r.text
            assert list(r.json()) == (["predictions"] if code == 200 else ["error"])
        assert httpx.get(url + "/v1/models/digits/metadata").status_code == 401
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerReady(pb.ServerReadyRequest()).ready
            t = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[2, 64])
            t.contents.fp64_contents.extend(x[:2].ravel().tolist())
            request = pb.ModelInferRequest(model_name="digits", inputs=[t])
            for metadata, code in (
                (None, grpc.StatusCode.UNAUTHENTICATED),
                ((("authorization", nobody),), grpc.StatusCode.PERMISSION_DENIED),
            ):
                with pytest.raises(grpc.RpcError) as e:
                    stub.ModelInfer(request, metadata=metadata)
                assert e.value.code() == code
            out = stub.ModelInfer(request, metadata=(("authorization", reader),))
            assert list(out.outputs[0].contents.int64_contents) == model.predict(x[:2]).tolist()


def test_a_bundle_folder_is_served_with_its_runtime(
    digits: tuple[Any, np.ndarray, Path], tmp_path: Path
) -> None:
    from ledgerflow.workers.bundles.build import BuildRequest, build_bundle

    model, x, data_dir = digits
    source = tmp_path / "model"
    lf.sklearn.save_model(model, source, input_example=x[:2])
    out = tmp_path / "bundle"
    built = build_bundle(
        BuildRequest("b1", "digits", 1, "onnx", "models:/digits/1", str(source), str(out))
    )
    assert "manifest" in built, built
    with serving(data_dir, tmp_path / "bundle.log", "-m", str(out), "--name", "onnx-digits") as url:
        r = httpx.post(url + "/invocations", json={"inputs": x[:3].tolist()})
        assert r.status_code == 200 and r.json() == {"predictions": model.predict(x[:3]).tolist()}
        assert httpx.get(url + "/v2/models/onnx-digits").json()["platform"] == "onnxruntime_onnx"


def test_a_model_that_cannot_be_loaded_stops_the_server_with_the_reason(
    tracking: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    result = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "serve", "-m", str(missing), "-p", str(free_port())],
        env=cli_env(tracking), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "no-such-model" in result.stderr and "Traceback" not in result.stderr
