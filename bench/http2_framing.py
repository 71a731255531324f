"""The CPU that services/serving/http2.py's framing costs per unary call, in process: no
socket, no servicer, no model. A connection reads the frames bench/grpc_h2.py's client writes
(HEADERS with the same header block every call, DATA with a 100-byte message), `calls_per_read`
calls per read, and answers each at once with pre-encoded headers, a 10-byte message and
trailers; answers go to a transport that only counts bytes.

    .venv/bin/python bench/http2_framing.py            # 1 and 16 calls per read, 3 rounds each

docs/benchmarks.md ("HTTP/2 framing of our own") has what it measured.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

from ledgerflow.services.serving import http2

CALLS = 20_000


class _Transport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> Any:
        return None

    def close(self) -> None:
        pass


_HEADERS = http2.encode_headers([(b":status", b"200"), (b"content-type", b"application/grpc")])
_TRAILERS = http2.encode_headers([(b"grpc-status", b"0")])
_ANSWER = b"\x00" + (5).to_bytes(4, "big") + b"hello"


class _Echo(http2.Http2Protocol):
    def request(self, stream: http2.Stream) -> None:
        self.respond(stream, _HEADERS, _ANSWER, _TRAILERS)


async def measure(calls_per_read: int) -> float:
    """Microseconds of process CPU per call."""
    from grpc_h2 import header_block  # bench/grpc_h2.py: this file runs as a script from bench/

    connection = _Echo(asyncio.get_running_loop())
    connection.connection_made(_Transport())  # type: ignore[arg-type]
    settings = http2.frame(http2.SETTINGS, 0, 0, struct.pack(">HI", 0x4, http2.MAX_WINDOW))
    window = struct.pack(">I", http2.MAX_WINDOW - http2.DEFAULT_WINDOW)
    connection.data_received(
        http2.PREFACE + settings + http2.frame(http2.WINDOW_UPDATE, 0, 0, window)
    )
    block = header_block("/inference.GRPCInferenceService/ModelInfer", "127.0.0.1:8001")
    body = b"\x00" + (100).to_bytes(4, "big") + b"x" * 100
    reads = []
    stream = 1
    for _ in range(CALLS // calls_per_read):
        frames = []
        for _ in range(calls_per_read):
            frames.append(http2.frame(http2.HEADERS, http2.END_HEADERS, stream, block))
            frames.append(http2.frame(http2.DATA, http2.END_STREAM, stream, body))
            stream += 2
        reads.append(b"".join(frames))
    start = time.process_time()
    for data in reads:
        connection.data_received(data)
        connection._flush()
    spent = time.process_time() - start
    if connection.streams:
        raise RuntimeError(f"{len(connection.streams)} calls were not answered")
    return spent / CALLS * 1e6


def main() -> None:
    for calls_per_read in (1, 16):
        rounds = [asyncio.run(measure(calls_per_read)) for _ in range(3)]
        each = ", ".join(f"{r:.1f}" for r in rounds)
        print(f"{calls_per_read:3} calls per read: {each} us of CPU per call")


if __name__ == "__main__":
    main()
