"""`GET /api/v1/operations` on a real `ledgerflow server` process: a dead letter with its
reason, a webhook whose receiver is down with its backlog and error, jobs and projector
lag; and with auth on, admins only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap
from tests.conftest import free_port
from tests.integration.gateway_fixture import GatewayProcess

API = "/api/v1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayProcess]:
    g = GatewayProcess(tmp_path / "data", tmp_path / "server.log", command="server").start()
    yield g
    g.stop()


def _until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_operations_show_dead_letters_a_failing_webhook_and_the_projector_caught_up(server):
    http = httpx.Client(base_url=server.url, timeout=30)
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    r = http.post(f"{API}/webhooks", json={"name": "down", "url": down, "events": ["run.*"]})
    assert r.status_code == 201, r.text
    exp = http.post(f"{API}/experiments", json={"name": "ops"}).json()["experiment_id"]
    run = http.post(f"{API}/runs", json={"experiment_id": exp, "user_id": "u"}).json()
    # an event its stream contradicts, appended to the same log by another process
    backend = bootstrap(load_settings(tracking_uri=str(server.data_dir)))
    try:
        bad = p.RunMetricsLogged(run_id="no-such-run", points=(("m", 1.0, 1, 0),))
        backend.log.append([Event.of(bad, actor="user:test")])
    finally:
        backend.close()

    def failing() -> dict | None:
        doc = http.get(f"{API}/operations").json()
        hook = doc["webhooks"][0] if doc["webhooks"] else {}
        return doc if doc["dead_letters"]["count"] and hook.get("attempts") else None

    doc = _until(failing)
    assert doc, http.get(f"{API}/operations").text
    letters = doc["dead_letters"]
    assert letters["count"] == 1
    (letter,) = letters["latest"]
    assert letter["type"] == "run.metrics_logged" and letter["kind"] == "rejected"
    assert "no-such-run" in letter["reason"] and letter["stream"] == "run:no-such-run"
    (hook,) = doc["webhooks"]
    assert hook["name"] == "down" and hook["active"]
    assert hook["pending"] >= 1 and not hook["pending_capped"]
    assert hook["oldest_pending_age_s"] >= 0 and hook["last_error"]
    assert hook["next_attempt_time"] is not None
    (lag,) = doc["projector"]
    assert lag["partition"] == "" and lag["events_behind"] == 0 and lag["seconds_behind"] == 0
    assert lag["head"] == lag["applied"] and lag["head"] >= 3
    assert doc["jobs"] == {} and doc["deployments"] == []
    assert doc["model_servers"] == []  # the replica the server hosts has nothing to serve
    assert run["run_id"]
    spec = http.get("/openapi.json").json()
    assert "/api/v1/operations" in spec["paths"]


def test_with_auth_on_only_admins_see_operations(tmp_path: Path) -> None:
    server = GatewayProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        command="server",
        extra=("--auth",),
        env={"LEDGERFLOW_ADMIN_USER": "admin", "LEDGERFLOW_ADMIN_PASSWORD": "admin-pass-1"},
    )
    server.start()
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        admin = ("admin", "admin-pass-1")
        r = http.post(f"{API}/users", json={"name": "ann", "password": "ann-pass-123"}, auth=admin)
        assert r.status_code in (200, 201), r.text
        assert http.get(f"{API}/operations").status_code == 401
        r = http.get(f"{API}/operations", auth=("ann", "ann-pass-123"))
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        r = http.get(f"{API}/operations", auth=admin)
        assert r.status_code == 200 and r.json()["dead_letters"]["count"] == 0
    finally:
        server.stop()
