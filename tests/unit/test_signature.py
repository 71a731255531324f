"""Signatures: inferred as MLflow infers them, stored in its JSON layout, enforced with
errors that name the column or tensor."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.signature import (
    ColSpec,
    DataType,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    enforce_params,
    enforce_schema,
    infer_signature,
)

SAMPLES = {
    "a table of mixed columns": lambda: pd.DataFrame(
        {
            "a": [1.0, 2.0],
            "b": [1, 2],
            "c": ["x", "y"],
            "d": [True, False],
            "e": np.array([1, 2], dtype=np.int32),
            "f": np.array([1, 2], dtype=np.float32),
            "g": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "h": [b"a", b"b"],
        }
    ),
    "a column with a missing value": lambda: pd.DataFrame({"a": [1.0, None]}),
    "a 2-d float32 array": lambda: np.zeros((3, 4), dtype=np.float32),
    "a 1-d int64 array": lambda: np.zeros(3, dtype=np.int64),
    "a 3-d uint8 array": lambda: np.zeros((2, 3, 4), dtype=np.uint8),
    "a string array": lambda: np.array(["a", "b"]),
    "a dict of arrays": lambda: {"x": np.zeros((2, 3)), "y": np.zeros(2, dtype=np.int32)},
    "a named series": lambda: pd.Series([1.0, 2.0], name="s"),
    "a list of ints": lambda: [1, 2, 3],
    "a dict of scalars": lambda: {"a": 1, "b": "x"},
    "a list of records": lambda: [{"a": 1, "b": "x"}, {"a": 2, "b": None}],
    "a string": lambda: "hello",
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_inferred_signatures_are_the_json_mlflow_infers(kind: str):
    from mlflow.models import infer_signature as mlflow_infer

    data = SAMPLES[kind]()
    params = {"k": 1, "t": 0.5, "s": "x", "b": True, "l": [1, 2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mlflow_infer(data, params=params).to_dict()
    assert infer_signature(data, params=params).to_dict() == theirs


def test_a_signature_round_trips_through_its_dict_and_mlflow_reads_it():
    from mlflow.models import ModelSignature as MlflowSignature

    sig = ModelSignature(
        Schema([ColSpec("double", "a"), ColSpec(DataType.string, "b", required=False)]),
        Schema([TensorSpec(np.dtype("float32"), (-1, 3))]),
        ParamSchema(
            [
                ParamSpec("top_k", "long", 5),
                ParamSpec("when", "datetime", dt.datetime(2024, 1, 2, 3)),
            ]
        ),
    )
    d = sig.to_dict()
    assert ModelSignature.from_dict(d) == sig
    assert MlflowSignature.from_dict(d).to_dict() == d
    assert json.loads(d["inputs"])[1] == {"type": "string", "name": "b", "required": False}


def test_column_types_mlflow_has_and_we_do_not_check_are_kept_verbatim():
    raw = '[{"type": "array", "items": {"type": "string"}, "name": "tags", "required": true}]'
    sig = ModelSignature.from_dict({"inputs": raw})
    assert sig.to_dict()["inputs"] == raw
    frame = pd.DataFrame({"tags": [["a"], ["b", "c"]]})
    assert enforce_schema(frame, sig.inputs)["tags"].tolist() == [["a"], ["b", "c"]]


def test_mlflow_1_optional_columns_are_read_as_not_required():
    sig = ModelSignature.from_dict({"inputs": '[{"type": "long", "name": "a", "optional": true}]'})
    assert sig.inputs.inputs[0].required is False


def test_a_schema_refuses_mixing_named_and_unnamed_inputs():
    with pytest.raises(InvalidInput, match="mix named and unnamed"):
        Schema([ColSpec("long", "a"), ColSpec("long")])
    with pytest.raises(InvalidInput, match="ColSpec and TensorSpec"):
        Schema([ColSpec("long", "a"), TensorSpec(np.dtype("int64"), (-1,), "b")])
    with pytest.raises(InvalidInput, match="unsupported column type 'decimal'"):
        ColSpec("decimal", "a")


COLUMNS = Schema([ColSpec("double", "a"), ColSpec("long", "b"), ColSpec("string", "c", False)])


def test_enforcement_orders_columns_drops_extras_and_widens_safely():
    frame = pd.DataFrame(
        {"zz": [0, 0], "b": np.array([1, 2], dtype=np.int32), "a": np.array([1, 2], np.int32)}
    )
    out = enforce_schema(frame, COLUMNS)
    assert list(out.columns) == ["a", "b"]
    assert out["a"].dtype == np.float64 and out["b"].dtype == np.int64


def test_a_missing_required_column_is_named_in_the_error():
    with pytest.raises(InvalidInput, match=r"missing required column\(s\) \['b'\]") as e:
        enforce_schema(pd.DataFrame({"a": [1.0]}), COLUMNS)
    assert e.value.field == "b"


def test_a_lossy_conversion_names_the_column_and_both_types():
    frame = pd.DataFrame({"a": [1.0], "b": [1.5]})
    with pytest.raises(InvalidInput, match=r"column 'b': expected long \(int64\), got float64"):
        enforce_schema(frame, COLUMNS)


def test_integers_with_missing_values_get_a_hint():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, None]})
    with pytest.raises(InvalidInput, match="declare the column as double"):
        enforce_schema(frame, COLUMNS)


def test_dicts_and_records_become_a_table():
    out = enforce_schema({"a": 1.0, "b": 2}, COLUMNS)
    assert out.to_dict("records") == [{"a": 1.0, "b": 2}]


TENSOR = Schema([TensorSpec(np.dtype("float32"), (-1, 4))])


def test_a_tensor_of_the_wrong_shape_says_expected_and_got():
    with pytest.raises(InvalidInput, match=r"expected shape \(-1, 4\) .* got \(3, 5\)"):
        enforce_schema(np.zeros((3, 5), np.float32), TENSOR)


def test_a_tensor_of_the_wrong_dtype_says_how_to_convert():
    with pytest.raises(InvalidInput, match=r"expected dtype float32, got float64.*astype"):
        enforce_schema(np.zeros((3, 4)), TENSOR)
    ok = np.zeros((7, 4), np.float32)
    assert enforce_schema(ok, TENSOR) is ok


def test_named_tensors_report_the_missing_one():
    schema = Schema([TensorSpec("float64", (-1, 2), "x"), TensorSpec("int32", (-1,), "y")])
    with pytest.raises(InvalidInput, match=r"missing tensor\(s\) \['y'\]"):
        enforce_schema({"x": np.zeros((1, 2))}, schema)
    with pytest.raises(InvalidInput, match="tensor 'y': expected dtype int32, got int64"):
        enforce_schema({"x": np.zeros((1, 2)), "y": np.zeros(1, np.int64)}, schema)


def test_a_table_can_feed_a_tensor_signature():
    out = enforce_schema(pd.DataFrame(np.ones((2, 4), np.float32)), TENSOR)
    assert out.shape == (2, 4) and out.dtype == np.float32


def test_params_are_checked_widened_and_defaulted():
    schema = ParamSchema(
        [
            ParamSpec("temperature", "double", 0.5),
            ParamSpec("top_k", "long", 5),
            ParamSpec("stops", "string", ["x"], (-1,)),
            ParamSpec("when", "datetime", None),
        ]
    )
    got = enforce_params({"temperature": 1, "when": "2024-01-02"}, schema)
    assert got == {
        "temperature": 1.0,
        "top_k": 5,
        "stops": ["x"],
        "when": dt.date(2024, 1, 2),
    }
    with pytest.raises(InvalidInput, match=r"parameter 'top_k': expected long, got float"):
        enforce_params({"top_k": 2.5}, schema)
    with pytest.raises(InvalidInput, match=r"unknown params \['topk'\]"):
        enforce_params({"topk": 2}, schema)
    with pytest.raises(InvalidInput, match="declares no params"):
        enforce_params({"a": 1}, None)


def test_a_1d_array_feeds_a_single_named_column():
    schema = Schema([ColSpec("string", "text")])
    assert enforce_schema(np.array(["a", "b"]), schema)["text"].tolist() == ["a", "b"]
    with pytest.raises(InvalidInput, match="column 'text': expected string, got int64"):
        enforce_schema(np.array([1, 2]), schema)
