"""`ledgerflow.pytorch`: save, log and load torch models in MLflow 3.17's pytorch flavor layout.

A directory written here is an MLflow model directory (`mlflow.pytorch.load_model` and
`mlflow.pyfunc.load_model` read it) and directories MLflow writes load here. Two formats:

- "pt2" (the default, as in MLflow 3.17): a `torch.export` graph. It needs an
  `input_example` to trace with and a tensor signature (inferred from the example), and
  loads without unpickling anything.
- "pickle": the whole module through cloudpickle, or a TorchScript archive for
  `torch.jit.script`/`trace` models. Loading it runs code from the file, so it is refused
  when LEDGERFLOW_ALLOW_PICKLE=false.
"""

from ledgerflow.pytorch.autolog import autolog
from ledgerflow.pytorch.flavor import FLAVOR_NAME, get_default_pip_requirements, save_model
from ledgerflow.pytorch.flavor import LOADER_MODULE as LOADER_MODULE

# What pyfunc calls for a `loader_module: mlflow.pytorch` model.
from ledgerflow.pytorch.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.pytorch.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
