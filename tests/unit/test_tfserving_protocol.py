"""TensorFlow Serving's REST API as data: URL parsing and the shapes of answers (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.serving import tfserving as tf


@pytest.mark.parametrize(
    ("rest", "want"),
    [
        ("m", tf.ModelPath("m")),
        ("m:predict", tf.ModelPath("m", verb="predict")),
        ("m/versions/3:classify", tf.ModelPath("m", version="3", verb="classify")),
        ("m/labels/champion/metadata", tf.ModelPath("m", label="champion", metadata=True)),
        ("m/metadata", tf.ModelPath("m", metadata=True)),
        ("m/versions/3/labels/x", None),
        ("m/other", None),
        ("", None),
    ],
)
def test_model_paths_parse_as_tf_serving_reads_its_urls(rest: str, want: object) -> None:
    assert tf.parse_path(rest) == want


def test_servables_are_named_in_errors_as_tf_serving_names_them() -> None:
    assert tf.ModelPath("m").spec == "Latest(m)"
    assert tf.ModelPath("m", version="2").spec == "Specific(m, 2)"
    assert tf.ModelPath("m", label="prod").spec == "Label(m, prod)"


def test_one_output_is_answered_bare_and_several_by_name_in_rows_or_columns() -> None:
    one = np.array([1, 0])
    assert tf.predict_answer(one, ["label"], True) == {"predictions": one}
    assert tf.predict_answer(one, ["label"], False) == {"outputs": one}
    several = {"label": np.array([1, 0]), "score": np.array([[0.2, 0.8], [0.9, 0.1]])}
    rows = tf.predict_answer(several, [], True)["predictions"]
    assert [(r["label"], r["score"].tolist()) for r in rows] == [(1, [0.2, 0.8]), (0, [0.9, 0.1])]
    assert tf.predict_answer(several, [], False)["outputs"].keys() == {"label", "score"}


def test_outputs_of_different_batch_sizes_cannot_be_rows() -> None:
    ragged = {"label": np.array([1, 0]), "classes": np.array([0, 1, 2])}
    with pytest.raises(InvalidInput, match="different batch sizes"):
        tf.predict_answer(ragged, [], True)
    assert tf.predict_answer(ragged, [], False)["outputs"]["classes"].tolist() == [0, 1, 2]


def test_b64_objects_decode_anywhere_in_a_tensor_and_must_be_alone() -> None:
    assert tf.decode_b64([[{"b64": "AAE="}], {"x": {"b64": "/w=="}}], "inputs") == [
        [b"\x00\x01"],
        {"x": b"\xff"},
    ]
    with pytest.raises(InvalidInput, match="alone"):
        tf.decode_b64([{"b64": "AAE=", "extra": 1}], "instances")
