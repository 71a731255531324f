"""Check (and safely convert) model input against a signature, as MLflow's pyfunc does.

Allowed conversions are the lossless ones MLflow allows: int -> long, float -> double,
int -> double, any datetime precision -> datetime, and 0/1 longs -> float/double.
Everything else raises `InvalidInput` naming the column or tensor, what was
expected and what came.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.infer import is_dataframe, is_series, pandas
from ledgerflow.models.schema import (
    ColSpec,
    DataType,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    clean_tensor_type,
)


def _label(name: Any) -> str:
    return f"column {name!r}" if not isinstance(name, int) else f"column #{name}"


def _tensor_label(name: str | None) -> str:
    return f"tensor {name!r}" if name is not None else "the input tensor"


def _enforce_column(name: Any, values: Any, t: DataType) -> Any:
    pd = pandas()
    if values.dtype == object and t not in (DataType.binary, DataType.string):
        values = values.infer_objects()
    is_str_dtype = pd is not None and isinstance(values.dtype, pd.StringDtype)
    if t in (DataType.string, DataType.binary) and (values.dtype == object or is_str_dtype):
        return values
    if values.dtype == t.to_numpy():
        return values
    if t is DataType.binary and values.dtype.kind == "S":
        return values
    if t is DataType.datetime and values.dtype.kind == "M":
        return values.astype("datetime64[ns]")
    if t is DataType.datetime and values.dtype == object:
        try:
            return values.astype("datetime64[ns]")
        except (ValueError, TypeError):
            raise InvalidInput(
                f"{_label(name)}: expected datetime, got values that are not dates",
                field=str(name),
            ) from None
    if t is DataType.boolean and values.dtype == object:
        return values
    want = t.to_numpy()
    got = values.dtype
    if got.kind == want.kind:
        upcast = got.itemsize <= want.itemsize
    elif got.kind == "u" and want.kind == "i":
        upcast = got.itemsize < want.itemsize
    elif got.kind in "iu" and want == np.float64:
        upcast = got.itemsize <= 6
    else:
        upcast = False
    if upcast:
        return values.astype(want)
    if got == np.int64 and want.kind == "f" and all(pd.isnull(x) or x in (0, 1) for x in values):
        return values.astype(want)
    hint = ""
    if got == np.float64 and want.kind in "iu" and values.hasnans:
        hint = (
            "; missing values turn integer columns into floats: declare the column as double "
            "in the signature if it can have missing values"
        )
    shown = f" ({want})" if want.kind in "biuf" else ""
    raise InvalidInput(
        f"{_label(name)}: expected {t.name}{shown}, got {got}; only lossless conversions "
        f"are made (such as int32 -> long or float32 -> double){hint}",
        field=str(name),
    )


def _to_frame(data: Any, schema: Schema) -> Any:
    import pandas as pd

    if is_series(data):
        return data.to_frame()
    if is_dataframe(data):
        return data
    if np.isscalar(data):
        return pd.DataFrame([data])
    if isinstance(data, dict):
        if all(np.isscalar(v) or v is None for v in data.values()):
            return pd.DataFrame([data])
        try:
            return pd.DataFrame(
                {
                    k: (v.tolist() if isinstance(v, np.ndarray) and v.ndim > 1 else v)
                    for k, v in data.items()
                }
            )
        except ValueError as e:
            raise InvalidInput(f"the input dict cannot be made into a table: {e}") from None
    if isinstance(data, list | np.ndarray):
        if isinstance(data, np.ndarray) and data.ndim > 2:
            raise InvalidInput(
                f"the model expects a table of columns {schema.input_names()}, got a "
                f"{data.ndim}-d array of shape {data.shape}"
            )
        return pd.DataFrame(data)
    raise InvalidInput(
        f"the model expects a table (pandas DataFrame) with columns {schema.input_names()}, "
        f"got {type(data).__name__}"
    )


def _enforce_columns(data: Any, schema: Schema) -> Any:
    import pandas as pd

    required = schema.required_input_names()
    if isinstance(data, np.ndarray) and data.ndim == 1 and len(required) == 1:
        data = {required[0]: data}  # one named column: the array is that column
    frame = _to_frame(data, schema)
    specs: list[ColSpec] = [s for s in schema.inputs if isinstance(s, ColSpec)]
    if schema.has_input_names():
        present = {str(c) for c in frame.columns}
        missing = [s.name for s in specs if s.required and s.name not in present]
        if missing:
            raise InvalidInput(
                f"the input is missing required column(s) {missing}; the model signature "
                f"expects {[s.name for s in specs]}, got {[str(c) for c in frame.columns]}",
                field=str(missing[0]),
            )
        out = {}
        for s in specs:
            if s.name not in present:
                continue
            col = frame[s.name]
            out[s.name] = (
                _enforce_column(s.name, col, s.type) if isinstance(s.type, DataType) else col
            )
        return pd.DataFrame(out, index=frame.index)
    if len(frame.columns) < len(specs):
        raise InvalidInput(
            f"the model signature declares {len(specs)} unnamed column(s), the input has "
            f"{len(frame.columns)}"
        )
    out = {}
    for s, c in zip(specs, frame.columns[: len(specs)], strict=True):
        col = frame[c]
        out[c] = _enforce_column(c, col, s.type) if isinstance(s.type, DataType) else col
    return pd.DataFrame(out, index=frame.index)


def enforce_tensor(values: Any, spec: TensorSpec) -> Any:
    """Check one array against a tensor spec (shape with -1 wildcards, exact dtype)."""
    label = _tensor_label(spec.name)
    if not isinstance(values, np.ndarray):
        raise InvalidInput(
            f"{label}: expected a numpy array of {spec.type.name} with shape {spec.shape}, "
            f"got {type(values).__name__}",
            field=spec.name,
        )
    want, got = spec.shape, values.shape
    if spec.type == np.dtype(object) and want == (-1,):
        return values
    if len(want) != len(got) or any(w not in (-1, g) for w, g in zip(want, got, strict=False)):
        raise InvalidInput(
            f"{label}: expected shape {want} (-1 = any size), got {got}", field=spec.name
        )
    if clean_tensor_type(values.dtype) != spec.type:
        raise InvalidInput(
            f"{label}: expected dtype {spec.type.name}, got {values.dtype.name}; convert it "
            f"with .astype('{spec.type.name}')",
            field=spec.name,
        )
    return values


def _column_to_tensor(name: str | None, col: Any, spec: TensorSpec) -> Any:
    if spec.shape[:1] != (-1,) or -1 in spec.shape[1:]:
        raise InvalidInput(
            f"{_tensor_label(name)}: a table column can feed only a tensor whose first "
            f"dimension alone is variable, the signature says {spec.shape}"
        )
    first = col.iloc[0]
    if np.isscalar(first):
        if spec.shape not in ((-1,), (-1, 1)):
            raise InvalidInput(
                f"{_tensor_label(name)}: column of scalars needs shape (-1,) or (-1, 1), "
                f"the signature says {spec.shape}"
            )
        return enforce_tensor(np.asarray(col, dtype=spec.type).reshape(spec.shape), spec)
    try:
        arr = np.vstack(col.tolist()).reshape(spec.shape)
    except ValueError:
        raise InvalidInput(
            f"{_tensor_label(name)}: the column's values cannot be reshaped to {spec.shape}"
        ) from None
    if isinstance(first, list):
        arr = arr.astype(spec.type)
    return enforce_tensor(arr, spec)


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    specs: list[TensorSpec] = [s for s in schema.inputs if isinstance(s, TensorSpec)]
    if is_series(data):
        data = data.to_frame()
    if not schema.has_input_names():
        spec = specs[0]
        if is_dataframe(data):
            if data.empty:
                raise InvalidInput("the input DataFrame is empty")
            if len(data.columns) == 1:
                return _column_to_tensor(None, data[data.columns[0]], spec)
            if spec.shape != (-1, len(data.columns)):
                raise InvalidInput(
                    f"the input tensor: expected shape {spec.shape}, got a DataFrame with "
                    f"{len(data.columns)} columns"
                )
            return enforce_tensor(data.to_numpy(), spec)
        return enforce_tensor(data, spec)
    names = [s.name for s in specs]
    if isinstance(data, np.ndarray) and len(specs) == 1:
        data = {names[0]: data}
    if isinstance(data, dict) or is_dataframe(data):
        keys = [str(k) for k in (data.keys() if isinstance(data, dict) else data.columns)]
        missing = [n for n in names if n not in keys]
        if missing:
            raise InvalidInput(
                f"the input is missing tensor(s) {missing}; the model signature expects "
                f"{names}, got {keys}",
                field=str(missing[0]),
            )
        if isinstance(data, dict):
            return {s.name: enforce_tensor(data[s.name], s) for s in specs}
        return {s.name: _column_to_tensor(s.name, data[s.name], s) for s in specs}
    raise InvalidInput(
        f"the model expects a dict of numpy arrays named {names}, got {type(data).__name__}"
    )


def enforce_schema(data: Any, schema: Schema) -> Any:
    """`data` checked against `schema` and converted where that loses nothing.

    Columns come back as a pandas DataFrame in schema order (extra columns dropped);
    tensors as a numpy array, or a dict of them for named tensors.
    """
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


_PARAM_WIDENING = {
    DataType.long: (DataType.integer,),
    DataType.float: (DataType.integer, DataType.long),
    DataType.double: (DataType.integer, DataType.long, DataType.float),
}


def _param_value(spec: ParamSpec, value: Any) -> Any:
    t = spec.dtype
    if value is None:
        return None
    if t is DataType.datetime:
        try:
            out = np.datetime64(value).item()
        except ValueError:
            out = None
        if not isinstance(out, dt.date):
            raise InvalidInput(
                f"parameter {spec.name!r}: expected a datetime, got {value!r}", field=spec.name
            )
        return out
    if not np.isscalar(value):
        raise InvalidInput(
            f"parameter {spec.name!r}: expected a scalar {t.name}, got {type(value).__name__}",
            field=spec.name,
        )
    from ledgerflow.models.infer import scalar_data_type

    try:
        got = scalar_data_type(value)
    except InvalidInput:
        got = None
    if got is t or (got is not None and got in _PARAM_WIDENING.get(t, ())):
        return t.to_python()(value)
    raise InvalidInput(
        f"parameter {spec.name!r}: expected {t.name}, got {type(value).__name__} {value!r}",
        field=spec.name,
    )


def enforce_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any]:
    """Params checked against the schema, with defaults filled in for those not given."""
    if schema is None:
        if params:
            raise InvalidInput(
                f"this model's signature declares no params, but params {sorted(params)} were "
                "given; log the model with a signature that has params (infer_signature(..., "
                "params=...))"
            )
        return {}
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"params must be a dict, got {type(params).__name__}")
    given = dict(params or {})
    known = {p.name for p in schema}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidInput(
            f"unknown params {unknown}; the model signature accepts {sorted(known)}",
            field=unknown[0],
        )
    out: dict[str, Any] = {}
    for spec in schema:
        if spec.name not in given:
            out[spec.name] = spec.default
        elif spec.shape is None:
            out[spec.name] = _param_value(spec, given[spec.name])
        else:
            value = given[spec.name]
            if not isinstance(value, list | tuple | np.ndarray):
                raise InvalidInput(
                    f"parameter {spec.name!r}: expected a list of {spec.dtype.name}, got "
                    f"{type(value).__name__}",
                    field=spec.name,
                )
            out[spec.name] = [_param_value(spec, v) for v in value]
    return out
