"""Keras / TensorFlow models to a SavedModel for TensorFlow Serving, and to ONNX.

The SavedModel is laid out as TensorFlow Serving loads it:
`<name>/<version>/saved_model.pb` under the bundle root, with a `serve`
endpoint (Keras' `model.export`). ONNX goes through tf2onnx's `from_function`
on the same serving function (its `from_keras` does not understand Keras 3
models); without tf2onnx installed, the ONNX target fails with that reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.workers.bundles.convert import (
    ConversionFailed,
    Converted,
    first_output,
    quiet,
    tensor_info,
    unsupported,
)
from ledgerflow.workers.bundles.onnx_runtime import onnx_runtime
from ledgerflow.workers.bundles.parity import Array
from ledgerflow.workers.bundles.serving import pinned

TARGETS = ("savedmodel", "onnx")


def convert(
    model_dir: Path,
    target: str,
    example: Array,
    out: Path,
    *,
    name: str,
    version: int,
    allow_pickle: bool,
) -> Converted:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from ledgerflow.tensorflow.flavor import load as load_model

    if target not in TARGETS:
        raise unsupported("Keras", target, TARGETS)
    model = load_model(model_dir, allow_pickle=allow_pickle)
    if not isinstance(model, tf.keras.Model):
        raise ConversionFailed(
            "only Keras models convert; this tensorflow model is a plain tf.Module"
        )
    sample = np.ascontiguousarray(example)
    inputs = [tensor_info("input", sample)]
    spec = tf.TensorSpec((None, *sample.shape[1:]), tf.as_dtype(sample.dtype), name="input")
    if target == "onnx":
        return _onnx(model, spec, out / "model.onnx", inputs)
    folder = out / name / str(version)
    with quiet():
        model.export(str(folder), format="tf_saved_model", verbose=False, input_signature=[spec])
    loaded: Any = tf.saved_model.load(str(folder))

    def predict(x: Array) -> Array:
        return first_output(loaded.serve(tf.constant(x)).numpy())

    return Converted(
        runtime={"name": "tensorflow-serving", "version": tf.__version__},
        requirements=[pinned("tensorflow-cpu")],
        predict=predict,
        inputs=inputs,
        outputs=[tensor_info("output", predict(sample))],
    )


def _onnx(model: Any, spec: Any, path: Path, inputs: list[Any]) -> Converted:
    import tensorflow as tf

    try:
        import tf2onnx
    except ImportError:
        raise ConversionFailed(
            "Keras to ONNX needs tf2onnx, which is not installed: pip install tf2onnx"
        ) from None
    with quiet():
        fn = tf.function(lambda x: model(x, training=False))
        tf2onnx.convert.from_function(fn, input_signature=[spec], output_path=str(path))
    return onnx_runtime(path, inputs, None)
