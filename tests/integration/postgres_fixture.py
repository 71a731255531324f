"""PostgreSQL for integration tests: a fresh database per test on a running server.

With LEDGERFLOW_TEST_SERVICES=containers (and no LEDGERFLOW_TEST_POSTGRES) the session
starts one in a container (tests/integration/containers.py). Otherwise the server
comes from LEDGERFLOW_TEST_POSTGRES (a libpq URL, default
postgresql://postgres@127.0.0.1:5432/test; these machines run one with trust
auth). An unreachable server fails the tests with what to do: views on
PostgreSQL that are never exercised must not look green.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from tests.faults.proxy import TcpProxy
from tests.integration import containers

ENV = "LEDGERFLOW_TEST_POSTGRES"
DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get(ENV, DEFAULT)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of a reachable PostgreSQL server."""
    if ENV not in os.environ and containers.wanted():
        with containers.postgres() as url:
            yield url
        return
    yield _reachable(admin_url())


def _reachable(url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        pytest.fail(
            f"no PostgreSQL for the tests at {url} ({e}); start it (on these machines: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            f"or set {ENV}"
        )
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A SQLAlchemy URL of a new, empty database, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"lf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def views_cut_off(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Backend, TcpProxy]]:
    """A backend whose PostgreSQL views are reached through a proxy the test can cut (the
    server itself belongs to the machine and keeps running)."""
    url = make_url(postgres_url)
    proxy = TcpProxy(url.port or 5432, url.host or "127.0.0.1")
    views = url.set(port=proxy.port).render_as_string(hide_password=False)
    backend = bootstrap(load_settings(tracking_uri=str(tmp_path / "data"), views_db=views))
    try:
        yield backend, proxy
    finally:
        proxy.restore()
        backend.close()
        proxy.close()
