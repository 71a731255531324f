"""Bundles built on a real local Ray: conversion, parity, storage, events and views."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ledgerflow as lf
from ledgerflow.events.bundle_payloads import BundleBuilt, BundleFailed, BundleRequested
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import Unavailable
from ledgerflow.workers.bundles.manifest import verify
from ledgerflow.workers.runtime import RayRuntime
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def bundles(tracking: Path, ray_runtime: RayRuntime) -> Path:
    """The fluent API on a fresh data directory, with the session's Ray already up (the
    bundle service finds it: LEDGERFLOW_RAY_ADDRESS defaults to local)."""
    return tracking


def _events(data_dir: Path) -> list[Any]:
    from ledgerflow.client import Client

    backend: Any = Client()._backend
    return [i.event for i in backend.log.read(limit=100_000) if isinstance(i, Recorded)]


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_a_sklearn_model_becomes_an_onnx_bundle_that_answers_like_the_original(
    bundles: Path,
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _iris()
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y), name="model",
            input_example=X[:5], registered_model_name="iris",
        )  # fmt: skip
    [bundle] = lf.bundles.build("models:/iris/1", targets=["onnx"])
    assert bundle.status == "built", bundle.reason
    assert bundle.target == "onnx" and bundle.runtime == "onnxruntime"
    parity = bundle.manifest["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= parity["atol"]
    assert bundle.manifest["source"] == {
        "name": "iris", "version": 1, "flavor": "sklearn",
        "uri": lf.Client().get_model_version("iris", 1).source,
        "run_id": lf.Client().get_model_version("iris", 1).run_id,
    }  # fmt: skip
    assert [b.id for b in lf.bundles.list("iris", 1)] == [bundle.id]
    assert lf.Client().list_bundles("iris") == lf.bundles.list("iris")

    folder = Path(lf.bundles.download(bundle.id, str(bundles.parent / "iris-onnx")))
    assert verify(folder) == []
    assert {"model.onnx", "Dockerfile", "requirements.txt", "serve.py"} <= {
        f["path"] for f in bundle.manifest["files"]
    }
    assert "onnxruntime==" in (folder / "requirements.txt").read_text()

    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "model.onnx"))
    name = session.get_inputs()[0].name
    labels = session.run(None, {name: X.astype(np.float32)})[0]
    assert (labels == lf.pyfunc.load_model("models:/iris/1").predict(X)).mean() > 0.98

    types = [e.type for e in _events(bundles) if e.stream == f"bundle:{bundle.id}"]
    assert types == [BundleRequested.TYPE, BundleBuilt.TYPE]

    backend: Any = lf.Client()._backend
    backend.projector.rebuild()  # the view is a fold of the log: a replay gives it back
    assert lf.bundles.list("iris", 1) == [bundle]


def test_a_pytorch_model_becomes_torchscript_and_onnx_bundles_within_tolerance(
    bundles: Path,
) -> None:
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(6, 8)
            self.b = torch.nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.tanh(self.a(x)))

    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    with lf.start_run():
        lf.pytorch.log_model(Net(), name="model", input_example=x, registered_model_name="net")
    built = lf.bundles.build("models:/net/1")
    assert sorted(b.target for b in built) == ["onnx", "torchscript"]
    for b in built:
        assert b.status == "built", b.reason
        assert b.max_abs_diff is not None and b.max_abs_diff <= 1e-4
        assert b.manifest["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 6]}]
        assert b.manifest["outputs"][0]["shape"] == [-1, 2]

    ts = next(b for b in built if b.target == "torchscript")
    folder = Path(lf.bundles.download(ts.id))
    module = torch.jit.load(str(folder / "model.pt"))
    big = np.random.default_rng(1).normal(size=(64, 6)).astype(np.float32)
    expected = lf.pyfunc.load_model("models:/net/1").predict(big)
    np.testing.assert_allclose(module(torch.from_numpy(big)).detach().numpy(), expected, rtol=1e-5)


def test_a_keras_model_becomes_a_savedmodel_laid_out_for_tensorflow_serving(
    bundles: Path,
) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    with lf.start_run():
        lf.tensorflow.log_model(model, name="model", input_example=x, registered_model_name="reg")
    built = {b.target: b for b in lf.bundles.build("models:/reg/1", targets=["savedmodel", "onnx"])}
    saved = built["savedmodel"]
    assert saved.status == "built", saved.reason
    assert saved.runtime == "tensorflow-serving"
    paths = {f["path"] for f in saved.manifest["files"]}
    assert "reg/1/saved_model.pb" in paths and "Dockerfile" in paths
    folder = Path(lf.bundles.download(saved.id))
    assert "COPY reg /models/reg" in (folder / "Dockerfile").read_text()

    import tensorflow as tf

    served = tf.saved_model.load(str(folder / "reg" / "1"))
    out = served.signatures["serving_default"](input=tf.constant(x))
    np.testing.assert_allclose(
        next(iter(out.values())).numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    # tf2onnx converts Keras 3 through the serving function; parity holds there too
    assert built["onnx"].status == "built", built["onnx"].reason
    assert built["onnx"].manifest["parity"]["passed"]


def test_xgboost_models_become_onnx_bundles_whose_first_output_is_what_pyfunc_predicts(
    bundles: Path,
) -> None:
    import onnxruntime as ort
    import pandas as pd
    import xgboost as xgb

    X, y = _iris()
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])  # named columns, as users log
    models = {
        "xgb-clf": xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, y),
        "xgb-binary": xgb.train(
            {"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(frame, label=y == 1), 5
        ),
        "xgb-logitraw": xgb.train(
            {"objective": "binary:logitraw"}, xgb.DMatrix(frame, label=y == 1), 5
        ),
    }
    with lf.start_run():
        for name, model in models.items():
            lf.xgboost.log_model(
                model, name=name, input_example=frame[:5], registered_model_name=name
            )
    for name in ("xgb-clf", "xgb-binary"):
        [bundle] = lf.bundles.build(f"models:/{name}/1", targets=["onnx"])
        assert bundle.status == "built", bundle.reason
        assert bundle.manifest["source"]["flavor"] == "xgboost"
        folder = Path(lf.bundles.download(bundle.id, str(bundles.parent / name)))
        session = ort.InferenceSession(str(folder / "model.onnx"))
        first = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
        expected = lf.pyfunc.load_model(f"models:/{name}/1").predict(frame)
        np.testing.assert_allclose(first, np.asarray(expected), rtol=1e-4, atol=1e-5)
    # raw margins: onnxmltools' graph answers probabilities, and parity says so
    [raw] = lf.bundles.build("models:/xgb-logitraw/1", targets=["onnx"])
    assert raw.status == "failed" and raw.reason is not None and "parity broken" in raw.reason


class _Arbitrary(lf.pyfunc.PythonModel):  # type: ignore[name-defined, misc]
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [str(row) for row in model_input]


def test_a_model_no_converter_understands_ends_as_bundle_failed_and_is_not_listed(
    bundles: Path,
) -> None:
    x = np.ones((2, 3), dtype=np.float32)
    with lf.start_run():
        lf.pyfunc.log_model(
            name="model", python_model=_Arbitrary(), input_example=x,
            registered_model_name="custom",
        )  # fmt: skip
    [bundle] = lf.bundles.build("models:/custom/1", targets=["onnx"])
    assert bundle.status == "failed"
    assert bundle.reason is not None and "no converter" in bundle.reason
    assert "python_function" in bundle.reason
    assert lf.bundles.list("custom", 1) == []
    assert [b.id for b in lf.bundles.list("custom", 1, include_failed=True)] == [bundle.id]
    ended = [e for e in _events(bundles) if e.stream == f"bundle:{bundle.id}"][-1]
    assert ended.type == BundleFailed.TYPE and ended.data.reason == bundle.reason
    with pytest.raises(lf.LedgerflowError, match="failed, not built"):
        lf.bundles.download(bundle.id)


def test_a_target_the_flavor_lacks_fails_with_the_targets_it_has(bundles: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _iris()
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y), name="model", input_example=X[:3],
            registered_model_name="tree",
        )  # fmt: skip
    [bundle] = lf.bundles.build("models:/tree/1", targets=["torchscript"])
    assert bundle.status == "failed"
    assert bundle.reason == (
        "a scikit-learn model cannot be converted to torchscript; its targets are onnx"
    )
    with pytest.raises(lf.LedgerflowError, match="choose from onnx, torchscript, savedmodel"):
        lf.bundles.build("models:/tree/1", targets=["tflite"])


def test_setting_the_policy_alias_builds_the_bundles_once(bundles: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from ledgerflow.client import Client
    from ledgerflow.services.bundles.policy import PolicyRunner

    X, y = _iris()
    with lf.start_run():
        for _ in range(2):
            lf.sklearn.log_model(
                LinearRegression().fit(X, y), name="model", input_example=X[:4],
                registered_model_name="price",
            )  # fmt: skip
    client = Client()
    backend: Any = client._backend
    runner = PolicyRunner(backend.log, backend.bundles, backend.projector.engine)
    lf.bundles.set_policy("price", on_alias=["champion"], targets=["onnx"])
    assert client.get_registered_model("price").tags["ledgerflow.bundle.on_alias"] == "champion"
    assert runner.run_once() == 0  # from the head: history is not rebuilt

    client.set_registered_model_alias("price", "staging", 1)  # not a policy alias
    client.set_registered_model_alias("price", "champion", 2)
    assert runner.run_once() == 1
    [bundle] = lf.bundles.list("price")
    assert (bundle.version, bundle.target, bundle.trigger) == (2, "onnx", "alias:champion")
    assert runner.run_once() == 0

    # a second runner with the same cursor name resumes where the first stopped
    again = PolicyRunner(backend.log, backend.bundles, backend.projector.engine)
    assert again.run_once() == 0
    assert len(lf.bundles.list("price", include_failed=True)) == 1
    assert lf.bundles.get(bundle.id) == bundle and bundle.manifest["parity"]["passed"]

    lf.bundles.clear_policy("price")
    assert "ledgerflow.bundle.on_alias" not in client.get_registered_model("price").tags
    client.set_registered_model_alias("price", "champion", 1)
    assert runner.run_once() == 0


class _StartingRay:
    """The runtime as it is while Ray starts (or a cluster restarts): the first `refusals`
    submissions fail as RayRuntime fails when it cannot reach Ray; then the real one."""

    def __init__(self, runtime: Any, refusals: int) -> None:
        self.runtime = runtime
        self.refusals = refusals

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        if self.refusals > 0:
            self.refusals -= 1
            raise Unavailable("cannot reach Ray at 'local': timed out; is the cluster up?")
        return self.runtime.submit(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)


def test_a_policy_build_refused_while_ray_starts_is_built_once_ray_is_up(bundles: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from ledgerflow.client import Client
    from ledgerflow.services.bundles.policy import PolicyRunner

    X, y = _iris()
    with lf.start_run():
        lf.sklearn.log_model(
            LinearRegression().fit(X, y), name="model", input_example=X[:4],
            registered_model_name="retried",
        )  # fmt: skip
    client = Client()
    backend: Any = client._backend
    service = backend.bundles
    real = service.runtime
    service.runtime = _StartingRay(real, refusals=2)
    try:
        runner = PolicyRunner(
            backend.log, service, backend.projector.engine, retry_s=0.05, max_retry_s=0.2
        )
        lf.bundles.set_policy("retried", on_alias=["champion"], targets=["onnx"])
        before = runner.cursor()
        client.set_registered_model_alias("retried", "champion", 1)
        with pytest.raises(Unavailable, match="cannot reach Ray"):
            runner.run_once()  # the cursor stays before the alias it could not handle
        assert runner.cursor() == before

        stop = threading.Event()
        follower = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        follower.start()
        try:
            wait_until(lambda: bool(lf.bundles.list("retried")), 120, "the retried build")
        finally:
            stop.set()
            follower.join(30)
    finally:
        service.runtime = real
    [built] = lf.bundles.list("retried")
    assert (built.version, built.target, built.trigger) == (1, "onnx", "alias:champion")
    refused = [b for b in lf.bundles.list("retried", include_failed=True) if b.status == "failed"]
    assert len(refused) == 2  # each refusal is on record, with its reason
    assert all("could not be started" in (b.reason or "") for b in refused)
    assert runner.run_once() == 0  # built once: handling the alias again builds nothing


def test_the_cli_builds_lists_shows_and_downloads_bundles(bundles: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from typer.testing import CliRunner

    from ledgerflow.cli.app import app

    X, y = _iris()
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y), name="model", input_example=X[:5],
            registered_model_name="cli",
        )  # fmt: skip
    runner = CliRunner()
    uri = ["--tracking-uri", str(bundles)]
    built = runner.invoke(app, [*uri, "bundle", "build", "models:/cli/1", "-t", "onnx", "--json"])
    assert built.exit_code == 0, built.output
    [doc] = json.loads(built.output)
    assert doc["status"] == "built" and doc["target"] == "onnx"

    listed = runner.invoke(app, [*uri, "bundle", "list", "cli", "1"])
    assert listed.exit_code == 0 and doc["id"] in listed.output
    shown = runner.invoke(app, [*uri, "bundle", "show", doc["id"]])
    assert shown.exit_code == 0 and "model.onnx" in shown.output and "max |diff|" in shown.output
    dst = bundles.parent / "cli-bundle"
    fetched = runner.invoke(app, [*uri, "bundle", "download", doc["id"], str(dst)])
    assert fetched.exit_code == 0 and verify(dst) == []

    failed = runner.invoke(app, [*uri, "bundle", "build", "models:/cli/1", "-t", "savedmodel"])
    assert failed.exit_code == 1 and "cannot be converted to savedmodel" in failed.output
    bad = runner.invoke(
        app, [*uri, "bundle", "policy", "set", "cli", "--on-alias", "x", "-t", "tflite"]
    )
    assert bad.exit_code == 1 and "choose from" in bad.output
    ok = runner.invoke(app, [*uri, "bundle", "policy", "set", "cli", "--on-alias", "champion"])
    assert ok.exit_code == 0
    assert lf.Client().get_registered_model("cli").tags["ledgerflow.bundle.on_alias"] == "champion"


def test_a_traced_bundle_that_breaks_parity_ends_as_failed_with_the_difference(
    bundles: Path,
) -> None:
    from tests.integration._bundle_models import Branchy

    x = np.array([[0.5, -0.2, 1.0], [0.3, -1.0, 0.9]], dtype=np.float32)
    with lf.start_run():
        lf.pytorch.log_model(
            Branchy(), name="model", input_example=x, serialization_format="pickle",
            registered_model_name="branchy",
        )  # fmt: skip
    built = lf.bundles.build("models:/branchy/1")
    assert [b.status for b in built] == ["failed", "failed"]
    for b in built:
        assert b.reason is not None and b.reason.startswith("parity broken on input 1")
        assert "beyond rtol=0.0001, atol=1e-05" in b.reason
    assert lf.bundles.list("branchy") == []


def test_bundles_through_a_gateway_url_say_they_need_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerflow import session

    monkeypatch.setenv("LEDGERFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    client = lf.Client("http://127.0.0.1:9")
    try:
        with pytest.raises(lf.LedgerflowError, match="bundles are built next to the event log"):
            client.list_bundles("iris")
    finally:
        session.reset()


def test_without_waiting_the_bundle_is_requested_at_once_and_ends_later(bundles: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from tests.waiting import wait_until

    X, y = _iris()
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y), name="model", input_example=X[:3],
            registered_model_name="later",
        )  # fmt: skip
    [bundle] = lf.bundles.build("models:/later/1", targets=["onnx"], wait=False)
    assert bundle.status == "requested" and bundle.artifact_uri is None
    assert lf.bundles.list("later") == []
    wait_until(lambda: lf.bundles.get(bundle.id).status != "requested", 120)
    assert lf.bundles.get(bundle.id).status == "built"
    assert [b.id for b in lf.bundles.list("later", 1)] == [bundle.id]


def test_a_conversion_task_refuses_a_pickled_model_when_the_service_refuses_pickles(
    tmp_path: Path,
) -> None:
    """The task takes the bundle service's pickle policy with its request."""
    from sklearn.linear_model import LogisticRegression

    from ledgerflow.workers.bundles.build import BuildRequest, build_bundle

    X, y = _iris()
    model_dir = tmp_path / "model"
    lf.sklearn.save_model(
        LogisticRegression(max_iter=500).fit(X, y), model_dir, input_example=X[:5],
        serialization_format="cloudpickle",
    )  # fmt: skip
    request = BuildRequest(
        "b1", "iris", 1, "onnx", "models:/iris/1", str(model_dir), str(tmp_path / "out"),
        allow_pickle=False,
    )  # fmt: skip
    assert "refused: LEDGERFLOW_ALLOW_PICKLE=false" in build_bundle(request)["error"]
