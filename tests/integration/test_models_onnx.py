"""ledgerflow.onnx: MLflow 3.17's onnx flavor layout, both ways, served through onnxruntime."""

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

import ledgerflow as lf
import ledgerflow.onnx
from ledgerflow import fluent, pyfunc
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import Model, infer_signature

W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
B = np.array([0.5, -0.5], dtype=np.float32)


def linear_model():
    """Y = X @ W + B for X of shape (batch, 3): a two-node graph built by hand."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def two_input_model():
    """Z = A + C, each of shape (batch,)."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "c"], ["z"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, [None]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


@pytest.fixture
def x():
    return np.random.default_rng(0).random((4, 3), dtype=np.float32)


def test_an_onnx_model_round_trips_and_predicts_through_onnxruntime(x, tmp_path):
    proto = linear_model()
    ledgerflow.onnx.save_model(proto, tmp_path / "m", input_example=x)

    mlmodel = Model.load(tmp_path / "m")
    assert mlmodel.flavors["onnx"]["data"] == "model.onnx"
    assert mlmodel.flavors["onnx"]["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert mlmodel.flavors["python_function"]["loader_module"] == "mlflow.onnx"
    loaded = ledgerflow.onnx.load_model(tmp_path / "m")
    assert isinstance(loaded, onnx.ModelProto)
    assert [n.op_type for n in loaded.graph.node] == ["MatMul", "Add"]
    assert mlmodel.signature.inputs.inputs[0].shape == (-1, 3)  # inferred from the example
    assert mlmodel.signature.outputs.inputs[0].name == "Y"  # and from running it
    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(x)["Y"], x @ W + B, rtol=1e-6
    )


def test_a_dataframe_feeds_the_single_input_and_float64_is_cast_to_float(x, tmp_path):
    ledgerflow.onnx.save_model(linear_model(), tmp_path / "m")  # no signature to enforce
    frame = pyfunc.load_model(tmp_path / "m").predict(pd.DataFrame(x.astype(np.float64)))

    assert list(frame.columns) == ["Y"]
    np.testing.assert_allclose(frame["Y"].to_numpy(), (x @ W + B).reshape(-1), rtol=1e-6)


def test_pyfunc_enforces_the_signature_of_an_onnx_model(x, tmp_path):
    sig = infer_signature(x, x @ W + B)
    ledgerflow.onnx.save_model(linear_model(), tmp_path / "m", signature=sig)
    model = pyfunc.load_model(tmp_path / "m")

    with pytest.raises(InvalidInput, match=r"expected shape \(-1, 3\).*got \(4, 2\)"):
        model.predict(x[:, :2])
    with pytest.raises(InvalidInput, match="expected dtype float32, got int64"):
        model.predict(np.ones((2, 3), dtype=np.int64))


def test_a_model_with_several_inputs_takes_a_dict_or_dataframe_but_not_one_array(tmp_path):
    ledgerflow.onnx.save_model(two_input_model(), tmp_path / "m")
    model = pyfunc.load_model(tmp_path / "m")
    a = np.array([1, 2], dtype=np.float32)
    c = np.array([10, 20], dtype=np.float32)

    np.testing.assert_allclose(model.predict({"a": a, "c": c})["z"], [11, 22])
    np.testing.assert_allclose(model.predict(pd.DataFrame({"a": a, "c": c}))["z"], [11, 22])
    with pytest.raises(InvalidInput, match=r"takes 2 inputs \['a', 'c'\]"):
        model.predict(a)


def test_unknown_session_options_are_refused_and_known_ones_are_applied(x, tmp_path):
    with pytest.raises(InvalidInput, match="not an onnxruntime.SessionOptions setting"):
        ledgerflow.onnx.save_model(
            linear_model(), tmp_path / "bad", onnx_session_options={"nope": 1}
        )
    options = {
        "intra_op_num_threads": 1,
        "execution_mode": "sequential",
        "graph_optimization_level": 99,
    }
    ledgerflow.onnx.save_model(linear_model(), tmp_path / "m", onnx_session_options=options)

    model = pyfunc.load_model(tmp_path / "m")
    assert model.get_raw_model().get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(model.predict(x)["Y"], x @ W + B, rtol=1e-6)


def test_an_onnx_model_logged_in_a_run_loads_through_its_runs_uri(tracking, x):
    with lf.start_run() as run:
        info = ledgerflow.onnx.log_model(linear_model(), name="onnx-model", input_example=x)

    assert info.model_uri == f"runs:/{run.info.run_id}/onnx-model"
    np.testing.assert_allclose(
        pyfunc.load_model(info.model_uri).predict(x)["Y"], x @ W + B, rtol=1e-6
    )
    assert isinstance(ledgerflow.onnx.load_model(info.model_uri), onnx.ModelProto)


def test_onnx_models_still_load_when_pickle_is_not_allowed(tracking, monkeypatch, x, tmp_path):
    ledgerflow.onnx.save_model(linear_model(), tmp_path / "m")
    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "false")
    lf.set_tracking_uri(str(tracking))
    assert fluent._current_settings().allow_pickle is False

    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(x)["Y"], x @ W + B, rtol=1e-6
    )


# interchange with MLflow ----------------------------------------------------------------
def test_mlflow_loads_an_onnx_model_ledgerflow_saved(x, tmp_path):
    import mlflow.onnx
    import mlflow.pyfunc

    ledgerflow.onnx.save_model(
        linear_model(), tmp_path / "m", signature=infer_signature(x, x @ W + B)
    )

    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x)["Y"], x @ W + B, rtol=1e-6
    )
    assert [n.op_type for n in mlflow.onnx.load_model(str(tmp_path / "m")).graph.node] == [
        "MatMul",
        "Add",
    ]


def test_ledgerflow_loads_an_onnx_model_mlflow_saved(x, tmp_path):
    import mlflow.onnx

    # pip_requirements given: MLflow would otherwise infer them in a subprocess (~10 s)
    mlflow.onnx.save_model(
        linear_model(), str(tmp_path / "m"), input_example=x, pip_requirements=["onnx"]
    )

    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(x)["Y"], x @ W + B, rtol=1e-6
    )
    assert isinstance(ledgerflow.onnx.load_model(Path(tmp_path / "m")), onnx.ModelProto)
