"""scikit-learn models to ONNX, with skl2onnx.

Classifiers are converted without the ZipMap operator, so their probabilities
come out as a plain tensor that any runtime reads; the first output is the label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.workers.bundles.convert import (
    ConversionFailed,
    Converted,
    quiet,
    tensor_info,
    unsupported,
)
from ledgerflow.workers.bundles.onnx_runtime import onnx_runtime
from ledgerflow.workers.bundles.parity import Array

TARGETS = ("onnx",)


def convert(
    model_dir: Path, target: str, example: Array, out: Path, *, allow_pickle: bool
) -> Converted:
    from ledgerflow.sklearn.flavor import load as load_model

    if target not in TARGETS:
        raise unsupported("scikit-learn", target, TARGETS)
    try:
        from skl2onnx import to_onnx
    except ImportError:
        raise ConversionFailed(
            "scikit-learn to ONNX needs skl2onnx: pip install skl2onnx"
        ) from None
    model = load_model(model_dir, allow_pickle=allow_pickle)
    sample = np.ascontiguousarray(example, dtype=np.float32)
    options: dict[Any, Any] = {}
    if hasattr(model, "predict_proba"):
        options = {id(_final_step(model)): {"zipmap": False}}
    with quiet():
        onx = to_onnx(model, sample[:1], options=options or None)
    (out / "model.onnx").write_bytes(onx.SerializeToString())
    return onnx_runtime(out / "model.onnx", [tensor_info("input", sample)], None)


def _final_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model
