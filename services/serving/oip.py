"""Open Inference Protocol v2 tensors, shared by the REST and gRPC fronts: datatypes, the
decoding of request tensors into numpy arrays, and the encoding of predictions as outputs.

Every error is an InvalidInput naming the tensor and what is wrong with it, so the REST front
answers 400 and the gRPC front INVALID_ARGUMENT with the same message.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dt: name for name, dt in DATATYPES.items() if name != "BYTES"}
_WIRE = {name: dt.newbyteorder("<") for dt, name in _BY_DTYPE.items()}
"""Each numeric datatype's dtype on the wire: little-endian, whatever this machine is."""
_NATIVE_IS_WIRE = sys.byteorder == "little"


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The OIP datatype of a numpy dtype; strings and objects are BYTES."""
    found = _BY_DTYPE.get(dtype)  # a native dtype, the common case, needs no normalizing
    if found is None:
        found = _BY_DTYPE.get(np.dtype(dtype).newbyteorder("="))
    return found if found is not None else "BYTES"


@dataclass(frozen=True)
class Tensor:
    """A decoded request tensor, or an output about to be encoded."""

    name: str
    array: np.ndarray[Any, Any]

    @property
    def datatype(self) -> str:
        return datatype_of(self.array.dtype)

    @property
    def shape(self) -> list[int]:
        return [int(d) for d in self.array.shape]


def check_header(name: Any, datatype: Any, shape: Any, where: str) -> tuple[str, str, list[int]]:
    """Validate a tensor's name, datatype and shape; `where` names it in the message."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}: name must be a non-empty string", field=f"{where}.name")
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input {name!r}: unknown datatype {datatype!r}; use one of {list(DATATYPES)}",
            field=f"{name}.datatype",
        )
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(
            f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}",
            field=f"{name}.shape",
        )
    return name, datatype, [int(d) for d in shape]


def to_array(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray[Any, Any]:
    """The array of a tensor from its values (flat or nested), checked against its shape."""
    dtype = DATATYPES[datatype]
    try:
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=object).ravel()
            flat = np.array([text_of(v) for v in flat], dtype=object)
        else:
            flat = np.asarray(data, dtype=dtype).ravel()
            if datatype == "BOOL" and np.asarray(data).dtype.kind not in "bO":
                raise ValueError("BOOL data must be true/false")
    except (ValueError, TypeError, OverflowError) as e:
        raise InvalidInput(
            f"input {name!r}: data cannot be read as {datatype}: {e}", field=f"{name}.data"
        ) from None
    want = math.prod(shape)
    if flat.size != want:
        raise InvalidInput(
            f"input {name!r}: shape {shape} holds {want} elements, data has {flat.size}",
            field=f"{name}.data",
        )
    return flat.reshape(shape)


def text_of(value: Any) -> Any:
    """BYTES elements reach models as str when they are UTF-8 text, as bytes otherwise."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _raw_bytes_elements(
    name: str, raw: bytes | memoryview, count: int, what: str, field: str
) -> np.ndarray[Any, Any]:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(
                f"input {name!r}: {what} BYTES content is cut off inside a length prefix",
                field=f"{name}.{field}",
            )
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidInput(
                f"input {name!r}: {what} BYTES element of {size} bytes runs past the content",
                field=f"{name}.{field}",
            )
        items.append(bytes(raw[offset : offset + size]))
        offset += size
    if len(items) != count:
        raise InvalidInput(
            f"input {name!r}: shape holds {count} elements, {what} content has {len(items)}",
            field=f"{name}.{field}",
        )
    return np.array([text_of(v) for v in items], dtype=object)


def from_raw(
    name: str, datatype: str, shape: list[int], raw: bytes | memoryview, source: tuple[str, str]
) -> np.ndarray[Any, Any]:
    """The array of a tensor sent as raw bytes: little-endian and row-major, BYTES elements
    each prefixed by its 4-byte little-endian length. `source` (a word, a field) says where
    the bytes came from in messages: gRPC's raw contents or REST's binary data. A numeric
    array is a read-only view on `raw` on a little-endian machine (no copy)."""
    what, field = source
    count = math.prod(shape)
    if datatype == "BYTES":
        return _raw_bytes_elements(name, raw, count, what, field).reshape(shape)
    dtype = _WIRE[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} "
            f"{what} bytes, got {len(raw)}",
            field=f"{name}.{field}",
        )
    array = np.frombuffer(raw, dtype=dtype)
    if not _NATIVE_IS_WIRE:
        array = array.astype(DATATYPES[datatype])
    return array.reshape(shape)


def to_raw(t: Tensor) -> bytes:
    """A tensor's raw bytes, the inverse of `from_raw`."""
    raw = raw_buffer(t.array, t.datatype)
    return raw if isinstance(raw, bytes) else raw.tobytes()


