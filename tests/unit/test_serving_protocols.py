"""Parsing MLflow's scoring protocol and Open Inference Protocol tensors (REST and gRPC forms):
shapes, datatypes, and errors that name the field or tensor."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.schema import ColSpec, DataType, Schema, TensorSpec
from ledgerflow.services.serving.grpc_codec import decode_inputs, encode_response, parameters
from ledgerflow.services.serving.oip import (
    DATATYPES,
    Tensor,
    datatype_of,
    output_tensors,
    parse_rest_inputs,
    rest_outputs,
    to_array,
)
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.scoring import (
    UnsupportedContentType,
    count_rows,
    jsonable,
    parse_invocation,
)

JSON = "application/json"
FLOAT32_SCHEMA = Schema([TensorSpec(np.dtype(np.float32), (-1, 2))])


def parse(body: bytes, schema: Schema | None = None, content_type: str = JSON):
    return parse_invocation(body, content_type, schema)


def test_inputs_become_an_array_in_the_signature_dtype_without_pandas() -> None:
    req = parse(b'{"inputs": [[1, 2], [3, 4]], "params": {"k": 1}}', FLOAT32_SCHEMA)
    assert isinstance(req.data, np.ndarray) and req.data.dtype == np.float32
    assert req.data.shape == (2, 2) and req.params == {"k": 1} and req.rows == 2


def test_named_inputs_and_instances_of_objects_become_dicts_of_columns() -> None:
    assert set(parse(b'{"inputs": {"a": [1, 2], "b": [3, 4]}}').data) == {"a", "b"}
    req = parse(b'{"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}')
    assert req.data["a"].tolist() == [1, 2] and req.data["b"].tolist() == ["x", "y"]
    assert req.rows == 2


def test_dataframe_formats_and_csv_become_frames() -> None:
    split = parse(b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}').data
    records = parse(b'{"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}').data
    csv = parse(b"a,b\n1,2\n3,4\n", content_type="text/csv").data
    for frame in (split, records, csv):
        assert isinstance(frame, pd.DataFrame)
        assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[1, 2]", "body"),
        (b"{not json", "body"),
        (b'{"data": [1]}', "body"),
        (b'{"inputs": [1], "instances": [1]}', "body"),
        (b'{"inputs": [[1, 2], [3]]}', "inputs"),
        (b'{"inputs": 3}', "inputs"),
        (b'{"inputs": {"a": [[1], [2, 3]]}}', "inputs.a"),
        (b'{"instances": 3}', "instances"),
        (b'{"instances": [{"a": 1}, {"b": 2}]}', "instances"),
        (b'{"dataframe_split": [1]}', "dataframe_split"),
        (b'{"dataframe_records": {"a": 1}}', "dataframe_records"),
        (b'{"inputs": [[1, 2]], "params": [1]}', "params"),
    ],
)
def test_malformed_scoring_bodies_raise_invalid_input_naming_the_field(
    body: bytes, field: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        parse(body)
    assert e.value.field == field


def test_tables_for_a_single_tensor_model_become_that_tensor_in_its_dtype() -> None:
    split = parse(b'{"dataframe_split": {"data": [[1, 2], [3, 4]]}}', FLOAT32_SCHEMA).data
    csv = parse(b"a,b\n1,2\n", FLOAT32_SCHEMA, content_type="text/csv").data
    assert split.dtype == np.float32 and split.tolist() == [[1, 2], [3, 4]]
    assert csv.dtype == np.float32 and csv.shape == (1, 2)
    with pytest.raises(InvalidInput) as e:
        parse(b'{"dataframe_records": [{"a": "x", "b": 1}]}', FLOAT32_SCHEMA)
    assert e.value.field == "dataframe_records"


def test_non_numeric_inputs_for_a_numeric_signature_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="float32") as e:
        parse(b'{"inputs": [["a", "b"]]}', FLOAT32_SCHEMA)
    assert e.value.field == "inputs"


@pytest.mark.parametrize(
    "content_type", ["text/plain", None, "application/json; charset=latin-1", "text/csv; x=1"]
)
def test_content_types_other_than_utf8_json_or_csv_are_unsupported(
    content_type: str | None,
) -> None:
    with pytest.raises(UnsupportedContentType):
        parse_invocation(b"{}", content_type, None)


def test_predictions_are_answered_in_mlflows_shapes() -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    assert jsonable(frame) == [{"a": 1}, {"a": 2}]
    assert jsonable(frame["a"]) == [1, 2]
    assert jsonable(np.array(["x"], dtype=object)) == ["x"]
    assert jsonable({"p": np.array(["y"])}) == {"p": ["y"]}
    assert count_rows({"a": np.zeros((3, 2))}) == 3 and count_rows(np.float64(1.0)) == 1


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_oip_datatype_decodes_to_its_numpy_dtype_and_back(datatype: str) -> None:
    values = (
        [True, False] if datatype == "BOOL" else (["a", "b"] if datatype == "BYTES" else [1, 2])
    )
    arr = to_array("x", datatype, [2, 1], values)
    assert arr.shape == (2, 1) and arr.dtype == DATATYPES[datatype]
    assert datatype_of(arr.dtype) == datatype


def test_a_rest_infer_request_gives_tensors_parameters_and_wanted_outputs() -> None:
    tensors, params, wanted = parse_rest_inputs(
        {
            "inputs": [
                {"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}
            ],
            "parameters": {"p": 1},
            "outputs": [{"name": "y"}],
        }
    )
    assert tensors[0].array.tolist() == [[1, 2], [3, 4]] and tensors[0].datatype == "INT32"
    assert params == {"p": 1} and wanted == ["y"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "inputs"),
        ({"inputs": [1]}, "inputs[0]"),
        ({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}, "inputs[0].name"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "F", "data": [1]}]}, "x.datatype"),
        ({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}, "x.shape"),
        ({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1]}]}, "x.data"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [2]}]}, "x.data"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [-1]}]}, "x.data"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "x.data"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}] * 2}, "inputs"),
        (
            {
                "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
                "outputs": 1,
            },
            "outputs",
        ),
    ],
)
def test_bad_rest_tensors_name_the_tensor_and_field(doc: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_rest_inputs(doc)
    assert e.value.field == field


def test_outputs_are_one_tensor_per_dict_key_or_frame_column_and_filtered_by_name() -> None:
    out = output_tensors(np.array([1, 2]), ["label"], None)
    assert [(t.name, t.datatype, t.shape) for t in out] == [("label", "INT64", [2])]
    frame = pd.DataFrame({"a": [1.0], "b": ["x"]})
    assert [(t.name, t.datatype) for t in output_tensors(frame, [], None)] == [
        ("a", "FP64"),
        ("b", "BYTES"),
    ]
    assert [t.name for t in output_tensors({"p": [1], "q": [2]}, [], ["q"])] == ["q"]
    with pytest.raises(InvalidInput, match="'r'"):
        output_tensors({"p": [1]}, [], ["r"])
    (doc,) = rest_outputs([Tensor("h", np.array([[1.5]], dtype=np.float16))])
    assert doc["datatype"] == "FP16" and doc["shape"] == [1, 1] and doc["data"].tolist() == [1.5]


def _request(
    datatype: str, shape: list[int], raw: list[bytes] | None = None
) -> pb.ModelInferRequest:
    t = pb.ModelInferRequest.InferInputTensor(name="x", datatype=datatype, shape=shape)
    return pb.ModelInferRequest(model_name="m", inputs=[t], raw_input_contents=raw or [])


def test_grpc_typed_contents_decode_from_the_field_of_their_datatype() -> None:
    req = _request("INT16", [2, 2])
    req.inputs[0].contents.int_contents.extend([1, 2, 3, 4])
    (t,) = decode_inputs(req)
    assert t.array.dtype == np.int16 and t.array.tolist() == [[1, 2], [3, 4]]
    req = _request("INT16", [2, 2])
    req.inputs[0].contents.fp32_contents.extend([1, 2, 3, 4])  # the wrong field: no data
    with pytest.raises(InvalidInput, match="'x'"):
        decode_inputs(req)


def test_grpc_raw_contents_decode_little_endian_including_fp16_and_bytes() -> None:
    (t,) = decode_inputs(_request("FP16", [2], [np.array([1.5, -2], "<f2").tobytes()]))
    assert t.array.dtype == np.float16 and t.array.tolist() == [1.5, -2.0]
    raw = b"".join(struct.pack("<I", len(w)) + w for w in (b"hi", b"\xff"))
    (t,) = decode_inputs(_request("BYTES", [2], [raw]))
    assert t.array.tolist() == ["hi", b"\xff"]  # text when UTF-8, bytes otherwise


@pytest.mark.parametrize(
    ("req", "match"),
    [
        (_request("FP32", [2], [b"\0" * 4]), "needs 8 raw bytes"),
        (_request("BYTES", [1], [b"\x05\0\0\0ab"]), "runs past"),
        (_request("BYTES", [2], [b"\x01\0\0\0a"]), "holds 2 elements"),
        (_request("FP16", [1]), "raw_input_contents"),
        (pb.ModelInferRequest(model_name="m"), "no inputs"),
    ],
)
def test_bad_grpc_tensors_raise_invalid_input_naming_the_tensor(
    req: pb.ModelInferRequest, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        decode_inputs(req)


def test_raw_input_contents_must_match_the_inputs_one_to_one() -> None:
    req = _request("FP32", [1], [b"\0" * 4, b"\0" * 4])
    with pytest.raises(InvalidInput) as e:
        decode_inputs(req)
    assert e.value.field == "raw_input_contents"


def test_grpc_responses_are_typed_unless_raw_was_asked_or_an_output_is_fp16() -> None:
    outputs = [Tensor("y", np.array([1, 2], np.int32))]
    typed = encode_response("m", "1", "r", outputs, raw=False)
    assert list(typed.outputs[0].contents.int_contents) == [1, 2] and not typed.raw_output_contents
    raw = encode_response("m", "1", "r", outputs, raw=True)
    assert np.frombuffer(raw.raw_output_contents[0], "<i4").tolist() == [1, 2]
    half = encode_response("m", "1", "r", [Tensor("h", np.array([0.5], np.float16))], raw=False)
    assert np.frombuffer(half.raw_output_contents[0], "<f2").tolist() == [0.5]


def test_grpc_parameters_become_python_values() -> None:
    req = pb.ModelInferRequest()
    req.parameters["a"].int64_param = 3
    req.parameters["b"].string_param = "s"
    req.parameters["c"].bool_param = True
    assert parameters(req.parameters) == {"a": 3, "b": "s", "c": True}


def test_column_signatures_describe_one_1d_tensor_per_column() -> None:
    from ledgerflow.services.serving.predictors import _schema_meta

    meta = _schema_meta(
        Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.string, "b")]), "in"
    )
    assert [m.to_dict() for m in meta] == [
        {"name": "a", "datatype": "FP64", "shape": [-1]},
        {"name": "b", "datatype": "BYTES", "shape": [-1]},
    ]


@pytest.mark.parametrize("datatype", [d for d in DATATYPES if d != "BYTES"])
def test_every_numeric_datatype_travels_as_binary_data_and_back(datatype: str) -> None:
    from ledgerflow.services.serving.oip_binary import encode, infer_request

    arr = to_array("x", datatype, [2, 2], [True, False, True, True] if datatype == "BOOL" else
                   [1, 2, 3, 4])  # fmt: skip
    raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    head = (
        b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "%s", '
        b'"parameters": {"binary_data_size": %d}}]}' % (datatype.encode(), len(raw))
    )
    doc = infer_request(head + raw, str(len(head)))
    (tensor,), _, _ = parse_rest_inputs(doc)
    assert tensor.array.dtype == DATATYPES[datatype] and tensor.array.tolist() == arr.tolist()
    body, length = encode({"id": "r"}, [tensor], [True])
    assert length and body[length:] == raw
    assert b'"binary_data_size":%d' % len(raw) in body[:length]


def test_only_the_outputs_asked_for_are_binary_and_json_answers_have_no_header_length() -> None:
    from ledgerflow.services.serving.oip_binary import binary_outputs, encode

    p, q = Tensor("p", np.array([1, 2])), Tensor("q", np.array([0.5]))
    default_on = {"parameters": {"binary_data_output": True}, "outputs": [
        {"name": "p", "parameters": {"binary_data": False}}, {"name": "q"}]}  # fmt: skip
    assert binary_outputs(default_on, [p, q]) == [False, True]
    assert binary_outputs({"outputs": [{"name": "p", "parameters": {"binary_data": True}}]},
                          [p]) == [True]  # fmt: skip
    assert binary_outputs({}, [p, q]) == [False, False]
    body, length = encode({}, [p, q], [False, False])
    assert length == 0 and body.endswith(b"]}")


def test_binary_outputs_are_little_endian_row_major_whatever_the_arrays_layout() -> None:
    from ledgerflow.services.serving.oip_binary import encode

    transposed = np.arange(6, dtype=">f4").reshape(2, 3).T  # big-endian, not contiguous
    outputs = [
        Tensor("t", transposed),
        Tensor("empty", np.zeros((0, 2), dtype=np.float32)),
        Tensor("scalar", np.array(3.0)),
    ]
    body, length = encode({"id": "r"}, outputs, [True, True, True])
    header = json.loads(body[:length])
    assert [(o["shape"], o["parameters"]["binary_data_size"]) for o in header["outputs"]] == [
        ([3, 2], 24),
        ([0, 2], 0),
        ([], 8),
    ]
    expected = transposed.astype("<f4").tobytes(order="C") + np.array(3.0).astype("<f8").tobytes()
    assert body[length:] == expected


def test_binary_inputs_are_decoded_once_next_to_json_inputs_in_their_order() -> None:
    from ledgerflow.services.serving.oip_binary import infer_request

    raw = struct.pack("<I", 2) + b"hi" + struct.pack("<I", 1) + b"\xff"
    head = json.dumps({"inputs": [
        {"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]},
        {"name": "s", "shape": [2], "datatype": "BYTES",
         "parameters": {"binary_data_size": len(raw)}},
        {"name": "z", "shape": [0], "datatype": "FP32", "parameters": {"binary_data_size": 0}},
    ]}).encode()  # fmt: skip
    tensors, _, _ = parse_rest_inputs(infer_request(head + raw, str(len(head))))
    assert [t.name for t in tensors] == ["a", "s", "z"]
    assert tensors[1].array.tolist() == ["hi", b"\xff"]  # text as str, the rest as bytes
    assert tensors[2].array.shape == (0,) and tensors[2].array.dtype == np.float32
