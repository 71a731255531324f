"""The first prototype, measured and not kept: unary gRPC over HTTP/2 on the server's event
loop, with the `h2` library doing the framing, HPACK, flow control and settings
(docs/benchmarks.md, "An HTTP/2 front of our own, on h2"). `ledgerflow serve`'s front
(services/serving/grpc_front.py) has HTTP/2 framing of its own instead; this one stays for
`bench/serving.py --fronts` to measure beside it. Its tests were those of the product's front
(tests/integration/test_serving_grpc_front.py) until that replaced it.

Why it was tried: grpcio's asyncio server hands Python one call per trip through its
completion queue, so concurrent `ModelInfer` calls reach the batcher one at a time (1.1-1.7
rows per predict), at 200-280 us of CPU each before our code runs. Here one asyncio Protocol
per connection feeds what it reads to h2, and every call that completes in one read starts in
the same loop turn, so calls that arrive together reach the batcher together, as HTTP/1.1
requests do through httptools. That part worked (9-10 rows per predict at 16 callers, 28-31
at 64, as batched REST); h2's own pure-Python cost per call (150-250 us on the bench machine)
did not leave it as fast as batched REST.

The servicer is the product's (`InferenceServicer`, `DeploymentServicer`): each call gets a
`CallContext` with the parts of grpc's context it uses (`invocation_metadata`, `abort`,
`set_trailing_metadata`). Unary methods only (all six of OIP's); calls answer HEADERS, one
DATA message and trailers, errors a trailers-only response. `grpc-timeout` is a deadline
(DEADLINE_EXCEEDED), a stream the client resets cancels its call, gzip/deflate request
messages are inflated, answers are not compressed; TLS negotiates ALPN "h2".

    python bench/grpc_front_h2.py --tracking-uri DIR serve -m MODEL --grpc-port 8001 ...

runs the `ledgerflow` command with this front serving `--grpc-port` instead of grpcio's
server (bench/serving.py --fronts does). BENCH_H2_VALIDATE=0 turns off h2's checks and
normalization of header fields, both ways (the second of the two measured runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import sys
from typing import Any, cast

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from ledgerflow.services.serving.grpc_front import (  # what the product's front shares
    MAX_MESSAGE,
    CallContext,
    Handler,
    _Abort,
    _message,
    _status_headers,
    _timeout,
    methods,
    server_ssl_context,
)
from ledgerflow.services.tls import Tls

log = logging.getLogger("ledgerflow.serving")

MAX_STREAMS = 4096
STREAM_WINDOW = 1 << 20
"""What a client may send on one call before we read it (its window grows as we do)."""
CONNECTION_WINDOW = 16 << 20

_VALIDATE = os.environ.get("BENCH_H2_VALIDATE", "1") == "1"
_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=_VALIDATE,
    normalize_inbound_headers=_VALIDATE,
    validate_outbound_headers=_VALIDATE,
    normalize_outbound_headers=_VALIDATE,
)
_RESPONSE_HEADERS = ((b":status", b"200"), (b"content-type", b"application/grpc"))
_OK_TRAILERS = ((b"grpc-status", b"0"),)


class _Call:
    __slots__ = ("body", "expired", "headers", "task", "timer")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.expired = False


class GrpcProtocol(asyncio.Protocol):
    """One HTTP/2 connection carrying unary gRPC calls."""

    def __init__(self, front: GrpcFront) -> None:
        self.front = front
        self.loop = front.loop
        self.conn = h2.connection.H2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.calls: dict[int, _Call] = {}
        self._sending: dict[int, list[Any]] = {}  # stream -> [rest of its DATA, trailers]
        self._flush_soon = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.front.connections.add(self)
        conn = self.conn
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 16,
            },
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(CONNECTION_WINDOW - 65_535)
        transport.write(conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        for call in self.calls.values():
            if call.task is not None:
                call.task.cancel()
            if call.timer is not None:
                call.timer.cancel()
        self.calls.clear()
        self._sending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            log.debug("gRPC connection closed: %s", e)
            self._flush()
            assert self.transport is not None
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.calls[event.stream_id] = _Call(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self._received(event)
            elif isinstance(event, h2.events.StreamEnded):
                self._start(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._window_opened(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._reset(event.stream_id)
        self._flush()

    # ------------------------------------------------------------ calls

    def _received(self, event: h2.events.DataReceived) -> None:
        if event.flow_controlled_length:  # read: the client may send as much again
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        call = self.calls.get(event.stream_id)
        if call is None:
            return
        call.body += event.data
        if len(call.body) > self.front.max_message + 5:
            del self.calls[event.stream_id]
            self._answer_status(
                event.stream_id,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request message is larger than {self.front.max_message} bytes",
            )
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.conn.reset_stream(event.stream_id)  # and the rest of it is not read

    def _start(self, stream_id: int) -> None:
        """Begin the call whose request is complete on `stream_id` (in this loop turn)."""
        call = self.calls.get(stream_id)
        if call is None or call.task is not None:
            return
        path = content_type = encoding = timeout = None
        for name, value in call.headers:
            if name == b":path":
                path = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                encoding = value
        if content_type is None or not content_type.startswith(b"application/grpc"):
            del self.calls[stream_id]
            self._answer_http(stream_id, b"415")
            return
        target = self.front.methods.get(path or b"")
        if target is None:
            del self.calls[stream_id]
            method = (path or b"").decode("latin-1")
            self._answer_status(
                stream_id, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {method}"
            )
            return
        message = _message(bytes(call.body), encoding)
        call.body = bytearray()
        if isinstance(message, tuple):
            del self.calls[stream_id]
            self._answer_status(stream_id, *message)
            return
        handler, request_type = target
        try:
            request = request_type.FromString(message)
        except Exception:  # protobuf's DecodeError: not this method's message
            del self.calls[stream_id]
            self._answer_status(
                stream_id, grpc.StatusCode.INTERNAL, "the request message cannot be parsed"
            )
            return
        call.task = self.loop.create_task(self._run(stream_id, call, handler, request))
        if timeout is not None:
            seconds = _timeout(timeout)
            if seconds is not None:
                call.timer = self.loop.call_later(seconds, self._expire, call)

    def _expire(self, call: _Call) -> None:
        call.timer = None
        if call.task is not None and not call.task.done():
            call.expired = True
            call.task.cancel()

    async def _run(self, stream_id: int, call: _Call, handler: Handler, request: Any) -> None:
        context = CallContext(tuple(call.headers))
        try:
            response = await handler(request, context)
            payload = response.SerializeToString()
        except _Abort as e:
            self._finish(stream_id, call)
            self._answer_status(stream_id, e.code, e.message, context.trailing)
            return
        except asyncio.CancelledError:
            self._finish(stream_id, call)
            if call.expired:
                self._answer_status(
                    stream_id, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
                )
            return  # else the client reset the stream, or the connection is gone
        except Exception as e:
            log.exception("gRPC %s failed", handler.__name__)
            self._finish(stream_id, call)
            self._answer_status(
                stream_id, grpc.StatusCode.UNKNOWN, f"Unexpected error: {type(e).__name__}: {e}"
            )
            return
        self._finish(stream_id, call)
        if len(payload) > self.front.max_message:
            self._answer_status(
                stream_id,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the answer ({len(payload)} bytes) is larger than {self.front.max_message} bytes",
            )
            return
        trailers: tuple[tuple[bytes, bytes], ...] = _OK_TRAILERS
        if context.trailing:
            trailers = _OK_TRAILERS + tuple((k.encode(), v.encode()) for k, v in context.trailing)
        data = b"\x00" + len(payload).to_bytes(4, "big") + payload
        try:
            self.conn.send_headers(stream_id, _RESPONSE_HEADERS)
        except h2.exceptions.ProtocolError:  # reset by the client meanwhile, or closed
            return
        self._sending[stream_id] = [memoryview(data), trailers]
        self._send(stream_id)
        self._schedule_flush()

    def _finish(self, stream_id: int, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if self.calls.get(stream_id) is call:
            del self.calls[stream_id]

    def _reset(self, stream_id: int) -> None:
        call = self.calls.pop(stream_id, None)
        if call is not None:
            if call.task is not None:
                call.task.cancel()
            if call.timer is not None:
                call.timer.cancel()
        self._sending.pop(stream_id, None)

    # ------------------------------------------------------------ sending

    def _send(self, stream_id: int) -> None:
        """Send as much of the stream's answer as the peer's windows allow, then trailers."""
        pending = self._sending[stream_id]
        data: memoryview = pending[0]
        conn = self.conn
        try:
            while data:
                size = min(len(data), conn.local_flow_control_window(stream_id))
                size = min(size, conn.max_outbound_frame_size)
                if size <= 0:
                    pending[0] = data
                    return  # the rest when the peer opens its window
                whole = size == len(data) == len(data.obj)  # type: ignore[arg-type]
                conn.send_data(stream_id, data.obj if whole else data[:size].tobytes())  # type: ignore[arg-type]
                data = data[size:]
            conn.send_headers(stream_id, pending[1], end_stream=True)
        except h2.exceptions.ProtocolError:
            pass  # the stream was reset or the connection closed: nothing to answer
        del self._sending[stream_id]

    def _window_opened(self, stream_id: int) -> None:
        for sid in [stream_id] if stream_id else list(self._sending):
            if sid in self._sending:
                self._send(sid)

    def _answer_status(
        self,
        stream_id: int,
        code: grpc.StatusCode,
        message: str,
        trailing: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A trailers-only answer: the status and no message."""
        headers = [*_RESPONSE_HEADERS, *_status_headers(code, message, trailing)]
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.conn.send_headers(stream_id, headers, end_stream=True)
        self._schedule_flush()

    def _answer_http(self, stream_id: int, status: bytes) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.conn.send_headers(stream_id, [(b":status", status)], end_stream=True)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Write what the calls answered once this loop turn is done (one write for all)."""
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def go_away(self) -> None:
        """Tell the client to open no new calls here; calls under way still get answers.
        (Written past h2's state machine, which would refuse to answer after a GOAWAY.)"""
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.conn.highest_inbound_stream_id
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame.serialize())


