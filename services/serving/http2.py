"""The server side of HTTP/2 (RFC 9113) for request/response exchanges, on asyncio: framing of
our own, HPACK (RFC 7541) from the `hpack` library. What `grpc_front` serves OIP's unary gRPC
calls over, on the server's event loop.

Why not a library: `h2` (hyper-h2) is pure Python with ~640 function calls per unary call
(frame objects, two state machines, HPACK and ~25 logging calls), 190-380 us of CPU per call
on the bench machine, more than a whole batched REST request; grpcio's server costs 500-880 us
and hands Python one call per completion-queue trip, so calls never batch. Here a read is cut
into frames with one `struct.unpack_from` each, answers are written from pre-encoded header
blocks, and request header blocks are decoded once and then replayed from a cache (4-7 us of
framing per call; docs/benchmarks.md, "HTTP/2 framing of our own"):

- A decoded block is kept under its raw bytes with the dynamic table's generation
  (`_Table.generation`, which every insertion and resize advances), and replayed only while
  the table is at that generation: a block that refers to dynamic entries never decodes
  against a different table. A block that inserts is decoded for real every time (its
  generation is gone once it is decoded, and such blocks are not stored). grpc's clients
  insert on a connection's first calls and only refer afterwards, so from then on their
  blocks are cache hits.

What is implemented: the preface, SETTINGS (ack; the peer's initial window, max frame size
and header table size honoured), PING acks, flow control both ways (connection and stream;
answers never exceed the peer's windows, the rest waits for its WINDOW_UPDATE; our receive
windows are enforced and reopened as we read; what a connection's open streams hold is
counted, `held`, and past MAX_HELD the application refuses more), HEADERS with padding,
priority and CONTINUATION, DATA with padding, RST_STREAM both ways, GOAWAY (ours on stop and
on errors; the peer's noted), PRIORITY ignored, unknown frame types ignored, and the errors
of RFC 9113 section 5.4: connection errors answered GOAWAY and a close, stream errors
RST_STREAM.
Malformed requests (section 8.1.1: uppercase names, connection-specific fields, pseudo-header
fields missing, repeated, unknown or after regular fields) are stream errors. Not
implemented: server push (a server never needs it), the CONNECT method, `content-length`
checks (gRPC sends none). We never index what we send, so our blocks are valid on any
connection at any time, and the peer's table size setting costs one size update.

Subclasses get `request(stream)` once a request has ended (its headers and body complete) and
`cancelled(stream)` when the peer resets it or the connection goes; they answer with
`respond` (headers, optional body, optional trailers) or `reset`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any, cast

import hpack
from hpack.exceptions import HPACKError
from hpack.table import HeaderTable

log = logging.getLogger("ledgerflow.serving")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xB
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE = 0x1, 0x2, 0x3, 0x4
MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x5, 0x6
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
DEFAULT_FRAME = 16_384

MAX_STREAMS = 4096
STREAM_WINDOW = 1 << 20
"""What a peer may send on one stream before we read it (reopened as we do)."""
CONNECTION_WINDOW = 16 << 20
MAX_HELD = 256 << 20
"""Request bytes one connection may hold (bodies of the calls it has open, finished or
not) before `too_large` is asked to refuse more: flow control alone bounds only what is
in flight, and MAX_STREAMS streams, each up to the application's message limit, could
hold far more."""
MAX_HEADER_LIST = 1 << 16
MAX_HEADER_BLOCK = 1 << 20
"""The most header block fragments (HEADERS + CONTINUATION) we gather before decoding."""
CACHE_BLOCKS = 512

_HEAD = struct.Struct(">BHBBL")  # length (8 + 16 bits), type, flags, stream id
_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority"))
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_TABLE_SIZE_ZERO = b"\x20"
"""An HPACK dynamic table size update to 0: we never index what we send."""


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, kind, flags, stream) + payload


def encode_headers(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> bytes:
    """An HPACK block that is valid whatever the peer's dynamic table holds: static-table
    matches indexed, every other field a never-indexed literal (so no table is ever changed,
    and a block encoded once can be sent on any connection, any number of times)."""
    return _ENCODER.encode([(k, v, True) for k, v in headers], huffman=True)


_ENCODER = hpack.Encoder()  # never indexes (see encode_headers): its table stays empty


class Http2ConnectionError(Exception):
    """A connection error (RFC 9113 5.4.1): GOAWAY with `code`, then close."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Table(HeaderTable):
    """HPACK's dynamic table, counting its changes: a cached decoded block is valid only at the
    generation it was decoded at."""

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.generation += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.generation += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class Stream:
    """One request/response exchange."""

    __slots__ = (
        "body",
        "expired",
        "head",
        "headers",
        "id",
        "pending",
        "received",
        "receiving",
        "recv_unacked",
        "recv_window",
        "send_window",
        "task",
        "timer",
    )

    def __init__(self, stream_id: int, headers: tuple[tuple[bytes, bytes], ...], head: Any,
                 send_window: int, receiving: bool) -> None:  # fmt: skip
        self.id = stream_id
        self.headers = headers
        self.head = head  # what the subclass's `parse_head` made of the headers (cached)
        self.body: list[bytes] = []
        self.received = 0  # bytes of body so far
        self.receiving = receiving  # the peer has not ended its side yet
        self.recv_window = STREAM_WINDOW
        self.recv_unacked = 0
        self.send_window = send_window
        self.pending: list[Any] | None = None  # [rest of the body, trailers block] to send
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.expired = False


