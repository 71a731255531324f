"""Real servers for the gateway's streaming tests: gRPC on a free port, uvicorn in a
thread, Redis on 127.0.0.1:6379 (random key prefix per test), and an SSE reader
written against httpx so the wire format itself is what gets tested."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway import sse
from ledgerflow.services.gateway.cache import ReadCache
from ledgerflow.services.gateway.grpc_server import serve
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.proto import ledgerflow_pb2_grpc as pb_grpc
from tests.conftest import free_port

REDIS_ENV = "LEDGERFLOW_TEST_REDIS"
HEARTBEAT_S = 0.3


@pytest.fixture
def redis_url() -> str:
    """The test Redis; a test that needs it fails (never skips) when it is not there."""
    url = os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        pytest.fail(
            f"no Redis at {url} ({e}); start one with `redis-server --daemonize yes --bind "
            f"127.0.0.1 --port 6379 --save '' --appendonly no` or set {REDIS_ENV}"
        )
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@contextmanager
def uvicorn_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free port from a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@dataclass
class Gateway:
    backend: Backend
    hub: Hub
    stub: pb_grpc.LedgerflowStub
    http: str

    def sse(self, headers: dict[str, str] | None = None, **params: object) -> SSEReader:
        return SSEReader(self.http, params, headers)


@contextmanager
def running_gateway(
    backend: Backend, hub: Hub, cache: ReadCache | None = None
) -> Iterator[Gateway]:
    """gRPC and an app with the SSE router, both on the same backend and hub."""
    app = FastAPI()
    app.include_router(sse.make_router(lambda: backend, lambda: hub, heartbeat_s=HEARTBEAT_S))
    port = free_port()
    server = serve(backend, hub, "127.0.0.1", port, cache=cache)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        with uvicorn_server(app) as http:
            yield Gateway(backend, hub, pb_grpc.LedgerflowStub(channel), http)
    finally:
        channel.close()
        server.stop(None).wait(5)


@dataclass
class SSEMessage:
    id: str | None
    event: str
    data: str


@dataclass
class SSEReader:
    """An event stream read line by line, parsed by the rules of the SSE spec."""

    base: str
    params: dict[str, object]
    headers: dict[str, str] | None = None
    comments: list[str] = field(default_factory=list)
    retry: str | None = None

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0))
        self._ctx = self._client.stream(
            "GET", f"{self.base}/api/v1/events/stream", params=self.params, headers=self.headers
        )
        self.response = self._ctx.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> SSEMessage | None:
        """The next message; None when the server ends the stream."""
        fields: dict[str, list[str]] = {}
        for line in self._lines:
            if line == "":
                if "data" in fields or "event" in fields:
                    return SSEMessage(
                        (fields.get("id") or [None])[-1],
                        fields.get("event", ["message"])[-1],
                        "\n".join(fields.get("data", [])),
                    )
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "retry":
                self.retry = value
            else:
                fields.setdefault(name, []).append(value)
        return None

    def next_comment(self) -> str:
        """Read on until a comment line (a heartbeat); messages on the way are dropped."""
        for line in self._lines:
            if line.startswith(":"):
                return line[1:].strip()
            if line.startswith("retry:"):
                self.retry = line.partition(":")[2].strip()
        raise AssertionError("the stream ended without a comment line")

    def take(self, n: int) -> list[SSEMessage]:
        out: list[SSEMessage] = []
        while len(out) < n:
            got = self.next()
            if got is None:
                raise AssertionError(f"the stream ended after {len(out)} of {n} messages")
            out.append(got)
        return out

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)
        self._client.close()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
