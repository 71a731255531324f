"""The Spark ML flavor's format: a fitted `pyspark.ml.PipelineModel` (a bare fitted model or
transformer is wrapped into a one-stage PipelineModel, as MLflow does) saved with Spark's
own ML writer (`model.write().overwrite().save(...)`, never pickle), in the layout of
MLflow's `spark` flavor:

    sparkml/       the PipelineModel as Spark writes it (metadata/, stages/)
    MLmodel        flavors.spark: pyspark_version, model_data, model_class, code

Loading is `PipelineModel.load` of that folder: Spark reads each stage's JSON metadata and
data (Parquet) and builds the stage classes it names; nothing is unpickled. Both need a
Spark session: the caller's if one is active, else a small local one started on demand
(`ledgerflow.spark._session`).

pyfunc turns a pandas DataFrame into a Spark DataFrame, transforms it and answers the
`prediction` column as a list, one value per row (vectors as lists of floats), as MLflow
does; it is written with MLflow's loader module (`mlflow.spark`), so `mlflow.pyfunc`
serves it. What workers and model servers import; `ledgerflow.spark.fluent` adds the
session (log_model, load_model).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io
from ledgerflow.models.model import Model
from ledgerflow.pyfunc.flavor import add_to_model
from ledgerflow.spark import _session

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel, Transformer
    from pyspark.sql import DataFrame, SparkSession

    from ledgerflow.models.uri import ArtifactSource

FLAVOR_NAME = "spark"
LOADER_MODULE = "mlflow.spark"
DATA = "sparkml"
"""The folder Spark writes the PipelineModel into (MLflow's `model_data`)."""
PREDICTION = "prediction"


def get_default_pip_requirements() -> list[str]:
    return ["pyspark"]


def save_model(
    spark_model: Any,
    path: str | os.PathLike[str],
    conda_env: flavor_io.CondaEnv = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    mlflow_model: Model | None = None,
    signature: flavor_io.SignatureArg = None,
    input_example: Any = None,
    pip_requirements: flavor_io.Requirements = None,
    extra_pip_requirements: flavor_io.Requirements = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Save a fitted Spark ML model (a `PipelineModel`, or a fitted `pyspark.ml.Model` or
    transformer, which is wrapped into one) as a model directory at `path`.

    With an input example (a pandas DataFrame) and no signature, the input schema is
    inferred from the example and the output schema from the model's predictions on it."""
    import pyspark
    from pyspark.ml import PipelineModel

    model = _pipeline_model(spark_model)
    p = flavor_io.prepare_dir(path)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    if metadata is not None:
        mlmodel.metadata = metadata
    code = flavor_io.copy_code_paths(code_paths, p)
    model.write().overwrite().save((p / DATA).resolve().as_uri())
    add_to_model(mlmodel, LOADER_MODULE, data=DATA, code=code)
    mlmodel.add_flavor(
        FLAVOR_NAME,
        pyspark_version=pyspark.__version__,
        model_data=DATA,
        model_class=f"{PipelineModel.__module__}.{PipelineModel.__name__}",
        code=code,
    )
    return flavor_io.finish_model_dir(
        p,
        mlmodel,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=get_default_pip_requirements(),
        predict=_SparkModelWrapper(model).predict,
    )


def _pipeline_model(spark_model: Any) -> PipelineModel:
    """`spark_model` as a PipelineModel, or InvalidInput saying what Spark ML saves."""
    from pyspark.ml import Estimator, PipelineModel, Transformer
    from pyspark.ml.util import MLReadable, MLWritable

    kind = type(spark_model)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(spark_model, Estimator):
        raise InvalidInput(
            f"ledgerflow.spark saves fitted models, and {name} is an estimator: save what "
            "its .fit(df) returns (a Pipeline fits into a PipelineModel)",
            field="spark_model",
        )
    if not (
        isinstance(spark_model, Transformer)
        and isinstance(spark_model, MLWritable)
        and isinstance(spark_model, MLReadable)
    ):
        raise InvalidInput(
            "ledgerflow.spark saves a fitted pyspark.ml.PipelineModel (or a fitted "
            f"pyspark.ml.Model or transformer that Spark can write and read), not {name}",
            field="spark_model",
        )
    if isinstance(spark_model, PipelineModel):
        return spark_model
    return PipelineModel([spark_model])


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
) -> PipelineModel:
    """The PipelineModel saved at `model_uri` (path, file:, or runs:/ and models:/ looked
    up in `source`), loaded in the active Spark session or a local one started for it."""
    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    return _load(local, conf)


def _load(model_dir: Path, conf: dict[str, Any]) -> PipelineModel:
    model_class = str(conf.get("model_class", ""))
    if model_class.startswith("pyspark.ml.connect."):
        raise InvalidInput(
            f"the spark model at {str(model_dir)!r} is a Spark Connect model ({model_class}), "
            "which ledgerflow.spark does not load; load it with mlflow.spark",
            field="model_class",
        )
    data = conf.get("model_data", DATA)
    folder = (model_dir / str(data)).resolve()
    if not folder.is_relative_to(model_dir.resolve()) or not (folder / "metadata").is_dir():
        raise InvalidInput(
            f"the spark model at {str(model_dir)!r} has no Spark ML folder {data!r} (one with "
            "metadata/, inside the model directory)",
            field="model_data",
        )
    from pyspark.ml import PipelineModel

    _session.session()
    return PipelineModel.load(folder.as_uri())


class _SparkModelWrapper:
    """The pyfunc implementation: `predict(df)` transforms a pandas DataFrame as a Spark
    DataFrame and answers its `prediction` column, a value per row."""

    def __init__(self, spark_model: PipelineModel, spark: SparkSession | None = None) -> None:
        self.spark_model = spark_model
        self.spark = spark

    def get_raw_model(self) -> PipelineModel:
        return self.spark_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> list[Any]:
        import pandas as pd
        from pyspark.errors import PySparkException

        if not isinstance(data, pd.DataFrame):
            kind = type(data)
            raise InvalidInput(
                "a Spark model predicts on a table (a pandas DataFrame with the model's input "
                f"columns), not {kind.__module__}.{kind.__qualname__}",
                field="data",
            )
        if data.empty:
            return []
        spark = self.spark if self.spark is not None else _session.session()
        try:
            frame = self._vectors(spark.createDataFrame(_plain_cells(data)))
            out = self.spark_model.transform(frame)
            column = self._output_column(out)
            rows = out.select(column).collect()
        except PySparkException as e:  # Spark's analysis of the input: a missing column, ...
            raise InvalidInput(
                f"Spark could not predict on the input (columns {[str(c) for c in data.columns]}"
                f"): {_first_line(e)}",
                field="data",
            ) from None
        return [_plain(row[0]) for row in rows]

    def _vectors(self, frame: DataFrame) -> DataFrame:
        """`frame` with the columns a stage takes as its `featuresCol` turned from arrays of
        numbers (what a table can hold) into the ML vectors the stage needs."""
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql.functions import col
        from pyspark.sql.types import ArrayType, NumericType

        wanted = {
            stage.getOrDefault("featuresCol")
            for stage in _stages(self.spark_model)
            if stage.hasParam("featuresCol")
        }
        for field in frame.schema.fields:
            kind = field.dataType
            if (
                field.name in wanted
                and isinstance(kind, ArrayType)
                and isinstance(kind.elementType, NumericType)
            ):
                frame = frame.withColumn(field.name, array_to_vector(col(field.name)))
        return frame

    def _output_column(self, out: DataFrame) -> str:
        """`prediction`, or the last stage's `outputCol` for a pipeline of transformers."""
        if PREDICTION in out.columns:
            return PREDICTION
        stages = list(_stages(self.spark_model))
        if stages and stages[-1].hasParam("outputCol"):
            column = str(stages[-1].getOrDefault("outputCol"))
            if column in out.columns:
                return column
        raise InvalidInput(
            f"the Spark model answers no {PREDICTION!r} column (its output has {out.columns}); "
            "set the last stage's predictionCol or outputCol to 'prediction'",
            field="model",
        )


def _stages(model: Transformer) -> Iterator[Transformer]:
    """The stages of `model`, nested PipelineModels flattened."""
    from pyspark.ml import PipelineModel

    if isinstance(model, PipelineModel):
        for stage in model.stages:
            yield from _stages(stage)
    else:
        yield model


def _plain_cells(data: Any) -> Any:
    """`data` with numpy arrays in its cells as lists, which Spark reads as arrays."""
    import numpy as np

    out = data
    for name in data.columns:
        column = data[name]
        if column.dtype == object and any(isinstance(v, np.ndarray) for v in column):
            if out is data:
                out = data.copy()
            out[name] = [v.tolist() if isinstance(v, np.ndarray) else v for v in column]
    return out


def _plain(value: Any) -> Any:
    """A Spark value as plain Python: an ML vector as a list of floats."""
    from pyspark.ml.linalg import Vector

    if isinstance(value, Vector):
        return [float(x) for x in value.toArray()]
    return value


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


def _load_pyfunc(path: str) -> _SparkModelWrapper:
    """Called by pyfunc.load_model with the Spark ML folder (or the model directory)."""
    model_dir = flavor_io.model_dir_of(path)
    model = _load(model_dir, flavor_io.flavor_conf(model_dir, FLAVOR_NAME))
    return _SparkModelWrapper(model, _session.session())
