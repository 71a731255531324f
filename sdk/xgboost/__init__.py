"""`ledgerflow.xgboost`: XGBoost models (a `Booster` or the scikit-learn API) in MLflow's
xgboost flavor layout, saved in XGBoost's own UBJSON or JSON format, never pickled.

    model.ubj      the model
    MLmodel        flavors.xgboost: xgb_version, data, model_class, model_format, code

Loads what `mlflow.xgboost` saves (ubj and json), and MLflow loads what this saves.
`autolog()` logs training (`xgboost.train` and the scikit-learn API) as MLflow's does.
XGBoost is imported only when a function here needs it.
"""

from ledgerflow.xgboost.autolog import autolog
from ledgerflow.xgboost.flavor import (
    FLAVOR_NAME,
    MODEL_FORMATS,
    get_default_pip_requirements,
    save_model,
)
from ledgerflow.xgboost.flavor import LOADER_MODULE as LOADER_MODULE

# What pyfunc calls for a `loader_module: mlflow.xgboost` model.
from ledgerflow.xgboost.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.xgboost.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "MODEL_FORMATS",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
