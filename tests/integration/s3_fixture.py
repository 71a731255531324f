"""A local S3 endpoint for integration tests.

With LEDGERFLOW_TEST_S3=http://ACCESS:SECRET@host:port the tests use that endpoint
(a MinIO, say); with LEDGERFLOW_TEST_SERVICES=containers, a MinIO container
(tests/integration/containers.py). Otherwise the session starts moto's S3 server (`moto[server]`) on a
free 127.0.0.1 port and stops it, by its pid, when the session ends. A missing moto
fails the tests: an S3 adapter that is never exercised must not look green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import free_port
from tests.integration import containers

ENV = "LEDGERFLOW_TEST_S3"
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class S3Endpoint:
    url: str  # http://host:port, without credentials
    access_key: str
    secret_key: str


def moto_command() -> list[str]:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    pytest.fail(
        f"no S3 endpoint for the tests: set {ENV}=http://ACCESS:SECRET@host:port, or "
        "install moto[server] into .venv (it provides the moto_server command)"
    )


def start_moto(log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A moto S3 server on a free port, answering; the caller stops it with `stop`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*moto_command(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto_server exited with {proc.returncode}; see {log}")
        try:
            httpx.get(url + "/moto-api/", timeout=1.0)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    stop(proc)
    pytest.fail(f"moto_server did not answer on {url} in {START_TIMEOUT_S}s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A running S3 endpoint and credentials it accepts."""
    given = os.environ.get(ENV)
    if given:
        parts = urlsplit(given)
        yield S3Endpoint(
            f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}",
            parts.username or "minioadmin",
            parts.password or "minioadmin",
        )
        return
    if containers.wanted():
        with containers.minio() as (url, access, secret):
            yield S3Endpoint(url, access, secret)
        return
    proc, url = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield S3Endpoint(url, "testing", "testing")
    finally:
        stop(proc)
