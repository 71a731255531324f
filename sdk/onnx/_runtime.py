"""The pyfunc face of an ONNX model: an onnxruntime session fed from a DataFrame, an ndarray
or a dict of arrays, as MLflow's `_OnnxModelWrapper` does."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ledgerflow.events.errors import InvalidInput

log = logging.getLogger("ledgerflow.onnx")

_CPU = "CPUExecutionProvider"
ONNX_EXECUTION_PROVIDERS = ["CUDAExecutionProvider", _CPU]


def _provider_name(entry: Any) -> str | None:
    """A provider is a name or a (name, options) pair."""
    if isinstance(entry, list | tuple):
        entry = entry[0] if entry else None
    return entry if isinstance(entry, str) else None


def _session_options(options: dict[str, Any] | None) -> Any:
    import onnxruntime

    so = onnxruntime.SessionOptions()
    for key, value in (options or {}).items():
        if not value:
            continue
        if key == "execution_mode":
            parallel = str(value).upper() == "PARALLEL"
            so.execution_mode = (
                onnxruntime.ExecutionMode.ORT_PARALLEL
                if parallel
                else onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            )
        elif key == "graph_optimization_level":
            so.graph_optimization_level = onnxruntime.GraphOptimizationLevel(value)
        elif key == "extra_session_config":
            for k, v in value.items():
                so.add_session_config_entry(k, v)
        else:
            setattr(so, key, value)
    return so


class OnnxModelWrapper:
    """`predict(data)`: a dict is the feed itself; an ndarray feeds the single input; a
    DataFrame feeds its values (one input) or one column per input. float64 feeds for
    float inputs become float32. Returns a dict of outputs, or a DataFrame for a DataFrame."""

    def __init__(self, model_file: Path, conf: dict[str, Any]) -> None:
        """`conf` is the MLmodel's onnx block (providers, session options)."""
        import onnxruntime

        providers = conf.get("providers") or list(ONNX_EXECUTION_PROVIDERS)
        if isinstance(providers, str):
            providers = [providers]
        providers = [tuple(p) if isinstance(p, list) else p for p in providers]
        so = _session_options(conf.get("onnx_session_options"))
        available = set(onnxruntime.get_available_providers())
        usable = [p for p in providers if _provider_name(p) in available] or [_CPU]
        if missing := [p for p in providers if _provider_name(p) not in available]:
            log.info(
                "ONNX providers %s are not in this onnxruntime build; using %s", missing, usable
            )
        try:
            self.rt = onnxruntime.InferenceSession(
                str(model_file), providers=usable, sess_options=so
            )
        except Exception as e:
            if usable == [_CPU]:
                raise
            log.warning("onnxruntime could not start %s (%r); falling back to CPU", usable, e)
            self.rt = onnxruntime.InferenceSession(
                str(model_file), providers=[_CPU], sess_options=so
            )
        self.inputs = [(i.name, i.type) for i in self.rt.get_inputs()]
        self.output_names = [o.name for o in self.rt.get_outputs()]
        if not self.inputs:
            raise InvalidInput(f"the ONNX model {model_file} declares no inputs")

    def get_raw_model(self) -> Any:
        return self.rt

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np
        import pandas as pd

        names = [name for name, _ in self.inputs]
        if isinstance(data, dict):
            feed = dict(data)
        elif isinstance(data, np.ndarray):
            if len(names) != 1:
                raise InvalidInput(
                    f"this ONNX model takes {len(names)} inputs {names}: pass a dict of arrays "
                    "or a DataFrame with those columns, not a single numpy array"
                )
            feed = {names[0]: data}
        elif isinstance(data, pd.DataFrame):
            if len(names) > 1:
                if missing := [n for n in names if n not in data.columns]:
                    raise InvalidInput(f"the DataFrame lacks the model's input columns {missing}")
                feed = {n: data[n].values for n in names}
            else:
                feed = {names[0]: data.values}
        else:
            raise InvalidInput(
                "an ONNX model predicts on a dict of arrays, a numpy array or a DataFrame, "
                f"not {type(data).__name__}"
            )
        for name, kind in self.inputs:
            value = feed.get(name)
            if kind == "tensor(float)" and value is not None and value.dtype == np.float64:
                feed[name] = value.astype(np.float32)
        predicted = self.rt.run(self.output_names, feed)
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame.from_dict(
                {
                    n: np.asarray(p).reshape(-1)
                    for n, p in zip(self.output_names, predicted, strict=True)
                }
            )
        return dict(zip(self.output_names, predicted, strict=True))
