"""The gRPC front's HTTP/2 framing of our own (services/serving/http2.py), frame by frame: a
raw client writes the frames a test decides and reads every frame the server sends, so flow
control, CONTINUATION, padding, resets, GOAWAY, the errors of RFC 9113 and the cache of
decoded header blocks are checked against what is on the wire. tritonclient.grpc at the end,
as a real client of the whole front."""

from __future__ import annotations

import asyncio
import struct
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import hpack
import numpy as np
import pytest

from ledgerflow.services.serving.grpc_service import InferenceServicer
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.repository import ModelRepository
from tests.integration.test_serving_grpc_front import Doubler, front_module, raw_request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, END_HEADERS, PADDED = 0x1, 0x4, 0x8
INFER = "/inference.GRPCInferenceService/ModelInfer"
METADATA = "/inference.GRPCInferenceService/ServerMetadata"


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes([*out, value])


def literal(name: str, value: str, first: int = 0x00) -> bytes:
    """A literal field with a new name: 0x00 without indexing, 0x40 with incremental indexing."""
    n, v = name.encode(), value.encode()
    return bytes([first]) + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def request_block(path: str = INFER, extra: bytes = b"", prefix: bytes = b"") -> bytes:
    """:method POST, :scheme http, :path, :authority, content-type, te: never touching the
    dynamic table (literals without indexing), then `extra`; `prefix` first."""
    p, a, c = path.encode(), b"test", b"application/grpc"
    block = prefix + b"\x83\x86" + hpack_int(4, 4) + hpack_int(len(p), 7) + p
    block += hpack_int(1, 4) + hpack_int(len(a), 7) + a
    block += hpack_int(31, 4) + hpack_int(len(c), 7) + c
    return block + literal("te", "trailers") + extra


