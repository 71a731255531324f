"""XGBoost autologging: `xgboost.train` and the scikit-learn API log params, every
iteration's evaluation metrics, early stopping, feature importances and the model, as
MLflow's `mlflow.xgboost.autolog` does (checked against it in a process of its own)."""

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

import ledgerflow as lf
import ledgerflow.xgboost
from ledgerflow import _autologging, pyfunc
from tests.conftest import PYTHON, ROOT, python_env

X, Y = load_breast_cancer(return_X_y=True)
X = X[:, :6]
PARAMS = {"objective": "binary:logistic", "max_depth": 2, "eval_metric": ["logloss", "error@0.6"]}
# the same training for both autologgers: 30 rounds, early stopping on the validation set
TRAIN = """
dtrain = xgb.DMatrix(X[:400], label=Y[:400])
dvalid = xgb.DMatrix(X[400:], label=Y[400:])
booster = xgb.train(PARAMS, dtrain, 30, evals=[(dtrain, "train"), (dvalid, "valid")],
                    early_stopping_rounds=3, verbose_eval=False)
"""


@pytest.fixture(autouse=True)
def autolog_is_off_afterwards(tracking: Path) -> Iterator[None]:
    yield
    lf.autolog(disable=True)
    assert _autologging.config("xgboost") is None


def train_booster() -> tuple[xgb.Booster, dict[str, Any]]:
    scope = {"xgb": xgb, "X": X, "Y": Y, "PARAMS": PARAMS}
    exec(TRAIN, scope)
    return scope["booster"], scope


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in lf.Client().get_metric_history(run_id, key)]


def artifact(run_id: str, path: str) -> bytes:
    return (Path(lf.Client().download_artifacts(run_id, path))).read_bytes()


def test_xgboost_train_logs_params_each_iterations_metrics_early_stopping_importances_and_model() -> (
    None
):
    ledgerflow.xgboost.autolog(importance_types=["weight", "gain"])
    booster, _ = train_booster()

    run = lf.last_active_run()
    assert run is not None and run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "xgboost"
    params = run.data.params
    assert params["max_depth"] == "2" and params["objective"] == "binary:logistic"
    assert params["num_boost_round"] == "30" and params["early_stopping_rounds"] == "3"
    assert "dtrain" not in params and "callbacks" not in params
    # every iteration at its step; "@" is not allowed in a metric name
    stopped = booster.num_boosted_rounds() - 1
    best = booster.best_iteration
    run_id = run.info.run_id
    for key in ("train-logloss", "valid-logloss", "valid-error_at_0.6"):
        steps = [s for s, _ in history(run_id, key)]
        assert steps == [*range(stopped + 1), stopped + 1], key
    valid = history(run_id, "valid-logloss")
    assert valid[-1][1] == pytest.approx(valid[best][1])  # the best iteration, after the last
    assert run.data.metrics["best_iteration"] == best
    assert run.data.metrics["stopped_iteration"] == stopped
    for kind in ("weight", "gain"):
        logged = json.loads(artifact(run_id, f"feature_importance_{kind}.json"))
        assert logged == pytest.approx(booster.get_score(importance_type=kind))

    loaded = ledgerflow.xgboost.load_model(f"runs:/{run_id}/model")
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_allclose(
        loaded.predict(xgb.DMatrix(X[:20])), booster.predict(xgb.DMatrix(X[:20]))
    )
    model = pyfunc.load_model(f"runs:/{run_id}/model")
    assert model.metadata.signature is not None  # from the training DMatrix's first rows
    np.testing.assert_allclose(model.predict(X[:20]), booster.predict(xgb.DMatrix(X[:20])))


