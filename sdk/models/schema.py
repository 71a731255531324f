"""Schema types of a model signature, laid out in JSON exactly as MLflow writes them.

A `Schema` is a list of `ColSpec` (columns of a table) or of `TensorSpec` (numpy
tensors), never both. Column types MLflow knows but Ledgerflow does not model
(array, object, map, any) are kept verbatim as `RawType` so a signature read from
an MLflow model is written back unchanged and such columns are passed through
without checks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput


class DataType(Enum):
    """Column types, with the numpy type each maps to."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"

    def __repr__(self) -> str:
        return self.name

    def to_numpy(self) -> np.dtype[Any]:
        return np.dtype(_NUMPY[self.name])

    def to_python(self) -> type:
        return _PYTHON[self.name]


_NUMPY = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "str",
    "binary": "bytes",
    "datetime": "datetime64[ns]",
}
_PYTHON: dict[str, type] = {
    "boolean": bool,
    "integer": int,
    "long": int,
    "float": float,
    "double": float,
    "string": str,
    "binary": bytes,
    "datetime": dt.datetime,
}


class RawType:
    """A column type Ledgerflow does not check (MLflow's array/object/map/any), kept as JSON."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = dict(spec)

    @property
    def name(self) -> str:
        return str(self.spec.get("type", "any"))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawType) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(json.dumps(self.spec, sort_keys=True))

    def __repr__(self) -> str:
        return f"RawType({self.spec!r})"


def _data_type(value: DataType | RawType | str) -> DataType | RawType:
    if isinstance(value, DataType | RawType):
        return value
    try:
        return DataType[value]
    except KeyError:
        raise InvalidInput(
            f"unsupported column type {value!r}; use one of {[t.name for t in DataType]}"
        ) from None


class ColSpec:
    """One column: its type, optional name, and whether it must be present."""

    def __init__(
        self, type: DataType | RawType | str, name: str | None = None, required: bool = True
    ) -> None:
        self.type = _data_type(type)
        self.name = name
        self.required = required

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = (
            {"type": self.type.name} if isinstance(self.type, DataType) else self.type.to_dict()
        )
        if self.name is not None:
            d["name"] = self.name
        d["required"] = self.required
        return d

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> ColSpec:
        if "type" not in kwargs:
            raise InvalidInput(f"column spec {kwargs!r} has no 'type'")
        name = kwargs.pop("name", None)
        required = kwargs.pop("required", True)
        if "optional" in kwargs:  # the spelling of MLflow < 2.10
            required = not kwargs.pop("optional")
        t = kwargs["type"]
        typ = DataType[t] if t in DataType.__members__ else RawType(kwargs)
        return cls(typ, name=name, required=True if required is None else bool(required))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ColSpec)
            and self.name == other.name
            and self.type == other.type
            and self.required == other.required
        )

    def __hash__(self) -> int:
        return hash((self.name, self.type, self.required))

    def __repr__(self) -> str:
        req = "required" if self.required else "optional"
        return (
            f"{self.type!r} ({req})"
            if self.name is None
            else f"{self.name!r}: {self.type!r} ({req})"
        )


def clean_tensor_type(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """`<U5` -> `str`, `|S3` -> `bytes`: sizes of flexible types are not part of a schema."""
    if dtype.char == "U":
        return np.dtype("str")
    if dtype.char == "S":
        return np.dtype("bytes")
    return dtype


class TensorSpec:
    """One tensor: numpy dtype, shape (-1 marks a variable dimension), optional name."""

    required = True

    def __init__(
        self, type: np.dtype[Any] | str, shape: Sequence[int], name: str | None = None
    ) -> None:
        dtype = np.dtype(type)
        if dtype.char in ("U", "S") and not dtype.name.isalpha():
            raise InvalidInput(
                f"tensor dtype {dtype} carries a size; use "
                f"np.dtype('{dtype.name.rstrip('0123456789')}')"
            )
        self.type = dtype
        self.shape = tuple(int(d) for d in shape)
        self.name = name

    def to_dict(self) -> dict[str, Any]:
        info = {"dtype": self.type.name, "shape": list(self.shape)}
        if self.name is None:
            return {"type": "tensor", "tensor-spec": info}
        return {"name": self.name, "type": "tensor", "tensor-spec": info}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> TensorSpec:
        info = kwargs.get("tensor-spec")
        if kwargs.get("type") != "tensor" or not isinstance(info, dict):
            raise InvalidInput(f"tensor spec {kwargs!r} needs type 'tensor' and a 'tensor-spec'")
        return cls(np.dtype(info["dtype"]), info["shape"], kwargs.get("name"))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorSpec)
            and self.name == other.name
            and self.type == other.type
            and self.shape == other.shape
        )

    def __hash__(self) -> int:
        return hash((self.name, self.type.name, self.shape))

    def __repr__(self) -> str:
        t = f"Tensor({self.type.name!r}, {self.shape!r})"
        return t if self.name is None else f"{self.name!r}: {t}"


Spec = ColSpec | TensorSpec


class Schema:
    """The inputs or outputs of a model: all `ColSpec` or all `TensorSpec`."""

    def __init__(self, inputs: Sequence[Spec]) -> None:
        inputs = list(inputs)
        if not inputs:
            raise InvalidInput("a schema needs at least one column or tensor")
        named = [x.name is not None for x in inputs]
        if any(named) and not all(named):
            raise InvalidInput(
                "a schema cannot mix named and unnamed inputs; got names "
                f"{[x.name for x in inputs]}"
            )
        kinds = {type(x) for x in inputs}
        if len(kinds) > 1:
            raise InvalidInput("a schema cannot mix ColSpec and TensorSpec; use one kind")
        if kinds == {TensorSpec} and len(inputs) > 1 and not all(named):
            raise InvalidInput("a schema with several tensors must name each one")
        if not all(named) and not all(x.required for x in inputs):
            raise InvalidInput("unnamed inputs cannot be optional; name them or make them required")
        self.inputs: list[Spec] = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.inputs)

    def is_tensor_spec(self) -> bool:
        return isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return self.inputs[0].name is not None

    def input_names(self) -> list[str | int]:
        return [x.name if x.name is not None else i for i, x in enumerate(self.inputs)]

    def required_input_names(self) -> list[str | int]:
        return [n for n, x in zip(self.input_names(), self.inputs, strict=True) if x.required]

    def input_types(self) -> list[Any]:
        return [x.type for x in self.inputs]

    def numpy_types(self) -> list[np.dtype[Any]]:
        out: list[np.dtype[Any]] = []
        for x in self.inputs:
            if isinstance(x, TensorSpec):
                out.append(x.type)
            elif isinstance(x.type, DataType):
                out.append(x.type.to_numpy())
            else:
                out.append(np.dtype(object))
        return out

    def to_dict(self) -> list[dict[str, Any]]:
        return [x.to_dict() for x in self.inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Schema:
        items = json.loads(text)
        if not isinstance(items, list):
            raise InvalidInput(f"a schema is a JSON list, got {text[:80]!r}")
        return cls(
            [
                TensorSpec.from_json_dict(**x)
                if x.get("type") == "tensor"
                else ColSpec.from_json_dict(**x)
                for x in items
            ]
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.inputs == other.inputs

    def __hash__(self) -> int:
        return hash(tuple(self.inputs))

    def __repr__(self) -> str:
        return repr(self.inputs)


class ParamSpec:
    """One inference parameter: name, type, default, and shape (None or (-1,) for a list)."""

    def __init__(
        self,
        name: str,
        dtype: DataType | str,
        default: Any,
        shape: Sequence[int] | None = None,
    ) -> None:
        t = _data_type(dtype)
        if not isinstance(t, DataType):
            raise InvalidInput(f"parameter {name!r}: type {t.name!r} is not supported")
        self.name = name
        self.dtype = t
        self.shape = tuple(shape) if shape is not None else None
        if self.shape not in (None, (-1,)):
            raise InvalidInput(f"parameter {name!r}: shape must be None or (-1,), got {shape}")
        if t is DataType.datetime:
            default = _datetime_default(name, default)
        self.default = default

    @property
    def type(self) -> DataType:
        return self.dtype

    def to_dict(self) -> dict[str, Any]:
        default = self.default
        if self.dtype is DataType.datetime and default is not None:
            default = [v.isoformat() for v in default] if self.shape else default.isoformat()
        return {
            "name": self.name,
            "default": default,
            "shape": list(self.shape) if self.shape is not None else None,
            "type": self.dtype.name,
        }

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> ParamSpec:
        t = kwargs.get("type") or kwargs.get("dtype")
        if "name" not in kwargs or t is None or "default" not in kwargs:
            raise InvalidInput(f"parameter spec {kwargs!r} needs name, type and default")
        return cls(str(kwargs["name"]), str(t), kwargs["default"], kwargs.get("shape"))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ParamSpec)
            and (self.name, self.dtype, self.shape) == (other.name, other.dtype, other.shape)
            and self.default == other.default
        )

    def __hash__(self) -> int:
        return hash((self.name, self.dtype, self.shape))

    def __repr__(self) -> str:
        shape = f" (shape: {self.shape})" if self.shape is not None else ""
        return f"{self.name!r}: {self.dtype!r} (default: {self.default}){shape}"


def _datetime_default(name: str, value: Any) -> Any:
    """ISO strings (as stored in JSON) become datetimes."""
    if isinstance(value, list):
        return [_datetime_default(name, v) for v in value]
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"parameter {name!r}: default {value!r} is not a datetime") from None
    return value


class ParamSchema:
    """The parameters `predict(data, params=...)` accepts."""

    def __init__(self, params: Sequence[ParamSpec]) -> None:
        names = [p.name for p in params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"duplicated parameters in schema: {dupes}")
        self.params = list(params)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def to_dict(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ParamSchema:
        return cls([ParamSpec.from_json_dict(**x) for x in json.loads(text)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self.params == other.params

    def __hash__(self) -> int:
        return hash(tuple(self.params))

    def __repr__(self) -> str:
        return repr(self.params)
