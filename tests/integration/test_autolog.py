"""Autologging: Keras `fit` and scikit-learn `fit` log to runs, and never break training.

Keras is imported once for the module (seconds); models and data are tiny.
"""

import logging
import subprocess
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ledgerflow as lf
import ledgerflow.sklearn
import ledgerflow.tensorflow
from ledgerflow import _autologging, pyfunc
from tests.conftest import PYTHON, ROOT, python_env
from tests.tensorboard_files import logged_events

rng = np.random.default_rng(0)
X = rng.random((12, 3), dtype=np.float32)
Y = X @ np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]], dtype=np.float32)
LABELS = (X[:, 0] > 0.5).astype(int)


@pytest.fixture(autouse=True)
def autolog_is_off_afterwards(tracking: Path):
    yield
    lf.autolog(disable=True)
    assert _autologging.config("tensorflow") is None and _autologging.config("sklearn") is None


def tiny_keras():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    return model


def the_run(run_id=None):
    run = lf.last_active_run() if run_id is None else lf.get_run(run_id)
    assert run is not None
    return run


def history(run, key):
    return [(m.step, m.value) for m in lf.Client().get_metric_history(run.info.run_id, key)]


# Keras ------------------------------------------------------------------------------------
def test_a_keras_fit_logs_params_epoch_metrics_and_the_model_in_a_run_of_its_own():
    ledgerflow.tensorflow.autolog()
    model = tiny_keras()

    hist = model.fit(X, Y, epochs=2, batch_size=4, validation_data=(X, Y), verbose=0)

    run = the_run()
    assert lf.active_run() is None and run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "tensorflow"
    params = run.data.params
    assert params["epochs"] == "2" and params["batch_size"] == "4"
    assert params["opt_name"] == "adam" and float(params["opt_learning_rate"]) == pytest.approx(
        0.01
    )
    assert "validation_split" in params and "x" not in params and "callbacks" not in params
    for key in ("loss", "val_loss"):
        logged = history(run, key)
        assert [s for s, _ in logged] == [0, 1]
        np.testing.assert_allclose([v for _, v in logged], hist.history[key], rtol=1e-6)
    files = {a.path for a in lf.Client().list_artifacts(run.info.run_id)}
    assert {"model", "model_summary.txt", "tensorboard_logs"} <= files
    events, logged = logged_events(run.info.run_id, "val_loss"), history(run, "val_loss")
    assert [s for s, _ in events] == [s for s, _ in logged]
    np.testing.assert_allclose([v for _, v in events], [v for _, v in logged], rtol=1e-6)
    loaded = pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature.inputs.inputs[0].shape == (-1, 3)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X, verbose=0), rtol=1e-6)


def test_a_keras_fit_inside_an_active_run_logs_there_and_leaves_it_open():
    ledgerflow.tensorflow.autolog(log_models=False, log_every_epoch=False, log_every_n_steps=1)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=3)
    with lf.start_run() as run:
        tiny_keras().fit(X, Y, epochs=2, batch_size=6, verbose=0, callbacks=[stop])
        assert lf.active_run() is not None

    logged = the_run(run.info.run_id)
    assert logged.data.params["epochs"] == "2"
    assert logged.data.params["monitor"] == "loss" and logged.data.params["patience"] == "3"
    assert [s for s, _ in history(logged, "loss")] == [1, 2, 3, 4]  # optimizer steps
    assert "model" not in {a.path for a in lf.Client().list_artifacts(run.info.run_id)}


def test_a_second_fit_in_the_same_run_warns_of_its_params_but_logs_its_metrics(caplog):
    ledgerflow.tensorflow.autolog(log_models=False)
    model = tiny_keras()
    with lf.start_run() as run:
        model.fit(X, Y, epochs=2, verbose=0)
        with caplog.at_level(logging.WARNING, logger="ledgerflow.autolog"):
            model.fit(X, Y, epochs=3, verbose=0)

    assert the_run(run.info.run_id).data.params["epochs"] == "2"  # params never change
    assert [s for s, _ in history(the_run(run.info.run_id), "loss")] == [0, 0, 1, 1, 2]
    assert any("logging params failed" in r.message for r in caplog.records)


def test_a_keras_fit_whose_logging_fails_still_trains_and_warns(caplog):
    ledgerflow.tensorflow.autolog()
    model = tiny_keras()
    before = model.get_weights()[0].copy()
    with lf.start_run() as run:
        lf.delete_run(run.info.run_id)
        with caplog.at_level(logging.WARNING, logger="ledgerflow.autolog"):
            hist = model.fit(X, Y, epochs=2, verbose=0)

    assert len(hist.history["loss"]) == 2 and not np.allclose(model.get_weights()[0], before)
    assert any(
        "training is not affected" in r.message and "deleted" in r.message for r in caplog.records
    )


