"""The XGBoost flavor's format: a `Booster` or an XGBoost scikit-learn model (`XGBClassifier`,
`XGBRegressor`, `XGBRanker`, ...) saved with XGBoost's own writer, UBJSON by default or
JSON, never pickle, in the layout of MLflow's `xgboost` flavor:

    model.ubj      the model (`model_format`: "ubj" or "json")
    MLmodel        flavors.xgboost: xgb_version, data, model_class, model_format, code

Loading builds an instance of `model_class` and reads the file into it; only XGBoost's
own model classes are built (the MLmodel is data a model's author controls, so its
`model_class` is never imported otherwise). What workers and model servers import;
`ledgerflow.xgboost.fluent` adds the session (log_model, load_model).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io
from ledgerflow.models.environment import installed_version
from ledgerflow.models.model import Model
from ledgerflow.pyfunc.flavor import add_to_model

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

FLAVOR_NAME = "xgboost"
LOADER_MODULE = "mlflow.xgboost"
MODEL_FORMATS = ("ubj", "json")
"""XGBoost's own formats; the deprecated binary `xgb` is not written (XGBoost 3 dropped it)."""
BOOSTER_CLASS = "xgboost.core.Booster"


def get_default_pip_requirements() -> list[str]:
    """XGBoost under the distribution name it is installed as (`xgboost` or the CPU-only
    `xgboost-cpu`, which installs the same module)."""
    if installed_version("xgboost") is None and installed_version("xgboost-cpu") is not None:
        return ["xgboost-cpu"]
    return ["xgboost"]


def save_model(
    xgb_model: Any,
    path: str | os.PathLike[str],
    conda_env: flavor_io.CondaEnv = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    mlflow_model: Model | None = None,
    signature: flavor_io.SignatureArg = None,
    input_example: Any = None,
    pip_requirements: flavor_io.Requirements = None,
    extra_pip_requirements: flavor_io.Requirements = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Model:
    """Save a trained `xgboost.Booster` or XGBoost scikit-learn model as a model directory
    at `path`; `kwargs` go to the model's `save_model`."""
    import xgboost as xgb

    if not isinstance(xgb_model, xgb.Booster | xgb.XGBModel):
        raise InvalidInput(
            "ledgerflow.xgboost saves an xgboost.Booster or an XGBoost scikit-learn model "
            f"(XGBClassifier, XGBRegressor, ...), not {_qualified(type(xgb_model))}",
            field="xgb_model",
        )
    if model_format not in MODEL_FORMATS:
        raise InvalidInput(
            f"model_format must be one of {list(MODEL_FORMATS)}, not {model_format!r}",
            field="model_format",
        )
    p = flavor_io.prepare_dir(path)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    if metadata is not None:
        mlmodel.metadata = metadata
    code = flavor_io.copy_code_paths(code_paths, p)
    data = f"model.{model_format}"
    try:
        xgb_model.save_model(str(p / data), **kwargs)
    except (xgb.core.XGBoostError, ValueError) as e:  # not fitted (sklearn's NotFittedError)
        raise InvalidInput(f"XGBoost could not save the model: {e}", field="xgb_model") from None
    add_to_model(mlmodel, LOADER_MODULE, data=data, code=code)
    mlmodel.add_flavor(
        FLAVOR_NAME,
        xgb_version=xgb.__version__,
        data=data,
        model_class=_qualified(type(xgb_model)),
        model_format=model_format,
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
        predict=_XGBModelWrapper(xgb_model).predict,
    )


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
) -> Any:
    """The XGBoost model saved at `model_uri` (path, file:, or runs:/ and models:/ looked
    up in `source`): a `Booster` or the scikit-learn model class it was saved as."""
    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    return _load(local, conf)


def _load(model_dir: Path, conf: dict[str, Any]) -> Any:
    model = _model_class(conf.get("model_class", BOOSTER_CLASS))()
    data = conf.get("data")
    if not isinstance(data, str) or not (model_dir / data).is_file():
        raise InvalidInput(f"the xgboost model at {str(model_dir)!r} has no model file {data!r}")
    model.load_model(str(model_dir / data))
    return model


def _model_class(name: Any) -> type:
    """The XGBoost class `name` (`xgboost.sklearn.XGBClassifier`), refusing anything else."""
    import xgboost as xgb

    module, _, attr = str(name).rpartition(".")
    found = None
    if module == "xgboost" or module.startswith("xgboost."):
        try:
            found = getattr(importlib.import_module(module), attr, None)
        except ImportError:
            found = None
    if not (isinstance(found, type) and issubclass(found, xgb.Booster | xgb.XGBModel)):
        raise InvalidInput(
            f"the model's model_class {name!r} is not an XGBoost model class; only "
            "xgboost.Booster and XGBoost's scikit-learn models are loaded",
            field="model_class",
        )
    return found


class _XGBModelWrapper:
    """The pyfunc implementation: `predict(data, params)`. A Booster predicts on a DMatrix
    of the data; a scikit-learn model on the data itself. `params` that the model's
    `predict` takes (`output_margin`, `iteration_range`, ...) are passed on."""

    def __init__(self, xgb_model: Any) -> None:
        self.xgb_model = xgb_model

    def get_raw_model(self) -> Any:
        return self.xgb_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import xgboost as xgb

        takes = inspect.signature(self.xgb_model.predict).parameters
        extra = {k: v for k, v in (params or {}).items() if k in takes}
        if isinstance(self.xgb_model, xgb.Booster):
            return self.xgb_model.predict(xgb.DMatrix(data), **extra)
        return self.xgb_model.predict(data, **extra)


def _load_pyfunc(path: str) -> _XGBModelWrapper:
    """Called by pyfunc.load_model with the model file (or the model directory)."""
    model_dir = flavor_io.model_dir_of(path)
    return _XGBModelWrapper(_load(model_dir, flavor_io.flavor_conf(model_dir, FLAVOR_NAME)))


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"
