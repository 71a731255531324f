"""`lf.log_model` and `lf.save_model`: save a model in the flavor of its framework.

    model = RandomForestClassifier().fit(X, y)
    lf.log_model(model, name="model", registered_model_name="iris")

The framework is read off the object's classes, without importing any framework that the
caller has not imported already: a scikit-learn estimator goes to `ledgerflow.sklearn`, a
`torch.nn.Module` (Lightning's included) to `ledgerflow.pytorch`, a Keras model or a
`tf.Module` to `ledgerflow.tensorflow`, an `onnx.ModelProto` to `ledgerflow.onnx`, an XGBoost
`Booster` or scikit-learn model to `ledgerflow.xgboost`, a spaCy `Language` pipeline to
`ledgerflow.spacy`, a fitted Spark ML `PipelineModel` or model to `ledgerflow.spark`, a
`ledgerflow.pyfunc.PythonModel` or a plain function to `ledgerflow.pyfunc`. Anything else is
refused with the list of what is supported. Keyword arguments go to the flavor's own
`log_model` / `save_model` (`conda_env`, `pip_requirements`, `signature`, `input_example`,
...); `flavor_of` says which one it will be.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ledgerflow import _flavor_fluent
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.model import Model, ModelInfo

SUPPORTED = (
    "a scikit-learn estimator or pipeline (ledgerflow.sklearn)",
    "a torch.nn.Module, Lightning modules included (ledgerflow.pytorch)",
    "a Keras model or a tf.Module (ledgerflow.tensorflow)",
    "an onnx.ModelProto (ledgerflow.onnx)",
    "an xgboost.Booster or XGBoost scikit-learn model (ledgerflow.xgboost)",
    "a spaCy pipeline, a spacy.language.Language (ledgerflow.spacy)",
    "a fitted Spark ML pyspark.ml.PipelineModel or model (ledgerflow.spark)",
    "a PythonModel (Ledgerflow's or MLflow's) or a function (ledgerflow.pyfunc)",
)
NOT_YET = ("lightgbm", "catboost", "transformers")
"""Frameworks with a flavor in MLflow and none here yet: said so rather than saved as
something else (an XGBoost classifier is also a scikit-learn estimator)."""


def flavor_of(model: Any) -> str:
    """The flavor `log_model` saves `model` in: "sklearn", "pytorch", "tensorflow", "onnx",
    "xgboost", "spacy", "spark" or "pyfunc"."""
    classes = type(model).__mro__
    roots = {c.__module__.split(".", 1)[0] for c in classes}
    late = sorted(roots & set(NOT_YET))
    if late:
        raise InvalidInput(
            f"{_name(model)} is a {late[0]} model, which has no flavor in this version of "
            f"Ledgerflow; it saves {_listed()}",
            field="model",
        )
    if _is(model, "xgboost.core", "Booster") or _is(model, "xgboost.sklearn", "XGBModel"):
        return "xgboost"  # before scikit-learn: its scikit-learn models are estimators too
    if _is(model, "sklearn.base", "BaseEstimator"):
        return "sklearn"
    if _is(model, "torch.nn", "Module"):
        return "pytorch"
    if _is(model, "keras", "Model") or _is(model, "tensorflow", "Module"):
        return "tensorflow"
    if _is(model, "onnx", "ModelProto"):
        return "onnx"
    if _is(model, "spacy.language", "Language"):
        return "spacy"  # before pyfunc: a pipeline is callable
    if _is(model, "pyspark.ml.base", "Transformer") or _is(model, "pyspark.ml.base", "Estimator"):
        return "spark"  # an estimator too, which ledgerflow.spark refuses with "fit it first"
    python_model = _is(model, "ledgerflow.pyfunc", "PythonModel") or _is(
        model, "mlflow.pyfunc", "PythonModel"
    )
    if python_model or (callable(model) and not isinstance(model, type)):
        return "pyfunc"
    raise InvalidInput(
        f"no flavor saves {_name(model)}; Ledgerflow saves {_listed()}", field="model"
    )


def log_model(
    model: Any,
    name: str | None = None,
    *,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log `model` to the active run (starting one if none is active) in the flavor of its
    framework (`flavor_of`), under `name` (default "model"), and register it as
    `registered_model_name` when given. `kwargs` go to the flavor's `log_model`."""
    flavor = flavor_of(model)
    fluent = importlib.import_module(f"ledgerflow.{flavor}.fluent")
    artifact = _flavor_fluent.artifact_name(name, artifact_path, stacklevel=3)
    if flavor == "pyfunc":
        info: ModelInfo = fluent.log_model(
            name=artifact, python_model=model, registered_model_name=registered_model_name,
            **kwargs,
        )  # fmt: skip
    else:
        info = fluent.log_model(
            model, name=artifact, registered_model_name=registered_model_name, **kwargs
        )
    return info


def save_model(model: Any, path: str | os.PathLike[str], **kwargs: Any) -> Model | None:
    """Save `model` as a model directory at `path` in the flavor of its framework
    (`flavor_of`); `kwargs` go to the flavor's `save_model`."""
    flavor = flavor_of(model)
    module = importlib.import_module(f"ledgerflow.{flavor}.flavor")
    if flavor == "pyfunc":
        saved: Model | None = module.save_model(path, python_model=model, **kwargs)
    else:
        saved = module.save_model(model, path, **kwargs)
    return saved


def _is(model: Any, module: str, name: str) -> bool:
    """Whether `model` is an instance of `module.name`, looked up only if `module` (or
    its top package, whose import brings it) is imported already."""
    if module.split(".", 1)[0] not in sys.modules:
        return False
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(model, cls)


def _name(model: Any) -> str:
    kind = type(model)
    return f"a {kind.__module__}.{kind.__qualname__}"


def _listed() -> str:
    return "; ".join(SUPPORTED)
