"""A minimal HTTP/2 client for unary gRPC calls that all send the same request: the gRPC
counterpart of bench/serving.py's raw HTTP/1.1 client, so the load generator spends about as
little CPU per gRPC call as per REST request and the two servers are compared, not the clients.

The request (HEADERS and DATA frames) is encoded once; each call only writes it with its own
stream id. Header blocks use HPACK literals without indexing, so they never change the
server's table. Responses are not HPACK-decoded: a call succeeded when its stream carried a
gRPC message (DATA) before the trailers ended it; a gRPC error (trailers only) or RST_STREAM
is an error. The message of the first answer is returned by `sample` for a caller to parse.

Flow control: the client advertises the largest windows HTTP/2 allows (and tops up the
connection window as answers arrive), and keeps to the server's connection window for what
it sends. It answers the server's SETTINGS and PINGs. Nothing else of HTTP/2 is needed here.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9
)  # fmt: skip
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535


def _int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 5.1) with `first`'s high bits set."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return _int(len(raw), 7) + raw


def header_block(path: str, authority: str, metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The HPACK block of a gRPC call: static-table entries and literals without indexing."""
    block = bytes([0x80 | 3, 0x80 | 6])  # :method POST, :scheme http
    block += _int(4, 4) + _string(path)  # :path (name from the static table)
    block += _int(1, 4) + _string(authority)  # :authority
    block += _int(31, 4) + _string("application/grpc")  # content-type
    for name, value in (("te", "trailers"), *metadata):
        block += b"\x00" + _string(name) + _string(value)
    return block


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    head = struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + stream.to_bytes(4, "big")
    return head + payload


class Connection:
    """One HTTP/2 connection carrying any number of concurrent calls of one request."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        block: bytes,
        message: bytes,
    ) -> None:
        self.reader, self.writer = reader, writer
        body = b"\x00" + len(message).to_bytes(4, "big") + message  # uncompressed, length
        self._headers = struct.pack(">I", len(block))[1:] + bytes([HEADERS, END_HEADERS])
        self._block = block
        self._data = struct.pack(">I", len(body))[1:] + bytes([DATA, END_STREAM])
        self._body = body
        self._next_stream = 1
        self._calls: dict[int, tuple[asyncio.Future[bool], list[int]]] = {}
        self._send_window = DEFAULT_WINDOW
        self._window_open = asyncio.Event()
        self._unacked = 0
        self.sample: bytes | None = None
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, host: str, port: int, path: str, message: bytes, metadata: tuple[tuple[str, str], ...]
    ) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # as grpc's own clients do: no Nagle delay on small frames
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = cls(reader, writer, header_block(path, f"{host}:{port}", metadata), message)
        settings = struct.pack(">HI", 0x2, 0) + struct.pack(">HI", 0x4, MAX_WINDOW)  # no push
        writer.write(
            PREFACE
            + _frame(SETTINGS, 0, 0, settings)
            + _frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - DEFAULT_WINDOW))
        )
        conn._reading = asyncio.get_running_loop().create_task(conn._read())
        return conn

    async def call(self) -> bool:
        """One call of the request: True when it was answered with a message."""
        while self._send_window < len(self._body):
            self._window_open.clear()
            await self._window_open.wait()
        self._send_window -= len(self._body)
        stream = self._next_stream
        self._next_stream += 2
        sid = stream.to_bytes(4, "big")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._calls[stream] = (future, [0])
        self.writer.write(self._headers + sid + self._block + self._data + sid + self._body)
        return await future

    async def _read(self) -> None:
        read = self.reader.readexactly
        try:
            while True:
                head = await read(9)
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
                stream = int.from_bytes(head[5:9], "big") & MAX_WINDOW
                payload = await read(length) if length else b""
                if kind == DATA:
                    self._received(stream, payload, flags)
                elif kind in (HEADERS, CONTINUATION):
                    if flags & END_STREAM:  # trailers: END_HEADERS or CONTINUATIONs follow
                        self._end(stream)
                elif kind == SETTINGS:
                    if not flags & ACK:
                        self._settings(payload)
                        self.writer.write(_frame(SETTINGS, ACK, 0, b""))
                elif kind == PING:
                    if not flags & ACK:
                        self.writer.write(_frame(PING, ACK, 0, payload))
                elif kind == WINDOW_UPDATE:
                    if stream == 0:
                        self._send_window += int.from_bytes(payload, "big") & MAX_WINDOW
                        self._window_open.set()
                elif kind == RST_STREAM:
                    self._end(stream, failed=True)
                elif kind == GOAWAY:
                    raise ConnectionError(f"the server sent GOAWAY: {payload[8:]!r}")
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            for future, _ in self._calls.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"connection lost: {e}"))

    def _settings(self, payload: bytes) -> None:
        for i in range(0, len(payload), 6):
            key, value = struct.unpack(">HI", payload[i : i + 6])
            if key == 0x3 and value < 1024:  # SETTINGS_MAX_CONCURRENT_STREAMS
                raise ConnectionError(f"the server allows only {value} concurrent streams")

    def _received(self, stream: int, payload: bytes, flags: int) -> None:
        entry = self._calls.get(stream)
        if entry is not None:
            entry[1][0] += len(payload)
            if self.sample is None and len(payload) > 5:
                self.sample = payload[5:]
        self._unacked += len(payload)
        if self._unacked > 1 << 30:  # keep the connection's receive window open
            self.writer.write(_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self._unacked)))
            self._unacked = 0
        if flags & END_STREAM:
            self._end(stream)

    def _end(self, stream: int, failed: bool = False) -> None:
        entry = self._calls.pop(stream, None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(not failed and entry[1][0] > 5)

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self.writer.close()


async def connect(target: str, method: str, message: bytes, metadata: Any = ()) -> Connection:
    """A connection to `target` ("host:port") calling `method` ("/package.Service/Method")."""
    host, _, port = target.rpartition(":")
    return await Connection.open(host, int(port), method, message, tuple(metadata or ()))
