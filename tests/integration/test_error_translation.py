"""Driver errors reach users as Ledgerflow errors that say what is wrong."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.settings import load_settings
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.gateway.app import create_app
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.projector.database import make_engine
from tests.integration.gateway_fixture import running_gateway


def test_an_event_log_file_that_is_not_a_database_is_unavailable_with_a_hint(tmp_path: Path):
    bad = tmp_path / "events.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Unavailable, match="cannot open the event log.*not a database"):
        SQLiteEventLog(bad)


def test_an_event_log_under_a_file_is_invalid_input(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="cannot create the event log folder"):
        SQLiteEventLog(tmp_path / "file" / "events.db")


def test_a_views_database_that_is_not_a_database_is_unavailable(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "views.db").write_bytes(b"garbage" * 100)
    with pytest.raises(Unavailable, match="creating the view tables failed"):
        bootstrap(load_settings(tracking_uri=str(data)))


def test_a_malformed_views_url_names_the_setting():
    with pytest.raises(InvalidInput, match="LEDGERFLOW_VIEWS_DB"):
        make_engine("not a url at all", writer=True)


def test_unsupported_log_and_artifact_schemes_say_what_this_version_supports(tmp_path: Path):
    with pytest.raises(InvalidInput, match="LEDGERFLOW_EVENT_LOG.*sqlite:///FILE or kafka://"):
        bootstrap(load_settings(tracking_uri=str(tmp_path), event_log="nats://localhost:4222"))
    with pytest.raises(InvalidInput, match="kafka://HOST:PORT"):
        bootstrap(load_settings(tracking_uri=str(tmp_path), event_log="kafka://localhost"))
    with pytest.raises(InvalidInput, match="LEDGERFLOW_ARTIFACTS"):
        bootstrap(load_settings(tracking_uri=str(tmp_path), artifacts="s3://bucket/x"))


def test_a_views_database_gone_away_is_a_503_over_rest_not_an_internal_error(views_cut_off):
    backend, proxy = views_cut_off
    app = create_app(backend, Hub(backend.log, redis_url=None))
    with TestClient(app, raise_server_exceptions=False) as http:
        assert http.get("/api/v1/runs/nope").status_code == 404
        proxy.cut()
        r = http.get("/api/v1/runs/nope")
        assert r.status_code == 503, r.text  # the SDK retries a read on 503, not on 500
        assert r.json()["error_code"] == Unavailable.code
        assert r.json()["message"].startswith("the views database is unavailable (")
        proxy.restore()
        assert http.get("/api/v1/runs/nope").status_code == 404


def test_a_views_database_gone_away_is_unavailable_over_grpc(views_cut_off):
    import grpc

    from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb

    backend, proxy = views_cut_off
    hub = Hub(backend.log, redis_url=None).start()
    try:
        with running_gateway(backend, hub) as gateway:
            proxy.cut()
            with pytest.raises(grpc.RpcError) as caught:
                gateway.stub.GetRun(pb.GetRunRequest(run_id="nope"), timeout=30)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "the views database is unavailable" in (caught.value.details() or "")
    finally:
        hub.close()


def test_postgres_connections_time_out_and_keep_alive_unless_the_url_says_otherwise(
    postgres_url: str,
):
    engine = make_engine(postgres_url, writer=False)
    try:
        with engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        assert params["connect_timeout"] == "10" and params["keepalives"] == "1"
        assert params["keepalives_idle"] == "30"
    finally:
        engine.dispose()


def test_a_views_server_that_never_answers_fails_the_connect_instead_of_hanging():
    import socket
    import threading

    from sqlalchemy.exc import OperationalError

    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never speaks
    port = silent.getsockname()[1]
    engine = make_engine(
        f"postgresql+psycopg://u@127.0.0.1:{port}/db?connect_timeout=1", writer=False
    )
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            engine.connect().close()
        except BaseException as e:  # what the thread saw, checked below
            outcome.append(e)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(60)  # libpq's default is to wait forever
    silent.close()
    engine.dispose()
    assert not worker.is_alive(), "the connect did not give up"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)


def test_the_raw_cursor_reads_and_writes_raise_what_sqlalchemy_would(
    tmp_path: Path, postgres_url: str
) -> None:
    """The projector's plain-SQL reads and bulk writes go around SQLAlchemy's execution, so
    their driver errors are turned into SQLAlchemy's: a lost PostgreSQL connection is then
    "views unavailable, try again" (`retry`), not an internal error."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    from ledgerflow.services.projector.database import retry
    from ledgerflow.services.projector.sql import execute_many, fetch_all

    for url in (f"sqlite:///{tmp_path / 'views.db'}", postgres_url):
        engine = make_engine(url, writer=True)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS raw_errors")
                conn.exec_driver_sql("CREATE TABLE raw_errors (a INTEGER PRIMARY KEY)")
                execute_many(conn, "INSERT INTO raw_errors VALUES (?)", [(1,)])
            with engine.begin() as conn, pytest.raises(IntegrityError):
                execute_many(conn, "INSERT INTO raw_errors VALUES (?)", [(1,)])
            with engine.connect() as conn:
                if url.startswith("postgresql"):  # the server ends this session
                    pid = fetch_all(conn, "SELECT pg_backend_pid()", ())[0][0]
                    with engine.connect() as other:
                        other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
                    sql = "SELECT a FROM raw_errors WHERE a = ?"
                else:
                    sql = "SELECT a FROM no_such_table WHERE a = ?"
                with pytest.raises(OperationalError):
                    fetch_all(conn, sql, (1,))
                with pytest.raises(Unavailable, match="reading failed"):
                    retry(lambda q=sql: fetch_all(conn, q, (1,)), "reading")
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS raw_errors")
            engine.dispose()


def test_a_views_file_locked_at_begin_raises_what_sqlalchemy_would(tmp_path: Path) -> None:
    """The SQLite views' BEGIN IMMEDIATE runs on the driver's connection: a file another
    process holds locked is SQLAlchemy's OperationalError, which the projector retries."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    path = tmp_path / "views.db"
    engine = make_engine(f"sqlite:///{path}", writer=True)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with engine.connect() as conn:  # the pool hands this connection out again below
            conn.connection.driver_connection.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"), engine.begin():
            pass
        holder.execute("ROLLBACK")
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        holder.close()
        engine.dispose()
