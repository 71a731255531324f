"""XGBoost models to ONNX, with onnxmltools (the converter the ONNX project maintains for
XGBoost, LightGBM and others).

A bundle's prediction is its graph's first output, and it must be what the model's pyfunc
predicts. onnxmltools gives a classifier `label` then `probabilities`: right for the
scikit-learn API (`XGBClassifier.predict` is the label), not for a `Booster`, whose
`predict` is the probabilities (of class 1 for `binary:logistic`, of every class for
`multi:softprob`). For a Booster the graph is given a first output that is those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.workers.bundles.convert import ConversionFailed, Converted, quiet, tensor_info
from ledgerflow.workers.bundles.convert import unsupported as unsupported_target
from ledgerflow.workers.bundles.onnx_runtime import onnx_runtime
from ledgerflow.workers.bundles.parity import Array

TARGETS = ("onnx",)
PREDICTION = "prediction"


def convert(
    model_dir: Path, target: str, example: Array, out: Path, *, allow_pickle: bool
) -> Converted:
    from ledgerflow.xgboost.flavor import load as load_model

    if target not in TARGETS:
        raise unsupported_target("XGBoost", target, TARGETS)
    try:
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        raise ConversionFailed(
            "XGBoost to ONNX needs onnxmltools: pip install onnxmltools"
        ) from None
    model = load_model(model_dir)
    booster = model if _is_booster(model) else model.get_booster()
    booster.feature_names = None  # onnxmltools reads features only as f0, f1, ...
    sample = np.ascontiguousarray(example, dtype=np.float32)
    initial = [("input", FloatTensorType([None, *sample.shape[1:]]))]
    with quiet():
        try:
            onx = convert_xgboost(model, initial_types=initial)
        except (RuntimeError, NotImplementedError, ValueError) as e:
            raise ConversionFailed(f"onnxmltools cannot convert this XGBoost model: {e}") from None
    if _is_booster(model):
        _predict_as_booster(onx, _objective(booster))
    (out / "model.onnx").write_bytes(onx.SerializeToString())
    return onnx_runtime(out / "model.onnx", [tensor_info("input", sample)], None)


def _is_booster(model: Any) -> bool:
    import xgboost

    return isinstance(model, xgboost.Booster)


def _objective(booster: Any) -> str:
    import json

    config = json.loads(booster.save_config())
    return str(config["learner"]["objective"]["name"])


def _predict_as_booster(onx: Any, objective: str) -> None:
    """Put first the output a Booster's `predict` gives: class 1's probability for a binary
    classifier, every class's for `multi:softprob`; regressors and `multi:softmax` (labels)
    already answer so."""
    from onnx import TensorProto, helper

    graph = onx.graph
    names = [o.name for o in graph.output]
    if "probabilities" not in names or objective == "multi:softmax":
        return
    if objective.startswith("binary:"):
        index = helper.make_tensor("ledgerflow_class_1", TensorProto.INT64, [], [1])
        graph.initializer.append(index)
        graph.node.append(
            helper.make_node(
                "Gather", ["probabilities", index.name], [PREDICTION], axis=1, name="class_1"
            )
        )
        first = helper.make_tensor_value_info(PREDICTION, TensorProto.FLOAT, [None])
    else:
        first = _copy(next(o for o in graph.output if o.name == "probabilities"))
    rest = [_copy(o) for o in graph.output if o.name != first.name]
    del graph.output[:]
    graph.output.extend([first, *rest])


def _copy(message: Any) -> Any:
    """A detached copy of a protobuf message (one taken out of a repeated field that is
    about to be cleared)."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
