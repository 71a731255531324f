"""The R worker's wire format (`ledgerflow.crate._codec`), without R: tables go over as
typed columns with nulls for missing values; answers come back as numpy and pandas."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ledgerflow.crate._codec import decode_answer, encode_request
from ledgerflow.events.errors import InvalidInput


def test_a_table_goes_over_as_typed_columns_with_nulls_for_missing_values() -> None:
    df = pd.DataFrame(
        {
            "x": [1.5, math.nan],
            "n": pd.array([1, None], dtype="Int64"),
            "b": [True, False],
            "s": ["a", None],
            "t": pd.to_datetime(["2024-01-02T03:04:05", None]),
        }
    )
    req = json.loads(encode_request(df))
    assert req == {
        "columns": ["x", "n", "b", "s", "t"],
        "types": ["double", "integer", "logical", "character", "datetime"],
        "values": [[1.5, None], [1, None], [True, False], ["a", None],
                   ["2024-01-02T03:04:05", None]],
    }  # fmt: skip
    assert json.loads(encode_request({"a": [1, 2]}))["types"] == ["integer"]


def test_a_value_r_cannot_take_is_refused_naming_its_column_and_row() -> None:
    with pytest.raises(InvalidInput, match=r"column 'c' holds list \[1\] at row 1"):
        encode_request(pd.DataFrame({"c": ["ok", [1]]}))


def test_answers_become_arrays_and_tables() -> None:
    got = decode_answer('{"ok":true,"kind":"vector","type":"integer","values":[1,null]}')
    assert got.dtype == np.float64 and got[0] == 1 and math.isnan(got[1])
    matrix = decode_answer(
        '{"ok":true,"kind":"matrix","type":"double","nrow":2,"ncol":2,"values":[1,2,3,4]}'
    )
    assert matrix.tolist() == [[1.0, 3.0], [2.0, 4.0]]  # R's column-major order
    frame = decode_answer(
        '{"ok":true,"kind":"frame","columns":["fit","ok"],"types":["double","logical"],'
        '"values":[[0.30000000000000004],[true]]}'
    )
    assert frame["fit"][0] == 0.1 + 0.2 and frame["ok"].dtype == bool
    assert decode_answer('{"ok":true,"kind":"json","value":{"a":[1]}}') == {"a": [1]}


def test_an_r_error_is_invalid_input_with_rs_message_and_call() -> None:
    with pytest.raises(InvalidInput, match=r"failed \(in f\(df\)\): boom"):
        decode_answer('{"ok":false,"error":"boom","call":"f(df)"}')
