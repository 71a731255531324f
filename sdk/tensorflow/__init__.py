"""ledgerflow.tensorflow: Keras 3 models (and TF2 `tf.Module`s) in MLflow's tensorflow format.

    lf.tensorflow.log_model(model, name="model", input_example=x[:5])
    model = lf.tensorflow.load_model("runs:/<run_id>/model")

A directory holds, as `mlflow.tensorflow.save_model` writes it on TF >= 2.16:
`data/model.keras` (Keras' own format), `data/keras_module.txt`, `data/save_format.txt`
and, when given, `data/custom_objects.cloudpickle`; the MLmodel's `tensorflow` block has
`model_type: keras`, `keras_version`, `save_format` and `data`, and `python_function`
names `loader_module: mlflow.tensorflow`. So MLflow loads our models and we load its.

TensorFlow is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

from ledgerflow.tensorflow.autolog import autolog
from ledgerflow.tensorflow.flavor import FLAVOR_NAME, get_default_pip_requirements, save_model
from ledgerflow.tensorflow.flavor import LOADER_MODULE as LOADER_MODULE

# What pyfunc calls for a `loader_module: mlflow.tensorflow` model.
from ledgerflow.tensorflow.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.tensorflow.fluent import load_model, log_model


def __getattr__(name: str) -> Any:
    if name in ("LedgerflowCallback", "MlflowCallback"):
        from ledgerflow.tensorflow.callback import LedgerflowCallback

        return LedgerflowCallback
    raise AttributeError(f"module 'ledgerflow.tensorflow' has no attribute {name!r}")


__all__ = [
    "FLAVOR_NAME",
    "LedgerflowCallback",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