def grpc_body(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def data_frames(stream: int, body: bytes) -> bytes:
    """`body` in DATA frames of at most 16,384 bytes, the last ending the stream."""
    chunks = [body[i : i + 16_384] for i in range(0, len(body), 16_384)]
    return b"".join(
        frame(DATA, END_STREAM if i == len(chunks) - 1 else 0, stream, c)
        for i, c in enumerate(chunks)
    )


def settings(*pairs: tuple[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


class Raw:
    """One HTTP/2 connection whose every frame the test writes and reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = hpack.Decoder()

    @classmethod
    async def open(cls, port: int, *pairs: tuple[int, int], window: int = 0) -> Raw:
        raw = cls(*await asyncio.open_connection("127.0.0.1", port))
        first = PREFACE + settings(*pairs)
        if window:
            first += frame(WINDOW_UPDATE, 0, 0, window.to_bytes(4, "big"))
        raw.writer.write(first)
        kind, flags, _, _ = await raw.next()  # the server's SETTINGS, then its window update
        assert (kind, flags) == (SETTINGS, 0)
        await raw.expect(WINDOW_UPDATE)
        await raw.expect(SETTINGS)  # the ack of ours
        return raw

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def next(self, timeout: float = 10) -> tuple[int, int, int, bytes]:
        head = await asyncio.wait_for(self.reader.readexactly(9), timeout)
        length = int.from_bytes(head[:3], "big")
        payload = await self.reader.readexactly(length) if length else b""
        return head[3], head[4], int.from_bytes(head[5:], "big") & 0x7FFFFFFF, payload

    async def expect(self, kind: int) -> tuple[int, int, bytes]:
        got, flags, stream, payload = await self.next()
        assert got == kind, f"frame type {got} ({payload!r}), not {kind}"
        return flags, stream, payload

    async def quiet(self, seconds: float = 0.2) -> None:
        """Nothing more arrives for `seconds`."""
        with pytest.raises(TimeoutError):
            await self.next(seconds)

    async def answer(self, stream: int) -> tuple[dict[str, str], bytes, list[int]]:
        """The whole answer on `stream`: its header fields (headers and trailers), body and the
        sizes of its DATA frames."""
        fields: dict[str, str] = {}
        body, sizes = b"", []
        while True:
            kind, flags, sid, payload = await self.next()
            assert sid == stream, f"frame {kind} on stream {sid}"
            if kind == HEADERS:
                assert flags & END_HEADERS
                fields.update(
                    (k.decode(), v.decode()) for k, v in self.decoder.decode(payload, raw=True)
                )
            elif kind == DATA:
                body += payload
                sizes.append(len(payload))
            else:
                raise AssertionError(f"frame type {kind} in an answer: {payload!r}")
            if flags & END_STREAM:
                return fields, body, sizes

    async def goaway(self) -> tuple[int, int]:
        """(last stream id, error code) of the GOAWAY that ends the connection."""
        while True:
            kind, _, _, payload = await self.next()
            if kind == GOAWAY:
                assert await self.reader.read() == b"", "the connection stays open"
                return struct.unpack(">II", payload[:8])

    def close(self) -> None:
        self.writer.close()


Check = Callable[[Any], Awaitable[None]]


def serve(check: Check, servicer: Any = None, service: str = "GRPCInferenceService") -> None:
    async def main() -> None:
        repository = ModelRepository(max_batch_size=64)
        await repository.add("double", Doubler()).warm()
        if servicer is None:
            front = await front_module.start_front(InferenceServicer(repository), "127.0.0.1", 0)
        else:
            front = front_module.GrpcFront(servicer, pb.DESCRIPTOR.services_by_name[service])
            await front.listen("127.0.0.1", 0, None)
        try:
            await check(front)
        finally:
            await front.stop(None)
            await repository.close()

    asyncio.run(main())


def double_call(side: int) -> bytes:
    x = np.arange(side * side, dtype=np.float64).reshape(side, side)
    return grpc_body(raw_request("double", x, "x").SerializeToString())


def doubled(body: bytes, side: int) -> bool:
    response = pb.ModelInferResponse.FromString(body[5:])
    expected = np.arange(side * side, dtype=np.float64) * 2
    return np.array_equal(np.frombuffer(response.raw_output_contents[0], "<f8"), expected)


def test_settings_and_pings_are_acknowledged_and_a_call_is_answered() -> None:
    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        raw.send(frame(PING, 0, 0, b"12345678"))
        assert await raw.expect(PING) == (1, 0, b"12345678")
        raw.send(frame(PING, 1, 0, b"87654321"))  # an ack is not answered
        raw.send(
            frame(HEADERS, END_HEADERS, 1, request_block()),
            frame(DATA, END_STREAM, 1, double_call(3)),
        )
        fields, body, _ = await raw.answer(1)
        assert fields[":status"] == "200" and fields["grpc-status"] == "0"
        assert doubled(body, 3)
        raw.close()

    serve(check)


def test_answers_keep_to_the_peers_stream_window_and_resume_on_window_update() -> None:
    async def check(front: Any) -> None:
        raw = await Raw.open(front.port, (0x4, 100), window=1 << 24)  # 100-byte stream windows
        raw.send(
            frame(HEADERS, END_HEADERS, 1, request_block()),
            frame(DATA, END_STREAM, 1, double_call(8)),
        )
        flags, _, _ = await raw.expect(HEADERS)
        assert not flags & END_STREAM
        _, _, first = await raw.expect(DATA)
        assert len(first) == 100  # all the window allows
        await raw.quiet()
        raw.send(frame(WINDOW_UPDATE, 0, 1, (50).to_bytes(4, "big")))
        _, _, second = await raw.expect(DATA)
        assert len(second) == 50
        await raw.quiet()
        raw.send(frame(WINDOW_UPDATE, 0, 1, (1 << 20).to_bytes(4, "big")))
        rest, body = await raw.answer(1), first + second
        assert rest[0]["grpc-status"] == "0"
        assert doubled(body + rest[1], 8)
        raw.close()

    serve(check)


def test_answers_keep_to_the_connection_window_and_the_peers_max_frame_size() -> None:
    async def check(front: Any) -> None:
        # streams may take 1 MiB, the connection its default 65,535 bytes; frames up to 20,000
        raw = await Raw.open(front.port, (0x4, 1 << 20), (0x5, 20_000))
        raw.send(
            frame(HEADERS, END_HEADERS, 1, request_block()),
            data_frames(1, double_call(200)),
        )
        await raw.expect(HEADERS)
        got = b""
        while len(got) < 65_535:
            _, _, payload = await raw.expect(DATA)
            assert len(payload) <= 20_000
            got += payload
        assert len(got) == 65_535
        await raw.quiet()
        raw.send(frame(WINDOW_UPDATE, 0, 0, (1 << 20).to_bytes(4, "big")))
        fields, body, sizes = await raw.answer(1)
        assert fields["grpc-status"] == "0" and max(sizes) == 20_000
        assert doubled(got + body, 200)
        raw.close()

    serve(check)


def test_a_header_block_in_continuation_frames_and_padded_frames_are_read() -> None:
    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        block = request_block()
        body = double_call(2)
        raw.send(
            frame(HEADERS, 0, 1, block[:5]),
            frame(CONTINUATION, 0, 1, block[5:20]),
            frame(CONTINUATION, END_HEADERS, 1, block[20:]),
            frame(DATA, PADDED, 1, bytes([7]) + body[:10] + b"\x00" * 7),
            frame(DATA, PADDED | END_STREAM, 1, bytes([0]) + body[10:]),
        )
        fields, answer, _ = await raw.answer(1)
        assert fields["grpc-status"] == "0" and doubled(answer, 2)
        # HEADERS padded and with a priority: 1 byte pad length, 5 of priority, 3 of padding
        priority = (0).to_bytes(4, "big") + b"\x10"
        raw.send(
            frame(
                HEADERS, END_HEADERS | PADDED | 0x20, 3, b"\x03" + priority + block + b"\x00" * 3
            ),
            frame(PRIORITY, 0, 3, (1).to_bytes(4, "big") + b"\x20"),  # ignored
            frame(DATA, END_STREAM, 3, body),
        )
        fields, answer, _ = await raw.answer(3)
        assert fields["grpc-status"] == "0" and doubled(answer, 2)
        raw.close()

    serve(check)


def test_a_frame_between_headers_and_continuation_is_a_protocol_error() -> None:
    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        block = request_block()
        raw.send(frame(HEADERS, 0, 1, block[:5]), frame(PING, 0, 0, b"12345678"))
        assert await raw.goaway() == (0, 0x1)  # PROTOCOL_ERROR; stream 1 never opened

    serve(check)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (frame(DATA, 0, 0, b"x"), 0x1),  # DATA on stream 0
        (frame(PING, 0, 0, b"1234567"), 0x6),  # a 7-byte PING: FRAME_SIZE_ERROR
        (frame(PING, 0, 1, b"12345678"), 0x1),  # PING on a stream
        (frame(HEADERS, END_HEADERS, 2, request_block()), 0x1),  # an even stream id
        (frame(DATA, 0, 9, b"x"), 0x1),  # DATA on an idle stream
        (frame(RST_STREAM, 0, 9, b"\x00\x00\x00\x08"), 0x1),  # RST_STREAM on an idle stream
        (frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"), 0x1),  # a zero connection update
        (frame(WINDOW_UPDATE, 0, 0, (2**31 - 1).to_bytes(4, "big")), 0x3),  # window over 2^31-1
        (frame(SETTINGS, 0, 0, b"\x00\x05\x00\x00\x00\x10"), 0x1),  # max frame size 16
        (frame(SETTINGS, 0, 0, b"\x00\x04\x80\x00\x00\x00"), 0x3),  # initial window 2^31
        (frame(SETTINGS, 0, 0, b"\x00\x04\x00"), 0x6),  # not a multiple of 6 bytes
        (frame(SETTINGS, 1, 0, b"\x00\x04\x00\x00\x00\x00"), 0x6),  # an ack with a payload
        (frame(PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02"), 0x1),
        (frame(CONTINUATION, END_HEADERS, 1, b"\x83"), 0x1),  # CONTINUATION alone
        (frame(DATA, 0, 1, b"x" * 16_385), 0x6),  # over the max frame size we advertise
        (frame(HEADERS, END_HEADERS, 3, b"\xff\xff\xff\x0f"), 0x9),  # an index past the table
        (frame(DATA, PADDED, 1, b"\x05abc"), 0x1),  # padding longer than the frame
    ],
)
def test_connection_errors_are_answered_with_goaway_and_a_close(frames: bytes, code: int) -> None:
    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        raw.send(frame(HEADERS, END_HEADERS, 1, request_block()), frames)  # stream 1 open
        assert await raw.goaway() == (1, code)

    serve(check)


def test_a_connection_that_does_not_begin_with_the_preface_is_closed() -> None:
    async def check(front: Any) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = Raw(reader, writer)
        await raw.expect(SETTINGS)
        await raw.expect(WINDOW_UPDATE)
        assert await raw.goaway() == (0, 0x1)

    serve(check)


def test_stream_errors_reset_the_stream_and_the_connection_keeps_serving() -> None:
    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        bad_name = request_block(extra=literal("X-Upper", "1"))
        raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bad_name))
        assert await raw.expect(RST_STREAM) == (0, 1, b"\x00\x00\x00\x01")  # PROTOCOL_ERROR
        raw.send(
            frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                3,
                request_block(extra=literal("connection", "x")),
            )
        )
        assert await raw.expect(RST_STREAM) == (0, 3, b"\x00\x00\x00\x01")
        raw.send(
            frame(HEADERS, END_HEADERS, 5, request_block()), frame(WINDOW_UPDATE, 0, 5, bytes(4))
        )
        assert await raw.expect(RST_STREAM) == (0, 5, b"\x00\x00\x00\x01")  # a zero increment
        # half a stream window (1 MiB) read: the server opens it again
        raw.send(frame(HEADERS, END_HEADERS, 7, request_block()))
        raw.send(*(frame(DATA, 0, 7, b"\x00" * 16_384) for _ in range(40)))
        _, stream, payload = await raw.expect(WINDOW_UPDATE)
        assert stream == 7 and int.from_bytes(payload, "big") == 32 * 16_384
        # DATA after the END_STREAM of a call under way: STREAM_CLOSED, and the call is dropped
        raw.send(
            frame(HEADERS, END_HEADERS, 9, request_block()),
            frame(DATA, END_STREAM, 9, double_call(2)),
            frame(DATA, 0, 9, b"late"),
        )
        assert await raw.expect(RST_STREAM) == (0, 9, b"\x00\x00\x00\x05")
        raw.send(
            frame(HEADERS, END_HEADERS, 11, request_block()),
            frame(DATA, END_STREAM, 11, double_call(2)),
        )
        fields, body, _ = await raw.answer(11)
        assert fields["grpc-status"] == "0" and doubled(body, 2)
        raw.close()

    serve(check)


def test_a_stream_the_client_resets_is_cancelled_and_not_answered() -> None:
    doubler_gate: list[Any] = []

    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        gate = doubler_gate[0]
        gate.clear()
        raw.send(
            frame(HEADERS, END_HEADERS, 1, request_block()),
            frame(DATA, END_STREAM, 1, double_call(2)),
        )
        for _ in range(500):
            if any(c.calls for c in front.connections):
                break
            await asyncio.sleep(0.01)
        raw.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x00\x08"))  # CANCEL
        for _ in range(500):
            if not any(c.calls for c in front.connections):
                break
            await asyncio.sleep(0.01)
        assert not any(c.calls for c in front.connections)
        gate.set()
        await raw.quiet(0.3)  # nothing is sent on the reset stream
        raw.send(
            frame(HEADERS, END_HEADERS, 3, request_block()),
            frame(DATA, END_STREAM, 3, double_call(2)),
        )
        fields, body, _ = await raw.answer(3)
        assert fields["grpc-status"] == "0" and doubled(body, 2)
        raw.close()

    doubler = Doubler()
    doubler_gate.append(doubler.gate)

    async def main() -> None:
        repository = ModelRepository()
        await repository.add("double", doubler).warm()
        front = await front_module.start_front(InferenceServicer(repository), "127.0.0.1", 0)
        try:
            await check(front)
        finally:
            doubler.gate.set()
            await front.stop(None)
            await repository.close()

    asyncio.run(main())


def test_stop_sends_goaway_and_answers_the_calls_under_way() -> None:
    doubler = Doubler()

    async def main() -> None:
        repository = ModelRepository()
        await repository.add("double", doubler).warm()
        front = await front_module.start_front(InferenceServicer(repository), "127.0.0.1", 0)
        try:
            raw = await Raw.open(front.port)
            doubler.gate.clear()
            raw.send(
                frame(HEADERS, END_HEADERS, 1, request_block()),
                frame(DATA, END_STREAM, 1, double_call(2)),
            )
            while not any(c.calls for c in front.connections):
                await asyncio.sleep(0.01)
            stopping = asyncio.create_task(front.stop(10))
            assert await raw.expect(GOAWAY) == (0, 0, b"\x00\x00\x00\x01\x00\x00\x00\x00")
            raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block()))
            assert await raw.expect(RST_STREAM) == (0, 3, b"\x00\x00\x00\x07")  # REFUSED_STREAM
            doubler.gate.set()
            fields, body, _ = await raw.answer(1)
            assert fields["grpc-status"] == "0" and doubled(body, 2)
            await stopping
        finally:
            doubler.gate.set()
            await repository.close()

    asyncio.run(main())


class Echo:
    """ServerMetadata answering the call's `x-tag` metadata as its name."""

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(name=dict(context.invocation_metadata()).get("x-tag", ""))


def test_cached_header_blocks_are_replayed_only_while_the_dynamic_table_is_unchanged() -> None:
    """A block referring to a dynamic-table entry decodes to what the entry holds now; blocks
    that insert are decoded every time (two equal inserting blocks insert twice)."""

    async def check(front: Any) -> None:
        raw = await Raw.open(front.port)
        stream = 1

        async def tag(extra: bytes, prefix: bytes = b"") -> str:
            nonlocal stream
            message = grpc_body(pb.ServerMetadataRequest().SerializeToString())
            block = request_block(METADATA, extra, prefix)
            raw.send(frame(HEADERS, END_HEADERS, stream, block),
                     frame(DATA, END_STREAM, stream, message))  # fmt: skip
            fields, body, _ = await raw.answer(stream)
            stream += 2
            assert fields["grpc-status"] == "0", fields
            return str(pb.ServerMetadataResponse.FromString(body[5:]).name)

        insert = lambda v: literal("x-tag", v, 0x40)  # noqa: E731
        newest, second = b"\xbe", b"\xbf"  # indexed fields 62 and 63: the dynamic table
        assert await tag(insert("a")) == "a"
        assert await tag(newest) == "a"
        assert await tag(newest) == "a"  # the same bytes, the same table: from the cache
        assert await tag(insert("b")) == "b"
        assert await tag(newest) == "b"  # the same bytes as above, the table changed
        assert await tag(second) == "a"
        assert await tag(insert("c")) == "c"
        assert await tag(insert("c")) == "c"  # inserted again: c at 62 and 63, b at 64
        assert await tag(second) == "c"
        assert await tag(hpack_int(64, 7, 0x80)) == "b"
        assert await tag(newest) == "c"
        # a table size update to 0 empties the table: the cached block is not replayed
        assert await tag(b"", prefix=b"\x20") == ""
        message = grpc_body(pb.ServerMetadataRequest().SerializeToString())
        raw.send(frame(HEADERS, END_HEADERS, stream, request_block(METADATA, newest)),
                 frame(DATA, END_STREAM, stream, message))  # fmt: skip
        assert (await raw.goaway())[1] == 0x9  # COMPRESSION_ERROR: no entry 62 any more

    serve(check, Echo())


TRITON = """
import sys
import numpy as np
import tritonclient.grpc as triton

client = triton.InferenceServerClient(sys.argv[1])
assert client.is_server_live() and client.is_model_ready("double")
assert client.get_model_metadata("double").name == "double"
x = np.arange(12, dtype=np.float64).reshape(3, 4)
tensor = triton.InferInput("x", [3, 4], "FP64")
tensor.set_data_from_numpy(x)
result = client.infer("double", [tensor], headers={"x-request": "1"})
assert np.array_equal(result.as_numpy("y"), x * 2), result.as_numpy("y")
try:
    client.infer("missing", [tensor])
    raise AssertionError("a missing model answered")
except triton.InferenceServerException as e:
    assert "missing" in str(e), e
print("ok")
"""


def test_tritonclient_grpc_calls_the_front() -> None:
    """tritonclient.grpc in a process of its own (its protos clash with ours in one process)."""

    async def check(front: Any) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", TRITON, f"127.0.0.1:{front.port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0 and out.endswith(b"ok\n"), out.decode()

    serve(check)


def test_a_grpc_status_is_percent_encoded_and_reaches_grpcio() -> None:
    async def check(front: Any) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
            call = channel.unary_unary(INFER)
            request = raw_request("no such model ü", np.ones((1, 1)), "x").SerializeToString()
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call(request, timeout=10)
            assert e.value.code() != grpc.StatusCode.OK
            assert "no such model ü" in (e.value.details() or "")

    serve(check)


def test_a_peer_that_sends_and_never_reads_is_read_no_further() -> None:
    """PINGs (each answered) written without reading an answer: once the server's unsent
    answers pass the transport's high-water mark it stops reading, so the peer's writes
    stall instead of the server buffering answers without bound; it reads on, and answers
    every PING, once the peer reads."""

    async def check(front: Any) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.transport.pause_reading()  # this side reads nothing for now
        writer.write(PREFACE + settings())
        pings = frame(PING, 0, 0, b"12345678") * 4096  # 68 KiB, answered by as many acks
        sent, limit = 0, 64 << 20
        while sent < limit:
            writer.write(pings)
            sent += len(pings)
            try:
                await asyncio.wait_for(writer.drain(), 1.0)
            except TimeoutError:
                break  # the server stopped reading: the sockets' buffers are full
        assert sent < limit, f"the server read {sent} bytes of PINGs whose answers nobody read"
        # Its SETTINGS, WINDOW_UPDATE and SETTINGS ack, then one 17-byte ack per PING.
        expected = 9 + 18 + 9 + 4 + 9 + sent

        async def read_all() -> bytes:
            got = b""
            while len(got) < expected:
                got += await asyncio.wait_for(reader.read(1 << 20), 10)
            return got

        writer.transport.resume_reading()
        reading = asyncio.create_task(read_all())
        await asyncio.wait_for(writer.drain(), 30)  # the server reads the rest
        got = await reading
        assert len(got) == expected and got.endswith(frame(PING, 1, 0, b"12345678"))
        writer.close()

    serve(check)


def test_a_connection_holding_too_many_request_bytes_is_refused_more_calls() -> None:
    """Flow control bounds what is in flight, not what a connection makes the server keep:
    streams opened and filled but never ended would each hold up to the message limit. Past
    the front's `max_held` (1 MiB here) the call whose bytes cross it is refused with
    RESOURCE_EXHAUSTED; the others are answered, and every byte is released."""
    side = 256  # a 512 KiB request
    body = double_call(side)
    partial = frame(DATA, 0, 3, b"\x00" * 16_384)

    async def check(front: Any) -> None:
        front.max_held = 1 << 20
        raw = await Raw.open(front.port, (0x4, 1 << 20), window=1 << 20)  # room for the answer
        raw.send(frame(HEADERS, END_HEADERS, 1, request_block()))
        head = body[:-100]  # all of call 1 but its last 100 bytes
        raw.send(*(frame(DATA, 0, 1, head[i : i + 16_384]) for i in range(0, len(head), 16_384)))
        raw.send(frame(HEADERS, END_HEADERS, 3, request_block()), *[partial] * 40)  # 640 KiB
        refused: dict[str, str] = {}
        while "grpc-status" not in refused:
            kind, _, sid, payload = await raw.next()
            if kind == WINDOW_UPDATE:
                continue
            assert (kind, sid) == (HEADERS, 3), (kind, sid, payload)
            refused.update((k.decode(), v.decode()) for k, v in raw.decoder.decode(payload, True))
        assert refused["grpc-status"] == "8"  # RESOURCE_EXHAUSTED
        assert "hold more than 1048576 bytes" in refused["grpc-message"].replace("%20", " ")
        raw.send(frame(DATA, END_STREAM, 1, body[-100:]))  # call 1 ends: answered
        fields: dict[str, str] = {}
        answer = b""
        while "grpc-status" not in fields:
            kind, _, sid, payload = await raw.next()
            if kind in (WINDOW_UPDATE, RST_STREAM) and sid in (0, 3):
                continue  # windows reopened; call 3 told to stop sending
            assert sid == 1, (kind, sid, payload)
            if kind == HEADERS:
                fields.update(
                    (k.decode(), v.decode()) for k, v in raw.decoder.decode(payload, True)
                )
            elif kind == DATA:
                answer += payload
        assert fields["grpc-status"] == "0" and doubled(answer, side)
        [connection] = front.connections
        assert connection.held == 0 and not connection.calls
        raw.close()

    serve(check)
