"""The gRPC front of `ledgerflow serve` (services/serving/grpc_front.py on the HTTP/2 of
services/serving/http2.py) against real clients: grpcio's generated stub and channels, and
h2's client side where a test controls the frames (calls written in one read, a
`grpc-timeout` the server must enforce itself). Frame-level checks are in
test_serving_grpc_front_frames.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import numpy as np
import pytest

from ledgerflow.services.serving import grpc_front as front_module
from ledgerflow.services.serving.grpc_service import InferenceServicer
from ledgerflow.services.serving.loading import LoadedModel, load
from ledgerflow.services.serving.predictors import TensorMeta
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from ledgerflow.services.serving.repository import ModelRepository

INFER = "/inference.GRPCInferenceService/ModelInfer"


GrpcFront = front_module.GrpcFront
start_front = front_module.start_front
Check = Callable[[Any, ModelRepository], Awaitable[None]]


class Doubler:
    """A Predictor answering its FP64 tensor doubled, once `gate` is open."""

    platform = "test_doubler"
    inputs = [TensorMeta("x", "FP64", [-1, -1])]
    outputs = [TensorMeta("y", "FP64", [-1, -1])]
    input_schema = None

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        if not self.gate.wait(30):
            raise TimeoutError("the test never opened the gate")
        return np.asarray(data) * 2

    def assemble(self, tensors: dict[str, np.ndarray[Any, Any]]) -> Any:
        return next(iter(tensors.values()))

    def warmup_input(self) -> Any | None:
        return None

    def model_params(self, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        return None


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    path = tmp_path_factory.mktemp("grpc-front") / "digits"
    ledgerflow.sklearn.save_model(model, path, input_example=x[:2])
    return load(str(path), name="digits"), model, x


def serve(check: Check, *models: tuple[str, Any], max_message: int | None = None) -> None:
    """`check` against a front serving `models` (name, predictor), batching up to 64 rows."""

    async def main() -> None:
        repository = ModelRepository(max_batch_size=64)
        for name, predictor in models:
            await repository.add(name, predictor).warm()
        limits = {} if max_message is None else {"max_message": max_message}
        front = await start_front(InferenceServicer(repository), "127.0.0.1", 0, **limits)
        try:
            await check(front, repository)
        finally:
            await front.stop(None)
            await repository.close()

    asyncio.run(main())


def raw_request(model: str, array: np.ndarray, name: str = "input") -> pb.ModelInferRequest:
    t = pb.ModelInferRequest.InferInputTensor(name=name, datatype="FP64", shape=array.shape)
    return pb.ModelInferRequest(
        model_name=model, inputs=[t], raw_input_contents=[array.astype("<f8").tobytes()]
    )


def labels(response: Any) -> list[int]:
    return np.frombuffer(response.raw_output_contents[0], "<i8").tolist()


def batch_sizes(repository: ModelRepository) -> tuple[float, float]:
    """(predict calls, rows predicted) so far, from the served models' metrics."""
    calls = rows = 0.0
    for line in repository.metrics_text()[0].decode().splitlines():
        if line.startswith("ledgerflow_serving_batch_rows_count{"):
            calls += float(line.rpartition(" ")[2])
        elif line.startswith("ledgerflow_serving_batch_rows_sum{"):
            rows += float(line.rpartition(" ")[2])
    return calls, rows


