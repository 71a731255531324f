"""PyTorch models to TorchScript (`model.pt`) and ONNX (`model.onnx`).

Both go through tracing: the logged model (a pt2 program or a pickled module)
is traced on the input example, and ONNX is exported from that trace with the
TorchScript-based exporter (the dynamo exporter needs onnxscript, which this
build does not require). Tracing records the path the example took; a model
whose control flow depends on the data is caught by parity, not silently
shipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.workers.bundles.convert import (
    Converted,
    first_output,
    quiet,
    tensor_info,
    unsupported,
)
from ledgerflow.workers.bundles.onnx_runtime import onnx_runtime
from ledgerflow.workers.bundles.parity import Array
from ledgerflow.workers.bundles.serving import pinned

TARGETS = ("torchscript", "onnx")


def convert(
    model_dir: Path, target: str, example: Array, out: Path, *, allow_pickle: bool
) -> Converted:
    import torch

    from ledgerflow.pytorch.flavor import load as load_model

    if target not in TARGETS:
        raise unsupported("PyTorch", target, TARGETS)
    model = load_model(model_dir, allow_pickle=allow_pickle)
    sample = torch.from_numpy(np.ascontiguousarray(example))
    with quiet(), torch.no_grad():
        trace: Any = torch.jit.trace  # untyped in torch's stubs
        traced: Any = trace(model, sample, check_trace=False)
        expected = first_output(traced(sample).numpy())
        inputs = [tensor_info("input", example)]
        outputs = [tensor_info("output", expected)]
        if target == "torchscript":
            traced.save(str(out / "model.pt"))
            return _torchscript(out / "model.pt", inputs, outputs)
        torch.onnx.export(
            traced, (sample,), str(out / "model.onnx"), dynamo=False,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )  # fmt: skip
    return onnx_runtime(out / "model.onnx", inputs, outputs)


def _torchscript(path: Path, inputs: list[Any], outputs: list[Any]) -> Converted:
    import torch

    load: Any = torch.jit.load  # untyped in torch's stubs
    module = load(str(path), map_location="cpu")
    module.eval()

    def predict(x: Array) -> Array:
        with torch.no_grad():
            return first_output(module(torch.from_numpy(np.ascontiguousarray(x))).numpy())

    return Converted(
        runtime={"name": "torchscript", "version": torch.__version__.split("+")[0]},
        requirements=[pinned("torch")],
        predict=predict,
        inputs=inputs,
        outputs=outputs,
    )
