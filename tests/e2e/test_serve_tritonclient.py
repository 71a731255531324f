"""tritonclient, the most used Open Inference Protocol client, against real `ledgerflow serve`
processes: HTTP with its defaults (binary tensors both ways), with JSON, with BYTES inputs,
and gRPC (BYTES too); the answers are the predictions MLflow scoring's /invocations gives."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as th

import ledgerflow as lf
from tests.conftest import PYTHON, free_port, python_env
from tests.e2e.test_serve_process import serving_all

pytestmark = pytest.mark.slow


def save_models(folder: Path) -> tuple[np.ndarray, Any]:
    """A digits classifier (64 FP64 features) and a model taking a string column and a
    number column (one BYTES and one FP64 input); the digits and the colors frame."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    x, y = load_digits(return_X_y=True)
    digits = LogisticRegression(max_iter=300).fit(x, y)
    lf.sklearn.save_model(digits, folder / "digits", input_example=x[:2])
    frame = pd.DataFrame({"color": ["red", "blue", "grün", "red"], "x": [0.0, 1.0, 2.0, 3.0]})
    encode = ColumnTransformer([("c", OneHotEncoder(), ["color"])], remainder="passthrough")
    colors = make_pipeline(encode, LogisticRegression()).fit(frame, [0, 1, 1, 0])
    lf.sklearn.save_model(colors, folder / "colors", input_example=frame.head(2))
    return x, frame


def http_input(name: str, array: np.ndarray, datatype: str, binary: bool = True) -> Any:
    t = th.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def test_tritonclient_over_http_and_grpc_gets_the_predictions_invocations_gives(
    tracking: Path, tmp_path: Path
) -> None:
    x, frame = save_models(tmp_path)
    grpc_port, colors_grpc = free_port(), free_port()
    servers = [
        (tmp_path / "digits.log", ["-m", str(tmp_path / "digits"), "--name", "digits",
                                   "--grpc-port", str(grpc_port)]),
        (tmp_path / "colors.log", ["-m", str(tmp_path / "colors"), "--name", "colors",
                                   "--grpc-port", str(colors_grpc)]),
    ]  # fmt: skip
    with serving_all(tracking, *servers) as [digits_url, colors_url]:
        rows = x[:7]
        scored = httpx.post(digits_url + "/invocations", json={"inputs": rows.tolist()})
        want = scored.json()["predictions"]
        client = th.InferenceServerClient(digits_url.removeprefix("http://"))
        try:
            assert client.is_server_ready() and client.is_model_ready("digits")
            meta = client.get_server_metadata()
            assert "binary_tensor_data" in meta["extensions"]
            # defaults: binary input, no outputs named, so every output binary
            result = client.infer("digits", [http_input("input", rows, "FP64")])
            (output,) = result.get_response()["outputs"]
            assert output["parameters"]["binary_data_size"] == 7 * 8
            assert result.as_numpy("predictions").tolist() == want
            for binary_in, binary_out in [(False, False), (True, False), (False, True)]:
                result = client.infer(
                    "digits",
                    [http_input("input", rows, "FP64", binary_in)],
                    outputs=[th.InferRequestedOutput("predictions", binary_data=binary_out)],
                    request_id="r-1",
                )
                (output,) = result.get_response()["outputs"]
                assert ("data" in output) is not binary_out
                assert result.get_response()["id"] == "r-1"
                assert result.as_numpy("predictions").tolist() == want
            with pytest.raises(th.InferenceServerException) as bad:
                client.infer("digits", [http_input("input", x[:2, :8], "FP64")])
            assert "shape" in str(bad.value)
        finally:
            client.close()

        records = frame.to_dict(orient="records")
        scored = httpx.post(colors_url + "/invocations", json={"dataframe_records": records})
        want = scored.json()["predictions"]
        color = np.array([c.encode() for c in frame["color"]], dtype=object)
        client = th.InferenceServerClient(colors_url.removeprefix("http://"))
        try:
            for binary in (True, False):
                inputs = [
                    http_input("color", color, "BYTES", binary),
                    http_input("x", frame["x"].to_numpy(), "FP64", not binary),
                ]
                result = client.infer("colors", inputs)
                assert result.as_numpy("predictions").tolist() == want
        finally:
            client.close()
        columns = [list(frame["color"]), frame["x"].tolist()]
        assert grpc_answer(GRPC_COLORS, colors_grpc, columns) == want  # BYTES over gRPC

        want = httpx.post(digits_url + "/invocations", json={"inputs": rows.tolist()})
        assert grpc_answer(GRPC_CLIENT, grpc_port, rows.tolist()) == want.json()["predictions"]


