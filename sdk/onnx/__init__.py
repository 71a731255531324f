"""`ledgerflow.onnx`: save, log and load ONNX models in MLflow 3.17's onnx flavor layout.

    model.onnx      the ModelProto (large tensors as external data files beside it)
    MLmodel         flavors.onnx: onnx_version, data, providers, onnx_session_options, code

Loading the ModelProto (`load_model`) runs `onnx.checker` first; pyfunc serves it with an
onnxruntime InferenceSession. ONNX files hold no pickles, so nothing here is refused when
LEDGERFLOW_ALLOW_PICKLE=false.
"""

from ledgerflow.onnx.flavor import FLAVOR_NAME, get_default_pip_requirements, save_model
from ledgerflow.onnx.flavor import LOADER_MODULE as LOADER_MODULE
from ledgerflow.onnx.flavor import ONNX_EXECUTION_PROVIDERS as ONNX_EXECUTION_PROVIDERS

# What pyfunc calls for a `loader_module: mlflow.onnx` model.
from ledgerflow.onnx.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.onnx.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
