"""A TensorFlow Serving REST client against a real `ledgerflow serve` process: a registered
scikit-learn model served by alias (its version and its aliases as TF Serving's versions and
labels, the labels following aliases moved while it serves) and a tiny Keras model,
predicting what MLflow's /invocations predicts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import ledgerflow as lf
from tests.e2e.test_serve_process import serving

pytestmark = pytest.mark.slow


def test_a_tf_serving_client_predicts_and_reads_status_and_metadata_of_a_registered_model(
    tracking: Path, tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    with lf.start_run():
        for _ in range(2):  # versions 1 and 2
            lf.sklearn.log_model(
                model, name="model", input_example=x[:2], registered_model_name="digits"
            )
    client = lf.Client()
    client.set_registered_model_alias("digits", "champion", 1)
    rows = x[:4].tolist()
    want = model.predict(x[:4]).tolist()

    with serving(tracking, tmp_path / "serve.log", "-m", "models:/digits@champion") as url:
        mlflow = httpx.post(url + "/invocations", json={"instances": rows}).json()
        assert mlflow == {"predictions": want}
        for path in ("digits", "digits/versions/1", "digits/labels/champion"):
            r = httpx.post(f"{url}/v1/models/{path}:predict", json={"instances": rows})
            assert r.status_code == 200 and r.json() == mlflow, r.text
            body = {"signature_name": "serving_default", "inputs": {"input": rows}}
            r = httpx.post(f"{url}/v1/models/{path}:predict", json=body)
            assert r.status_code == 200 and r.json() == {"outputs": want}, r.text

        status = httpx.get(url + "/v1/models/digits/labels/champion").json()
        assert status == {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }
        meta = httpx.get(url + "/v1/models/digits/versions/1/metadata").json()
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert meta["model_spec"]["version"] == "1"
        assert [d["size"] for d in sig["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "64"]

        errors = [
            (httpx.post(url + "/v1/models/digits/versions/2:predict", json={"instances": rows}), 404),
            (httpx.post(url + "/v1/models/iris:predict", json={"instances": rows}), 404),
            (httpx.get(url + "/v1/models/digits/labels/staging"), 400),
            (httpx.post(url + "/v1/models/digits:predict", json={"instances": [[1, 2]]}), 400),
            (httpx.post(url + "/v1/models/digits:regress", json={"examples": [{}]}), 400),
        ]  # fmt: skip
        for r, code in errors:
            assert r.status_code == code and list(r.json()) == ["error"], r.text

        # labels follow the registry's aliases: moved away, champion names a version this
        # server does not serve; a new alias of the served version is a label at once
        client.set_registered_model_alias("digits", "champion", 2)
        client.set_registered_model_alias("digits", "prod", 1)
        moved = answered(url + "/v1/models/digits/labels/champion", 404)
        assert "now points at version 2" in moved["error"], moved
        r = httpx.post(url + "/v1/models/digits/labels/prod:predict", json={"instances": rows})
        assert r.status_code == 200 and r.json() == mlflow, r.text


def answered(url: str, status: int, timeout: float = 15.0) -> dict[str, Any]:
    """`url`'s answer once it has `status` (a served model learns of registry changes from
    the log within a moment)."""
    deadline = time.monotonic() + timeout
    while (r := httpx.get(url)).status_code != status:
        assert time.monotonic() < deadline, f"{url} still answers {r.status_code}: {r.text}"
        time.sleep(0.1)
    doc: dict[str, Any] = r.json()
    return doc


def test_a_keras_model_answers_a_tf_serving_client_as_it_predicts(
    tracking: Path, tmp_path: Path
) -> None:
    import keras

    import ledgerflow.tensorflow

    keras.utils.set_random_seed(0)
    net = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, "relu"), keras.layers.Dense(2)]
    )
    x = np.random.default_rng(0).random((5, 3), dtype=np.float32)
    ledgerflow.tensorflow.save_model(net, tmp_path / "net", input_example=x[:2])
    want = net.predict(x, verbose=0)

    with serving(tracking, tmp_path / "keras.log", "-m", str(tmp_path / "net")) as url:
        mlflow = httpx.post(url + "/invocations", json={"instances": x.tolist()})
        assert mlflow.status_code == 200, mlflow.text
        r = httpx.post(url + "/v1/models/net:predict", json={"instances": x.tolist()})
        assert r.status_code == 200, r.text
        assert r.json() == mlflow.json()
        np.testing.assert_allclose(np.array(r.json()["predictions"]), want, rtol=1e-5)
        r = httpx.post(url + "/v1/models/net:predict", json={"inputs": x.tolist()})
        np.testing.assert_allclose(np.array(r.json()["outputs"]), want, rtol=1e-5)
        meta = httpx.get(url + "/v1/models/net/metadata").json()
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        (info,) = sig["inputs"].values()
        assert info["dtype"] == "DT_FLOAT"
