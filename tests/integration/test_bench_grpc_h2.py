"""bench/grpc_h2.py, the serving bench's raw HTTP/2 gRPC client, against a real grpc.aio
OIP server: its calls are answered with real ModelInferResponses, many at once on one
connection, and a gRPC error counts as a failed call (so the bench cannot count errors as
throughput)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from ledgerflow.services.serving.grpc_service import start_grpc_server
from ledgerflow.services.serving.loading import LoadedModel, load
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.repository import ModelRepository

METHOD = "/inference.GRPCInferenceService/ModelInfer"


def _grpc_h2() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "grpc_h2.py"
    spec = importlib.util.spec_from_file_location("bench_grpc_h2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    path = tmp_path_factory.mktemp("bench-grpc-h2") / "digits"
    ledgerflow.sklearn.save_model(model, path, input_example=x[:2])
    return load(str(path), name="digits"), model, x


def _request(model: str, row: np.ndarray) -> bytes:
    t = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[1, 64])
    request = pb.ModelInferRequest(
        model_name=model, inputs=[t], raw_input_contents=[row.astype("<f8").tobytes()]
    )
    return bytes(request.SerializeToString())


def test_concurrent_calls_on_one_connection_get_the_models_answers(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits
    h2 = _grpc_h2()

    async def main() -> None:
        repository = ModelRepository(max_batch_size=16)
        served = repository.add(loaded.name, loaded.predictor, version=loaded.version)
        await served.warm()
        server = await start_grpc_server(repository, "127.0.0.1", 0)
        try:
            conn = await h2.connect(f"127.0.0.1:{server.port}", METHOD, _request("digits", x[:1]))
            answers = await asyncio.gather(*(conn.call() for _ in range(200)))
            assert answers == [True] * 200
            response = pb.ModelInferResponse.FromString(conn.sample)
            assert response.model_name == "digits"
            (label,) = np.frombuffer(response.raw_output_contents[0], dtype="<i8")
            assert label == model.predict(x[:1])[0]
            await conn.close()
        finally:
            await server.stop(None)
            await repository.close()

    asyncio.run(main())


def test_a_call_answered_with_a_grpc_error_is_counted_as_failed(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, _, x = digits
    h2 = _grpc_h2()

    async def main() -> None:
        repository = ModelRepository()
        served = repository.add(loaded.name, loaded.predictor, version=loaded.version)
        await served.warm()
        server = await start_grpc_server(repository, "127.0.0.1", 0)
        try:
            missing = await h2.connect(
                f"127.0.0.1:{server.port}", METHOD, _request("no-such-model", x[:1])
            )
            assert await asyncio.gather(*(missing.call() for _ in range(5))) == [False] * 5
            assert missing.sample is None
            await missing.close()
        finally:
            await server.stop(None)
            await repository.close()

    asyncio.run(main())
