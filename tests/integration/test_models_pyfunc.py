"""ledgerflow.pyfunc: custom Python models, generic loading, and interchange with MLflow."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.models import Model, infer_signature

DF = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 0.5, 0.5]})


class Scale(pyfunc.PythonModel):
    """Multiplies by a factor read from an artifact file, plus an offset from the config."""

    def load_context(self, context):
        self.factor = float(Path(context.artifacts["factor"]).read_text())
        self.offset = (context.model_config or {}).get("offset", 0.0)

    def predict(self, context, model_input, params=None):
        power = (params or {}).get("power", 1)
        return model_input * self.factor**power + self.offset


class NoContext(pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return model_input.sum(axis=1)


class Holder(pyfunc.PythonModel):
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture
def factor_file(tmp_path: Path) -> Path:
    f = tmp_path / "factor.txt"
    f.write_text("3")
    return f


def test_a_python_model_round_trips_with_its_artifacts_and_config(tmp_path, factor_file):
    path = tmp_path / "m"
    pyfunc.save_model(
        path,
        python_model=Scale(),
        artifacts={"factor": str(factor_file)},
        model_config={"offset": 1.0},
        input_example=DF.head(1),
    )
    assert (path / "python_model.pkl").is_file() and (path / "artifacts/factor.txt").is_file()
    conf = Model.load(path).flavors["python_function"]
    assert conf["loader_module"] == "mlflow.pyfunc.model"
    assert conf["artifacts"]["factor"] == {"path": "artifacts/factor.txt", "uri": str(factor_file)}
    factor_file.write_text("100")  # the model keeps its own copy
    m = pyfunc.load_model(str(path))
    pd.testing.assert_frame_equal(m.predict(DF), DF * 3 + 1.0)
    pd.testing.assert_frame_equal(m.input_example, DF.head(1))
    assert isinstance(m.unwrap_python_model(), Scale)
    assert m.metadata.signature.outputs is not None  # inferred by running the saved copy
    tuned = pyfunc.load_model(str(path), model_config={"offset": 0.0})
    pd.testing.assert_frame_equal(tuned.predict(DF), DF * 3)


def test_predict_may_leave_out_the_context_and_functions_are_models_too(tmp_path):
    pyfunc.save_model(tmp_path / "a", python_model=NoContext())
    assert pyfunc.load_model(tmp_path / "a").predict(DF).tolist() == [1.5, 2.5, 3.5]
    pyfunc.save_model(tmp_path / "b", python_model=lambda df: df["x"] * 2)
    assert pyfunc.load_model(tmp_path / "b").predict(DF).tolist() == [2.0, 4.0, 6.0]


def test_the_signature_is_enforced_before_predict(tmp_path):
    sig = infer_signature(DF, DF)
    pyfunc.save_model(tmp_path / "m", python_model=NoContext(), signature=sig)
    m = pyfunc.load_model(tmp_path / "m")
    with pytest.raises(InvalidInput, match=r"missing required column\(s\) \['y'\]"):
        m.predict(DF[["x"]])
    with pytest.raises(InvalidInput, match="column 'x': expected double"):
        m.predict(pd.DataFrame({"x": ["a"], "y": [1.0]}))
    assert m.predict(DF.assign(extra=1)).tolist() == [1.5, 2.5, 3.5]


def test_params_reach_predict_checked_and_with_defaults(tmp_path, factor_file):
    sig = infer_signature(DF, DF, params={"power": 1})
    pyfunc.save_model(
        tmp_path / "m", python_model=Scale(), artifacts={"factor": factor_file}, signature=sig
    )
    m = pyfunc.load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(m.predict(DF), DF * 3)
    pd.testing.assert_frame_equal(m.predict(DF, params={"power": 2}), DF * 9)
    with pytest.raises(InvalidInput, match="parameter 'power': expected long"):
        m.predict(DF, params={"power": "2"})


def test_mlflow_loads_a_python_model_saved_by_ledgerflow(tmp_path, factor_file):
    import mlflow.pyfunc

    sig = infer_signature(DF, DF, params={"power": 1})
    pyfunc.save_model(
        tmp_path / "m",
        python_model=Scale(),
        artifacts={"factor": str(factor_file)},
        model_config={"offset": 2.0},
        signature=sig,
    )
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    ours = pyfunc.load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(theirs.predict(DF), ours.predict(DF))
    pd.testing.assert_frame_equal(theirs.predict(DF, params={"power": 2}), DF * 9 + 2.0)
    assert theirs.metadata.get_input_schema().to_dict() == sig.inputs.to_dict()


def test_ledgerflow_loads_a_python_model_saved_by_mlflow(tmp_path, factor_file):
    import mlflow.pyfunc

    from tests.integration._mlflow_python_models import MlflowScale

    mlflow.pyfunc.save_model(
        str(tmp_path / "m"),
        python_model=MlflowScale(),
        artifacts={"factor": str(factor_file)},
        model_config={"offset": 1.0},
        input_example=DF.head(2),
        pip_requirements=["cloudpickle"],
    )
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    ours = pyfunc.load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(ours.predict(DF), theirs.predict(DF))
    pd.testing.assert_frame_equal(ours.predict(DF), DF * 3 + 1.0)
    assert type(ours.unwrap_python_model()).__name__ == "MlflowScale"
    assert ours.metadata.signature.to_dict() == theirs.metadata.signature.to_dict()


def test_a_loader_module_model_loads_its_data_in_both(tmp_path):
    import mlflow.pyfunc

    code = tmp_path / "src" / "lf_test_loader.py"
    code.parent.mkdir()
    code.write_text(
        "import json\n"
        "class _M:\n"
        "    def __init__(self, w): self.w = w\n"
        "    def predict(self, df, params=None): return df['x'] * self.w\n"
        "def _load_pyfunc(path):\n"
        "    return _M(json.load(open(path))['w'])\n"
    )
    data = tmp_path / "weights.json"
    data.write_text('{"w": 4}')
    pyfunc.save_model(
        tmp_path / "m", loader_module="lf_test_loader", data_path=data, code_paths=[code]
    )
    conf = Model.load(tmp_path / "m").flavors["python_function"]
    assert conf["data"] == "data/weights.json" and conf["code"] == "code"
    try:
        assert pyfunc.load_model(tmp_path / "m").predict(DF).tolist() == [4.0, 8.0, 12.0]
        assert mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(DF).tolist() == [4, 8, 12]
    finally:
        sys.modules.pop("lf_test_loader", None)


def test_save_model_needs_exactly_one_kind_of_model(tmp_path):
    with pytest.raises(InvalidInput, match="exactly one of python_model"):
        pyfunc.save_model(tmp_path / "a")
    with pytest.raises(InvalidInput, match="exactly one of python_model"):
        pyfunc.save_model(tmp_path / "b", python_model=NoContext(), loader_module="x")
    with pytest.raises(InvalidInput, match="could not pickle python_model"):
        pyfunc.save_model(tmp_path / "c", python_model=Holder())


def test_loading_a_pickled_model_is_refused_when_pickle_is_off(tmp_path, tracking, monkeypatch):
    pyfunc.save_model(tmp_path / "m", python_model=NoContext())
    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "false")
    lf.set_tracking_uri(tracking)  # settings are read at the edge
    with pytest.raises(InvalidInput, match="refused: LEDGERFLOW_ALLOW_PICKLE=false"):
        pyfunc.load_model(tmp_path / "m")
    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "true")
    lf.set_tracking_uri(tracking)
    assert pyfunc.load_model(tmp_path / "m").predict(DF).tolist() == [1.5, 2.5, 3.5]


def test_log_model_then_load_by_run_and_registry_uri(tracking, factor_file):
    with lf.start_run() as run:
        info = pyfunc.log_model(
            name="scaler",
            python_model=Scale(),
            artifacts={"factor": str(factor_file)},
            registered_model_name="scaler",
            input_example=DF.head(1),
        )
    assert info.model_uri == f"runs:/{run.info.run_id}/scaler"
    assert info.registered_model_version == 1 and info.signature is not None
    for uri in (info.model_uri, "models:/scaler/1", "models:/scaler/latest"):
        pd.testing.assert_frame_equal(pyfunc.load_model(uri).predict(DF), DF * 3)


def test_a_model_without_the_python_function_flavor_is_refused(tmp_path):
    Model().add_flavor("secret", file="x").save(tmp_path)
    with pytest.raises(NotFound, match="has no python_function flavor"):
        pyfunc.load_model(tmp_path)


def test_an_unknown_loader_module_gives_a_clear_error(tmp_path):
    pyfunc.add_to_model(Model(), "no_such_loader_xyz").save(tmp_path)
    with pytest.raises(InvalidInput, match="cannot import the model's loader module"):
        pyfunc.load_model(tmp_path)


def test_numpy_input_examples_come_back_as_arrays(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(3, 2)
    pyfunc.save_model(tmp_path / "m", python_model=lambda a: a * 2, input_example=arr)
    m = pyfunc.load_model(tmp_path / "m")
    assert m.input_example.dtype == np.float32 and m.input_example.shape == (3, 2)
    assert m.metadata.signature.to_dict()["outputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]'
    )
    with pytest.raises(InvalidInput, match=r"expected shape \(-1, 2\)"):
        m.predict(np.zeros((2, 3), np.float32))


def test_params_in_an_input_example_become_the_params_schema_in_both(tmp_path):
    import mlflow.pyfunc

    pyfunc.save_model(
        tmp_path / "m",
        python_model=Scale(),
        artifacts={"factor": _factor(tmp_path)},
        input_example=(DF.head(2), {"power": 2}),
    )
    ours = pyfunc.load_model(tmp_path / "m")
    assert ours.metadata.signature.to_dict()["params"] == (
        '[{"name": "power", "default": 2, "shape": null, "type": "long"}]'
    )
    pd.testing.assert_frame_equal(ours.predict(DF), DF * 9)
    pd.testing.assert_frame_equal(ours.input_example, DF.head(2))
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    pd.testing.assert_frame_equal(theirs.input_example, DF.head(2))
    pd.testing.assert_frame_equal(theirs.predict(DF, params={"power": 1}), DF * 3)


def test_a_dict_of_arrays_example_round_trips_in_both(tmp_path):
    import mlflow.pyfunc

    example = {"x": np.zeros((2, 3), np.float32), "y": np.array([1, 2])}
    pyfunc.save_model(
        tmp_path / "m", python_model=lambda d: d["x"].sum(axis=1), input_example=example
    )
    for loaded in (
        pyfunc.load_model(tmp_path / "m"),
        mlflow.pyfunc.load_model(str(tmp_path / "m")),
    ):
        assert loaded.input_example["x"].dtype == np.float32
        assert loaded.input_example["y"].tolist() == [1, 2]
        assert loaded.predict(example).tolist() == [0.0, 0.0]


def _factor(tmp_path: Path) -> str:
    f = tmp_path / "factor.txt"
    f.write_text("3")
    return str(f)


def test_a_bad_allow_pickle_value_is_an_error_naming_the_setting(monkeypatch):
    from ledgerflow.events.settings import load_settings

    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "maybe")
    with pytest.raises(InvalidInput, match="LEDGERFLOW_ALLOW_PICKLE") as e:
        load_settings()
    assert e.value.field == "LEDGERFLOW_ALLOW_PICKLE"
    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "0")
    assert load_settings().allow_pickle is False