class Http2Protocol(asyncio.Protocol):
    """One HTTP/2 connection, server side."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Stream] = {}
        self._buf = b""
        self._preface = False  # the client's preface has been read
        self._settings_seen = False  # ... and the SETTINGS frame that must follow it
        self._out: list[bytes] = []
        self._flush_soon = False
        self._closed = False
        self.last_stream = 0  # the highest stream id the peer opened
        self.going_away = False
        self._decoder = hpack.Decoder(MAX_HEADER_LIST)
        self._table = _Table()
        self._decoder.header_table = self._table
        self._cache: dict[bytes, tuple[int, tuple[tuple[bytes, bytes], ...], Any]] = {}
        self._block: list[bytes] | None = None  # header block fragments awaiting CONTINUATION
        self._block_stream = 0
        self._block_end_stream = False
        self._block_size = 0
        self._self_dependent = 0  # a stream whose HEADERS made it depend on itself
        self._table_update = _TABLE_SIZE_ZERO  # prefixed to the next header block we send
        self.max_frame = DEFAULT_FRAME  # the peer's
        self.initial_window = DEFAULT_WINDOW  # the peer's, for our answers
        self.send_window = DEFAULT_WINDOW  # the peer's connection window
        self.recv_window = CONNECTION_WINDOW
        self._recv_unacked = 0
        self._blocked: dict[int, Stream] = {}  # answers waiting for the peer's windows
        self.held = 0  # request body bytes of the streams open (see MAX_HELD)

    # ------------------------------------------------------------------ hooks

    def parse_head(self, headers: tuple[tuple[bytes, bytes], ...]) -> Any:
        """What the application makes of a request's headers (cached with the block)."""
        return None

    def request(self, stream: Stream) -> None:
        """The request on `stream` has ended: answer it (now or later)."""
        raise NotImplementedError

    def cancelled(self, stream: Stream) -> None:
        """The peer reset `stream`, or the connection is gone."""

    def too_large(self, stream: Stream) -> bool:
        """Whether the request body received so far is more than the application takes,
        alone or beside what the connection holds (`held` past MAX_HELD); if so it has
        answered, and the rest is not read."""
        return False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        settings = struct.pack(
            ">HIHIHI", MAX_CONCURRENT_STREAMS, MAX_STREAMS, INITIAL_WINDOW_SIZE, STREAM_WINDOW,
            MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST,
        )  # fmt: skip
        increment = struct.pack(">I", CONNECTION_WINDOW - DEFAULT_WINDOW)
        transport.write(frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, increment))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        streams = list(self.streams.values())
        self.streams.clear()
        self._blocked.clear()
        self.held = 0
        for stream in streams:
            self.cancelled(stream)

    def pause_writing(self) -> None:
        """The peer reads our answers slower than it sends (the transport's buffer is past
        its high-water mark): read no more of its frames until the buffer drains, so a
        peer that sends calls or PINGs and never reads cannot grow what we hold."""
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        buf = self._buf + data if self._buf else data
        try:
            pos = self._read_frames(buf)
        except Http2ConnectionError as e:
            self._connection_error(e.code, str(e))
            return
        self._buf = buf[pos:] if pos < len(buf) else b""
        if self._recv_unacked >= CONNECTION_WINDOW // 2:
            self._out.append(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self._recv_unacked)))
            self.recv_window += self._recv_unacked
            self._recv_unacked = 0
        self._flush()

    # ------------------------------------------------------------------ reading

    def _read_frames(self, buf: bytes) -> int:
        pos = 0
        end = len(buf)
        if not self._preface:
            if end < 24:
                if PREFACE[:end] != buf:
                    raise Http2ConnectionError(PROTOCOL_ERROR, "not the HTTP/2 connection preface")
                return 0
            if buf[:24] != PREFACE:
                raise Http2ConnectionError(PROTOCOL_ERROR, "not the HTTP/2 connection preface")
            self._preface = True
            pos = 24
        unpack = _HEAD.unpack_from
        while end - pos >= 9:
            high, low, kind, flags, sid = unpack(buf, pos)
            length = high << 16 | low
            if length > DEFAULT_FRAME:  # the max frame size we advertise (the default)
                raise Http2ConnectionError(FRAME_SIZE_ERROR, f"a {length}-byte frame")
            start = pos + 9
            if end - start < length:
                break
            pos = start + length
            payload = buf[start:pos]
            sid &= MAX_WINDOW
            if not self._settings_seen:
                if kind != SETTINGS or flags & ACK:
                    raise Http2ConnectionError(PROTOCOL_ERROR, "the preface's SETTINGS is missing")
                self._settings_seen = True
            if self._block is not None and kind != CONTINUATION:
                raise Http2ConnectionError(PROTOCOL_ERROR, "a header block was interrupted")
            if kind == DATA:
                self._data(sid, flags, payload)
            elif kind == HEADERS:
                self._headers(sid, flags, payload)
            elif kind == CONTINUATION:
                self._continuation(sid, flags, payload)
            elif kind == SETTINGS:
                self._settings(sid, flags, payload)
            elif kind == WINDOW_UPDATE:
                self._window_update(sid, payload)
            elif kind == RST_STREAM:
                self._rst_stream(sid, payload)
            elif kind == PING:
                if sid:
                    raise Http2ConnectionError(PROTOCOL_ERROR, "PING on a stream")
                if length != 8:
                    raise Http2ConnectionError(FRAME_SIZE_ERROR, "a PING that is not 8 bytes")
                if not flags & ACK:
                    self._out.append(frame(PING, ACK, 0, payload))
            elif kind == PRIORITY:
                if not sid:
                    raise Http2ConnectionError(PROTOCOL_ERROR, "PRIORITY on stream 0")
                if length != 5:
                    self._stream_error(sid, FRAME_SIZE_ERROR)
                elif int.from_bytes(payload[:4], "big") & MAX_WINDOW == sid:
                    self._stream_error(sid, PROTOCOL_ERROR)  # depends on itself (5.3.1)
            elif kind == GOAWAY:
                if sid:
                    raise Http2ConnectionError(PROTOCOL_ERROR, "GOAWAY on a stream")
                self.going_away = True  # the peer opens no more; what is under way finishes
            elif kind == PUSH_PROMISE:
                raise Http2ConnectionError(PROTOCOL_ERROR, "a client sent PUSH_PROMISE")
            # other types are extensions: ignored (RFC 9113 5.5)
        return pos

    def _data(self, sid: int, flags: int, payload: bytes) -> None:
        if not sid:
            raise Http2ConnectionError(PROTOCOL_ERROR, "DATA on stream 0")
        length = len(payload)
        self.recv_window -= length  # padding included: all of a DATA frame is flow-controlled
        if self.recv_window < 0:
            raise Http2ConnectionError(FLOW_CONTROL_ERROR, "DATA past the connection's window")
        self._recv_unacked += length
        if flags & PADDED:
            if not length or payload[0] >= length:
                raise Http2ConnectionError(PROTOCOL_ERROR, "padding as long as the frame")
            payload = payload[1 : length - payload[0]]
        stream = self.streams.get(sid)
        if stream is None or not stream.receiving:
            if sid > self.last_stream:
                raise Http2ConnectionError(PROTOCOL_ERROR, f"DATA on idle stream {sid}")
            if stream is not None:  # half-closed (remote): the peer already ended it
                self._stream_error(sid, STREAM_CLOSED)
            return  # a stream closed (or reset by us): its frames are ignored
        stream.recv_window -= length
        if stream.recv_window < 0:
            self._stream_error(sid, FLOW_CONTROL_ERROR)
            return
        if payload:
            stream.body.append(payload)
            stream.received += len(payload)
            self.held += len(payload)
        if flags & END_STREAM:
            stream.receiving = False
            self.request(stream)
            return
        stream.recv_unacked += length
        if self.too_large(stream):
            return  # answered (which resets the rest of the request)
        if stream.recv_unacked >= STREAM_WINDOW // 2:  # the peer may send as much again
            self._out.append(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", stream.recv_unacked)))
            stream.recv_window += stream.recv_unacked
            stream.recv_unacked = 0

    def _headers(self, sid: int, flags: int, payload: bytes) -> None:
        if not sid or not sid & 1:
            raise Http2ConnectionError(PROTOCOL_ERROR, f"HEADERS on stream {sid}")
        if flags & (PADDED | PRIORITY_FLAG):
            start, end = 0, len(payload)
            if flags & PADDED:
                if not end:
                    raise Http2ConnectionError(FRAME_SIZE_ERROR, "a PADDED HEADERS without padding")
                start, end = 1, end - payload[0]
            if flags & PRIORITY_FLAG:
                if int.from_bytes(payload[start : start + 4], "big") & MAX_WINDOW == sid:
                    self._self_dependent = sid  # a stream error once the block is decoded
                start += 5
            if end < start:
                raise Http2ConnectionError(PROTOCOL_ERROR, "padding longer than the HEADERS frame")
            payload = payload[start:end]
        if flags & END_HEADERS:
            self._header_block(sid, payload, flags & END_STREAM)
        else:
            self._block = [payload]
            self._block_stream, self._block_end_stream = sid, bool(flags & END_STREAM)
            self._block_size = len(payload)

    def _continuation(self, sid: int, flags: int, payload: bytes) -> None:
        if self._block is None or sid != self._block_stream:
            raise Http2ConnectionError(PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        self._block.append(payload)
        self._block_size += len(payload)
        if self._block_size > MAX_HEADER_BLOCK:
            raise Http2ConnectionError(ENHANCE_YOUR_CALM, "a header block over 1 MiB")
        if flags & END_HEADERS:
            block = b"".join(self._block)
            self._block = None
            self._header_block(sid, block, self._block_end_stream)

    def _decode(self, block: bytes) -> tuple[tuple[tuple[bytes, bytes], ...], Any]:
        """The block's fields and what `parse_head` makes of them; from the cache when the
        dynamic table is as it was when the same bytes were decoded and left it unchanged."""
        table = self._table
        hit = self._cache.get(block)
        if hit is not None and hit[0] == table.generation:
            return hit[1], hit[2]
        generation = table.generation
        try:
            fields = tuple(self._decoder.decode(block, raw=True))
        except HPACKError as e:
            raise Http2ConnectionError(COMPRESSION_ERROR, f"HPACK: {e}") from None
        head = _malformed(fields) or self.parse_head(fields)
        if table.generation == generation:
            if len(self._cache) >= CACHE_BLOCKS:
                self._cache.clear()
            self._cache[block] = (generation, fields, head)
        return fields, head

    def _header_block(self, sid: int, block: bytes, end_stream: int) -> None:
        fields, head = self._decode(block)  # always: HPACK's state moves on every block
        stream = self.streams.get(sid)
        if stream is not None:  # trailers
            if not stream.receiving:
                self._stream_error(sid, STREAM_CLOSED)
            elif not end_stream or any(name[:1] == b":" for name, _ in fields):
                self._stream_error(sid, PROTOCOL_ERROR)  # trailers end the stream, no pseudo
            else:
                stream.receiving = False
                self.request(stream)
            return
        if sid <= self.last_stream:
            return  # a closed stream (perhaps reset by us, whose frames must be ignored)
        self.last_stream = sid
        if self.going_away or len(self.streams) >= MAX_STREAMS:
            self._out.append(frame(RST_STREAM, 0, sid, REFUSED_STREAM.to_bytes(4, "big")))
            return
        if isinstance(head, Malformed) or self._self_dependent == sid:
            self._out.append(frame(RST_STREAM, 0, sid, PROTOCOL_ERROR.to_bytes(4, "big")))
            return
        stream = Stream(sid, fields, head, self.initial_window, not end_stream)
        self.streams[sid] = stream
        if end_stream:
            self.request(stream)

    def _settings(self, sid: int, flags: int, payload: bytes) -> None:
        if sid:
            raise Http2ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise Http2ConnectionError(FRAME_SIZE_ERROR, "a SETTINGS ack with a payload")
            return
        if len(payload) % 6:
            raise Http2ConnectionError(FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 bytes")
        for i in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, i)
            if key == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise Http2ConnectionError(FLOW_CONTROL_ERROR, f"initial window {value}")
                delta, self.initial_window = value - self.initial_window, value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        raise Http2ConnectionError(
                            FLOW_CONTROL_ERROR, "a stream window over 2^31-1"
                        )
            elif key == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME <= value <= (1 << 24) - 1:
                    raise Http2ConnectionError(PROTOCOL_ERROR, f"max frame size {value}")
                self.max_frame = value
            elif key == HEADER_TABLE_SIZE:
                self._table_update = _TABLE_SIZE_ZERO  # ours stays empty: say so again
            elif key == ENABLE_PUSH and value > 1:
                raise Http2ConnectionError(PROTOCOL_ERROR, f"enable push {value}")
        self._out.append(frame(SETTINGS, ACK, 0))
        self._resume()

    def _window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise Http2ConnectionError(FRAME_SIZE_ERROR, "a WINDOW_UPDATE that is not 4 bytes")
        increment = int.from_bytes(payload, "big") & MAX_WINDOW
        if not sid:
            if not increment:
                raise Http2ConnectionError(PROTOCOL_ERROR, "a zero WINDOW_UPDATE")
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise Http2ConnectionError(FLOW_CONTROL_ERROR, "the connection window over 2^31-1")
            self._resume()
            return
        stream = self.streams.get(sid)
        if stream is None:
            if sid > self.last_stream:
                raise Http2ConnectionError(PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {sid}")
            return
        if not increment:
            self._stream_error(sid, PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(sid, FLOW_CONTROL_ERROR)
            return
        if stream.pending is not None and self._send_pending(stream):
            self._done(stream)

    def _rst_stream(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise Http2ConnectionError(FRAME_SIZE_ERROR, "a RST_STREAM that is not 4 bytes")
        if not sid or sid > self.last_stream:
            raise Http2ConnectionError(PROTOCOL_ERROR, f"RST_STREAM on idle stream {sid}")
        stream = self._drop(sid)
        if stream is not None:
            self.cancelled(stream)

    # ------------------------------------------------------------------ errors

    def _stream_error(self, sid: int, code: int) -> None:
        self._out.append(frame(RST_STREAM, 0, sid, code.to_bytes(4, "big")))
        stream = self._drop(sid)
        if stream is not None:
            self.cancelled(stream)

    def _connection_error(self, code: int, message: str) -> None:
        log.debug("HTTP/2 connection error %d: %s", code, message)
        self.go_away(code, message.encode()[:256])
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def go_away(self, code: int = NO_ERROR, debug: bytes = b"") -> None:
        """Tell the peer to open no more streams; those under way still get answers."""
        self.going_away = True
        self._out.append(frame(GOAWAY, 0, 0, struct.pack(">II", self.last_stream, code) + debug))
        self._flush()

    def close(self) -> None:
        """Write what is pending and close the connection."""
        self._flush()
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ sending

    def respond(self, stream: Stream, headers: bytes, body: bytes | None, trailers: bytes | None,
                ) -> None:  # fmt: skip
        """Answer `stream`: the header block `headers` (pre-encoded), then `body` within the
        peer's windows, then the `trailers` block; without either, `headers` ends the stream.
        Written when this loop turn ends, one write for every answer of the turn."""
        if self._closed or self.streams.get(stream.id) is not stream:
            return  # reset meanwhile, or the connection is gone
        sid = stream.id
        end = body is None and trailers is None
        self._header_frames(sid, headers, end)
        if body is not None:
            stream.pending = [memoryview(body), trailers]
            if not self._send_pending(stream):
                self._schedule_flush()
                return  # the rest as the peer's windows open
        elif trailers is not None:
            self._header_frames(sid, trailers, True)
        self._done(stream)
        self._schedule_flush()

    def reset(self, stream: Stream, code: int = CANCEL) -> None:
        """End `stream` with RST_STREAM, answered or not."""
        if self.streams.get(stream.id) is stream:
            self._drop(stream.id)
            self._out.append(frame(RST_STREAM, 0, stream.id, code.to_bytes(4, "big")))
            self._schedule_flush()

    def _done(self, stream: Stream) -> None:
        """Our side of `stream` has ended; if the peer is still sending, it is told to stop."""
        if self._drop(stream.id) is not None and stream.receiving:
            self._out.append(frame(RST_STREAM, 0, stream.id, b"\x00\x00\x00\x00"))  # NO_ERROR

    def _drop(self, sid: int) -> Stream | None:
        """Forget stream `sid` (answered or reset): its body is no longer held."""
        stream = self.streams.pop(sid, None)
        if stream is not None:
            self._blocked.pop(sid, None)
            self.held -= stream.received
        return stream

    def _header_frames(self, sid: int, block: bytes, end_stream: bool) -> None:
        if self._table_update:
            block = self._table_update + block
            self._table_update = b""
        flags = END_STREAM if end_stream else 0
        size = self.max_frame
        if len(block) <= size:
            self._out.append(frame(HEADERS, flags | END_HEADERS, sid, block))
            return
        self._out.append(frame(HEADERS, flags, sid, block[:size]))
        for i in range(size, len(block), size):
            last = END_HEADERS if i + size >= len(block) else 0
            self._out.append(frame(CONTINUATION, last, sid, block[i : i + size]))

    def _send_pending(self, stream: Stream) -> bool:
        """As much of the stream's answer as the peer's windows allow; then its trailers."""
        pending = stream.pending
        assert pending is not None
        data: memoryview = pending[0]
        out, sid = self._out, stream.id
        while data:
            size = min(len(data), stream.send_window, self.send_window, self.max_frame)
            if size <= 0:
                pending[0] = data
                self._blocked[sid] = stream
                return False  # the rest when the peer opens its window
            chunk = data[:size]
            out.append(_HEAD.pack(size >> 16, size & 0xFFFF, DATA, 0, sid))
            out.append(chunk.obj if len(chunk) == len(chunk.obj) else bytes(chunk))  # type: ignore[arg-type]
            stream.send_window -= size
            self.send_window -= size
            data = data[size:]
        stream.pending = None
        self._blocked.pop(sid, None)
        trailers = pending[1]
        if trailers is not None:
            self._header_frames(sid, trailers, True)
        else:
            out.append(frame(DATA, END_STREAM, sid))
        return True

    def _resume(self) -> None:
        for stream in list(self._blocked.values()):
            if self.send_window <= 0:
                return
            if stream.send_window > 0 and self._send_pending(stream):
                self._done(stream)

    def _schedule_flush(self) -> None:
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if self._out:
            out, self._out = self._out, []
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(out))


class Malformed(str):
    """Why a request's header fields are malformed (RFC 9113 8.1.1): a stream error."""


NO_PSEUDO = Malformed("no pseudo-header fields")


def _malformed(fields: tuple[tuple[bytes, bytes], ...]) -> Malformed | None:
    pseudo: set[bytes] = set()
    regular = False
    for name, value in fields:
        if name[:1] == b":":
            if regular or name not in _PSEUDO or name in pseudo:
                return Malformed(f"pseudo-header field {name!r} out of place")
            pseudo.add(name)
        else:
            regular = True
            if name.lower() != name:
                return Malformed(f"field name {name!r} is not lowercase")
            if name in _CONNECTION_SPECIFIC or (name == b"te" and value != b"trailers"):
                return Malformed(f"connection-specific field {name!r}")
    if not pseudo:
        return NO_PSEUDO  # trailers, or a request without its pseudo-header fields
    if not {b":method", b":scheme", b":path"} <= pseudo:
        return Malformed(":method, :scheme and :path are required")
    return None
