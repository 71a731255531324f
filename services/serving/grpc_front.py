"""OIP's gRPC service (`inference.GRPCInferenceService`) on the server's event loop, over the
HTTP/2 of `http2`: what `ledgerflow serve --grpc-port` listens with, in place of grpcio's
server.

Why: grpcio's asyncio server hands Python one call per trip through its completion queue, so
concurrent `ModelInfer` calls reached the batcher one at a time (1.1-1.7 rows per predict), at
500-880 us of server CPU per call. Here one asyncio Protocol per connection cuts what it reads
into frames, and every call whose request ends in that read starts in the same loop turn, so
calls that arrive together reach the batcher together, as HTTP/1.1 requests do through
httptools (docs/benchmarks.md, "HTTP/2 framing of our own").

The servicer is the same as before (`InferenceServicer`, `DeploymentServicer`): each call gets
a `CallContext` with the parts of grpc's context they use (`invocation_metadata`, `abort`,
`set_trailing_metadata`). Unary methods only (all six of OIP's); calls answer HEADERS, one
DATA message and trailers, errors a trailers-only response with a percent-encoded
`grpc-message`. `grpc-timeout` is a deadline (DEADLINE_EXCEEDED), a stream the client resets
cancels its call, gzip/deflate request messages are inflated (others UNIMPLEMENTED), answers
are not compressed; TLS negotiates ALPN "h2". Messages up to 64 MiB each way, as grpcio's
server was configured.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote

import grpc

from ledgerflow.services.serving import http2
from ledgerflow.services.serving.http2 import Stream
from ledgerflow.services.tls import Tls

log = logging.getLogger("ledgerflow.serving")

MAX_MESSAGE = 64 * 1024 * 1024
"""The largest request or answer message, as grpcio's server was configured."""