def test_a_run_deleted_during_training_loses_its_metrics_but_not_the_training(caplog):
    ledgerflow.tensorflow.autolog()

    class DeleteTheRun(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                lf.delete_run(lf.active_run().info.run_id)

    with caplog.at_level(logging.WARNING, logger="ledgerflow.autolog"):
        hist = tiny_keras().fit(X, Y, epochs=2, verbose=0, callbacks=[DeleteTheRun()])

    assert len(hist.history["loss"]) == 2 and lf.active_run() is None
    assert any("training is not affected" in r.message for r in caplog.records)


# scikit-learn -----------------------------------------------------------------------------
def test_a_sklearn_fit_logs_params_tags_a_training_score_and_the_model():
    ledgerflow.sklearn.autolog()
    clf = LogisticRegression(C=0.5, max_iter=200)

    clf.fit(X, LABELS)

    run = the_run()
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.autologging"] == "sklearn"
    assert run.data.params == {k: str(v) for k, v in clf.get_params().items()}
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    metrics = run.data.metrics
    assert metrics["training_score"] == pytest.approx(clf.score(X, LABELS))
    assert metrics["training_accuracy_score"] == pytest.approx(clf.score(X, LABELS))
    assert {"training_f1_score", "training_log_loss", "training_roc_auc"} <= set(metrics)
    loaded = pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_a_regressor_gets_regression_metrics_and_a_pipeline_is_one_run_not_one_per_step():
    ledgerflow.sklearn.autolog(log_models=False)
    pipe = make_pipeline(StandardScaler(), LinearRegression())

    pipe.fit(X, Y[:, 0])

    runs = lf.search_runs(output_format="list")
    assert len(runs) == 1
    run = the_run()
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["linearregression__fit_intercept"] == "True"
    assert run.data.metrics["training_r2_score"] == pytest.approx(pipe.score(X, Y[:, 0]))
    assert {"training_root_mean_squared_error", "training_mean_absolute_error"} <= set(
        run.data.metrics
    )


def test_a_sklearn_fit_whose_logging_fails_still_trains_and_warns(caplog):
    ledgerflow.sklearn.autolog()
    with lf.start_run() as run:
        lf.delete_run(run.info.run_id)
        with caplog.at_level(logging.WARNING, logger="ledgerflow.autolog"):
            clf = LogisticRegression().fit(X, LABELS)

    assert clf.predict(X).shape == (12,)
    assert any("deleted" in r.message for r in caplog.records)


def test_a_training_error_propagates_and_the_run_autolog_started_is_marked_failed():
    ledgerflow.sklearn.autolog()
    bad = X.copy()
    bad[0, 0] = np.nan

    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(bad, LABELS)

    run = the_run()
    assert run.info.status == "FAILED" and lf.active_run() is None


def test_exclusive_autolog_leaves_a_user_run_alone_and_disable_restores_fit():
    original = LogisticRegression.fit
    ledgerflow.sklearn.autolog(exclusive=True)
    assert LogisticRegression.fit is not original
    with lf.start_run() as run:
        LogisticRegression().fit(X, LABELS)
    assert the_run(run.info.run_id).data.params == {}

    ledgerflow.sklearn.autolog(disable=True)
    assert LogisticRegression.fit is original


# lf.autolog() -----------------------------------------------------------------------------
def test_lf_autolog_enables_keras_and_sklearn_and_an_explicit_flavor_setting_wins():
    ledgerflow.sklearn.autolog(log_models=False)
    lf.autolog()

    tiny_keras().fit(X, Y, epochs=2, verbose=0)
    keras_run = the_run()
    LogisticRegression().fit(X, LABELS)
    sklearn_run = the_run()

    assert keras_run.info.run_id != sklearn_run.info.run_id
    assert keras_run.data.tags["mlflow.autologging"] == "tensorflow"
    assert "model" in {a.path for a in lf.Client().list_artifacts(keras_run.info.run_id)}
    assert "training_score" in sklearn_run.data.metrics
    assert "model" not in {a.path for a in lf.Client().list_artifacts(sklearn_run.info.run_id)}


@pytest.mark.slow
def test_lf_autolog_imports_no_framework_and_patches_one_when_it_is_imported(tmp_path: Path):
    script = textwrap.dedent(
        """
        import sys
        import ledgerflow as lf
        import ledgerflow.sklearn.autolog
        import ledgerflow.tensorflow

        lf.autolog(log_models=False)
        heavy = [m for m in ("sklearn", "keras", "tensorflow", "torch", "lightning") if m in sys.modules]
        assert heavy == [], heavy

        import numpy as np
        from sklearn.linear_model import LinearRegression

        LinearRegression().fit(np.eye(3), np.arange(3.0))
        run = lf.last_active_run()
        print(run.data.tags["estimator_name"], run.data.metrics["training_score"])
        assert "keras" not in sys.modules and "torch" not in sys.modules
        """
    )
    out = subprocess.run(
        [PYTHON, "-c", script],
        cwd=ROOT,
        env=python_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["LinearRegression", "1.0"]