def raw_buffer(array: np.ndarray[Any, Any], datatype: str) -> bytes | np.ndarray[Any, Any]:
    """`to_raw`'s bytes without copying a numeric array that is already little-endian and
    contiguous: the array itself, for `bytes.join` or anything that takes a buffer (its
    `nbytes` is the length)."""
    if datatype == "BYTES":
        parts = []
        for v in array.ravel():
            b = v if isinstance(v, bytes) else str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=_WIRE[datatype])


def parse_rest_inputs(doc: Any) -> tuple[list[Tensor], dict[str, Any] | None, list[str] | None]:
    """The tensors, parameters and requested output names of a REST infer request body. An
    input may already be a Tensor: binary data, decoded by `oip_binary.attach_binary`."""
    if not isinstance(doc, dict):
        raise InvalidInput("the infer request must be a JSON object", field="body")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("inputs must be a non-empty list of tensors", field="inputs")
    tensors: list[Tensor] = []
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor):
            tensors.append(t)
            continue
        if not isinstance(t, dict):
            raise InvalidInput(f"inputs[{i}] must be an object", field=f"inputs[{i}]")
        name, datatype, shape = check_header(
            t.get("name"), t.get("datatype"), t.get("shape"), f"inputs[{i}]"
        )
        if "data" not in t:
            raise InvalidInput(f"input {name!r}: data is missing", field=f"{name}.data")
        tensors.append(Tensor(name, to_array(name, datatype, shape, t["data"])))
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput(f"input names must be unique, got {names}", field="inputs")
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput("parameters must be an object", field="parameters")
    outputs = doc.get("outputs")
    wanted: list[str] | None = None
    if outputs is not None:
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise InvalidInput("outputs must be a list of {name: ...} objects", field="outputs")
        wanted = [o["name"] for o in outputs]
    return tensors, params, wanted


def output_tensors(
    predictions: Any, output_names: list[str], wanted: list[str] | None
) -> list[Tensor]:
    """Predictions as named output tensors: a dict or DataFrame gives one per key or column,
    anything else one tensor named after the model's first output (or `predictions`)."""
    if isinstance(predictions, dict):
        items = [(str(k), v) for k, v in predictions.items()]
    elif type(predictions).__name__ == "DataFrame":
        items = [(str(c), predictions[c].to_numpy()) for c in predictions.columns]
    else:
        items = [(output_names[0] if output_names else "predictions", predictions)]
    tensors = [Tensor(name, _as_array(value)) for name, value in items]
    if wanted is None:
        return tensors
    by_name = {t.name: t for t in tensors}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise InvalidInput(
            f"requested output {missing[0]!r} is not an output of this model; it has "
            f"{sorted(by_name)}",
            field="outputs",
        )
    return [by_name[n] for n in wanted]


def _as_array(value: Any) -> np.ndarray[Any, Any]:
    to_numpy = getattr(value, "to_numpy", None) or getattr(value, "numpy", None)
    arr = np.asarray(to_numpy() if callable(to_numpy) else value)
    if arr.dtype.kind in "USO":
        return arr.astype(object)
    return arr


def rest_outputs(tensors: list[Tensor]) -> list[dict[str, Any]]:
    """Output tensors as REST JSON objects (data flattened in row-major order)."""
    out = []
    for t in tensors:
        datatype = t.datatype
        data: Any = t.array.ravel()
        if datatype == "BYTES":
            data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data]
        elif datatype == "FP16":
            data = data.astype(np.float32)
        out.append({"name": t.name, "datatype": datatype, "shape": t.shape, "data": data})
    return out
