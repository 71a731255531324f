"""`ledgerflow.pyfunc`: the generic Python-function flavor every model can be loaded as.

    class AddN(ledgerflow.pyfunc.PythonModel):
        def __init__(self, n): self.n = n
        def predict(self, context, model_input, params=None): return model_input + self.n

    info = ledgerflow.pyfunc.log_model(name="add_n", python_model=AddN(5))
    ledgerflow.pyfunc.load_model(info.model_uri).predict(df)

Flavors call `add_to_model` to make their models loadable this way. The format (what
workers and model servers load with) is in `flavor`, `loading` and `model`; the
functions that use the session (log to the active run, resolve `runs:/` and `models:/`
URIs with its client, its pickle policy) are in `fluent`.
"""

from ledgerflow.pyfunc.flavor import CODE as CODE
from ledgerflow.pyfunc.flavor import DATA as DATA
from ledgerflow.pyfunc.flavor import ENV as ENV
from ledgerflow.pyfunc.flavor import MAIN as MAIN
from ledgerflow.pyfunc.flavor import PY_VERSION as PY_VERSION
from ledgerflow.pyfunc.flavor import PYTHON_VERSION as PYTHON_VERSION
from ledgerflow.pyfunc.flavor import add_to_model, get_default_pip_requirements
from ledgerflow.pyfunc.fluent import load_model, log_model, save_model
from ledgerflow.pyfunc.loading import FLAVOR_NAME, PyFuncModel
from ledgerflow.pyfunc.model import LOADER_MODULE as LOADER_MODULE
from ledgerflow.pyfunc.model import PythonModel, PythonModelContext

__all__ = [
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "add_to_model",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
