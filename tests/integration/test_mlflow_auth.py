"""MLflow's client against `ledgerflow server --auth`: it signs in with MLflow's own
variables (Basic from MLFLOW_TRACKING_USERNAME/PASSWORD, Bearer from MLFLOW_TRACKING_TOKEN
holding a Ledgerflow API token), the events name who signed in, a caller without EDIT
cannot log to an experiment's runs, and every MLflow route of the app (as `create_app`
builds it, so routes added later are walked too) refuses a caller without credentials."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.gateway.route_table import api_routes, fixed_paths
from tests.integration.gateway_fixture import GatewayProcess

pytestmark = pytest.mark.usefixtures("mlflow_client_settings")

ADMIN = ("admin", "admin-password-1")
PASSWORD = "user-password-1"
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/", "/api/3.0/")
T0 = 1_700_000_000_000


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ledgerflow server --auth` with an admin; nobody else may see anything unless granted."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    env = {
        "LEDGERFLOW_ADMIN_USER": ADMIN[0],
        "LEDGERFLOW_ADMIN_PASSWORD": ADMIN[1],
        "LEDGERFLOW_AUTH_DEFAULT": "NO_PERMISSIONS",
        # the route walk fails to sign in many times; the throttle has its own tests
        "LEDGERFLOW_AUTH_FAILURES_PER_USER": "0",
        "LEDGERFLOW_AUTH_FAILURES_PER_CLIENT": "0",
    }
    server = GatewayProcess(
        root / "data", root / "server.log", command="server", extra=("--auth",), env=env
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def as_admin(url: str, method: str, path: str, **body: Any) -> Any:
    r = httpx.request(method, url + path, json=body or None, headers=basic(*ADMIN), timeout=30)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.content else None


def new_user(url: str, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    as_admin(url, "POST", "/api/v1/users", name=name, password=PASSWORD)
    return name


def grant(url: str, experiment_id: str, user: str, level: str) -> None:
    as_admin(url, "PUT", f"/api/v1/permissions/experiment/{experiment_id}/user:{user}", level=level)


def run_events(url: str, run_id: str) -> list[tuple[str, str]]:
    """(type, actor) of a run's events, oldest first, as the admin reads the audit trail
    (`user#token:<id>` for what a token did)."""
    entries = as_admin(url, "GET", f"/api/v1/audit?entity=run:{run_id}")["entries"]
    return [
        (e["type"], e["actor"] + (f"#token:{e['token_id']}" if e["token_id"] else ""))
        for e in reversed(entries)
    ]


def test_mlflows_client_logs_with_basic_credentials_and_the_events_name_the_user(
    fluent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = new_user(fluent, "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", alice)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    mlflow.set_experiment(f"alice-{uuid.uuid4().hex[:6]}")  # her own: she may MANAGE it
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.set_tag("who", "alice")
    got = MlflowClient(fluent).get_run(run.info.run_id)
    assert got.info.user_id == alice and got.info.status == "FINISHED"
    events = run_events(fluent, run.info.run_id)
    assert [t for t, _ in events] == [
        "run.started", "run.params_logged", "run.metrics_logged", "run.tags_set", "run.finished",
    ]  # fmt: skip
    assert {actor for _, actor in events} == {alice}


def test_mlflows_client_logs_with_a_ledgerflow_token_as_its_user(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = new_user(url, "bob")
    token = as_admin(url, "POST", "/api/v1/tokens", user=bob)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token["token"])
    c = MlflowClient(url)
    eid = c.create_experiment(f"bob-{uuid.uuid4().hex[:6]}")
    rid = c.create_run(eid, tags={"mlflow.user": "someone-else"}).info.run_id
    c.log_batch(rid, metrics=[Metric("m", 1.0, T0, 0)])
    c.set_terminated(rid)
    assert c.get_run(rid).info.user_id == bob  # the caller, whatever the client says
    events = run_events(url, rid)
    assert [t for t, _ in events] == ["run.started", "run.metrics_logged", "run.finished"]
    assert {actor for _, actor in events} == {f"{bob}#token:{token['id']}"}


def test_without_credentials_mlflows_client_is_unauthenticated(url: str) -> None:
    with pytest.raises(MlflowException) as refused:
        MlflowClient(url).search_experiments()
    assert refused.value.error_code == "UNAUTHENTICATED"
    r = httpx.post(url + "/api/2.0/mlflow/experiments/search", json={}, timeout=30)
    assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert httpx.get(url + "/version", timeout=30).status_code == 200  # probed before sign-in


def test_a_user_without_edit_cannot_log_to_an_experiments_runs_and_nothing_is_logged(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = MlflowClient(url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    eid = admin.create_experiment(f"guarded-{uuid.uuid4().hex[:6]}")
    rid = admin.create_run(eid).info.run_id
    reader = new_user(url, "reader")
    grant(url, eid, reader, "READ")
    before = run_events(url, rid)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", reader)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    c = MlflowClient(url)
    assert c.get_run(rid).info.run_id == rid  # READ is enough to read
    writes = {
        "log_metric": lambda: c.log_metric(rid, "m", 1.0),
        "log_param": lambda: c.log_param(rid, "p", "1"),
        "set_tag": lambda: c.set_tag(rid, "k", "v"),
        "log_batch": lambda: c.log_batch(rid, metrics=[Metric("m", 1.0, T0, 0)]),
        "update_run": lambda: c.update_run(rid, status="FAILED"),
        "delete_run": lambda: c.delete_run(rid),
        "create_run": lambda: c.create_run(eid),
        "set_experiment_tag": lambda: c.set_experiment_tag(eid, "k", "v"),
    }
    for what, write in writes.items():
        with pytest.raises(MlflowException) as refused:
            write()
        assert refused.value.error_code == "PERMISSION_DENIED", what
    r = httpx.post(
        url + "/api/2.0/mlflow/runs/log-metric",
        json={"run_id": rid, "key": "m", "value": 1.0, "timestamp": T0},
        headers=basic(reader, PASSWORD),
        timeout=30,
    )
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert run_events(url, rid) == before
    assert admin.get_run(rid).data.metrics == {}

    grant(url, eid, reader, "EDIT")
    c.log_metric(rid, "m", 2.0)
    assert run_events(url, rid)[-1] == ("run.metrics_logged", reader)


def mlflow_routes(folder: Path) -> list[tuple[str, str]]:
    """(method, path) of every MLflow route of the app as `create_app` builds it."""
    from ledgerflow.services.gateway.app import create_app

    backend = bootstrap(load_settings(tracking_uri=str(folder), auth=True))
    try:
        app = create_app(backend)
        routed = [
            (method, path)
            for path, route in api_routes(app)
            if path.startswith(MLFLOW_PREFIXES)
            for method in route.methods or ()
            if method != "HEAD"
        ]
        return sorted(routed + [(f.method, f.path) for f in fixed_paths(app)])
    finally:
        backend.close()


def test_every_mlflow_route_refuses_a_caller_without_credentials(url: str, tmp_path: Path) -> None:
    routes = mlflow_routes(tmp_path / "routes")
    paths = {p for _, p in routes}
    for family in ("/experiments/create", "/runs/log-batch", "/metrics/get-history"):
        assert {"/api/2.0/mlflow" + family, "/ajax-api/2.0/mlflow" + family} <= paths
    assert "/api/3.0/mlflow/server-info" in paths
    with httpx.Client(timeout=30) as http:
        for method, path in routes:
            concrete = re.sub(r"\{(\w+)(:path)?\}", "x", path)
            r = http.request(method, url + concrete, json={} if method != "GET" else None)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.json()["error_code"] == "UNAUTHENTICATED", (method, path)
