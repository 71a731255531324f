"""The bundle task: convert one logged model to one target, check parity, describe it.

Runs in a Ray worker (or inline). It reads the model from a local folder and
writes the bundle into another; the service stores the result and records the
events. It never raises for a model that cannot be converted: it answers
`{"error": reason}`, so the reason reaches `bundle.failed` as written here and
not as a remote traceback.

The model is loaded through the format modules of Ledgerflow's own flavors
(`ledgerflow.pytorch.flavor` and so on), imported inside the task: a flavor owns
its on-disk format, and a worker, like a training job, runs with the SDK
installed. The model folder is local and the pickle policy comes with the
request (the service's settings), so nothing here reads a session or a client.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.workers.bundles import parity, serving
from ledgerflow.workers.bundles.convert import ConversionFailed, Converted
from ledgerflow.workers.bundles.manifest import build_manifest
from ledgerflow.workers.bundles.parity import Array

logger = logging.getLogger("ledgerflow.bundles")

TARGETS_BY_FLAVOR = {
    "pytorch": ("torchscript", "onnx"),
    "tensorflow": ("savedmodel", "onnx"),
    "keras": ("savedmodel", "onnx"),
    "sklearn": ("onnx",),
    "xgboost": ("onnx",),
}


@dataclass(frozen=True)
class BuildRequest:
    bundle_id: str
    name: str
    version: int
    target: str
    source: str
    model_dir: str
    out_dir: str
    allow_pickle: bool = True
    """The service's LEDGERFLOW_ALLOW_PICKLE: whether the model may be unpickled."""


def source_flavor(flavors: dict[str, Any]) -> str:
    """The flavor a bundle converts from; ConversionFailed when no converter fits."""
    for flavor in TARGETS_BY_FLAVOR:
        if flavor in flavors:
            return flavor
    raise ConversionFailed(
        f"no converter for a model with flavors {sorted(flavors)}: bundles convert "
        "pytorch, tensorflow (Keras), sklearn and xgboost models"
    )


def build_bundle(request: BuildRequest) -> dict[str, Any]:
    """`{"manifest": {...}}` once the bundle is written and passes parity, or
    `{"error": reason}`."""
    try:
        return {"manifest": _build(request)}
    except (ConversionFailed, parity.ParityError) as e:
        return {"error": str(e)}
    except Exception as e:  # a converter's own crash is a failed conversion, with its words
        logger.debug("bundle %s failed:\n%s", request.bundle_id, traceback.format_exc())
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return {"error": f"{request.target} conversion failed: {type(e).__name__}: {first}"}


def _build(request: BuildRequest) -> dict[str, Any]:
    from ledgerflow.models.model import Model

    model_dir, out = Path(request.model_dir), Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mlmodel = Model.load(model_dir)
    flavor = source_flavor(mlmodel.flavors)
    example = _example(model_dir, mlmodel)
    converted = _convert(flavor, model_dir, request, example, out)
    original = _original(model_dir, request.allow_pickle)
    inputs = [example, *parity.generated_inputs(example)]
    record = parity.check(original, converted.predict, inputs, converted.tolerance)
    if request.target == "savedmodel":
        entrypoint = serving.write_tf_serving(out, request.name)
    else:
        entrypoint = serving.write_python_server(out, request.target, converted.requirements)
    return build_manifest(
        out,
        bundle_id=request.bundle_id,
        target=request.target,
        source={
            "name": request.name, "version": request.version, "uri": request.source,
            "flavor": flavor, "run_id": mlmodel.run_id,
        },
        runtime=converted.runtime,
        inputs=converted.inputs,
        outputs=converted.outputs,
        parity=record,
        entrypoint=entrypoint,
    )  # fmt: skip


def _convert(
    flavor: str, model_dir: Path, request: BuildRequest, example: Array, out: Path
) -> Converted:
    allow_pickle = request.allow_pickle
    if flavor == "pytorch":
        from ledgerflow.workers.bundles import pytorch

        return pytorch.convert(model_dir, request.target, example, out, allow_pickle=allow_pickle)
    if flavor == "sklearn":
        from ledgerflow.workers.bundles import sklearn

        return sklearn.convert(model_dir, request.target, example, out, allow_pickle=allow_pickle)
    if flavor == "xgboost":
        from ledgerflow.workers.bundles import xgboost

        return xgboost.convert(model_dir, request.target, example, out, allow_pickle=allow_pickle)
    from ledgerflow.workers.bundles import keras

    return keras.convert(
        model_dir, request.target, example, out, name=request.name, version=request.version,
        allow_pickle=allow_pickle,
    )  # fmt: skip


def _original(model_dir: Path, allow_pickle: bool) -> parity.Predict:
    """The logged model as users call it, through pyfunc: what the bundle must match."""
    from ledgerflow.pyfunc.loading import load

    model = load(model_dir, allow_pickle=allow_pickle)
    schema = model.metadata.get_input_schema()
    # a model that takes named columns gets the bundle's tensor as those columns, in order
    columns = (
        schema.input_names()
        if schema is not None and not schema.is_tensor_spec() and schema.has_input_names()
        else None
    )
    if columns is not None:
        import pandas as pd

    def predict(x: Array) -> Array:
        if columns is not None and x.ndim == 2 and x.shape[1] == len(columns):
            result = model.predict(pd.DataFrame(x, columns=columns))
        else:
            result = model.predict(x)
        return np.asarray(result.to_numpy() if hasattr(result, "to_numpy") else result)

    return predict


def _example(model_dir: Path, mlmodel: Any) -> Array:
    """The input example as one numeric array; generated from a tensor signature when the
    model was logged without an example."""
    from ledgerflow.models.example import load_example

    sig = mlmodel.signature
    schema = sig.inputs if sig is not None else None
    example = load_example(model_dir, mlmodel.saved_input_example_info, schema)
    if example is None and schema is not None and schema.is_tensor_spec() and len(schema) == 1:
        spec = next(iter(schema))
        shape = tuple(2 if d == -1 else d for d in spec.shape)
        example = np.random.default_rng(0).random(shape).astype(spec.type)
    if example is None:
        raise ConversionFailed(
            "the model has no input example and no tensor signature to generate one from; "
            "log it with input_example= so the bundle can be checked"
        )
    if isinstance(example, dict) and len(example) == 1:
        example = next(iter(example.values()))
    try:
        array = np.asarray(example.to_numpy() if hasattr(example, "to_numpy") else example)
    except (TypeError, ValueError) as e:
        raise ConversionFailed(f"the input example is not one numeric array: {e}") from None
    if array.dtype.kind not in "fiu":
        raise ConversionFailed(
            f"bundles take one numeric tensor input; the input example is {array.dtype}"
        )
    return array
