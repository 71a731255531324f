"""A real gateway for integration tests: the FastAPI app served by uvicorn on a free
127.0.0.1 port, in a thread of the test process, over an embedded backend, with an
event hub for its event streams as `ledgerflow gateway` has."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.settings import Settings, load_settings
from ledgerflow.services.artifacts import ArtifactStore
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.gateway.app import create_app
from ledgerflow.services.gateway.hub import QUEUE_SIZE, Hub
from tests.conftest import free_port

START_TIMEOUT_S = 20.0


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
        self._server: object = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayThread:
        import uvicorn

        self.backend = bootstrap(self.settings, artifacts=self.artifacts)
        self.hub = Hub(
            self.backend.log, queue_size=self.queue_size or QUEUE_SIZE, redis_url=None
        ).start()
        config = uvicorn.Config(
            create_app(self.backend, self.hub), host="127.0.0.1", port=self.port,
            log_level="warning", timeout_graceful_shutdown=2,
        )  # fmt: skip
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"the gateway did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.close()  # ends the event streams, so the server can stop
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.backend is not None:
            self.backend.close()
        self._server = self._thread = self.backend = self.hub = None


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