class GrpcFront:
    """A listening gRPC front: `port` is the bound port; `stop(grace)` as grpc.aio's."""

    def __init__(self, servicer: Any, service: Any, max_message: int = MAX_MESSAGE) -> None:
        self.loop = asyncio.get_running_loop()
        self.methods = methods(servicer, service)
        self.max_message = max_message
        self.connections: set[GrpcProtocol] = set()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def listen(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self.server = await self.loop.create_server(
            lambda: GrpcProtocol(self), host, port, ssl=ssl_context, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self, grace: float | None) -> None:
        """Stop listening and send GOAWAY; calls under way get `grace` seconds to finish."""
        if self.server is not None:
            self.server.close()
        for c in list(self.connections):
            c.go_away()
        if grace:
            deadline = self.loop.time() + grace
            while self.loop.time() < deadline and any(c.calls for c in self.connections):
                await asyncio.sleep(0.01)
        for c in list(self.connections):
            for call in list(c.calls.values()):
                if call.task is not None:
                    call.task.cancel()
            if c.transport is not None:
                c.transport.close()
        if self.server is not None:
            await self.server.wait_closed()


async def start_front(
    servicer: Any,
    host: str,
    port: int,
    *,
    tls: Tls | None = None,
    max_message: int = MAX_MESSAGE,
) -> GrpcFront:
    """`servicer`'s OIP methods served on `host:port` (0: any free port; read `.port`)."""
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    front = GrpcFront(servicer, service, max_message)
    await front.listen(host, port, None if tls is None else server_ssl_context(tls))
    return front


def main() -> None:
    """`ledgerflow` with its arguments, this front in place of grpcio's server."""
    from ledgerflow.services.serving import grpc_service

    async def start(
        repository: Any,
        host: str,
        port: int,
        *,
        servicer: Any = None,
        auth: Any = None,
        tls: Tls | None = None,
    ) -> GrpcFront:
        servicer = servicer or grpc_service.InferenceServicer(repository, auth)
        return await start_front(servicer, host, port, tls=tls)

    # The server looks the function up when it starts gRPC: a benchmark's switch, nothing more.
    grpc_service.start_grpc_server = start
    from ledgerflow.cli import main as cli

    cli()


if __name__ == "__main__":
    del sys.path[0]  # bench/, whose module names (models, tracking, ...) would shadow others'
    main()
