"""Input examples saved next to a model, as MLflow saves them.

`input_example.json` holds the example (a DataFrame in pandas "split" orient, an
array as nested lists, a dict of arrays as a dict of lists, or plain JSON) and
`serving_input_example.json` the same data as a scoring request body. The MLmodel's
`saved_input_example_info` says which kind it is.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.infer import is_dataframe, is_series
from ledgerflow.models.schema import DataType, Schema, TensorSpec

EXAMPLE_FILENAME = "input_example.json"
SERVING_INPUT_FILENAME = "serving_input_example.json"


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, np.ndarray):
            if o.dtype.kind == "S":
                return [self.default(x) for x in o.tolist()]
            return [self.default(x) if not _jsonable(x) else x for x in o.tolist()]
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, bytes | bytearray):
            return base64.encodebytes(bytes(o)).decode("ascii")
        if isinstance(o, np.datetime64):
            return np.datetime_as_string(o)
        if isinstance(o, dt.date | dt.time):
            return o.isoformat()
        return super().default(o)


def _jsonable(x: Any) -> bool:
    return x is None or isinstance(x, str | int | float | bool | list | dict)


def _nan_to_none(arr: np.ndarray[Any, Any]) -> Any:
    if np.issubdtype(arr.dtype, np.number):
        out: Any = np.where(np.isnan(arr), np.array(None), arr)
        return out.tolist()
    return arr.tolist() if arr.dtype.kind != "S" else arr


def split_example(example: Any) -> tuple[Any, dict[str, Any] | None]:
    """`(data, params)` from an example that may be a `(data, params)` tuple."""
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict):
        return example[0], example[1]
    return example, None


def save_example(path: Path, example: Any) -> dict[str, Any]:
    """Write the example files into model directory `path`; return `saved_input_example_info`."""
    data, params = split_example(example)
    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILENAME}
    if params:
        info["params"] = "true"
    if is_series(data):
        data = data.to_frame()
    serving: dict[str, Any]
    if is_dataframe(data):
        # Missing values as null: MLflow writes NaN, which is not JSON (it reads null too).
        split = data.astype(object).where(data.notnull(), None).to_dict(orient="split")
        del split["index"]
        if list(data.columns) == list(range(len(data.columns))):
            del split["columns"]
        payload: Any = split
        serving = {"dataframe_split": split}
        info.update(type="dataframe", pandas_orient="split" if "columns" in split else "values")
    elif isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values()):
        payload = {k: _nan_to_none(v) for k, v in data.items()}
        serving = {"inputs": payload}
        info["type"] = "ndarray"
    elif isinstance(data, np.ndarray):
        payload = _nan_to_none(data)
        serving = {"inputs": payload}
        info["type"] = "ndarray"
    elif isinstance(data, dict | list) or np.isscalar(data) or isinstance(data, dt.datetime):
        if isinstance(data, dict) and any(isinstance(v, np.ndarray) for v in data.values()):
            raise InvalidInput("an input example dict must hold only numpy arrays or no arrays")
        payload = data
        serving = {"inputs": data}
        info["type"] = "json_object"
    else:
        raise InvalidInput(
            "input_example must be a pandas DataFrame, a numpy array, a dict of numpy arrays, "
            f"a dict, a list or a scalar; got {type(data).__name__}"
        )
    if params:
        payload = {"inputs": payload, "params": params}
        serving = {**serving, "params": params}
    try:
        (path / EXAMPLE_FILENAME).write_text(json.dumps(payload, cls=_Encoder))
        (path / SERVING_INPUT_FILENAME).write_text(json.dumps(serving, cls=_Encoder, indent=2))
    except TypeError as e:
        raise InvalidInput(f"input_example is not JSON-serializable: {e}") from None
    info["serving_input_path"] = SERVING_INPUT_FILENAME
    return info


def _cast_column(values: Any, t: Any) -> Any:
    if not isinstance(t, DataType):
        return values
    if t is DataType.binary:
        return values.map(lambda v: base64.decodebytes(v.encode()) if isinstance(v, str) else v)
    if t is DataType.datetime:
        return values.astype("datetime64[ns]")
    if t in (DataType.string, DataType.boolean) or values.isna().any():
        return values
    return values.astype(t.to_numpy())


def load_example(model_dir: Path, info: dict[str, Any] | None, schema: Schema | None) -> Any:
    """The saved example as data a model can score (None when there is none)."""
    if not info:
        return None
    raw = json.loads((model_dir / info["artifact_path"]).read_text())
    if info.get("params"):
        raw = raw["inputs"]
    kind = info.get("type")
    if kind == "json_object":
        return raw
    if kind == "ndarray":
        specs = {s.name: s for s in schema.inputs} if schema and schema.is_tensor_spec() else {}

        def arr(name: str | None, v: Any) -> np.ndarray[Any, Any]:
            spec = specs.get(name)
            return np.array(v, dtype=spec.type if isinstance(spec, TensorSpec) else None)

        if isinstance(raw, dict):
            return {k: arr(k, v) for k, v in raw.items()}
        return arr(None, raw)
    if kind == "dataframe":
        import pandas as pd

        df = pd.DataFrame(raw["data"], columns=raw.get("columns"))
        if schema is not None and not schema.is_tensor_spec() and schema.has_input_names():
            for spec in schema.inputs:
                if spec.name in df.columns:
                    df[spec.name] = _cast_column(df[spec.name], spec.type)
        return df
    raise InvalidInput(f"input example type {kind!r} is not supported by this version")
