"""`ledgerflow.sklearn`: scikit-learn models in MLflow's sklearn flavor layout.

Saved with skops by default (`model.skops`, safe to load: skops only rebuilds types
it trusts), or with pickle/cloudpickle (`model.pkl`) when asked. Loading a pickle
runs code stored in the model, so it is refused when LEDGERFLOW_ALLOW_PICKLE=false,
and so is a skops model that asks to trust extra types.

scikit-learn is imported only when a function here needs it.
"""

# Bound here, not looked up lazily: importing the submodule `ledgerflow.sklearn.autolog`
# would otherwise leave the package attribute `autolog` pointing at the module. Light:
# it patches scikit-learn only once scikit-learn is imported.
from ledgerflow.sklearn.autolog import autolog
from ledgerflow.sklearn.flavor import (
    FLAVOR_NAME,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_SKOPS,
    get_default_pip_requirements,
    save_model,
)
from ledgerflow.sklearn.flavor import LOADER_MODULE as LOADER_MODULE
from ledgerflow.sklearn.flavor import (
    SUPPORTED_SERIALIZATION_FORMATS as SUPPORTED_SERIALIZATION_FORMATS,
)

# What pyfunc calls for a `loader_module: mlflow.sklearn` model.
from ledgerflow.sklearn.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.sklearn.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
