"""Open Inference Protocol tensors in their gRPC form: typed `InferTensorContents` fields or
`raw_input_contents` (little-endian, row-major; BYTES elements each prefixed by a 4-byte
little-endian length), decoded into numpy arrays and encoded back.

Answers use raw contents when the request did (or when an output is FP16, which has no typed
field), typed contents otherwise.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.serving.oip import DATATYPES, Tensor, check_header, text_of, to_array
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parameters(params: Any) -> dict[str, Any]:
    """An InferParameter map as plain Python values."""
    out: dict[str, Any] = {}
    for key, p in params.items():
        which = p.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(p, which)
    return out


def _raw_bytes_elements(name: str, raw: bytes, count: int) -> np.ndarray[Any, Any]:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(
                f"input {name!r}: raw BYTES content is cut off inside a length prefix",
                field=f"{name}.raw_input_contents",
            )
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidInput(
                f"input {name!r}: raw BYTES element of {size} bytes runs past the content",
                field=f"{name}.raw_input_contents",
            )
        items.append(raw[offset : offset + size])
        offset += size
    if len(items) != count:
        raise InvalidInput(
            f"input {name!r}: shape holds {count} elements, raw content has {len(items)}",
            field=f"{name}.raw_input_contents",
        )
    return np.array([text_of(v) for v in items], dtype=object)


def _from_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray[Any, Any]:
    count = math.prod(shape)
    if datatype == "BYTES":
        return _raw_bytes_elements(name, raw, count).reshape(shape)
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} raw "
            f"bytes, got {len(raw)}",
            field=f"{name}.raw_input_contents",
        )
    return (
        np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=False).reshape(shape)
    )


def decode_inputs(request: Any) -> list[Tensor]:
    """The tensors of a ModelInferRequest."""
    if not request.inputs:
        raise InvalidInput("the request has no inputs", field="inputs")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
            "give one per input, in order",
            field="raw_input_contents",
        )
    tensors = []
    for i, t in enumerate(request.inputs):
        name, datatype, shape = check_header(t.name, t.datatype, list(t.shape), f"inputs[{i}]")
        if raw:
            if t.HasField("contents"):
                raise InvalidInput(
                    f"input {name!r}: contents and raw_input_contents are both set; use one",
                    field=f"{name}.contents",
                )
            tensors.append(Tensor(name, _from_raw(name, datatype, shape, raw[i])))
            continue
        if datatype == "FP16":
            raise InvalidInput(
                f"input {name!r}: FP16 has no typed contents field; send raw_input_contents",
                field=f"{name}.contents",
            )
        values = getattr(t.contents, CONTENTS_FIELD[datatype])
        tensors.append(Tensor(name, to_array(name, datatype, shape, list(values))))
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput(f"input names must be unique, got {names}", field="inputs")
    return tensors


def _raw(t: Tensor) -> bytes:
    if t.datatype == "BYTES":
        parts = []
        for v in t.array.ravel():
            b = v if isinstance(v, bytes) else str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    dtype = DATATYPES[t.datatype].newbyteorder("<")
    return np.ascontiguousarray(t.array, dtype=dtype).tobytes()


def encode_response(
    model_name: str, model_version: str, request_id: str, outputs: list[Tensor], raw: bool
) -> Any:
    """A ModelInferResponse carrying `outputs`, raw when `raw` or when any output is FP16."""
    raw = raw or any(t.datatype == "FP16" for t in outputs)
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id
    )
    for t in outputs:
        out = response.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
        if raw:
            response.raw_output_contents.append(_raw(t))
            continue
        flat = t.array.ravel()
        if t.datatype == "BYTES":
            values: Any = [v if isinstance(v, bytes) else str(v).encode() for v in flat]
        else:
            values = flat.tolist()
        getattr(out.contents, CONTENTS_FIELD[t.datatype]).extend(values)
    return response
