"""The OIP binary tensor data extension on the model server's REST app, in-process over
httpx's ASGI transport, with request bodies built and answers read by tritonclient's own
HTTP codec (`generate_request_body`, `parse_response_body`)."""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as th
from tritonclient.utils import serialize_byte_tensor

from ledgerflow.services.serving.loading import LoadedModel, load
from ledgerflow.services.serving.repository import ModelRepository
from tests.integration.test_serving_rest import serve

HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    path = tmp_path_factory.mktemp("binary") / "digits"
    ledgerflow.sklearn.save_model(model, path, input_example=x[:2])
    return load(str(path), name="digits"), model, x


@pytest.fixture(scope="module")
def colors(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Any, Any]:
    """A model with a string column (a BYTES input) and a number column."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import ledgerflow.sklearn

    frame = pd.DataFrame(
        {"color": ["red", "blue", "grün", "red", "blue", "grün"], "x": [0.0, 1, 2, 3, 4, 5]}
    )
    encode = ColumnTransformer(
        [("color", OneHotEncoder(), ["color"])], remainder="passthrough"
    )  # fmt: skip
    model = make_pipeline(encode, LogisticRegression()).fit(frame, [0, 1, 1, 0, 1, 1])
    path = tmp_path_factory.mktemp("binary") / "colors"
    ledgerflow.sklearn.save_model(model, path, input_example=frame.head(2))
    return load(str(path), name="colors"), model, frame


def infer_input(name: str, array: np.ndarray, datatype: str, binary: bool) -> th.InferInput:
    t = th.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


async def post(
    client: httpx.AsyncClient, model: str, body: bytes, json_size: int | None
) -> httpx.Response:
    headers = {HEADER: str(json_size)} if json_size is not None else {}
    return await client.post(f"/v2/models/{model}/infer", content=body, headers=headers)


def result(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    length = r.headers.get(HEADER)
    return th.InferenceServerClient.parse_response_body(
        r.content, header_length=None if length is None else int(length)
    )


def test_binary_inputs_and_outputs_as_tritonclient_sends_them_give_the_models_predictions(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits
    rows = x[:5]

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        body, size = th.InferenceServerClient.generate_request_body(
            [infer_input("input", rows, "FP64", binary=True)]
        )
        r = await post(client, "digits", body, size)
        assert r.headers["content-type"] == "application/octet-stream"
        out = result(r)
        (meta,) = out.get_response()["outputs"]
        assert meta["parameters"] == {"binary_data_size": 5 * 8} and "data" not in meta
        np.testing.assert_array_equal(out.as_numpy("predictions"), model.predict(rows))

    serve(loaded, check)


@pytest.mark.parametrize("binary_output", [True, False])
def test_requested_outputs_are_binary_only_when_asked(
    digits: tuple[LoadedModel, Any, np.ndarray], binary_output: bool
) -> None:
    loaded, model, x = digits
    rows = x[:3]

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        body, size = th.InferenceServerClient.generate_request_body(
            [infer_input("input", rows, "FP64", binary=True)],
            outputs=[th.InferRequestedOutput("predictions", binary_data=binary_output)],
        )
        r = await post(client, "digits", body, size)
        out = result(r)
        (meta,) = out.get_response()["outputs"]
        if binary_output:
            assert r.headers["content-type"] == "application/octet-stream"
            assert int(r.headers[HEADER]) < len(r.content)
            assert meta["parameters"]["binary_data_size"] == 3 * 8
        else:
            assert r.headers["content-type"] == "application/json"
            assert HEADER not in r.headers
            assert meta["data"] == model.predict(rows).tolist()
        np.testing.assert_array_equal(out.as_numpy("predictions"), model.predict(rows))

    serve(loaded, check)


def test_binary_data_output_on_the_request_makes_every_unnamed_output_binary(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits
    tensor = {"name": "input", "shape": [2, 64], "datatype": "FP64", "data": x[:2].ravel().tolist()}

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        body = {"inputs": [tensor], "parameters": {"binary_data_output": True}}
        r = await client.post("/v2/models/digits/infer", json=body)
        length = int(r.headers[HEADER])
        assert np.frombuffer(r.content[length:], "<i8").tolist() == model.predict(x[:2]).tolist()
        r = await client.post("/v2/models/digits/infer", json={"inputs": [tensor]})
        assert (
            HEADER not in r.headers
            and r.json()["outputs"][0]["data"] == model.predict(x[:2]).tolist()
        )

    serve(loaded, check)


def test_a_bytes_input_in_binary_next_to_a_json_input_reaches_the_model_as_strings(
    colors: tuple[LoadedModel, Any, Any],
) -> None:
    loaded, model, frame = colors
    want = model.predict(frame).tolist()

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        meta = (await client.get("/v2/models/colors")).json()
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            ("color", "BYTES"),
            ("x", "FP64"),
        ]
        color = np.array([c.encode() for c in frame["color"]], dtype=object)
        for binary_color, binary_x in [(True, False), (False, True), (True, True)]:
            body, size = th.InferenceServerClient.generate_request_body(
                [
                    infer_input("color", color, "BYTES", binary_color),
                    infer_input("x", frame["x"].to_numpy(), "FP64", binary_x),
                ]
            )
            assert (
                result(await post(client, "colors", body, size)).as_numpy("predictions").tolist()
                == want
            ), (binary_color, binary_x)
        records = frame.to_dict(orient="records")
        r = await client.post("/invocations", json={"dataframe_records": records})
        assert r.json() == {"predictions": want}

    serve(loaded, check)


def tensor_header(size: int, name: str = "input", shape: list[int] | None = None) -> dict:
    return {
        "name": name,
        "shape": shape or [1, 64],
        "datatype": "FP64",
        "parameters": {"binary_data_size": size},
    }


def framed(doc: dict[str, Any], binary: bytes, length_delta: int = 0) -> tuple[bytes, str]:
    head = json.dumps(doc).encode()
    return head + binary, str(len(head) + length_delta)


ROW = np.zeros(64, "<f8").tobytes()


def asking(output_parameters: dict[str, Any]) -> tuple[bytes, str]:
    """One binary row, its output requested with `output_parameters`."""
    doc = {
        "inputs": [tensor_header(512)],
        "outputs": [{"name": "predictions", "parameters": output_parameters}],
    }
    return framed(doc, ROW)


@pytest.mark.parametrize(
    ("body", "length", "names"),
    [
        (*framed({"inputs": [tensor_header(512)]}, ROW[:-8]), "'input'"),
        (*framed({"inputs": [tensor_header(504)]}, ROW[:-8]), "needs 512"),
        (*framed({"inputs": [tensor_header(512)]}, ROW + b"\0"), "add up to 512"),
        (*framed({"inputs": [tensor_header(512)]}, ROW, length_delta=-3), "JSON header"),
        (b'{"inputs": []}', "9999", "Inference-Header-Content-Length is 9999"),
        (b'{"inputs": []}', "ten", "Inference-Header-Content-Length"),
        (*framed({"inputs": [tensor_header(-1)]}, ROW), "binary_data_size"),
        (*framed({"inputs": [tensor_header(True)]}, ROW), "binary_data_size"),
        (*framed({"inputs": [{**tensor_header(512), "data": [0] * 64}]}, ROW), "both"),
        (*framed({"inputs": [{**tensor_header(512), "datatype": "FP99"}]}, ROW), "datatype"),
        (*framed({"inputs": {}}, ROW), "inputs"),
        (json.dumps({"inputs": [tensor_header(512)]}).encode(), None, "header set?"),
        (*asking({"classification": 2}), "classification is not supported"),
        (*asking({"binary_data": "yes"}), "binary_data must be true or false"),
    ],
)
def test_bad_binary_requests_get_400_naming_what_is_wrong(
    digits: tuple[LoadedModel, Any, np.ndarray], body: bytes, length: str | None, names: str
) -> None:
    headers = {} if length is None else {HEADER: length}

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/v2/models/digits/infer", content=body, headers=headers)
        assert r.status_code == 400, r.text
        assert names in r.json()["error"]

    serve(digits[0], check)


@pytest.mark.parametrize(
    ("binary", "names"),
    [
        (struct.pack("<I", 9) + b"red", "runs past"),
        (struct.pack("<I", 3) + b"red" + b"\x01\x00", "cut off"),
        (struct.pack("<I", 3) + b"red", "has 1"),
    ],
)
def test_bad_bytes_elements_get_400_naming_the_tensor(
    colors: tuple[LoadedModel, Any, Any], binary: bytes, names: str
) -> None:
    doc = {
        "inputs": [
            {
                "name": "color",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(binary)},
            },
            {"name": "x", "shape": [2], "datatype": "FP64", "data": [0.0, 1.0]},
        ]
    }
    body, length = framed(doc, binary)

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/v2/models/colors/infer", content=body, headers={HEADER: length})
        assert r.status_code == 400, r.text
        assert "'color'" in r.json()["error"] and names in r.json()["error"]

    serve(colors[0], check)


def test_bytes_serialized_by_tritonclient_decode_to_the_same_strings() -> None:
    from ledgerflow.services.serving.oip import Tensor, from_raw, to_raw

    values = np.array([[b"a", "grün".encode()], [b"", b"\xff\x00"]], dtype=object)
    raw = serialize_byte_tensor(values).item()
    array = from_raw("s", "BYTES", [2, 2], raw, ("binary", "parameters.binary_data_size"))
    assert array.tolist() == [["a", "grün"], ["", b"\xff\x00"]]
    assert to_raw(Tensor("s", array)) == raw