Handler = Callable[[Any, "CallContext"], Awaitable[Any]]
_RESPONSE_HEADERS = ((b":status", b"200"), (b"content-type", b"application/grpc"))
_RESPONSE_BLOCK = http2.encode_headers(_RESPONSE_HEADERS)
_OK_BLOCK = http2.encode_headers(((b"grpc-status", b"0"),))
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_MESSAGE_SAFE = " !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~"
"""Printable ASCII but '%': what grpc-message carries as is (the rest percent-encoded)."""
_RESERVED = frozenset(
    (b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding")
)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class CallContext:
    """What a servicer method reads of its call: the metadata the client sent, `abort`, and
    trailing metadata to send with the status."""

    __slots__ = ("_headers", "_metadata", "trailing")

    def __init__(self, headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self._headers = headers
        self._metadata: tuple[tuple[str, str | bytes], ...] | None = None
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The call's custom metadata, as grpc gives it: `-bin` values base64-decoded."""
        if self._metadata is None:
            metadata: list[tuple[str, str | bytes]] = []
            for name, value in self._headers:
                if name[:1] == b":" or name in _RESERVED:
                    continue
                key = name.decode("ascii", "replace")
                if key.endswith("-bin"):
                    metadata.append((key, base64.b64decode(value + b"==")))
                else:
                    metadata.append((key, value.decode("latin-1")))
            self._metadata = tuple(metadata)
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _Abort(code, details)

    def set_trailing_metadata(self, metadata: Iterable[tuple[str, str]]) -> None:
        self.trailing = tuple(metadata)


def methods(servicer: Any, service: Any) -> dict[bytes, tuple[Handler, Any]]:
    """`:path` -> (the servicer's bound method, its request message class), for every method
    of `service` (a protobuf ServiceDescriptor) the servicer has."""
    from google.protobuf.message_factory import GetMessageClass

    table: dict[bytes, tuple[Handler, Any]] = {}
    for m in service.methods:
        if m.client_streaming or m.server_streaming:
            continue  # not served here
        handler = getattr(servicer, m.name, None)
        if handler is not None:
            path = f"/{service.full_name}/{m.name}".encode()
            table[path] = (handler, GetMessageClass(m.input_type))
    return table


def _timeout(value: bytes) -> float | None:
    """A `grpc-timeout` value in seconds (None: not a timeout)."""
    digits, unit = value[:-1], value[-1:]
    if not digits.isdigit() or len(digits) > 8 or unit not in _TIMEOUT_UNITS:
        return None
    return int(digits) * _TIMEOUT_UNITS[unit]


def _message(body: bytes, encoding: bytes | None) -> bytes | tuple[grpc.StatusCode, str]:
    """The one message of a unary request body, or the status to answer instead."""
    if len(body) < 5 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        return grpc.StatusCode.INTERNAL, "a unary request carries exactly one gRPC message"
    if not body[0]:
        return body[5:]
    try:
        if encoding == b"gzip":
            return zlib.decompress(body[5:], zlib.MAX_WBITS | 16)
        if encoding == b"deflate":
            return zlib.decompress(body[5:])
    except zlib.error as e:
        return grpc.StatusCode.INTERNAL, f"the request message cannot be inflated: {e}"
    return grpc.StatusCode.UNIMPLEMENTED, f"message encoding {encoding!r} is not supported"


def _status_headers(
    code: grpc.StatusCode, message: str, trailing: tuple[tuple[str, str], ...] = ()
) -> list[tuple[bytes, bytes]]:
    headers = [(b"grpc-status", str(code.value[0]).encode())]
    if message:  # percent-encoded, as the gRPC spec asks of grpc-message
        headers.append((b"grpc-message", quote(message, safe=_MESSAGE_SAFE).encode()))
    headers += [(k.encode(), v.encode()) for k, v in trailing]
    return headers


class _Head:
    """What a request's header block says about its call (decoded once per distinct block)."""

    __slots__ = ("encoding", "error", "target", "timeout")

    def __init__(self, front: GrpcFront, fields: tuple[tuple[bytes, bytes], ...]) -> None:
        method = path = content_type = encoding = timeout = None
        for name, value in fields:
            if name == b":path":
                path = value
            elif name == b":method":
                method = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                encoding = value
        self.encoding = encoding
        self.timeout = None if timeout is None else _timeout(timeout)
        self.target = front.methods.get(path or b"")
        self.error: bytes | tuple[grpc.StatusCode, str] | None = None  # an HTTP status, or gRPC's
        if method != b"POST":
            self.error = b"405"
        elif content_type is None or not content_type.startswith(b"application/grpc"):
            self.error = b"415"
        elif self.target is None:
            method_name = (path or b"").decode("latin-1")
            self.error = grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {method_name}"


class GrpcProtocol(http2.Http2Protocol):
    """One HTTP/2 connection carrying unary gRPC calls."""

    def __init__(self, front: GrpcFront) -> None:
        super().__init__(front.loop)
        self.front = front

    @property
    def calls(self) -> dict[int, Stream]:
        """The calls under way (streams not yet answered)."""
        return self.streams

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        super().connection_lost(exc)

    # ------------------------------------------------------------ Http2Protocol's hooks

    def parse_head(self, fields: tuple[tuple[bytes, bytes], ...]) -> _Head:
        return _Head(self.front, fields)

    def too_large(self, stream: Stream) -> bool:
        if stream.received > self.front.max_message + 5:
            why = f"the request message is larger than {self.front.max_message} bytes"
        elif self.held > self.front.max_held:
            why = (
                f"this connection's calls hold more than {self.front.max_held} bytes of "
                "requests; send fewer large messages at once, or over more connections"
            )
        else:
            return False
        self._answer_status(stream, grpc.StatusCode.RESOURCE_EXHAUSTED, why)
        return True

    def request(self, stream: Stream) -> None:
        """Begin the call whose request is complete on `stream` (in this loop turn)."""
        head: _Head = stream.head
        if head.error is not None or head.target is None:
            if isinstance(head.error, bytes):
                self.respond(stream, http2.encode_headers([(b":status", head.error)]), None, None)
            elif head.error is not None:
                self._answer_status(stream, *head.error)
            return
        body = stream.body[0] if len(stream.body) == 1 else b"".join(stream.body)
        stream.body = []
        message = _message(body, head.encoding)
        if isinstance(message, tuple):
            self._answer_status(stream, *message)
            return
        handler, request_type = head.target
        try:
            request = request_type.FromString(message)
        except Exception:  # protobuf's DecodeError: not this method's message
            self._answer_status(
                stream, grpc.StatusCode.INTERNAL, "the request message cannot be parsed"
            )
            return
        stream.task = self.loop.create_task(self._run(stream, handler, request))
        if head.timeout is not None:
            stream.timer = self.loop.call_later(head.timeout, self._expire, stream)

    def cancelled(self, stream: Stream) -> None:
        if stream.task is not None:
            stream.task.cancel()
        if stream.timer is not None:
            stream.timer.cancel()

    # ------------------------------------------------------------ calls

    def _expire(self, stream: Stream) -> None:
        stream.timer = None
        if stream.task is not None and not stream.task.done():
            stream.expired = True
            stream.task.cancel()

    async def _run(self, stream: Stream, handler: Handler, request: Any) -> None:
        context = CallContext(stream.headers)
        try:
            response = await handler(request, context)
            payload = response.SerializeToString()
        except _Abort as e:
            self._answer_status(stream, e.code, e.message, context.trailing)
            return
        except asyncio.CancelledError:
            if stream.expired:
                self._answer_status(stream, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            return  # else the client reset the stream, or the connection is gone
        except Exception as e:
            log.exception("gRPC %s failed", handler.__name__)
            self._answer_status(
                stream, grpc.StatusCode.UNKNOWN, f"Unexpected error: {type(e).__name__}: {e}"
            )
            return
        finally:
            if stream.timer is not None:
                stream.timer.cancel()
        if len(payload) > self.front.max_message:
            self._answer_status(
                stream,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the answer ({len(payload)} bytes) is larger than {self.front.max_message} bytes",
            )
            return
        trailers = _OK_BLOCK
        if context.trailing:
            trailers = http2.encode_headers(
                [(b"grpc-status", b"0"), *((k.encode(), v.encode()) for k, v in context.trailing)]
            )
        data = b"\x00" + len(payload).to_bytes(4, "big") + payload
        self.respond(stream, _RESPONSE_BLOCK, data, trailers)

    def _answer_status(
        self,
        stream: Stream,
        code: grpc.StatusCode,
        message: str,
        trailing: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A trailers-only answer: the status and no message."""
        block = http2.encode_headers(
            [*_RESPONSE_HEADERS, *_status_headers(code, message, trailing)]
        )
        self.respond(stream, block, None, None)

    def stop(self) -> None:
        """GOAWAY: no new calls here; calls under way still get answers."""
        self.go_away()


class GrpcFront:
    """A listening gRPC front: `port` is the bound port; `stop(grace)` as grpc.aio's."""

    def __init__(self, servicer: Any, service: Any, max_message: int = MAX_MESSAGE) -> None:
        self.loop = asyncio.get_running_loop()
        self.methods = methods(servicer, service)
        self.max_message = max_message
        # one connection's request bytes: room for a call of the largest message beside
        # others (http2.MAX_HELD), whatever the limit
        self.max_held = max(http2.MAX_HELD, 2 * (max_message + 5))
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
            c.stop()
        if grace:
            deadline = self.loop.time() + grace
            while self.loop.time() < deadline and any(c.calls for c in self.connections):
                await asyncio.sleep(0.01)
        for c in list(self.connections):
            for stream in list(c.calls.values()):
                if stream.task is not None:
                    stream.task.cancel()
            c.close()
        if self.server is not None:
            await self.server.wait_closed()


def server_ssl_context(tls: Tls) -> ssl.SSLContext:
    """TLS for the front: the server's pair, HTTP/2 by ALPN (gRPC clients require it)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.certfile, tls.keyfile)
    context.set_alpn_protocols(["h2"])
    return context


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
