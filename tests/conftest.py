"""Shared fixtures: every test gets its own data directory; services are real."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.settings import Settings, load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap

# Fixtures of the real services, for every test that names one (and no import to forget).
# pytest only reads pytest_plugins in this top-level conftest.
pytest_plugins = (
    "tests.e2e.demo_fixture",
    "tests.integration.gateway_fixture",
    "tests.integration.kafka_fixture",
    "tests.integration.mlflow_client",
    "tests.integration.postgres_fixture",
    "tests.integration.ray_fixture",
    "tests.integration.redis_fixture",
    "tests.integration.s3_fixture",
)

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background of a non-interactive shell (`cmd &`) inherits
    SIGINT ignored (POSIX), and so would every process the tests start: the tests that
    stop a server or a follower with Ctrl-C would see it ignored. Python's own handler
    here makes each child start with the default again (an ignored signal survives exec,
    a handler does not)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide their own settings; a developer's LEDGERFLOW_* must not leak in."""
    for key in list(os.environ):
        if key.startswith("LEDGERFLOW_") or key.startswith("MLFLOW_"):
            monkeypatch.delenv(key)


MLFLOW_PROCESS_STATE = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


@pytest.fixture(autouse=True)
def _no_mlflow_state_left() -> Iterator[None]:
    """The `mlflow` client keeps the active experiment in a module global and in
    MLFLOW_EXPERIMENT_ID (set by `set_experiment` itself), which would send the next
    module's runs, and its child processes', to an experiment of another server."""
    yield
    for key in MLFLOW_PROCESS_STATE:
        os.environ.pop(key, None)
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = None  # type: ignore[attr-defined]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "ledgerflow-data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(tracking_uri=str(data_dir))


@pytest.fixture
def backend(settings: Settings) -> Iterator[Backend]:
    b = bootstrap(settings)
    yield b
    b.close()


@pytest.fixture
def tracking(data_dir: Path) -> Iterator[Path]:
    """The fluent API pointed at a fresh data directory, cleaned up afterwards."""
    lf.set_tracking_uri(str(data_dir))
    yield data_dir
    session.reset()


def python_env(data_dir: Path | None = None) -> dict[str, str]:
    """Environment for a child Python process running this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERFLOW_")}
    if data_dir is not None:
        env["LEDGERFLOW_TRACKING_URI"] = str(data_dir)
    return env


PYTHON = sys.executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
