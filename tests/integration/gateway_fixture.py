"""Real gateways for the tests, and clients of what they stream.

- :class:`GatewayThread` (the ``gateway`` and ``remote`` fixtures): the whole FastAPI
  app served by uvicorn on a free 127.0.0.1 port, in a thread of the test process,
  over an embedded backend, with an event hub for its event streams as
  ``ledgerflow gateway`` has.
- :func:`running_gateway`: gRPC and the SSE router alone on a given backend and hub,
  for the streaming tests.
- :class:`GatewayProcess`: ``ledgerflow gateway`` (or another server command) as a
  real process, for the end-to-end tests.
- :class:`SSEReader`: an event stream read with httpx and parsed by the rules of the
  SSE spec, so the wire format itself is what gets tested.

Registered for every test by ``pytest_plugins`` in tests/conftest.py. Servers and
frameworks are imported when a gateway starts, so sessions that never start one
(the unit tests) do not pay for importing them.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.settings import Settings, load_settings
from ledgerflow.services.artifacts import ArtifactStore
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.gateway.cache import ReadCache
from ledgerflow.services.gateway.hub import QUEUE_SIZE, Hub
from tests.conftest import PYTHON, free_port, python_env

if TYPE_CHECKING:
    from ledgerflow.services.gateway.cache import ReadCache
    from ledgerflow.services.gateway.proto import ledgerflow_pb2_grpc as pb_grpc

START_TIMEOUT_S = 20.0
PROCESS_START_TIMEOUT_S = 60.0
HEARTBEAT_S = 0.3


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:``port`` from a daemon thread."""

    def __init__(self, app: Any, port: int, *, lifespan: str = "auto", name: str = "uvicorn"):
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan,
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self, timeout: float = START_TIMEOUT_S) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class GatewayThread:
    """Start, stop and start again on the same port, as an operator would."""

    def __init__(
        self,
        settings: Settings,
        port: int | None = None,
        artifacts: ArtifactStore | None = None,
        queue_size: int | None = None,
    ) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.queue_size = queue_size  # the hub's bound on a subscriber's pending events
        self.port = port or free_port()
        self.backend: Backend | None = None
        self.hub: Hub | None = None
        self.cache: ReadCache | None = None
        self._server: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayThread:
        from ledgerflow.services.gateway.app import create_app

        self.backend = bootstrap(self.settings, artifacts=self.artifacts)
        self.hub = Hub(
            self.backend.log, queue_size=self.queue_size or QUEUE_SIZE, redis_url=None
        ).start()
        # as `ledgerflow gateway` runs: reads of runs and versions through the read cache
        self.cache = ReadCache(self.backend, self.hub, redis_url="").start()
        app = create_app(self.backend, self.hub, cache=self.cache)
        self._server = ServerThread(app, self.port, name="test-gateway").start()
        return self

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.close()  # ends the event streams, so the server can stop
        if self._server is not None:
            self._server.stop()
        if self.cache is not None:
            self.cache.close()
        if self.backend is not None:
            self.backend.close()
        self._server = self.backend = self.hub = self.cache = None


@pytest.fixture
def gateway(data_dir: Path) -> Iterator[GatewayThread]:
    g = GatewayThread(load_settings(tracking_uri=str(data_dir))).start()
    yield g
    g.stop()


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every remote test gets its own spool folder (never the user's cache)."""
    folder = tmp_path / "spool"
    monkeypatch.setenv("LEDGERFLOW_SPOOL_DIR", str(folder))
    return folder


@pytest.fixture
def remote(gateway: GatewayThread, spool_dir: Path) -> Iterator[GatewayThread]:
    """The fluent API and Client pointed at the gateway, cleaned up afterwards."""
    lf.set_tracking_uri(gateway.url)
    yield gateway
    session.reset()


# -- gRPC and SSE alone, for the streaming tests ------------------------------------------


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free port from a thread; yields its base URL."""
    server = ServerThread(app, free_port(), lifespan="off").start(timeout=15)
    try:
        yield server.url
    finally:
        server.stop()


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
    import grpc
    from fastapi import FastAPI

    from ledgerflow.services.gateway import sse
    from ledgerflow.services.gateway.grpc_server import serve
    from ledgerflow.services.gateway.proto import ledgerflow_pb2_grpc

    app = FastAPI()
    app.include_router(sse.make_router(lambda: backend, lambda: hub, heartbeat_s=HEARTBEAT_S))
    port = free_port()
    server = serve(backend, hub, "127.0.0.1", port, cache=cache)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        with uvicorn_server(app) as http:
            yield Gateway(backend, hub, ledgerflow_pb2_grpc.LedgerflowStub(channel), http)
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


# -- a gateway process, for the end-to-end tests ------------------------------------------


class GatewayProcess:
    """``ledgerflow gateway`` (or ``command``) as a real process on a free port."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        port: int | None = None,
        command: str = "gateway",
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        self.command = command
        self.extra = extra
        self.data_dir = data_dir
        self.log = log
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen = 0  # how much of the log came before the latest launch

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayProcess:
        return self.launch().wait_ready()

    def launch(self) -> GatewayProcess:
        """Start the process without waiting for it (other processes can start meanwhile);
        `wait_ready` then waits until it answers."""
        self._seen = len(self.output())  # a restart appends to the same log
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(self.data_dir), self.command]
                + ["--port", str(self.port), *self.extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=python_env() | self.env,
            )
        return self

    def wait_ready(self) -> GatewayProcess:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"ledgerflow {self.command} exited with {self.proc.returncode}:\n{self.output()}"
                )
            if f"listening on {self.url}" in self.output()[self._seen :]:
                r = httpx.get(self.url + "/health", timeout=5)
                assert r.status_code == 200 and r.json()["status"] == "ok"
                return self
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"ledgerflow {self.command} did not get ready in {PROCESS_START_TIMEOUT_S}s:\n"
            f"{self.output()}"
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
