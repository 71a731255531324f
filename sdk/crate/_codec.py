"""What goes over the pipe to the R worker and back: a table as JSON columns in, the R
function's answer out.

A request is one line, `{"columns": [...], "types": [...], "values": [[column], ...]}`,
each type one of `double`, `integer`, `logical`, `character`, `datetime` (ISO strings,
UTC), missing values `null`; the worker builds a `data.frame` of it. An answer is
`{"ok": true, "kind": ...}`: a `vector` (a 1-d numpy array), a `matrix` (2-d, sent in
R's column-major order), a `frame` (a pandas DataFrame) or `json` (any other R value as
jsonlite writes it); or `{"ok": false, "error": ..., "call": ...}`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgerflow.events.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    import pandas as pd


def encode_request(data: Any) -> str:
    """`data` (a DataFrame, or what `pd.DataFrame` takes: a dict of columns, records, a 2-d
    array) as one request line; a column R cannot take is InvalidInput naming it."""
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        if isinstance(data, pd.Series):
            data = data.to_frame()
        else:
            try:
                data = pd.DataFrame(data)
            except (ValueError, TypeError) as e:
                raise InvalidInput(
                    "an R model predicts on a table (a DataFrame, a dict of columns, a list "
                    f"of records or a 2-d array); {type(data).__name__} is none: {e}",
                    field="data",
                ) from e
    columns, types, values = [], [], []
    for position, name in enumerate(data.columns):
        kind, column = _column(str(name), data.iloc[:, position])
        columns.append(str(name))
        types.append(kind)
        values.append(column)
    return json.dumps({"columns": columns, "types": types, "values": values}, allow_nan=False)


def _column(name: str, series: pd.Series[Any]) -> tuple[str, list[Any]]:
    import pandas as pd

    dtype = series.dtype
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        return "logical", [None if m else bool(v) for v, m in zip(series, missing, strict=True)]
    if pd.api.types.is_integer_dtype(dtype):
        return "integer", [None if m else int(v) for v, m in zip(series, missing, strict=True)]
    if pd.api.types.is_float_dtype(dtype):
        return "double", [
            None if m or not math.isfinite(v) else float(v)
            for v, m in zip(series, missing, strict=True)
        ]
    if pd.api.types.is_datetime64_any_dtype(dtype):
        utc = pd.to_datetime(series, utc=True).dt.tz_localize(None)
        return "datetime", [None if m else v.isoformat() for v, m in zip(utc, missing, strict=True)]
    out: list[Any] = []
    for (row, value), m in zip(series.items(), missing, strict=True):
        if m:
            out.append(None)
        elif isinstance(value, str):
            out.append(value)
        else:
            raise InvalidInput(
                f"column {name!r} holds {type(value).__name__} {value!r} at row {row!r}; an R "
                "model takes numbers, booleans, strings and datetimes",
                field=name,
            )
    return "character", out


def decode_answer(line: str) -> Any:
    """The predictions in an answer line; an R error is InvalidInput with R's message."""
    try:
        answer = json.loads(line)
    except ValueError as e:
        raise Unavailable(f"the R worker answered a line that is not JSON: {line[:200]!r}") from e
    if not answer.get("ok"):
        call = answer.get("call") or ""
        where = f" (in {call})" if call else ""
        raise InvalidInput(
            f"the R model's predict function failed{where}: {answer.get('error')}",
            field="data",
        )
    kind = answer["kind"]
    if kind == "vector":
        return _array(answer["type"], answer["values"])
    if kind == "matrix":
        flat = _array(answer["type"], answer["values"])
        return flat.reshape((answer["nrow"], answer["ncol"]), order="F")
    if kind == "frame":
        import pandas as pd

        return pd.DataFrame(
            {
                name: _array(kind, values)
                for name, kind, values in zip(
                    answer["columns"], answer["types"], answer["values"], strict=True
                )
            }
        )
    return answer["value"]


def _array(kind: str, values: list[Any]) -> np.ndarray[Any, Any]:
    has_missing = any(v is None for v in values)
    if kind == "double" or (kind == "integer" and has_missing):
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "integer":
        return np.array(values, dtype=np.int64)
    if kind == "logical" and not has_missing:
        return np.array(values, dtype=bool)
    if kind == "datetime":
        import pandas as pd

        return np.asarray(pd.to_datetime(values, utc=True).tz_localize(None))
    return np.array(values, dtype=object)
