"""`ledgerflow server`: gateway, projector and webhook dispatcher in one process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

import ledgerflow as lf
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from ledgerflow.services.gateway.proto.ledgerflow_pb2_grpc import LedgerflowStub
from tests.conftest import PYTHON, free_port, python_env
from tests.integration.gateway_fixture import GatewayProcess, SSEReader
from tests.integration.webhook_receiver import Receiver
from tests.metrics_text import sample
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

REMOTE = """
import sys
import ledgerflow as lf
lf.set_experiment("shared")
with lf.start_run(run_name="remote") as run:
    lf.log_param("lr", 0.1)
    lf.log_metric("loss", 0.5, step=1)
    lf.log_text("weights", "model/weights.txt")
lf.register_model(f"runs:/{run.info.run_id}/model", "served")
print(run.info.run_id)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayProcess]:
    grpc_port = free_port()
    s = GatewayProcess(
        tmp_path / "data", tmp_path / "server.log", command="server",
        extra=("--grpc-port", str(grpc_port)),
    )  # fmt: skip
    s.grpc_port = grpc_port  # type: ignore[attr-defined]
    s.start()
    yield s
    s.stop()


def log_remotely(server: GatewayProcess, tmp_path: Path) -> str:
    env = python_env() | {
        "LEDGERFLOW_TRACKING_URI": server.url,
        "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool"),
    }
    out = subprocess.run(
        [PYTHON, "-c", REMOTE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def grpc_events(server: GatewayProcess, after: str = "", limit: int | None = None) -> list[Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")  # type: ignore[attr-defined]
    try:
        call = LedgerflowStub(channel).Subscribe(pb.SubscribeRequest(after=after), timeout=30)
        out = []
        for message in call:
            out.append(message)
            if message.type == "model.version_created" or len(out) == limit:
                break
        call.cancel()
        return out
    finally:
        channel.close()


def sse_events(server: GatewayProcess, after: str = "", limit: int | None = None) -> list[Any]:
    reader = SSEReader(server.url, {"after": after} if after else {})
    out: list[Any] = []
    try:
        while not out or (out[-1].event != "model.version_created" and len(out) != limit):
            got = reader.next()
            assert got is not None, "the stream ended early"
            out.append(got)
    finally:
        reader.close()
    return out


def test_grpc_and_sse_subscribers_see_the_same_events_in_stream_order_and_resume(
    server: GatewayProcess, tmp_path: Path
) -> None:
    log_remotely(server, tmp_path)
    over_grpc = [(m.stream, m.id, m.token) for m in grpc_events(server)]
    over_sse = [(json.loads(m.data)["stream"], json.loads(m.data)["id"], m.id)
                for m in sse_events(server)]  # fmt: skip
    assert [e[:2] for e in over_grpc] == [e[:2] for e in over_sse]
    assert len({e[1] for e in over_grpc}) == len(over_grpc)  # no duplicate

    # Disconnect after three events, resume from the last token: the rest, no gap.
    first = grpc_events(server, limit=3)
    rest = grpc_events(server, after=first[-1].token)
    assert [m.id for m in first + rest] == [e[1] for e in over_grpc]
    head = sse_events(server, limit=3)
    tail = sse_events(server, after=head[-1].id)
    assert [m.id for m in head + tail] == [e[2] for e in over_sse]

    # each subscription the client ended is counted as cancelled once it is over
    def cancelled() -> float:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        labels = {"service": "ledgerflow.v1.Ledgerflow", "method": "Subscribe"}
        return (
            sample(text, "ledgerflow_gateway_grpc_requests_total", **labels, code="CANCELLED") or 0
        )

    wait_until(lambda: cancelled() == 3, 10, "three cancelled subscriptions on /metrics")


def test_a_command_executed_over_the_servers_grpc_port_is_what_its_rest_route_shows(
    server: GatewayProcess,
) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")  # type: ignore[attr-defined]
    try:
        stub = LedgerflowStub(channel)
        body = json.dumps({"name": "grpc-made", "tags": {"team": "cv"}}).encode()
        reply = stub.Execute(
            pb.CommandRequest(command="CreateRegisteredModel", body=body),
            metadata=(("x-ledgerflow-actor", "user:ana"),), timeout=30,
        )  # fmt: skip
        made = json.loads(reply.body)
        shown = httpx.get(f"{server.url}/api/v1/registered-models/grpc-made", timeout=10).json()
        assert made == shown and shown["tags"] == {"team": "cv"}
        with pytest.raises(grpc.RpcError) as e:
            stub.Execute(pb.CommandRequest(command="CreateRegisteredModel", body=body), timeout=30)
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    finally:
        channel.close()
    # both calls counted by status code, beside the REST requests on the same /metrics
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    execute = {"service": "ledgerflow.v1.Ledgerflow", "method": "Execute"}
    assert sample(metrics, "ledgerflow_gateway_grpc_requests_total", **execute, code="OK") == 1
    assert (
        sample(metrics, "ledgerflow_gateway_grpc_requests_total", **execute, code="ALREADY_EXISTS")
        == 1
    )
    assert sample(metrics, "ledgerflow_gateway_grpc_request_duration_seconds_count", **execute) == 2


def test_with_auth_on_the_servers_grpc_port_wants_credentials_and_records_their_owner(
    tmp_path: Path,
) -> None:
    from ledgerflow.events import auth_commands as ac
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap

    data = tmp_path / "data"
    backend = bootstrap(load_settings(tracking_uri=str(data)))
    try:
        backend.auth.ensure_admin("admin", "admin-password-1", actor="setup")
        token = backend.auth.execute(ac.CreateToken(user="admin"), actor="setup")
    finally:
        backend.close()
    grpc_port = free_port()
    server = GatewayProcess(
        data, tmp_path / "server.log", command="server", extra=("--grpc-port", str(grpc_port)),
        env={"LEDGERFLOW_AUTH": "true"},
    ).start()  # fmt: skip
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = LedgerflowStub(channel)
            create = pb.CommandRequest(command="CreateRegisteredModel", body=b'{"name": "m"}')
            with pytest.raises(grpc.RpcError) as e:
                stub.Execute(create, metadata=(("x-ledgerflow-actor", "admin"),), timeout=30)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            bearer = (("authorization", f"Bearer {token.token}"),)
            assert json.loads(stub.Execute(create, metadata=bearer, timeout=30).body)["name"] == "m"
            found = stub.GetLatestVersions(pb.GetLatestVersionsRequest(name="m"), metadata=bearer)
            assert list(found.versions) == []
        log = SQLiteEventLog(str(data / "events.db"))
        events = list(log.read())
        log.close()
        assert events[-1].event.actor == f"admin#token:{token.id}"
    finally:
        server.stop()


def test_one_server_process_serves_the_sdk_projects_the_log_and_delivers_webhooks(
    server: GatewayProcess, tmp_path: Path
) -> None:
    receiver = Receiver().up()
    try:
        hook = lf.Client(str(server.data_dir)).create_webhook("registry", receiver.url, ["model.*"])
        receiver.secret = hook.secret or ""
        run_id = log_remotely(server, tmp_path)
        run = httpx.get(f"{server.url}/api/v1/runs/{run_id}", timeout=10).json()
        assert run["data"]["params"] == {"lr": "0.1"}
        receiver.wait_for(2)  # model.created and model.version_created, signed, in order
        assert not receiver.rejected

        # A writer that appended but died before projecting: the server's projector folds it.
        log = SQLiteEventLog(server.data_dir / "events.db")
        log.append([Event.of(p.RunTagsSet(run_id=run_id, tags={"late": "yes"}))])
        log.close()

        def projected() -> bool:  # read the view itself: a gateway read would catch up
            with sqlite3.connect(server.data_dir / "views.db") as conn:
                row = conn.execute(
                    "SELECT value FROM tags WHERE run_id = ? AND key = 'late'", (run_id,)
                ).fetchone()
            return row == ("yes",)

        wait_until(projected, 30)
    finally:
        receiver.down()


def test_stopping_a_healthy_server_is_an_interrupt_not_a_failure(server: GatewayProcess) -> None:
    server.stop()  # SIGINT, as Ctrl-C: the watched threads stop when asked, no failure
    assert server.proc is not None and server.proc.returncode == 130, server.output()
    assert "background service stopped" not in server.output()


def test_a_dead_projector_fails_health_and_stops_the_server_with_status_1(
    server: GatewayProcess,
) -> None:
    # Someone drops the projector's offsets: its next catch-up fails and the thread dies.
    with sqlite3.connect(server.data_dir / "views.db") as conn:
        conn.execute("DROP TABLE projector_offsets")
    log = SQLiteEventLog(server.data_dir / "events.db")
    log.append(
        [Event.of(p.ExperimentCreated(experiment_id="wake", name="wake-up", artifact_location="x"))]
    )
    log.close()

    seen: dict[str, Any] = {}

    def unhealthy() -> bool:
        try:
            r = httpx.get(f"{server.url}/health", timeout=5)
        except httpx.TransportError:
            return False
        seen.update(status=r.status_code, body=r.json())
        return r.status_code == 503

    wait_until(unhealthy, 30)
    assert seen["body"]["status"] == "failing"
    assert "projector" in seen["body"]["failed"]
    assert server.proc is not None
    assert server.proc.wait(timeout=30) == 1
    assert "a background service stopped (projector:" in server.output()


def test_the_server_refuses_to_serve_another_gateway(tmp_path: Path) -> None:
    out = subprocess.run(
        [PYTHON, "-m", "ledgerflow", "--tracking-uri", "http://127.0.0.1:9", "server"],
        env=python_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 1
    assert "serves a data directory" in out.stderr and "Traceback" not in out.stderr


POLICY = """
import numpy as np
from sklearn.linear_model import LogisticRegression
import ledgerflow as lf

X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
y = (X[:, 0] > 0).astype("int64")
with lf.start_run() as run:
    lf.sklearn.log_model(LogisticRegression().fit(X, y), name="model", input_example=X[:5])
mv = lf.register_model(f"runs:/{run.info.run_id}/model", "policy-model")
lf.bundles.set_policy("policy-model", on_alias=["champion"], targets=["onnx"])
lf.Client().set_registered_model_alias("policy-model", "champion", mv.version)
print(mv.version)
"""


def test_the_server_builds_bundles_when_a_policy_alias_is_set(
    server: GatewayProcess, tmp_path: Path
) -> None:
    env = python_env() | {
        "LEDGERFLOW_TRACKING_URI": server.url,
        "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool"),
    }
    out = subprocess.run(
        [PYTHON, "-c", POLICY], env=env, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    version = int(out.stdout.strip().splitlines()[-1])
    local = lf.Client(str(server.data_dir))
    wait_until(lambda: bool(local.list_bundles("policy-model", version)), 240, server.output)
    [bundle] = local.list_bundles("policy-model", version)
    assert bundle.target == "onnx" and bundle.status == "built"