GRPC_CLIENT = """
import json, sys
import numpy as np
import tritonclient.grpc as tg

rows = np.array(json.loads(sys.argv[2]))
with tg.InferenceServerClient("127.0.0.1:" + sys.argv[1]) as client:
    t = tg.InferInput("input", list(rows.shape), "FP64")
    t.set_data_from_numpy(rows)
    print(json.dumps(client.infer("digits", [t]).as_numpy("predictions").tolist()))
"""


GRPC_COLORS = """
import json, sys
import numpy as np
import tritonclient.grpc as tg

colors, xs = json.loads(sys.argv[2])
with tg.InferenceServerClient("127.0.0.1:" + sys.argv[1]) as client:
    c = tg.InferInput("color", [len(colors)], "BYTES")
    c.set_data_from_numpy(np.array([s.encode() for s in colors], dtype=object))
    x = tg.InferInput("x", [len(xs)], "FP64")
    x.set_data_from_numpy(np.array(xs, dtype=np.float64))
    print(json.dumps(client.infer("colors", [c, x]).as_numpy("predictions").tolist()))
"""


def grpc_answer(script: str, port: int, payload: Any) -> Any:
    """tritonclient.grpc's answer, from a process of its own: its generated modules register
    the same `inference.*` protobuf names as ours, and one process holds one of each."""
    out = subprocess.run(
        [PYTHON, "-c", script, str(port), json.dumps(payload)],
        capture_output=True, text=True, timeout=60, env=python_env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


GRPC_CHECKS = """
import json, sys, threading
import numpy as np
import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException

port, rows = sys.argv[1], np.array(json.loads(sys.argv[2]))
out = {}
with tg.InferenceServerClient("127.0.0.1:" + port) as client:
    out["live"] = client.is_server_live()
    out["ready"] = client.is_server_ready() and client.is_model_ready("digits")
    out["server"] = client.get_server_metadata(as_json=True)["name"]
    meta = client.get_model_metadata("digits", as_json=True)
    out["inputs"] = [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]]

    def tensor(array):
        t = tg.InferInput("input", list(array.shape), "FP64")
        t.set_data_from_numpy(array)
        return t

    out["one"] = client.infer("digits", [tensor(rows)]).as_numpy("predictions").tolist()
    many = np.tile(rows, (3000, 1))  # ~14 MB: past the server's windows
    out["many"] = client.infer("digits", [tensor(many)]).as_numpy("predictions").tolist()
    answers, done = {}, threading.Semaphore(0)

    def answered(i):
        def callback(result, error):
            answers[i] = error.message() if error else result.as_numpy("predictions").tolist()
            done.release()
        return callback

    for i in range(len(rows)):  # concurrent calls on the client's one channel
        client.async_infer("digits", [tensor(rows[i : i + 1])], callback=answered(i))
    for _ in rows:
        done.acquire(timeout=60)
    out["concurrent"] = [answers[i][0] for i in range(len(rows))]
    errors = {}
    for name, model, array in (("shape", "digits", rows[:, :8]), ("model", "nope", rows)):
        try:
            client.infer(model, [tensor(array)])
        except InferenceServerException as e:
            errors[name] = [e.status(), e.message()]
    out["errors"] = errors
print(json.dumps(out))
"""


def test_tritonclient_grpc_reads_metadata_and_readiness_infers_and_gets_errors(
    tracking: Path, tmp_path: Path
) -> None:
    x, _ = save_models(tmp_path)
    grpc_port = free_port()
    server = (tmp_path / "digits.log", ["-m", str(tmp_path / "digits"), "--name", "digits",
                                        "--grpc-port", str(grpc_port),
                                        "--max-batch-size", "16"])  # fmt: skip
    rows = x[:9]
    with serving_all(tracking, server) as [url]:
        want = httpx.post(url + "/invocations", json={"inputs": rows.tolist()}).json()
        done = subprocess.run(
            [PYTHON, "-c", GRPC_CHECKS, str(grpc_port), json.dumps(rows.tolist())],
            capture_output=True, text=True, timeout=120, env=python_env(),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["live"] and out["ready"] and out["server"] == "ledgerflow"
    assert out["inputs"] == [["input", "FP64", ["-1", "64"]]]
    assert out["one"] == out["concurrent"] == want["predictions"]
    assert out["many"] == want["predictions"] * 3000
    assert out["errors"]["shape"][0] == "StatusCode.INVALID_ARGUMENT"
    assert "shape" in out["errors"]["shape"][1]
    assert out["errors"]["model"][0] == "StatusCode.NOT_FOUND"
