"""What the server predicts with: a pyfunc model or a bundle (ONNX Runtime, TorchScript,
SavedModel), behind one small interface, with what OIP metadata needs to describe it.

A `Predictor.predict` is synchronous and may block; the repository runs it off the event
loop. Its `warmup_input` is what readiness predicts on once before the model takes traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.schema import ColSpec, DataType, Schema, TensorSpec
from ledgerflow.services.serving.oip import DATATYPES, datatype_of

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class TensorMeta:
    """One input or output as OIP metadata describes it (-1 where any size goes)."""

    name: str
    datatype: str
    shape: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


class Predictor(Protocol):
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]
    input_schema: Schema | None

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any: ...

    def assemble(self, tensors: dict[str, np.ndarray[Any, Any]]) -> Any:
        """The model input for named OIP tensors."""
        ...

    def warmup_input(self) -> Any | None: ...

    def model_params(self, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        """The OIP request parameters the model itself takes (the rest are protocol-level,
        such as `content_type`, and are not the model's business)."""
        ...


def _synthetic(meta: list[TensorMeta]) -> dict[str, np.ndarray[Any, Any]]:
    """One row of zeros (empty strings for BYTES) per input, from its declared shape."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    for m in meta:
        shape = [1 if d < 0 else d for d in m.shape] or [1]
        dtype = DATATYPES.get(m.datatype, np.dtype(np.float64))
        out[m.name] = (
            np.full(shape, "", dtype=object) if dtype.kind == "O" else np.zeros(shape, dtype)
        )
    return out


def _schema_meta(schema: Schema | None, default: str) -> list[TensorMeta]:
    if schema is None:
        return []
    metas = []
    for i, spec in enumerate(schema.inputs):
        name = str(spec.name) if spec.name is not None else (default if i == 0 else f"{default}{i}")
        if isinstance(spec, TensorSpec):
            metas.append(TensorMeta(name, datatype_of(spec.type), list(spec.shape)))
        elif isinstance(spec, ColSpec) and isinstance(spec.type, DataType):
            metas.append(TensorMeta(name, datatype_of(spec.type.to_numpy()), [-1]))
        else:
            metas.append(TensorMeta(name, "BYTES", [-1]))
    return metas


@dataclass
class PyFuncPredictor:
    """Any model with a python_function flavor; its signature is enforced by PyFuncModel."""

    model: Any  # ledgerflow.pyfunc.PyFuncModel
    platform: str = "ledgerflow_pyfunc"
    inputs: list[TensorMeta] = field(default_factory=list)
    outputs: list[TensorMeta] = field(default_factory=list)
    input_schema: Schema | None = None

    def __post_init__(self) -> None:
        meta = self.model.metadata
        self.input_schema = meta.get_input_schema()
        self.inputs = _schema_meta(self.input_schema, "input")
        self.outputs = _schema_meta(meta.get_output_schema(), "predictions")
        flavors = [f for f in meta.flavors if f != "python_function"]
        if flavors:
            self.platform = f"ledgerflow_{flavors[0]}"

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        return self.model.predict(data, params=params)

    def model_params(self, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        schema = self.model.metadata.get_params_schema()
        if not parameters or schema is None:
            return None
        names = {p.name for p in schema}
        return {k: v for k, v in parameters.items() if k in names} or None

    def assemble(self, tensors: dict[str, np.ndarray[Any, Any]]) -> Any:
        schema = self.input_schema
        if len(tensors) == 1 and (schema is None or schema.is_tensor_spec()):
            return next(iter(tensors.values()))
        return tensors

    def warmup_input(self) -> Any | None:
        if self.model.input_example is not None:
            return self.model.input_example
        if not self.inputs:
            return None
        return self.assemble(_synthetic(self.inputs))


def _manifest_meta(entries: list[dict[str, Any]]) -> list[TensorMeta]:
    return [
        TensorMeta(e["name"], datatype_of(np.dtype(e["dtype"])), list(e["shape"])) for e in entries
    ]


@dataclass
class BundlePredictor:
    """A bundle folder (manifest.json at its root) run with its runtime: ONNX Runtime,
    TorchScript or a TensorFlow SavedModel. Inputs are cast to the manifest's dtypes."""

    root: Path
    manifest: dict[str, Any]
    platform: str = ""
    inputs: list[TensorMeta] = field(default_factory=list)
    outputs: list[TensorMeta] = field(default_factory=list)
    input_schema: Schema | None = None
    _run: Any = None

    def __post_init__(self) -> None:
        self.inputs = _manifest_meta(self.manifest.get("inputs", []))
        self.outputs = _manifest_meta(self.manifest.get("outputs", []))
        target = self.manifest.get("target")
        loaders = {"onnx": self._onnx, "torchscript": self._torchscript, "savedmodel": self._tf}
        if target not in loaders:
            raise InvalidInput(
                f"the bundle at {str(self.root)!r} has target {target!r}; this server runs "
                f"{sorted(loaders)}",
                field="target",
            )
        self.platform = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_torchscript"}.get(
            target, "tensorflow_savedmodel"
        )
        self._run = loaders[target]()

    def _onnx(self) -> Any:
        import onnxruntime as ort

        session = ort.InferenceSession(
            str(self.root / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        # a bundle's prediction is its graph's first output (what its parity check compared and
        # its own serve.py answers); a converted classifier's further outputs (probabilities)
        # are not part of it
        self.outputs = self.outputs[:1]
        graph_inputs = [i.name for i in session.get_inputs()]

        def run(feed: dict[str, np.ndarray[Any, Any]]) -> Any:
            # the manifest's input names are the bundle's; the graph may name them otherwise
            return session.run(None, dict(zip(graph_inputs, feed.values(), strict=False)))[0]

        return run

    def _torchscript(self) -> Any:
        import torch

        module: Any = torch.jit.load(  # type: ignore[no-untyped-call]
            str(self.root / "model.pt"), map_location="cpu"
        )
        module.eval()

        def run(feed: dict[str, np.ndarray[Any, Any]]) -> Any:
            with torch.no_grad():
                out = module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in feed.values()))
            return out.numpy() if hasattr(out, "numpy") else out

        return run

    def _tf(self) -> Any:
        import tensorflow as tf

        source = self.manifest.get("source", {})
        folder = self.root / str(source.get("name", "")) / str(source.get("version", ""))
        if not (folder / "saved_model.pb").exists():
            found = sorted(self.root.rglob("saved_model.pb"))
            if not found:
                raise InvalidInput(f"the bundle at {str(self.root)!r} holds no saved_model.pb")
            folder = found[0].parent
        loaded = tf.saved_model.load(str(folder))

        def run(feed: dict[str, np.ndarray[Any, Any]]) -> Any:
            out = loaded.serve(*(tf.constant(a) for a in feed.values()))
            if isinstance(out, dict):
                return {k: v.numpy() for k, v in out.items()}
            return out.numpy()

        return run

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        if params:
            raise InvalidInput(f"bundles take no params, got {sorted(params)}", field="params")
        return self._run(self._feed(data))

    def _feed(self, data: Any) -> dict[str, np.ndarray[Any, Any]]:
        if not isinstance(data, dict):
            if len(self.inputs) != 1:
                raise InvalidInput(
                    f"this bundle takes the named inputs {[m.name for m in self.inputs]}; "
                    "send an object of tensors",
                    field="inputs",
                )
            data = {self.inputs[0].name: data}
        feed = {}
        for m in self.inputs:
            if m.name not in data:
                raise InvalidInput(f"the input {m.name!r} is missing", field=m.name)
            arr = np.asarray(data[m.name])
            if len(arr.shape) != len(m.shape) or any(
                w not in (-1, g) for w, g in zip(m.shape, arr.shape, strict=True)
            ):
                raise InvalidInput(
                    f"input {m.name!r}: expected shape {m.shape} (-1 = any size), got "
                    f"{list(arr.shape)}",
                    field=m.name,
                )
            try:
                feed[m.name] = arr.astype(DATATYPES[m.datatype], copy=False)
            except (ValueError, TypeError) as e:
                raise InvalidInput(
                    f"input {m.name!r}: cannot be read as {m.datatype}: {e}", field=m.name
                ) from None
        return feed

    def assemble(self, tensors: dict[str, np.ndarray[Any, Any]]) -> Any:
        return tensors if len(self.inputs) != 1 else next(iter(tensors.values()))

    def model_params(self, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        return None

    def warmup_input(self) -> Any | None:
        return self.assemble(_synthetic(self.inputs)) if self.inputs else None


def is_bundle_dir(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file()


def load_bundle(path: Path) -> BundlePredictor:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    return BundlePredictor(path, manifest)
