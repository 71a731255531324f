"""`ledgerflow.spark`: fitted Spark ML models (`pyspark.ml.PipelineModel`) in MLflow's spark
flavor layout, saved with Spark's own ML writer, never pickled.

    sparkml/       the PipelineModel as Spark writes it
    MLmodel        flavors.spark: pyspark_version, model_data, model_class, code

Loads what `mlflow.spark` saves, and MLflow loads what this saves. pyfunc answers the
`prediction` column of a pandas DataFrame transformed as a Spark DataFrame, as MLflow does,
in the active Spark session or a local one started on demand (Java 17+ needed). PySpark is
imported only when a function here needs it.
"""

from ledgerflow.spark.flavor import FLAVOR_NAME, get_default_pip_requirements, save_model
from ledgerflow.spark.flavor import LOADER_MODULE as LOADER_MODULE

# What pyfunc calls for a `loader_module: mlflow.spark` (or `ledgerflow.spark`) model.
from ledgerflow.spark.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.spark.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
