"""`ledgerflow.crate`: R models in MLflow's `crate` flavor layout, saved by R with the
helper shipped here and predicted through a long-lived `Rscript` worker.

    # R: source(system("ledgerflow crate-helper", intern = TRUE))
    #    ledgerflow_save_model(function(df) predict(fit, newdata = df), "model",
    #                          input_example = head(train))
    ledgerflow.crate.log_model("model", name="model", registered_model_name="lm")
    ledgerflow.pyfunc.load_model("models:/lm/1").predict(df)

R comes from Debian (`r-base-core`, `r-cran-jsonlite`); nothing of R is needed until a
model predicts.
"""

from ledgerflow.crate.flavor import (
    FLAVOR_NAME,
    CrateModel,
    get_default_pip_requirements,
    helper_path,
    save_model,
)
from ledgerflow.crate.flavor import LOADER_MODULE as LOADER_MODULE

# What pyfunc calls for a `loader_module: ledgerflow.crate` model.
from ledgerflow.crate.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.crate.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "CrateModel",
    "get_default_pip_requirements",
    "helper_path",
    "load_model",
    "log_model",
    "save_model",
]
