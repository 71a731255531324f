"""MLflow's scoring protocol (`POST /invocations`), parsed and answered as `mlflow models serve`
does: a JSON body with exactly one of `dataframe_split`, `dataframe_records`, `instances` or
`inputs` (plus optional `params`), or a CSV body; the answer is `{"predictions": ...}`.

Numeric `inputs`/`instances` become numpy arrays directly, cast to the signature's dtype, so the
common case never builds a pandas DataFrame; the DataFrame formats and CSV do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.schema import Schema, TensorSpec
from ledgerflow.services.serving import _json

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
CSV = "text/csv"
JSON = "application/json"


class UnsupportedContentType(InvalidInput):
    """A body in a content type the scoring protocol does not take (HTTP 415)."""


@dataclass(frozen=True)
class ModelRequest:
    """One request's model input (an array, a dict of arrays or a DataFrame), its params, and
    how many rows it holds (what the batcher concatenates along)."""

    data: Any
    params: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        return count_rows(self.data)


def count_rows(data: Any) -> int:
    """Rows along axis 0: an array's first dimension, a frame's length, a dict's first column."""
    if isinstance(data, np.ndarray):
        return int(data.shape[0]) if data.ndim else 1
    if isinstance(data, dict):
        first = next(iter(data.values()), None)
        return count_rows(first) if first is not None else 0
    try:
        return len(data)
    except TypeError:
        return 1


def parse_invocation(body: bytes, content_type: str | None, schema: Schema | None) -> ModelRequest:
    """The model input of an /invocations request; InvalidInput naming the field when it is
    malformed, UnsupportedContentType for a media type other than JSON or CSV."""
    mime, _, rest = (content_type or "").partition(";")
    mime = mime.strip().lower()
    for pair in filter(None, (p.strip() for p in rest.split(";"))):
        key, _, value = pair.partition("=")
        if key.strip().lower() != "charset":
            raise UnsupportedContentType(
                f"unrecognized content type parameter {key.strip()!r}", field="content-type"
            )
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedContentType(
                "the scoring server only supports UTF-8", field="content-type"
            )
    if mime == JSON:
        return parse_json(body, schema)
    if mime == CSV:
        return ModelRequest(frame_for(parse_csv(body), schema, "body"))
    raise UnsupportedContentType(
        f"this server takes the content types {JSON!r} and {CSV!r}, got {content_type!r}",
        field="content-type",
    )


def parse_json(body: bytes, schema: Schema | None) -> ModelRequest:
    try:
        doc = _json.loads(body)
    except (_json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(f"the body is not valid JSON: {e}", field="body") from None
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"the JSON body must be an object with one of the fields {list(FORMATS)}, "
            f"got a {type(doc).__name__}",
            field="body",
        )
    keys = [k for k in FORMATS if k in doc]
    if len(keys) != 1:
        raise InvalidInput(
            f"the JSON body needs exactly one of the fields {list(FORMATS)}, "
            f"got the fields {sorted(doc)}",
            field="body",
        )
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"params must be an object, got {type(params).__name__}", field="params")
    key = keys[0]
    value = doc[key]
    if key == INPUTS:
        data = tensors_input(value, schema, INPUTS)
    elif key == INSTANCES:
        data = instances_input(value, schema)
    else:
        data = frame_for(_frame(value, key), schema, key)
    return ModelRequest(data, params)


def _spec_for(schema: Schema | None, name: str | None) -> TensorSpec | None:
    if schema is None or not schema.is_tensor_spec():
        return None
    specs = [s for s in schema.inputs if isinstance(s, TensorSpec)]
    if name is None:
        return specs[0] if len(specs) == 1 else None
    return next((s for s in specs if s.name == name), None)


def _array(value: Any, spec: TensorSpec | None, field: str) -> np.ndarray[Any, Any]:
    dtype = spec.type if spec is not None and spec.type != np.dtype(object) else None
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as e:
        want = f" of {dtype.name}" if dtype is not None else ""
        raise InvalidInput(f"{field}: cannot be read as an array{want}: {e}", field=field) from None


def tensors_input(value: Any, schema: Schema | None, field: str) -> Any:
    """`inputs`: a (nested) list is one tensor, an object is named tensors."""
    if isinstance(value, dict):
        return {k: _array(v, _spec_for(schema, k), f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return _array(value, _spec_for(schema, None), field)
    raise InvalidInput(
        f"{field} must be a list or an object of lists, got {type(value).__name__}", field=field
    )


def instances_input(value: Any, schema: Schema | None) -> Any:
    """`instances`: rows; a list of objects is turned into named columns, as MLflow does."""
    if not isinstance(value, list):
        raise InvalidInput(f"instances must be a list, got {type(value).__name__}", field=INSTANCES)
    if value and all(isinstance(v, dict) for v in value):
        keys = list(value[0])
        if any(list(v) != keys for v in value):
            raise InvalidInput("every instance must have the same fields", field=INSTANCES)
        return {
            k: _array([v[k] for v in value], _spec_for(schema, k), f"{INSTANCES}.{k}") for k in keys
        }
    return _array(value, _spec_for(schema, None), INSTANCES)


def _frame(value: Any, field: str) -> Any:
    import pandas as pd

    try:
        if field == DF_SPLIT:
            if not isinstance(value, dict) or "data" not in value:
                raise InvalidInput(
                    f"{DF_SPLIT} must be an object with data (and optionally columns, index)",
                    field=DF_SPLIT,
                )
            return pd.DataFrame(
                data=value["data"], columns=value.get("columns"), index=value.get("index")
            )
        if not isinstance(value, list):
            raise InvalidInput(
                f"{DF_RECORDS} must be a list of objects, got {type(value).__name__}",
                field=DF_RECORDS,
            )
        return pd.DataFrame(value)
    except (ValueError, TypeError, AssertionError) as e:
        raise InvalidInput(f"{field}: cannot be read as a table: {e}", field=field) from None


def frame_for(frame: Any, schema: Schema | None, field: str) -> Any:
    """A table for a model with one unnamed tensor input becomes that tensor, in its dtype (as
    MLflow casts by the schema), so integers written for a float model are not refused."""
    spec = _spec_for(schema, None)
    if spec is None or spec.name is not None or spec.type == np.dtype(object):
        return frame
    try:
        arr = frame.to_numpy(dtype=spec.type)
    except (ValueError, TypeError) as e:
        raise InvalidInput(
            f"{field}: cannot be read as {spec.type.name} values: {e}", field=field
        ) from None
    return arr[:, 0] if len(spec.shape) == 1 and arr.shape[1] == 1 else arr


def parse_csv(body: bytes) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise InvalidInput(f"the CSV body cannot be read: {e}", field="body") from None


def jsonable(predictions: Any) -> Any:
    """Predictions in the shape MLflow answers them: frames as records, series and arrays as
    lists (numeric arrays are left for orjson, which writes them directly)."""
    if isinstance(predictions, np.ndarray):
        return predictions if predictions.dtype.kind in "biuf" else predictions.tolist()
    if isinstance(predictions, dict):
        return {k: jsonable(v) for k, v in predictions.items()}
    if isinstance(predictions, list | tuple | str | int | float | bool) or predictions is None:
        return predictions
    kind = type(predictions).__name__
    if kind == "DataFrame":
        return predictions.to_dict(orient="records")
    if kind == "Series":
        return predictions.tolist()
    tolist = getattr(predictions, "tolist", None)  # torch / tf tensors, numpy scalars
    return tolist() if callable(tolist) else predictions


def predictions_body(predictions: Any) -> bytes:
    return _json.dumps({"predictions": jsonable(predictions)})
