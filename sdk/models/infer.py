"""Infer a schema from example data, with MLflow's rules (so both infer the same JSON).

pandas is never imported here: a pandas object can only be passed in if pandas is
already loaded, so it is looked up in `sys.modules`.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.schema import (
    ColSpec,
    DataType,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    clean_tensor_type,
)


def pandas() -> Any:
    """The pandas module if something already imported it, else None."""
    return sys.modules.get("pandas")


def is_dataframe(x: Any) -> bool:
    pd = pandas()
    return pd is not None and isinstance(x, pd.DataFrame)


def is_series(x: Any) -> bool:
    pd = pandas()
    return pd is not None and isinstance(x, pd.Series)


def numpy_data_type(dtype: Any) -> DataType:
    """MLflow's column type for a numpy (or pandas extension) dtype."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return DataType.boolean
    if kind in "iu":
        if size < 4 or (kind == "i" and size == 4):
            return DataType.integer
        if size < 8 or (kind == "i" and size == 8):
            return DataType.long
    elif kind == "f":
        if size <= 4:
            return DataType.float
        if size <= 8:
            return DataType.double
    elif kind == "U":
        return DataType.string
    elif kind == "S":
        return DataType.binary
    elif kind == "M":
        return DataType.datetime
    raise InvalidInput(f"cannot infer a column type for dtype {dtype} (kind {kind!r})")


def scalar_data_type(value: Any) -> DataType:
    if isinstance(value, bool | np.bool_):
        return DataType.boolean
    if isinstance(value, np.generic):
        return numpy_data_type(value.dtype)
    if isinstance(value, int):
        return DataType.long
    if isinstance(value, float):
        return DataType.double
    if isinstance(value, str):
        return DataType.string
    if isinstance(value, bytes | bytearray):
        return DataType.binary
    if isinstance(value, dt.date):
        return DataType.datetime
    raise InvalidInput(f"cannot infer a column type for value {value!r} ({type(value).__name__})")


def _is_missing(x: Any) -> bool:
    if isinstance(x, float):
        return math.isnan(x)
    pd = pandas()
    return x is None or (pd is not None and (x is pd.NA or x is pd.NaT))


def _values_type(values: list[Any]) -> DataType:
    types = {scalar_data_type(v) for v in values if not _is_missing(v)}
    if not types:
        raise InvalidInput("cannot infer a column type from values that are all missing")
    if types == {DataType.long, DataType.double}:
        return DataType.double
    if len(types) > 1:
        raise InvalidInput(f"values mix types {sorted(t.name for t in types)}")
    return types.pop()


def _series_type(col: Any) -> DataType:
    pd = pandas()
    if len(col.values.shape) > 1:
        raise InvalidInput(f"column {col.name!r} is not 1-d (shape {col.shape})")
    if pd is not None and isinstance(col.dtype, pd.StringDtype):
        return DataType.string
    if col.dtype.kind == "O":
        col = col.infer_objects()
    if col.dtype.kind == "O":
        try:
            return _values_type(col.to_list())
        except InvalidInput as e:
            raise InvalidInput(f"column {col.name!r}: {e.message}") from None
    return numpy_data_type(col.dtype)


def _required(values: Any) -> bool:
    return not any(_is_missing(x) for x in values)


def tensor_shape(arr: np.ndarray[Any, Any]) -> tuple[int, ...]:
    if arr.ndim == 0:
        return ()
    return (-1, *arr.shape[1:])


def infer_schema(data: Any) -> Schema:
    """The schema of `data`: DataFrame/Series/list/dict of scalars -> columns;
    ndarray or dict of ndarrays -> tensors."""
    if isinstance(data, list) and not data:
        return Schema([ColSpec(DataType.string)])
    if isinstance(data, list) and all(isinstance(v, dict) for v in data):
        cols: dict[str, list[Any]] = {}
        for row in data:
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
        return Schema(
            [
                ColSpec(_values_type(v), name=k, required=all(r.get(k) is not None for r in data))
                for k, v in cols.items()
            ]
        )
    if isinstance(data, dict):
        if data and all(isinstance(v, np.ndarray) for v in data.values()):
            return Schema(
                [
                    TensorSpec(clean_tensor_type(v.dtype), tensor_shape(v), name=str(k))
                    for k, v in data.items()
                ]
            )
        if any(not isinstance(k, str) for k in data):
            raise InvalidInput("dictionary keys must all be strings to infer a schema")
        specs = []
        for k, v in data.items():
            values = list(v) if isinstance(v, list | np.ndarray) else [v]
            specs.append(ColSpec(_values_type(values), name=k, required=_required(values)))
        return Schema(specs)
    if is_series(data):
        return Schema([ColSpec(_series_type(data), name=data.name, required=_required(data))])
    if is_dataframe(data):
        return Schema(
            [
                ColSpec(_series_type(data[c]), name=str(c), required=_required(data[c]))
                for c in data.columns
            ]
        )
    if isinstance(data, np.ndarray):
        return Schema([TensorSpec(clean_tensor_type(data.dtype), tensor_shape(data))])
    if isinstance(data, list):
        return Schema([ColSpec(_values_type(data))])
    try:
        return Schema([ColSpec(scalar_data_type(data))])
    except InvalidInput:
        raise InvalidInput(
            "cannot infer a schema from "
            f"{type(data).__name__}; pass a pandas DataFrame or Series, a numpy array, a dict "
            "of numpy arrays, a list or dict of scalars, or a scalar"
        ) from None


def infer_param_schema(params: dict[str, Any]) -> ParamSchema:
    if not isinstance(params, dict):
        raise InvalidInput(f"params must be a dict, got {type(params).__name__}")
    specs = []
    for name, value in params.items():
        if isinstance(value, list | np.ndarray):
            arr = np.asarray(value)
            if arr.ndim != 1:
                raise InvalidInput(f"parameter {name!r} must be a scalar or 1-d list")
            if all(isinstance(v, dt.date) for v in value):
                specs.append(ParamSpec(name, DataType.datetime, list(value), (-1,)))
            else:
                specs.append(ParamSpec(name, numpy_data_type(arr.dtype), list(value), (-1,)))
        elif isinstance(value, dt.date):
            specs.append(ParamSpec(name, DataType.datetime, value))
        elif np.isscalar(value):
            specs.append(ParamSpec(name, numpy_data_type(np.array(value).dtype), value))
        else:
            raise InvalidInput(
                f"parameter {name!r}: expected a scalar or 1-d list, got {type(value).__name__}"
            )
    return ParamSchema(specs)