async def eventually(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def in_flight(front: Any) -> int:
    return sum(len(c.calls) for c in front.connections)


class H2Client:
    """h2's client side on one connection, for calls whose frames a test decides."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.answers: dict[int, dict[str, Any]] = {}

    @classmethod
    async def open(cls, port: int) -> H2Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def call(self, message: bytes, extra: tuple[tuple[str, str], ...] = ()) -> int:
        """Queue one unary call (nothing is written until `send`); its stream id."""
        stream = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", INFER),
                   (":authority", "test"), ("content-type", "application/grpc"),
                   ("te", "trailers"), *extra]  # fmt: skip
        self.conn.send_headers(stream, headers)
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        self.conn.send_data(stream, body, end_stream=True)
        self.answers[stream] = {"data": b"", "headers": {}, "done": False}
        return stream

    async def send(self) -> None:
        self.writer.write(self.conn.data_to_send())
        await self.writer.drain()

    async def wait(self, streams: list[int]) -> None:
        while not all(self.answers[s]["done"] for s in streams):
            data = await self.reader.read(65536)
            assert data, "the server closed the connection"
            for event in self.conn.receive_data(data):
                answer = self.answers.get(getattr(event, "stream_id", 0))
                if isinstance(event, h2.events.DataReceived):
                    assert answer is not None
                    answer["data"] += event.data
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    assert answer is not None
                    answer["headers"].update((k.decode(), v.decode()) for k, v in event.headers)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    assert answer is not None
                    answer["done"] = True
            self.writer.write(self.conn.data_to_send())

    def close(self) -> None:
        self.writer.close()


def test_calls_that_arrive_in_one_read_are_predicted_as_one_batch(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits

    async def check(front: Any, repository: ModelRepository) -> None:
        client = await H2Client.open(front.port)
        calls, rows = batch_sizes(repository)
        streams = [client.call(raw_request("digits", x[i : i + 1]).SerializeToString())
                   for i in range(24)]  # fmt: skip
        await client.send()  # one write: the server reads the 24 calls together
        await client.wait(streams)
        for i, s in enumerate(streams):
            assert client.answers[s]["headers"]["grpc-status"] == "0"
            response = pb.ModelInferResponse.FromString(client.answers[s]["data"][5:])
            assert labels(response) == model.predict(x[i : i + 1]).tolist()
        more_calls, more_rows = batch_sizes(repository)
        assert more_rows - rows == 24
        assert more_calls - calls <= 2  # one predict for all of them, two if a read split
        client.close()

    serve(check, ("digits", loaded.predictor))


def test_concurrent_grpcio_calls_on_one_channel_each_get_their_own_answer(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits

    async def check(front: Any, repository: ModelRepository) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            rows = [x[i % len(x) : i % len(x) + 1] for i in range(300)]
            answers = await asyncio.gather(
                *(stub.ModelInfer(raw_request("digits", r), timeout=30) for r in rows)
            )
            assert [labels(a)[0] for a in answers] == model.predict(np.vstack(rows)).tolist()
        calls, predicted = batch_sizes(repository)
        assert predicted == 300 and calls < 300  # some calls shared a predict

    serve(check, ("digits", loaded.predictor))


def test_unknown_methods_and_services_are_unimplemented(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    async def check(front: Any, repository: ModelRepository) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            for path in ("/inference.GRPCInferenceService/RepositoryIndex", "/other.Svc/Call"):
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await channel.unary_unary(path)(b"", timeout=10)
                assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
                assert path in (e.value.details() or "")
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # the connection still serves
            assert (await stub.ServerLive(pb.ServerLiveRequest(), timeout=10)).live

    serve(check, ("digits", digits[0].predictor))


def test_a_message_that_is_not_the_methods_request_is_internal(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    async def check(front: Any, repository: ModelRepository) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await channel.unary_unary(INFER)(b"\xff\xff\xff", timeout=10)
            assert e.value.code() == grpc.StatusCode.INTERNAL

    serve(check, ("digits", digits[0].predictor))


def test_the_server_ends_a_call_at_its_grpc_timeout_and_keeps_serving() -> None:
    doubler = Doubler()
    doubler.gate.clear()
    x = np.ones((2, 3))

    async def check(front: Any, repository: ModelRepository) -> None:
        client = await H2Client.open(front.port)
        message = raw_request("double", x, "x").SerializeToString()
        stream = client.call(message, (("grpc-timeout", "50m"),))
        await client.send()
        await client.wait([stream])  # the predict is still blocked: the server's deadline
        answer = client.answers[stream]
        assert answer["headers"]["grpc-status"] == str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
        assert answer["data"] == b""
        assert in_flight(front) == 0
        doubler.gate.set()
        stream = client.call(message, (("grpc-timeout", "30S"),))
        await client.send()
        await client.wait([stream])
        response = pb.ModelInferResponse.FromString(client.answers[stream]["data"][5:])
        assert np.frombuffer(response.raw_output_contents[0], "<f8").tolist() == [2.0] * 6
        client.close()

    serve(check, ("double", doubler))


def test_a_call_the_client_cancels_is_cancelled_on_the_server() -> None:
    doubler = Doubler()
    doubler.gate.clear()
    x = np.ones((2, 3))

    async def check(front: Any, repository: ModelRepository) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            call = stub.ModelInfer(raw_request("double", x, "x"))
            await eventually(lambda: in_flight(front) == 1, "the call reached the server")
            call.cancel()
            await eventually(lambda: in_flight(front) == 0, "the server let the call go")
            doubler.gate.set()
            answer = await stub.ModelInfer(raw_request("double", x, "x"), timeout=30)
            assert np.frombuffer(answer.raw_output_contents[0], "<f8").tolist() == [2.0] * 6

    serve(check, ("double", doubler))


def test_large_messages_cross_both_flow_control_windows() -> None:
    x = np.arange(3_000_000, dtype=np.float64).reshape(3000, 1000)  # 24 MB each way

    async def check(front: Any, repository: ModelRepository) -> None:
        options = [("grpc.max_receive_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}", options) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            answers = await asyncio.gather(
                *(stub.ModelInfer(raw_request("double", x + i, "x"), timeout=120) for i in (0, 1))
            )
            for i, answer in enumerate(answers):
                assert list(answer.outputs[0].shape) == [3000, 1000]
                got = np.frombuffer(answer.raw_output_contents[0], "<f8")
                assert np.array_equal(got, (x.ravel() + i) * 2)

    serve(check, ("double", Doubler()))


def test_a_request_over_the_message_limit_is_resource_exhausted() -> None:
    async def check(front: Any, repository: ModelRepository) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.ModelInfer(raw_request("double", np.ones((1000, 300)), "x"), timeout=30)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            small = await stub.ModelInfer(raw_request("double", np.ones((2, 2)), "x"), timeout=30)
            assert np.frombuffer(small.raw_output_contents[0], "<f8").tolist() == [2.0] * 4

    serve(check, ("double", Doubler()), max_message=1 << 20)


def test_gzip_compressed_requests_are_inflated(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits

    async def check(front: Any, repository: ModelRepository) -> None:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{front.port}", compression=grpc.Compression.Gzip
        ) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            answer = await stub.ModelInfer(raw_request("digits", x[:3]), timeout=30)
            assert labels(answer) == model.predict(x[:3]).tolist()

    serve(check, ("digits", loaded.predictor))


def test_tls_speaks_http2_by_alpn(digits: tuple[LoadedModel, Any, np.ndarray], tmp_path: Path):
    from tests.e2e.test_tls import make_pki

    loaded, model, x = digits
    pki = make_pki(tmp_path)

    async def main() -> None:
        from ledgerflow.services.tls import Tls

        repository = ModelRepository()
        await repository.add("digits", loaded.predictor).warm()
        front = await start_front(
            InferenceServicer(repository), "127.0.0.1", 0, tls=Tls(str(pki.key), str(pki.cert))
        )
        try:
            credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
            async with grpc.aio.secure_channel(f"127.0.0.1:{front.port}", credentials) as ch:
                stub = pb_grpc.GRPCInferenceServiceStub(ch)
                answer = await stub.ModelInfer(raw_request("digits", x[:2]), timeout=30)
                assert labels(answer) == model.predict(x[:2]).tolist()
        finally:
            await front.stop(None)
            await repository.close()

    asyncio.run(main())
