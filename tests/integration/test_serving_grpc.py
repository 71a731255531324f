"""OIP gRPC conformance: a real grpc.aio server over a real sklearn model, called through
the stub generated from KServe's grpc_predict_v2.proto."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from ledgerflow.services.serving.grpc_service import start_grpc_server
from ledgerflow.services.serving.loading import LoadedModel, load
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from ledgerflow.services.serving.repository import ModelRepository

Check = Callable[[Any, ModelRepository], Awaitable[None]]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    path = tmp_path_factory.mktemp("serving-grpc") / "digits"
    ledgerflow.sklearn.save_model(model, path, input_example=x[:2])
    return load(str(path), name="digits"), model, x


def serve(loaded: LoadedModel, check: Check, *, warm: bool = True) -> None:
    async def main() -> None:
        repository = ModelRepository(max_batch_size=16)
        served = repository.add(loaded.name, loaded.predictor, version=loaded.version)
        if warm:
            await served.warm()
        server = await start_grpc_server(repository, "127.0.0.1", 0)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                await check(pb_grpc.GRPCInferenceServiceStub(channel), repository)
        finally:
            await server.stop(None)
            await repository.close()

    asyncio.run(main())


def _tensor(name: str, datatype: str, array: np.ndarray) -> Any:
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=list(array.shape)
    )


def test_health_and_metadata_rpcs_describe_the_server_and_model(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    async def check(stub: Any, repository: ModelRepository) -> None:
        assert (await stub.ServerLive(pb.ServerLiveRequest())).live
        assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready
        assert not (await stub.ModelReady(pb.ModelReadyRequest(name="digits"))).ready
        await repository.get("digits").warm()
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="digits", version="1"))).ready
        server = await stub.ServerMetadata(pb.ServerMetadataRequest())
        assert server.name == "ledgerflow" and server.version
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
        assert (meta.name, list(meta.versions), meta.platform) == (
            "digits",
            ["1"],
            "ledgerflow_sklearn",
        )
        assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
            ("input", "FP64", [-1, 64])
        ]
        assert [t.datatype for t in meta.outputs] == ["INT64"]

    serve(digits[0], check, warm=False)


def test_model_infer_with_typed_contents_answers_typed_contents(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits

    async def check(stub: Any, repository: ModelRepository) -> None:
        t = _tensor("input", "FP64", x[:5])
        t.contents.fp64_contents.extend(x[:5].ravel().tolist())
        response = await stub.ModelInfer(
            pb.ModelInferRequest(model_name="digits", id="r1", inputs=[t])
        )
        assert (response.model_name, response.model_version, response.id) == ("digits", "1", "r1")
        (out,) = response.outputs
        assert (out.name, out.datatype, list(out.shape)) == ("predictions", "INT64", [5])
        assert list(out.contents.int64_contents) == model.predict(x[:5]).tolist()
        assert not response.raw_output_contents

    serve(loaded, check)


def test_model_infer_with_raw_contents_answers_raw_little_endian_bytes(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits

    async def check(stub: Any, repository: ModelRepository) -> None:
        request = pb.ModelInferRequest(
            model_name="digits",
            model_version="1",
            inputs=[_tensor("input", "FP64", x[:3])],
            raw_input_contents=[x[:3].astype("<f8").tobytes()],
        )
        response = await stub.ModelInfer(request)
        assert response.id  # generated when the request has none
        (raw,) = response.raw_output_contents
        assert np.frombuffer(raw, "<i8").tolist() == model.predict(x[:3]).tolist()

    serve(loaded, check)


@pytest.mark.parametrize(
    ("request_fields", "names"),
    [
        ({"shape": [1, 64], "datatype": "FP32", "fp32": [0.0] * 64}, "dtype"),
        ({"shape": [2, 64], "datatype": "FP64", "fp64": [0.0] * 64}, "'input'"),
        ({"shape": [1, 64], "datatype": "FP16", "fp64": [0.0] * 64}, "raw_input_contents"),
        ({"shape": [1, 64], "datatype": "COMPLEX", "fp64": [0.0] * 64}, "datatype"),
        ({"shape": [1, 64], "datatype": "FP64", "raw": [b"\x00" * 7]}, "raw bytes"),
        ({"shape": [1, 2], "datatype": "FP64", "fp64": [0.0, 1.0]}, "shape"),
    ],
)
def test_bad_tensors_are_invalid_argument_naming_the_tensor(
    digits: tuple[LoadedModel, Any, np.ndarray], request_fields: dict[str, Any], names: str
) -> None:
    async def check(stub: Any, repository: ModelRepository) -> None:
        t = pb.ModelInferRequest.InferInputTensor(
            name="input", datatype=request_fields["datatype"], shape=request_fields["shape"]
        )
        t.contents.fp32_contents.extend(request_fields.get("fp32", []))
        t.contents.fp64_contents.extend(request_fields.get("fp64", []))
        request = pb.ModelInferRequest(
            model_name="digits", inputs=[t], raw_input_contents=request_fields.get("raw", [])
        )
        if request_fields.get("raw"):
            request.inputs[0].ClearField("contents")
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.ModelInfer(request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert names in (e.value.details() or "")

    serve(digits[0], check)


def test_unknown_models_and_versions_are_not_found(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    async def check(stub: Any, repository: ModelRepository) -> None:
        for call in (
            stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")),
            stub.ModelReady(pb.ModelReadyRequest(name="digits", version="7")),
            stub.ModelInfer(pb.ModelInferRequest(model_name="nope")),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call
            assert e.value.code() == grpc.StatusCode.NOT_FOUND

    serve(digits[0], check)


def test_bytes_tensors_round_trip_through_raw_contents_of_a_string_model(tmp_path: Path) -> None:
    import ledgerflow.pyfunc

    class Upper(ledgerflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return np.array([str(v).upper() for v in np.asarray(model_input).ravel()], dtype=object)

    ledgerflow.pyfunc.save_model(tmp_path / "upper", python_model=Upper())
    loaded = load(str(tmp_path / "upper"), name="upper")
    words = [b"ab", b"", "caf\u00e9".encode()]

    async def check(stub: Any, repository: ModelRepository) -> None:
        raw = b"".join(struct.pack("<I", len(w)) + w for w in words)
        t = pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[3])
        response = await stub.ModelInfer(
            pb.ModelInferRequest(model_name="upper", inputs=[t], raw_input_contents=[raw])
        )
        assert response.outputs[0].datatype == "BYTES"
        got, blob, offset = [], response.raw_output_contents[0], 0
        while offset < len(blob):
            (n,) = struct.unpack_from("<I", blob, offset)
            got.append(blob[offset + 4 : offset + 4 + n].decode())
            offset += 4 + n
        assert got == ["AB", "", "CAF\u00c9"]

    serve(loaded, check)
