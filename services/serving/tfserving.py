"""TensorFlow Serving's REST API (also KServe's V1 protocol), as data: its URLs, predict
request bodies (row `instances` and columnar `inputs`, `{"b64": ...}` binary values), the
answers (`predictions`, `outputs`), model status and signature metadata. Nothing here
knows about HTTP; `tfserving_routes` answers the requests.

Every malformed request is an InvalidInput naming the field (answered 400); the messages
start as TF Serving's own where a client might match on them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.serving import _json
from ledgerflow.services.serving.oip import output_tensors
from ledgerflow.services.serving.predictors import Predictor, TensorMeta
from ledgerflow.services.serving.scoring import ModelRequest, instances_input, tensors_input

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
VERBS = ("predict", "classify", "regress")

_PATH = re.compile(
    r"(?P<model>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>[^/:]+)|(?P<metadata>/metadata))?"
)

_DTYPES = {
    "BOOL": "DT_BOOL",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "FP16": "DT_HALF",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}


@dataclass(frozen=True)
class ModelPath:
    """What `/v1/models/<rest>` names: a model, at a version or label or its latest, and
    the verb (`predict`, ...) or `metadata` asked of it (neither: its status)."""

    model: str
    version: str | None = None
    label: str | None = None
    verb: str | None = None
    metadata: bool = False

    @property
    def spec(self) -> str:
        """The servable as TF Serving names it in its errors."""
        if self.version is not None:
            return f"Specific({self.model}, {self.version})"
        if self.label is not None:
            return f"Label({self.model}, {self.label})"
        return f"Latest({self.model})"


def parse_path(rest: str) -> ModelPath | None:
    """The model path after `/v1/models/`, or None where it is not one TF Serving knows."""
    m = _PATH.fullmatch(rest)
    if m is None:
        return None
    return ModelPath(
        m["model"], m["version"], m["label"], m["verb"], metadata=m["metadata"] is not None
    )


@dataclass(frozen=True)
class PredictRequest:
    """A predict body as the model takes it, and whether the answer is `predictions` rows
    (row format) or `outputs` (columnar)."""

    request: ModelRequest
    row_format: bool


def parse_predict(body: bytes, predictor: Predictor) -> PredictRequest:
    """The model input of a `:predict` body, checked as TF Serving checks it; tensors are
    read as MLflow's scoring server reads `instances` and `inputs` (cast by the signature),
    so both answer the same predictions for the same rows. Named inputs are put together as
    OIP's are, so a model's one input may be sent by the name its metadata shows."""
    schema = predictor.input_schema
    doc = parse_body(body)
    check_signature(doc.get("signature_name"))
    has_rows, has_columns = "instances" in doc, "inputs" in doc
    if has_rows == has_columns:
        raise InvalidInput(
            "Missing 'inputs' or 'instances' key"
            if not has_rows
            else "Not both 'instances' and 'inputs' keys can be specified; send one",
            field="instances",
        )
    if has_rows:
        rows = decode_b64(doc["instances"], "instances")
        if not isinstance(rows, list) or not rows:
            raise InvalidInput("'instances' must be a non-empty list of rows", field="instances")
        data = instances_input(rows, schema)
        return PredictRequest(ModelRequest(_assemble(predictor, data)), row_format=True)
    columns = decode_b64(doc["inputs"], "inputs")
    if not isinstance(columns, list | dict) or not columns:
        raise InvalidInput(
            "'inputs' must be a non-empty list (one tensor) or an object of named tensors",
            field="inputs",
        )
    data = tensors_input(columns, schema, "inputs")
    return PredictRequest(ModelRequest(_assemble(predictor, data)), row_format=False)


def _assemble(predictor: Predictor, data: Any) -> Any:
    return predictor.assemble(data) if isinstance(data, dict) else data


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        doc = _json.loads(body)
    except (_json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(f"JSON Parse error: {e}", field="body") from None
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"the request body must be a JSON object, got a {type(doc).__name__}", field="body"
        )
    return doc


def check_signature(name: Any) -> None:
    """Our models have one signature, TF Serving's default; asking for another is an error
    (as it is on TF Serving for a SavedModel without it)."""
    if name is None or name == DEFAULT_SIGNATURE:
        return
    raise InvalidInput(
        f'Serving signature name: "{name}" not found in signature def; this model has '
        f'only "{DEFAULT_SIGNATURE}"',
        field="signature_name",
    )


def decode_b64(value: Any, field: str) -> Any:
    """`value` with every `{"b64": "..."}` object replaced by the bytes it encodes."""
    if isinstance(value, list):
        return [decode_b64(v, field) for v in value]
    if isinstance(value, dict):
        if "b64" in value:
            encoded = value["b64"]
            if len(value) != 1 or not isinstance(encoded, str):
                raise InvalidInput(
                    f'{field}: a binary value must be {{"b64": "<base64 string>"}} alone',
                    field=field,
                )
            try:
                return base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as e:
                raise InvalidInput(f"{field}: Unable to base64 decode: {e}", field=field) from None
        return {k: decode_b64(v, f"{field}.{k}") for k, v in value.items()}
    return value


def predict_answer(predictions: Any, output_names: list[str], row_format: bool) -> Any:
    """The answer body: one unnamed output as it is, several named ones as rows of objects
    (row format) or an object of tensors (columnar), as TF Serving answers them."""
    tensors = [(t.name, t.array) for t in output_tensors(predictions, output_names, None)]
    if not row_format:
        if len(tensors) == 1:
            return {"outputs": _jsonable(tensors[0][1], tensors[0][0])}
        return {"outputs": {name: _jsonable(a, name) for name, a in tensors}}
    if len(tensors) == 1:
        return {"predictions": _jsonable(tensors[0][1], tensors[0][0])}
    rows = {int(a.shape[0]) if a.ndim else 1 for _, a in tensors}
    if len(rows) != 1 or any(a.ndim == 0 for _, a in tensors):
        raise InvalidInput(
            "the model's outputs have different batch sizes "
            f"{ {n: list(a.shape) for n, a in tensors} }, so they cannot be answered as rows; "
            "send the columnar 'inputs' format",
            field="instances",
        )
    columns = {name: _jsonable(a, name) for name, a in tensors}
    return {"predictions": [{n: c[i] for n, c in columns.items()} for i in range(rows.pop())]}


def _jsonable(array: np.ndarray[Any, Any], name: str) -> Any:
    """Bytes come back as `{"b64": ...}` when the output's name ends in `_bytes` (TF
    Serving's convention) or they are not UTF-8 text; otherwise as strings. Numbers stay
    an array for the JSON encoder, which writes float32 as float32 (as /invocations does)."""
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind != "O":
        return array.tolist()
    binary = name.endswith("_bytes")

    def one(v: Any) -> Any:
        if isinstance(v, list):
            return [one(x) for x in v]
        if isinstance(v, bytes):
            if not binary:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}
        return v.item() if isinstance(v, np.generic) else v

    return one(array.tolist())


def status(versions: Iterable[tuple[str, bool]]) -> dict[str, Any]:
    """GetModelStatusResponse of the served versions, each (version, ready)."""
    return {
        "model_version_status": [
            {
                "version": version,
                "state": "AVAILABLE" if ready else "LOADING",
                "status": {"error_code": "OK", "error_message": ""},
            }
            for version, ready in versions
        ]
    }


def _tensor_info(meta: TensorMeta) -> dict[str, Any]:
    return {
        "dtype": _DTYPES.get(meta.datatype, "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in meta.shape],
            "unknown_rank": False,
        },
        "name": f"{meta.name}:0",
    }


def metadata(
    name: str, version: str, inputs: list[TensorMeta], outputs: list[TensorMeta]
) -> dict[str, Any]:
    """GetModelMetadataResponse: the model's signature as one `serving_default` predict
    signature_def (an unknown signature shows no outputs where ours declares none)."""
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    DEFAULT_SIGNATURE: {
                        "inputs": {m.name: _tensor_info(m) for m in inputs},
                        "outputs": {m.name: _tensor_info(m) for m in outputs},
                        "method_name": PREDICT_METHOD,
                    }
                }
            }
        },
    }


def example_verb_error(verb: str) -> str:
    """Why `:classify` and `:regress` are refused: they run a signature whose method is
    classify or regress on tf.Example inputs, and every model here has one predict
    signature; TF Serving refuses such a model with the same words."""
    noun = {"classify": "classification", "regress": "regression"}.get(verb, verb)
    return (
        f"Expected {noun} signature method_name to be tensorflow/serving/{verb}. "
        f"Was: {PREDICT_METHOD}. This model has only a predict signature; "
        "use :predict with 'instances' or 'inputs'"
    )
