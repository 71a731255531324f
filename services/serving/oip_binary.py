"""The Open Inference Protocol's binary tensor data extension over REST, as Triton and
`tritonclient.http` speak it.

A request whose `Inference-Header-Content-Length` header is set carries that many bytes of
JSON, then raw tensor bytes (little-endian, row-major; BYTES elements each prefixed by a
4-byte little-endian length). Inputs with `"parameters": {"binary_data_size": N}` take the
next N of those bytes, in the order the inputs are listed; the others carry JSON `data`.

An answer's outputs are binary when asked for: an output's own `binary_data` parameter
decides, else the request's `binary_data_output` parameter (default false). A binary answer
is the JSON header then the outputs' bytes, with `Inference-Header-Content-Length` and
`Content-Type: application/octet-stream`, each binary output saying its `binary_data_size`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.serving import _json
from ledgerflow.services.serving.http import respond
from ledgerflow.services.serving.oip import (
    Tensor,
    check_header,
    from_raw,
    raw_buffer,
    rest_outputs,
)

HEADER_LENGTH = "Inference-Header-Content-Length"
OCTET_STREAM = "application/octet-stream"
_BINARY_INPUT = ("binary", "parameters.binary_data_size")


UNSUPPORTED = ("shared_memory_region", "classification")


def infer_request(body: bytes, header_length: str | None) -> Any:
    """The JSON document of an infer request, binary inputs decoded into their `data`."""
    doc = attach_binary(*split_body(body, header_length))
    _check_outputs(doc)
    return doc


def _check_outputs(doc: Any) -> None:
    """Refuse what this server does not do rather than answer something else."""
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    for i, o in enumerate(outputs if isinstance(outputs, list) else []):
        params = o.get("parameters") if isinstance(o, dict) else None
        if not isinstance(params, dict):
            continue
        if not isinstance(params.get("binary_data", False), bool):
            raise InvalidInput(
                f"outputs[{i}].parameters.binary_data must be true or false, "
                f"got {params['binary_data']!r}",
                field=f"outputs[{i}].parameters.binary_data",
            )
        for key in UNSUPPORTED:
            if key in params:
                raise InvalidInput(
                    f"outputs[{i}].parameters.{key} is not supported by this server",
                    field=f"outputs[{i}].parameters.{key}",
                )


def split_body(body: bytes, header_length: str | None) -> tuple[Any, bytes | memoryview]:
    """The JSON document of an infer request body and its binary part (empty without the
    extension's header), a view on `body` rather than a copy of it."""
    if header_length is None:
        return _loads(body, "the body"), b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if length < 0:
        raise InvalidInput(
            f"{HEADER_LENGTH} must be a non-negative integer, got {header_length!r}",
            field=HEADER_LENGTH,
        )
    if length > len(body):
        raise InvalidInput(
            f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes",
            field=HEADER_LENGTH,
        )
    try:
        return _json.loads(body[:length]), memoryview(body)[length:]
    except _NOT_JSON as e:
        what = f"the JSON header (the first {length} bytes, per {HEADER_LENGTH})"
        raise _invalid_json(what, e) from None


_NOT_JSON = (_json.JSONDecodeError, UnicodeDecodeError, ValueError)


def _loads(data: bytes, what: str) -> Any:
    try:
        return _json.loads(data)
    except _NOT_JSON as e:
        raise _invalid_json(what, e) from None


def _invalid_json(what: str, e: Exception) -> InvalidInput:
    return InvalidInput(f"{what} is not valid JSON: {e}", field="body")


def attach_binary(doc: Any, binary: bytes | memoryview) -> Any:
    """`doc` with each binary input replaced by its decoded Tensor (its header checked once,
    here), ready for `parse_rest_inputs`; the sizes must add up to exactly the binary part.
    A document without binary inputs comes back as it is."""
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not isinstance(inputs, list):
        if binary:
            raise InvalidInput(
                f"the body has {len(binary)} bytes of binary data but no inputs",
                field="inputs",
            )
        return doc  # parse_rest_inputs names the problem
    offset = 0
    attached: list[Any] = inputs
    for i, t in enumerate(inputs):
        size = _binary_size(t, i)
        if size is None:
            continue
        name, datatype, shape = check_header(
            t.get("name"), t.get("datatype"), t.get("shape"), f"inputs[{i}]"
        )
        if "data" in t:
            raise InvalidInput(
                f"input {name!r}: data and binary_data_size are both given; use one",
                field=f"{name}.data",
            )
        if offset + size > len(binary):
            hint = f"; is the {HEADER_LENGTH} header set?" if not binary else ""
            raise InvalidInput(
                f"input {name!r}: binary_data_size {size} runs past the binary data "
                f"({len(binary) - offset} bytes left of {len(binary)}){hint}",
                field=f"{name}.parameters.binary_data_size",
            )
        array = from_raw(name, datatype, shape, binary[offset : offset + size], _BINARY_INPUT)
        offset += size
        if attached is inputs:
            attached = list(inputs)
        attached[i] = Tensor(name, array)
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary)} bytes of binary data but the inputs' "
            f"binary_data_size add up to {offset}",
            field=HEADER_LENGTH,
        )
    return doc if attached is inputs else {**doc, "inputs": attached}


def _binary_size(t: Any, i: int) -> int | None:
    params = t.get("parameters") if isinstance(t, dict) else None
    if params is None:
        return None
    if not isinstance(params, dict):
        raise InvalidInput(f"inputs[{i}].parameters must be an object", field="parameters")
    size = params.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(
            f"inputs[{i}].parameters.binary_data_size must be a non-negative integer, got {size!r}",
            field=f"inputs[{i}].parameters.binary_data_size",
        )
    return size


def binary_outputs(doc: Any, outputs: list[Tensor]) -> list[bool]:
    """Which of `outputs` the request asked for in binary."""
    params = doc.get("parameters") or {}
    default = params.get("binary_data_output") is True
    asked: dict[str, Any] = {}
    for o in doc.get("outputs") or []:
        p = o.get("parameters")
        if isinstance(p, dict) and isinstance(p.get("binary_data"), bool):
            asked[o["name"]] = p["binary_data"]
    return [asked.get(t.name, default) for t in outputs]


def encode(head: dict[str, Any], outputs: list[Tensor], binary: list[bool]) -> tuple[bytes, int]:
    """An infer answer: `head` (model name, version, id, parameters) with `outputs`, those
    flagged in `binary` as raw bytes after the JSON. The length is the JSON header's, or 0
    when nothing is binary (the body is then plain JSON)."""
    docs: list[dict[str, Any]] = []
    chunks: list[Any] = []
    for t, raw in zip(outputs, binary, strict=True):
        if raw:
            datatype = t.datatype
            chunk = raw_buffer(t.array, datatype)  # joined below: the only copy
            chunks.append(chunk)
            size = len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
            docs.append(
                {
                    "name": t.name,
                    "datatype": datatype,
                    "shape": t.shape,
                    "parameters": {"binary_data_size": size},
                }
            )
        else:
            docs.extend(rest_outputs([t]))
    header = _json.dumps({**head, "outputs": docs})
    if not chunks:
        return header, 0
    return b"".join([header, *chunks]), len(header)


def infer_response(head: dict[str, Any], outputs: list[Tensor], doc: Any, rid: str) -> Response:
    """The HTTP answer to the infer request `doc`: JSON, or binary where it asked."""
    body, length = encode(head, outputs, binary_outputs(doc, outputs))
    if not length:
        return respond(body, 200, rid)
    return respond(body, 200, rid, OCTET_STREAM, {HEADER_LENGTH: str(length)})
