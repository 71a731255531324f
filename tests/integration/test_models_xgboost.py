"""ledgerflow.xgboost: MLflow's xgboost flavor layout in XGBoost's own formats (never
pickle), interchange with the real `mlflow.xgboost` both ways, and a registered version
served by `ledgerflow serve`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import mlflow.pyfunc
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from sklearn.datasets import load_iris

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow import xgboost as lf_xgboost
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import Model, infer_signature
from tests.conftest import PYTHON
from tests.e2e.test_cli import cli_env
from tests.e2e.test_serve_process import serving


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    iris = load_iris(as_frame=True)
    return iris.data.iloc[::3], iris.target.iloc[::3].to_numpy()


@pytest.fixture(scope="module")
def classifier(data) -> xgb.XGBClassifier:
    X, y = data
    return xgb.XGBClassifier(n_estimators=8, max_depth=2).fit(X, y)


@pytest.fixture(scope="module")
def booster(data) -> xgb.Booster:
    X, y = data
    return xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
                     xgb.DMatrix(X, label=y), num_boost_round=5)  # fmt: skip


@pytest.mark.parametrize("model_format", ["ubj", "json"])
def test_a_classifier_round_trips_in_xgboosts_own_format(
    tmp_path: Path, classifier, data, model_format: str
) -> None:
    X, _ = data
    lf_xgboost.save_model(classifier, tmp_path / "m", model_format=model_format,
                          input_example=X.head(3))  # fmt: skip
    conf = Model.load(tmp_path / "m").flavors
    assert conf["xgboost"]["model_class"] == "xgboost.sklearn.XGBClassifier"
    assert conf["xgboost"]["data"] == conf["python_function"]["data"] == f"model.{model_format}"
    assert conf["xgboost"]["model_format"] == model_format
    assert conf["python_function"]["loader_module"] == "mlflow.xgboost"
    assert not list((tmp_path / "m").glob("*.pkl"))
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert [r.split("==")[0] for r in reqs] == ["xgboost-cpu"]  # what is installed here
    loaded = lf_xgboost.load_model(tmp_path / "m")
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    model = pyfunc.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    assert model.metadata.signature.inputs.input_names() == list(X.columns)


def test_a_booster_predicts_through_pyfunc_on_a_dmatrix_of_the_data(
    tmp_path: Path, booster, data
) -> None:
    X, _ = data
    expected = booster.predict(xgb.DMatrix(X))
    signature = infer_signature(X, expected, params={"output_margin": False})
    lf.save_model(booster, tmp_path / "b", signature=signature)  # the flavor inferred
    assert Model.load(tmp_path / "b").flavors["xgboost"]["model_class"] == "xgboost.core.Booster"
    np.testing.assert_allclose(pyfunc.load_model(tmp_path / "b").predict(X), expected)
    margins = pyfunc.load_model(tmp_path / "b").predict(X, params={"output_margin": True})
    np.testing.assert_allclose(margins, booster.predict(xgb.DMatrix(X), output_margin=True))


def test_mlflow_loads_ours_and_we_load_mlflows(tmp_path: Path, classifier, booster, data) -> None:
    X, _ = data
    lf_xgboost.save_model(classifier, tmp_path / "ours")
    theirs = mlflow.xgboost.load_model(str(tmp_path / "ours"))
    np.testing.assert_array_equal(theirs.predict(X), classifier.predict(X))
    pred = mlflow.pyfunc.load_model(str(tmp_path / "ours")).predict(X)
    np.testing.assert_array_equal(np.asarray(pred), classifier.predict(X))
    for fmt in ("ubj", "json"):
        mlflow.xgboost.save_model(booster, str(tmp_path / f"mlflow-{fmt}"), model_format=fmt)
        ours = lf_xgboost.load_model(tmp_path / f"mlflow-{fmt}")
        assert isinstance(ours, xgb.Booster)
        np.testing.assert_allclose(
            pyfunc.load_model(tmp_path / f"mlflow-{fmt}").predict(X),
            booster.predict(xgb.DMatrix(X)),
        )


def test_what_is_not_an_xgboost_model_is_refused_and_nothing_else_is_built(
    tmp_path: Path, classifier
) -> None:
    with pytest.raises(InvalidInput, match="not sklearn.linear_model"):
        from sklearn.linear_model import LinearRegression

        lf_xgboost.save_model(LinearRegression(), tmp_path / "a")
    with pytest.raises(InvalidInput, match="model_format must be one of"):
        lf_xgboost.save_model(classifier, tmp_path / "b", model_format="xgb")
    with pytest.raises(InvalidInput, match="could not save the model"):
        lf_xgboost.save_model(xgb.XGBRegressor(), tmp_path / "c")  # not fitted
    lf_xgboost.save_model(classifier, tmp_path / "d")
    mlmodel = tmp_path / "d" / "MLmodel"
    doc = yaml.safe_load(mlmodel.read_text())
    doc["flavors"]["xgboost"]["model_class"] = "subprocess.Popen"  # a model's author may
    mlmodel.write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidInput, match="'subprocess.Popen' is not an XGBoost model class"):
        lf_xgboost.load_model(tmp_path / "d")
    with pytest.raises(InvalidInput, match="is not an XGBoost model class"):
        pyfunc.load_model(tmp_path / "d")


def test_logged_registered_loaded_in_a_fresh_process_and_served(
    tracking: Path, tmp_path: Path, classifier, data
) -> None:
    X, _ = data
    with lf.start_run():
        info = lf.log_model(classifier, name="model", input_example=X.head(2),
                            registered_model_name="iris-xgb")  # fmt: skip
    assert info.registered_model_version == 1
    assert "xgboost" in info.flavors
    script = (
        "import ledgerflow as lf, pandas as pd, io, json, sys;"
        "X = pd.read_json(io.StringIO(sys.stdin.read()), orient='split');"
        "print(json.dumps(lf.xgboost.load_model('iris-xgb', version=1).predict(X).tolist()))"
    )
    fresh = subprocess.run(
        [PYTHON, "-c", script], input=X.to_json(orient="split"), capture_output=True,
        text=True, env=cli_env(tracking), timeout=120,
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == classifier.predict(X).tolist()
    lf.flush()
    with serving(tracking, tmp_path / "serve.log", "-m", "models:/iris-xgb/1") as url:
        body = {"dataframe_split": X.head(5).to_dict(orient="split")}
        r = httpx.post(url + "/invocations", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": classifier.predict(X.head(5)).tolist()}
