"""The ONNX Runtime loader every ONNX bundle, from any flavor, is checked with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.workers.bundles.convert import Converted, first_output
from ledgerflow.workers.bundles.manifest import TensorInfo
from ledgerflow.workers.bundles.parity import Array
from ledgerflow.workers.bundles.serving import pinned


def onnx_runtime(
    path: Path, inputs: list[TensorInfo], outputs: list[TensorInfo] | None
) -> Converted:
    """Load an ONNX file in ONNX Runtime: the bundle's predict, and its signature as the
    session reports it when the converter did not say."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    dtype = np.float32 if "float)" in session.get_inputs()[0].type else None

    def predict(x: Array) -> Array:
        arr = np.ascontiguousarray(x, dtype=dtype) if dtype is not None else x
        return first_output(session.run(None, {name: arr}))

    if outputs is None:
        outputs = [
            TensorInfo(o.name, _onnx_dtype(o.type), tuple(_dim(d) for d in o.shape))
            for o in session.get_outputs()
        ]
    return Converted(
        runtime={"name": "onnxruntime", "version": ort.__version__},
        requirements=[pinned("onnxruntime")],
        predict=predict,
        inputs=inputs,
        outputs=outputs,
    )


def _onnx_dtype(text: str) -> str:
    inner = text.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64"}.get(inner, inner)


def _dim(d: Any) -> int:
    return d if isinstance(d, int) else -1