def test_the_scikit_learn_api_logs_estimator_params_training_metrics_and_its_own_class() -> None:
    ledgerflow.xgboost.autolog(log_input_examples=True, registered_model_name="xgb-auto")
    clf = xgb.XGBClassifier(n_estimators=6, max_depth=2, eval_metric="logloss")
    with lf.start_run() as active:
        clf.fit(X[:400], Y[:400], eval_set=[(X[400:], Y[400:])], verbose=False)

    run = lf.get_run(active.info.run_id)
    assert run.data.params["n_estimators"] == "6" and run.data.params["max_depth"] == "2"
    assert run.data.tags["estimator_name"] == "XGBClassifier"
    assert run.data.tags["estimator_class"] == "xgboost.sklearn.XGBClassifier"
    steps = [s for s, _ in history(run.info.run_id, "validation_0-logloss")]
    assert steps == list(range(6))
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(clf.score(X[:400], Y[:400]))
    assert {"training_log_loss", "training_roc_auc", "training_f1_score"} <= set(run.data.metrics)
    assert json.loads(artifact(run.info.run_id, "feature_importance_weight.json"))

    loaded = lf.xgboost.load_model("xgb-auto", version=1)
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X[:10]), clf.predict_proba(X[:10]))
    model_dir = Path(lf.Client().download_artifacts(run.info.run_id, "model"))
    assert (model_dir / "input_example.json").exists()


def test_autolog_switches_xgboost_on_and_disable_puts_the_original_functions_back() -> None:
    original_train, original_fit = xgb.train, xgb.XGBRegressor.fit
    lf.autolog()
    assert xgb.train is not original_train and xgb.XGBRegressor.fit is not original_fit
    xgb.XGBRegressor(n_estimators=2).fit(X, Y)
    assert lf.last_active_run().data.tags["mlflow.autologging"] == "xgboost"

    lf.autolog(disable=True)
    assert xgb.train is original_train and xgb.XGBRegressor.fit is original_fit
    with lf.start_run() as run:
        xgb.XGBRegressor(n_estimators=2).fit(X, Y)
    assert lf.get_run(run.info.run_id).data.params == {}


MLFLOW_SIDE = """
import json, sys
import mlflow, mlflow.xgboost, numpy as np, xgboost as xgb
from sklearn.datasets import load_breast_cancer
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1])
mlflow.xgboost.autolog(importance_types=["weight"], log_datasets=False)
X, Y = load_breast_cancer(return_X_y=True)
X = X[:, :6]
PARAMS = json.loads(sys.argv[2])
{train}
run = mlflow.last_active_run()
client = mlflow.MlflowClient()
print(json.dumps({{
    "params": sorted(run.data.params), "metrics": run.data.metrics,
    "steps": [m.step for m in client.get_metric_history(run.info.run_id, "valid-logloss")],
    "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id)),
}}))
"""


def test_what_it_logs_is_what_mlflows_xgboost_autolog_logs_for_the_same_training(
    tmp_path: Path,
) -> None:
    script = MLFLOW_SIDE.format(train=textwrap.dedent(TRAIN))
    out = subprocess.run(
        [PYTHON, "-c", script, str(tmp_path / "mlflow.db"), json.dumps(PARAMS)],
        env=python_env() | {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    theirs = json.loads(out.stdout.strip().splitlines()[-1])

    ledgerflow.xgboost.autolog(importance_types=["weight"])
    train_booster()
    run = lf.last_active_run()
    ours = lf.Client().list_artifacts(run.info.run_id)

    # MLflow also logs `custom_metric` (a function, "None" when unset): code, not a setting
    assert sorted(run.data.params) == [p for p in theirs["params"] if p != "custom_metric"]
    assert run.data.metrics == pytest.approx(theirs["metrics"])
    assert [s for s, _ in history(run.info.run_id, "valid-logloss")] == theirs["steps"]
    # MLflow also draws each importance as a PNG (the numbers are the JSON both write), and
    # MLflow 3 keeps the model as a logged model of its own, not among the run's artifacts
    assert {a.path for a in ours} - {"model"} == {
        a for a in theirs["artifacts"] if not a.endswith(".png")
    }


def test_a_failure_to_log_is_a_warning_and_training_and_the_rest_of_the_logging_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledgerflow.xgboost.autolog(importance_types=["no-such-type", "weight"])
    with caplog.at_level("WARNING", logger="ledgerflow.autolog"):
        booster, _ = train_booster()
    assert booster.num_boosted_rounds() > 0
    assert "no-such-type feature importance failed" in caplog.text
    run_id = lf.last_active_run().info.run_id
    assert [a.path for a in lf.Client().list_artifacts(run_id)] == [
        "feature_importance_weight.json",
        "model",
    ]
