"""ledgerflow.tensorflow: Keras 3 models in MLflow 3.17's tensorflow layout, both ways.

TensorFlow takes seconds to import: everything here shares one tiny model built once.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import ledgerflow as lf
import ledgerflow.tensorflow
from ledgerflow import fluent, pyfunc, session
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import Model
from ledgerflow.models.signature import (
    ColSpec,
    ModelSignature,
    Schema,
    TensorSpec,
    infer_signature,
)


@pytest.fixture(scope="module")
def net():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, "relu"), keras.layers.Dense(2)]
    )
    return model


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((6, 3), dtype=np.float32)


def expected(net, x):
    return net.predict(x, verbose=0)


def test_a_keras_model_saved_and_loaded_back_predicts_the_same(net, x, tmp_path: Path):
    ledgerflow.tensorflow.save_model(net, tmp_path / "m", input_example=x[:2])

    data = tmp_path / "m" / "data"
    assert sorted(p.name for p in data.iterdir()) == [
        "keras_module.txt",
        "model.keras",
        "save_format.txt",
    ]
    assert (data / "keras_module.txt").read_text() == "tensorflow.keras"
    assert (data / "save_format.txt").read_text() == "tf"
    mlmodel = Model.load(tmp_path / "m")
    assert mlmodel.flavors["tensorflow"] == {
        "code": None,
        "data": "data",
        "model_type": "keras",
        "keras_version": tf.__version__,
        "save_format": "tf",
    }
    assert mlmodel.flavors["python_function"]["loader_module"] == "mlflow.tensorflow"
    assert mlmodel.signature.inputs.inputs[0].shape == (-1, 3)
    assert mlmodel.signature.outputs.inputs[0].shape == (-1, 2)
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("tensorflow") for r in reqs) and any(
        r.startswith("keras==") for r in reqs
    )

    native = ledgerflow.tensorflow.load_model(tmp_path / "m")
    np.testing.assert_allclose(native.predict(x, verbose=0), expected(net, x), rtol=1e-6)
    bigger = np.random.default_rng(1).random((9, 3), dtype=np.float32)
    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(bigger), expected(net, bigger), rtol=1e-6
    )


def test_pyfunc_enforces_the_signature_and_names_what_is_wrong(net, x, tmp_path: Path):
    ledgerflow.tensorflow.save_model(
        net, tmp_path / "m", signature=infer_signature(x, expected(net, x))
    )
    model = pyfunc.load_model(tmp_path / "m")

    with pytest.raises(InvalidInput, match=r"shape \(-1, 3\).*\(2, 4\)"):
        model.predict(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(InvalidInput, match="float32.*float64"):
        model.predict(np.zeros((2, 3), dtype=np.float64))
    with pytest.raises(InvalidInput, match="numpy array"):
        model.model_impl.predict("not data")


def test_without_a_signature_a_dataframe_in_gives_a_dataframe_out(net, x, tmp_path: Path):
    import pandas as pd

    ledgerflow.tensorflow.save_model(net, tmp_path / "m")
    assert Model.load(tmp_path / "m").signature is None

    frame = pd.DataFrame(x, columns=["a", "b", "c"], index=range(10, 16))
    out = pyfunc.load_model(tmp_path / "m").predict(frame)
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(frame.index)
    np.testing.assert_allclose(out.to_numpy(), expected(net, x), rtol=1e-6)


def test_signatures_this_flavor_cannot_serve_are_refused_at_save(net, tmp_path: Path):
    by_column = ModelSignature(Schema([ColSpec("double", "a")]))
    with pytest.raises(InvalidInput, match="TensorSpec"):
        ledgerflow.tensorflow.save_model(net, tmp_path / "a", signature=by_column)
    fixed_batch = ModelSignature(Schema([TensorSpec(np.dtype("float32"), (1, 3))]))
    with pytest.raises(InvalidInput, match="first dimension"):
        ledgerflow.tensorflow.save_model(net, tmp_path / "b", signature=fixed_batch)
    with pytest.raises(InvalidInput, match="Keras models and tf.Module"):
        ledgerflow.tensorflow.save_model(object(), tmp_path / "c")


def test_log_model_in_a_run_loads_back_through_a_runs_uri(net, x, tracking: Path):
    with lf.start_run() as run:
        info = ledgerflow.tensorflow.log_model(net, name="keras-model", input_example=x[:2])

    assert info.model_uri == f"runs:/{run.info.run_id}/keras-model"
    assert info.flavors["tensorflow"]["model_type"] == "keras"
    files = {a.path for a in lf.Client().list_artifacts(run.info.run_id, "keras-model")}
    assert {"keras-model/MLmodel", "keras-model/data", "keras-model/input_example.json"} <= files
    native = ledgerflow.tensorflow.load_model(info.model_uri)
    np.testing.assert_allclose(native.predict(x, verbose=0), expected(net, x), rtol=1e-6)
    loaded = pyfunc.load_model(info.model_uri)
    assert loaded.metadata.run_id == run.info.run_id
    np.testing.assert_allclose(loaded.predict(x), expected(net, x), rtol=1e-6)


def test_mlflow_loads_a_keras_model_saved_by_ledgerflow(net, x, tmp_path: Path):
    import mlflow.pyfunc
    import mlflow.tensorflow

    ledgerflow.tensorflow.save_model(net, tmp_path / "m", input_example=x[:2])

    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x), expected(net, x), rtol=1e-6
    )
    native = mlflow.tensorflow.load_model(str(tmp_path / "m"))
    np.testing.assert_allclose(native.predict(x, verbose=0), expected(net, x), rtol=1e-6)


def test_ledgerflow_loads_a_keras_model_saved_by_mlflow(net, x, tmp_path: Path):
    import mlflow.tensorflow

    # (pip_requirements skips MLflow's inference of them, which loads the model in a child
    # process and takes seconds)
    mlflow.tensorflow.save_model(
        net, str(tmp_path / "m"), input_example=x[:2], pip_requirements=["tensorflow"]
    )

    loaded = pyfunc.load_model(tmp_path / "m")
    assert loaded.metadata.signature.inputs.inputs[0].shape == (-1, 3)
    np.testing.assert_allclose(loaded.predict(x), expected(net, x), rtol=1e-6)
    native = ledgerflow.tensorflow.load_model(tmp_path / "m")
    np.testing.assert_allclose(native.predict(x, verbose=0), expected(net, x), rtol=1e-6)


def _scale(t):
    return t * 2.0


def test_custom_objects_travel_with_the_model_and_obey_the_pickle_setting(
    x, tmp_path: Path, data_dir: Path, monkeypatch
):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    lam = keras.Sequential([inputs, keras.layers.Lambda(_scale), keras.layers.Dense(2)])
    ledgerflow.tensorflow.save_model(
        lam,
        tmp_path / "m",
        custom_objects={"_scale": _scale},
        keras_model_kwargs={},
    )
    assert (tmp_path / "m" / "data" / "custom_objects.cloudpickle").is_file()
    assert "cloudpickle" in (tmp_path / "m" / "requirements.txt").read_text()
    loaded = ledgerflow.tensorflow.load_model(
        tmp_path / "m", keras_model_kwargs={"safe_mode": False}
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), lam.predict(x, verbose=0), rtol=1e-6)

    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "false")
    lf.set_tracking_uri(str(data_dir))  # settings are read again
    try:
        assert fluent._current_settings().allow_pickle is False
        with pytest.raises(InvalidInput, match="LEDGERFLOW_ALLOW_PICKLE=false"):
            pyfunc.load_model(tmp_path / "m")
    finally:
        session.reset()  # the next test reads the settings afresh, pickle allowed


class Doubler(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def __call__(self, t):
        return t * 2.0


def test_a_tf_module_is_saved_as_a_saved_model_and_served_through_pyfunc(x, tmp_path: Path):
    ledgerflow.tensorflow.save_model(Doubler(), tmp_path / "m", input_example=x[:2])

    conf = Model.load(tmp_path / "m").flavors["tensorflow"]
    assert conf["model_type"] == "tf2-module" and conf["saved_model_dir"] == "tf2model"
    assert (tmp_path / "m" / "tf2model" / "saved_model.pb").is_file()
    np.testing.assert_allclose(pyfunc.load_model(tmp_path / "m").predict(x), x * 2.0)
    np.testing.assert_allclose(ledgerflow.tensorflow.load_model(tmp_path / "m")(x).numpy(), x * 2.0)
