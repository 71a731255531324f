"""Open Inference Protocol tensors in their gRPC form: typed `InferTensorContents` fields or
`raw_input_contents` (little-endian, row-major; BYTES elements each prefixed by a 4-byte
little-endian length), decoded into numpy arrays and encoded back.

Answers use raw contents when the request did (or when an output is FP16, which has no typed
field), typed contents otherwise.
"""

from __future__ import annotations

from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.serving.oip import (
    Tensor,
    check_header,
    from_raw,
    to_array,
    to_raw,
)
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb

RAW_INPUT = ("raw", "raw_input_contents")
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
            array = from_raw(name, datatype, shape, raw[i], RAW_INPUT)
            tensors.append(Tensor(name, array))
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
            response.raw_output_contents.append(to_raw(t))
            continue
        flat = t.array.ravel()
        if t.datatype == "BYTES":
            values: Any = [v if isinstance(v, bytes) else str(v).encode() for v in flat]
        else:
            values = flat.tolist()
        getattr(out.contents, CONTENTS_FIELD[t.datatype]).extend(values)
    return response
