"""Apache Kafka, PostgreSQL and MinIO in containers, for machines with a Docker engine.

`LEDGERFLOW_TEST_SERVICES=containers pytest ...` starts them once per session with
testcontainers (`pip install 'testcontainers[kafka,postgres,minio]'`) in place of the
Tansu broker, the machine's PostgreSQL and moto's S3 server, so the same integration and
fault tests run against the real things. `local` (the default) keeps those. A setting
naming a service of your own (LEDGERFLOW_TEST_KAFKA, _POSTGRES, _S3) still wins. A missing
package or engine fails the tests saying what to do; nothing falls back silently.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

MODE_ENV = "LEDGERFLOW_TEST_SERVICES"
KAFKA_IMAGE = os.environ.get("LEDGERFLOW_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.7.1")
POSTGRES_IMAGE = os.environ.get("LEDGERFLOW_TEST_POSTGRES_IMAGE", "postgres:16-alpine")
MINIO_IMAGE = os.environ.get("LEDGERFLOW_TEST_MINIO_IMAGE", "minio/minio:latest")


def wanted() -> bool:
    """Whether this session runs its services in containers."""
    mode = os.environ.get(MODE_ENV, "local")
    if mode not in ("local", "containers"):
        pytest.fail(f"{MODE_ENV}={mode!r}: expected local (the default) or containers")
    return mode == "containers"


def _class(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        pytest.fail(
            f"{MODE_ENV}=containers needs testcontainers ({e}): "
            "pip install 'testcontainers[kafka,postgres,minio]' into .venv"
        )


@contextmanager
def _running(container: Any, what: str) -> Iterator[Any]:
    try:
        container.start()
    except Exception as e:  # no engine, no image, a port that never opened
        pytest.fail(
            f"could not start {what} in a container ({type(e).__name__}: {e}); "
            f"{MODE_ENV}=containers needs a running Docker engine"
        )
    try:
        yield container
    finally:
        container.stop()


@contextmanager
def kafka() -> Iterator[str]:
    """A one-node Apache Kafka (KRaft); yields its bootstrap address."""
    container = _class("testcontainers.kafka", "KafkaContainer")(KAFKA_IMAGE).with_kraft()
    with _running(container, f"Kafka ({KAFKA_IMAGE})") as c:
        yield str(c.get_bootstrap_server())


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server; yields a libpq URL of its database, as LEDGERFLOW_TEST_POSTGRES."""
    container = _class("testcontainers.postgres", "PostgresContainer")(POSTGRES_IMAGE, driver=None)
    with _running(container, f"PostgreSQL ({POSTGRES_IMAGE})") as c:
        yield str(c.get_connection_url())


@contextmanager
def minio() -> Iterator[tuple[str, str, str]]:
    """A MinIO server; yields (http://host:port, access key, secret key)."""
    container = _class("testcontainers.minio", "MinioContainer")(MINIO_IMAGE)
    with _running(container, f"MinIO ({MINIO_IMAGE})") as c:
        config = c.get_config()
        yield f"http://{config['endpoint']}", config["access_key"], config["secret_key"]
