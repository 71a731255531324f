"""ledgerflow.spark: MLflow's spark flavor layout written by Spark's own ML writer (never
pickle), pyfunc predictions over a pandas DataFrame, interchange with the real
`mlflow.spark` both ways, a clear error without Java, and a registered version served by a
fresh `ledgerflow serve` process.

One local[1] Spark session serves the module; its JVM is stopped at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow.pyfunc
import mlflow.spark
import numpy as np
import pandas as pd
import pyspark
import pytest
from pyspark import SparkContext
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import SparkSession

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow import spark as lf_spark
from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.flavors import flavor_of
from ledgerflow.models import Model
from ledgerflow.spark import _session
from tests.conftest import PYTHON
from tests.e2e.test_serve_process import serving

pytestmark = pytest.mark.slow  # a JVM per process: this one, a fresh one, a server


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """A small local session for the module; afterwards the session and its JVM are gone."""
    _session.check_java()  # without Java, say what to install rather than fail in Py4J
    session = (
        SparkSession.builder.master("local[1]").appName("ledgerflow-tests")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1").config("spark.driver.memory", "512m")
        .config("spark.driver.host", "127.0.0.1").getOrCreate()
    )  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    gateway = SparkContext._gateway
    if gateway is not None:  # the JVM lives until the gateway's stdin closes
        jvm = gateway.proc
        gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
        jvm.stdin.close()
        jvm.wait(timeout=60)


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(20, 2)), columns=["a", "b"])


@pytest.fixture(scope="module")
def model(spark: SparkSession, X: pd.DataFrame) -> PipelineModel:
    train = X.assign(label=(X["a"] + X["b"] > 0).astype(float))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["a", "b"], outputCol="features"),
                                LogisticRegression(maxIter=10)])  # fmt: skip
    return pipeline.fit(spark.createDataFrame(train))


def _predictions(spark: SparkSession, model: PipelineModel, X: pd.DataFrame) -> list[float]:
    out = model.transform(spark.createDataFrame(X)).select("prediction").collect()
    return [row.prediction for row in out]


def test_a_pipeline_model_round_trips_as_sparks_own_ml_folder(
    tmp_path: Path, spark: SparkSession, model: PipelineModel, X: pd.DataFrame
) -> None:
    expected = _predictions(spark, model, X)
    assert 0 < sum(expected) < len(expected)  # it learnt both classes
    lf_spark.save_model(model, tmp_path / "m", input_example=X.head(3))
    conf = Model.load(tmp_path / "m").flavors
    assert conf["spark"] == {"pyspark_version": pyspark.__version__, "model_data": "sparkml",
                             "model_class": "pyspark.ml.pipeline.PipelineModel", "code": None}  # fmt: skip
    assert conf["python_function"]["loader_module"] == "mlflow.spark"
    assert conf["python_function"]["data"] == "sparkml"
    assert (tmp_path / "m" / "sparkml" / "metadata").is_dir()
    assert not list((tmp_path / "m").rglob("*.pkl"))
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert reqs == [f"pyspark=={pyspark.__version__}"]
    loaded = lf_spark.load_model(tmp_path / "m")
    assert isinstance(loaded, PipelineModel) and len(loaded.stages) == 2
    assert _predictions(spark, loaded, X) == expected
    served = pyfunc.load_model(tmp_path / "m")
    signature = served.metadata.signature
    assert signature.inputs.input_names() == ["a", "b"]
    assert signature.outputs.to_dict() == [{"type": "double", "required": True}]  # as MLflow's
    assert served.predict(X) == expected


def test_a_bare_fitted_model_is_wrapped_and_predicts_on_feature_arrays(
    tmp_path: Path, spark: SparkSession, model: PipelineModel, X: pd.DataFrame
) -> None:
    classifier = model.stages[-1]
    lf.save_model(classifier, tmp_path / "lr")  # the flavor read off the model
    conf = Model.load(tmp_path / "lr").flavors["spark"]
    assert conf["model_class"] == "pyspark.ml.pipeline.PipelineModel"
    assert len(lf_spark.load_model(tmp_path / "lr").stages) == 1
    features = pd.DataFrame({"features": [np.asarray(row) for row in X.to_numpy()]})
    assert pyfunc.load_model(tmp_path / "lr").predict(features) == _predictions(spark, model, X)


def test_mlflow_loads_ours_and_we_load_mlflows(
    tmp_path: Path, spark: SparkSession, model: PipelineModel, X: pd.DataFrame
) -> None:
    expected = _predictions(spark, model, X)
    lf_spark.save_model(model, tmp_path / "ours")
    assert _predictions(spark, mlflow.spark.load_model(str(tmp_path / "ours")), X) == expected
    assert mlflow.pyfunc.load_model(str(tmp_path / "ours")).predict(X) == expected

    # requirements given: MLflow would infer them by loading the model in a subprocess (slow)
    mlflow.spark.save_model(model, str(tmp_path / "mlflow"), pip_requirements=["pyspark"],
                            dfs_tmpdir=str(tmp_path / "dfs"))  # fmt: skip
    assert _predictions(spark, lf_spark.load_model(tmp_path / "mlflow"), X) == expected
    assert pyfunc.load_model(tmp_path / "mlflow").predict(X) == expected


def test_what_is_not_a_fitted_model_or_a_table_is_refused_by_name(
    tmp_path: Path, model: PipelineModel, X: pd.DataFrame
) -> None:
    with pytest.raises(
        InvalidInput, match=r"saves a fitted pyspark.ml.PipelineModel .* not builtins.str"
    ):
        lf_spark.save_model("model", tmp_path / "a")
    with pytest.raises(
        InvalidInput, match="pyspark.ml.pipeline.Pipeline is an estimator: save what"
    ):
        lf.save_model(Pipeline(stages=[LogisticRegression()]), tmp_path / "b")
    assert flavor_of(model) == "spark"
    lf_spark.save_model(model, tmp_path / "m")
    served = pyfunc.load_model(tmp_path / "m")
    with pytest.raises(
        InvalidInput, match=r"Spark could not predict on the input \(columns \['a', 'c'\]\)"
    ):
        served.predict(X.rename(columns={"b": "c"}))
    with pytest.raises(InvalidInput, match="predicts on a table .* not numpy.ndarray"):
        served.predict(X.to_numpy())
    assert served.predict(X.head(0)) == []
    shutil.rmtree(tmp_path / "m" / "sparkml" / "metadata")
    with pytest.raises(InvalidInput, match="has no Spark ML folder 'sparkml'"):
        lf_spark.load_model(tmp_path / "m")


def test_without_java_the_error_says_what_to_install(
    tmp_path: Path, model: PipelineModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(Unavailable, match=r"needs Java 17\+, and JAVA_HOME=.* has no bin/java"):
        _session.check_java()
    old = tmp_path / "jdk8" / "bin" / "java"
    old.parent.mkdir(parents=True)
    old.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_392\"' >&2\n")
    old.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk8"))
    with pytest.raises(Unavailable, match=r"is Java 8: install a Java runtime"):
        _session.check_java()

    # a process with no session and no Java: the error, not a Py4J traceback
    lf_spark.save_model(model, tmp_path / "m")
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PATH")}
    script = "import ledgerflow as lf, sys; lf.pyfunc.load_model(sys.argv[1])"
    run = subprocess.run([PYTHON, "-c", script, str(tmp_path / "m")], capture_output=True,
                         text=True, env=env | {"PATH": str(Path(sys.executable).parent)},
                         timeout=120)  # fmt: skip
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ledgerflow.events.errors.Unavailable: the spark flavor needs Java 17+")
    assert "py4j" not in run.stderr.lower()


def test_logged_registered_and_served_by_a_fresh_process(
    tracking: Path, tmp_path: Path, spark: SparkSession, model: PipelineModel, X: pd.DataFrame
) -> None:
    expected = _predictions(spark, model, X)
    with lf.start_run():
        info = lf.log_model(model, name="model", input_example=X.head(3),
                            registered_model_name="spark-lr")  # fmt: skip
    assert info.registered_model_version == 1
    assert "spark" in info.flavors
    assert _predictions(spark, lf_spark.load_model("spark-lr", version=1), X) == expected
    lf.flush()
    # the server is the fresh process: it has no Spark session and starts its own (a JVM
    # start is the slow part here, so there is not a second one to load it by hand)
    with serving(tracking, tmp_path / "serve.log", "-m", "models:/spark-lr/1") as url:
        body = {"dataframe_split": X.to_dict(orient="split")}
        r = httpx.post(url + "/invocations", json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": expected}
        bad = {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}
        r = httpx.post(url + "/invocations", json=bad, timeout=60)
        assert r.status_code == 400 and "'b'" in r.text, r.text
