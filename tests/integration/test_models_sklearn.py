"""ledgerflow.sklearn: MLflow's sklearn flavor layout, skops by default, and interchange."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow import sklearn as lf_sklearn
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import Model, infer_signature


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    iris = load_iris(as_frame=True)
    return iris.data.iloc[::5], iris.target.iloc[::5].to_numpy()


@pytest.fixture(scope="module")
def fitted(data) -> object:
    X, y = data
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def _pickle_off(monkeypatch: pytest.MonkeyPatch, tracking: Path) -> None:
    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "false")
    lf.set_tracking_uri(tracking)  # settings are read at the edge


def test_a_pipeline_saved_with_skops_round_trips(tmp_path, fitted, data):
    X, _ = data
    lf_sklearn.save_model(fitted, tmp_path / "m", input_example=X.head(3))
    conf = Model.load(tmp_path / "m").flavors
    assert conf["sklearn"]["serialization_format"] == "skops"
    assert (
        conf["sklearn"]["pickled_model"] == conf["python_function"]["model_path"] == "model.skops"
    )
    assert conf["python_function"]["loader_module"] == "mlflow.sklearn"
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert [r.split("==")[0] for r in reqs] == ["scikit-learn", "skops"]
    np.testing.assert_array_equal(
        lf_sklearn.load_model(tmp_path / "m").predict(X), fitted.predict(X)
    )
    m = pyfunc.load_model(tmp_path / "m")
    np.testing.assert_array_equal(m.predict(X), fitted.predict(X))
    sig = m.metadata.signature
    assert sig.inputs.input_names() == list(X.columns)
    assert sig.to_dict()["outputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
    )


@pytest.mark.parametrize("fmt", ["skops", "cloudpickle", "pickle"])
def test_mlflow_loads_a_model_saved_by_ledgerflow(tmp_path, fitted, data, fmt):
    import mlflow.pyfunc
    import mlflow.sklearn

    X, _ = data
    lf_sklearn.save_model(
        fitted, tmp_path / "m", serialization_format=fmt, signature=infer_signature(X)
    )
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X), fitted.predict(X)
    )
    np.testing.assert_array_equal(
        mlflow.sklearn.load_model(str(tmp_path / "m")).predict_proba(X), fitted.predict_proba(X)
    )


@pytest.mark.parametrize("fmt", ["skops", "cloudpickle"])
def test_ledgerflow_loads_a_model_saved_by_mlflow(tmp_path, fitted, data, fmt):
    import mlflow.sklearn

    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            fitted,
            str(tmp_path / "m"),
            serialization_format=fmt,
            input_example=X.head(2),
            pip_requirements=["scikit-learn"],
        )
    m = pyfunc.load_model(tmp_path / "m")
    np.testing.assert_array_equal(m.predict(X), fitted.predict(X))
    assert m.metadata.signature.inputs.input_names() == list(X.columns)
    pd.testing.assert_frame_equal(m.input_example, X.head(2).reset_index(drop=True))
    np.testing.assert_array_equal(
        lf_sklearn.load_model(tmp_path / "m").predict(X), fitted.predict(X)
    )


def test_pyfunc_predict_fn_selects_predict_proba(tmp_path, fitted, data):
    X, _ = data
    lf_sklearn.save_model(fitted, tmp_path / "m", pyfunc_predict_fn="predict_proba")
    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(X), fitted.predict_proba(X)
    )
    with pytest.raises(InvalidInput, match="pyfunc_predict_fn must be one of"):
        lf_sklearn.save_model(fitted, tmp_path / "n", pyfunc_predict_fn="transform")


def test_input_that_breaks_the_signature_is_refused_before_sklearn_sees_it(tmp_path, fitted, data):
    X, _ = data
    lf_sklearn.save_model(fitted, tmp_path / "m", signature=infer_signature(X))
    m = pyfunc.load_model(tmp_path / "m")
    col = X.columns[1]
    with pytest.raises(
        InvalidInput, match=r"missing required column\(s\) \[" + re.escape(repr(col))
    ):
        m.predict(X.drop(columns=[col]))
    with pytest.raises(InvalidInput, match=re.escape(f"column {col!r}: expected double")):
        m.predict(X.assign(**{col: "wide"}))


def test_a_model_skops_cannot_store_says_to_use_cloudpickle(tmp_path, data):
    X, y = data
    odd = make_pipeline(
        FunctionTransformer(lambda a: a * 2), LogisticRegression(max_iter=1000)
    ).fit(X, y)
    with pytest.raises(InvalidInput, match="serialization_format='cloudpickle'"):
        lf_sklearn.save_model(odd, tmp_path / "m")
    lf_sklearn.save_model(odd, tmp_path / "m2", serialization_format="cloudpickle")
    np.testing.assert_array_equal(pyfunc.load_model(tmp_path / "m2").predict(X), odd.predict(X))
    with pytest.raises(InvalidInput, match="unknown serialization_format"):
        lf_sklearn.save_model(odd, tmp_path / "m3", serialization_format="joblib")


def test_pickled_models_are_refused_when_pickle_is_off_and_skops_ones_are_not(
    tmp_path, tracking, fitted, data, monkeypatch
):
    X, _ = data
    lf_sklearn.save_model(fitted, tmp_path / "pkl", serialization_format="cloudpickle")
    lf_sklearn.save_model(fitted, tmp_path / "skops")
    _pickle_off(monkeypatch, tracking)
    for load in (lf_sklearn.load_model, pyfunc.load_model):
        with pytest.raises(InvalidInput, match="refused: LEDGERFLOW_ALLOW_PICKLE=false"):
            load(tmp_path / "pkl")
    np.testing.assert_array_equal(
        pyfunc.load_model(tmp_path / "skops").predict(X), fitted.predict(X)
    )


def test_a_skops_model_that_trusts_extra_types_counts_as_pickle(
    tmp_path, tracking, fitted, monkeypatch
):
    lf_sklearn.save_model(fitted, tmp_path / "m")
    mlmodel = Model.load(tmp_path / "m")
    mlmodel.flavors["sklearn"]["skops_trusted_types"] = ["builtins.eval"]
    mlmodel.save(tmp_path / "m")
    _pickle_off(monkeypatch, tracking)
    with pytest.raises(InvalidInput, match="trusts extra types"):
        lf_sklearn.load_model(tmp_path / "m")


def test_log_model_then_load_by_run_and_registry_uri(tracking, fitted, data):
    X, _ = data
    with lf.start_run() as run:
        info = lf_sklearn.log_model(
            fitted, name="iris", input_example=X.head(2), registered_model_name="iris"
        )
    assert info.model_uri == f"runs:/{run.info.run_id}/iris"
    assert info.registered_model_version == 1
    assert info.saved_input_example_info["type"] == "dataframe"
    for uri in (info.model_uri, "models:/iris/1"):
        np.testing.assert_array_equal(pyfunc.load_model(uri).predict(X), fitted.predict(X))
    np.testing.assert_array_equal(
        lf_sklearn.load_model("models:/iris/latest").predict(X), fitted.predict(X)
    )


def test_an_estimator_without_predict_is_saved_without_the_pyfunc_flavor(tmp_path, data):
    X, _ = data
    lf_sklearn.save_model(StandardScaler().fit(X), tmp_path / "m")
    assert set(Model.load(tmp_path / "m").flavors) == {"sklearn"}
    assert lf_sklearn.load_model(tmp_path / "m").transform(X).shape == X.shape
