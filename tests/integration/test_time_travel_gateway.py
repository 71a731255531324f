"""Time travel over HTTP: `?as_of=` on the gateway's read routes, and a remote Client
reading a gateway's past (docs/time-travel.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

import ledgerflow as lf
from ledgerflow.events.as_of import AsOf
from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import InvalidInput
from tests.integration.gateway_fixture import GatewayThread

API = "/api/v1"
A = {"name": "a", "model": "digits", "version": 1, "weight": 100}
B = {"name": "b", "model": "digits", "version": 2, "weight": 0}


@dataclass
class Past:
    http: httpx.Client
    run: str
    experiment: str
    token: str  # the log's head before the changes
    moment: int  # a time before the changes


@pytest.fixture
def past(remote: GatewayThread) -> Iterator[Past]:
    """lr=0.1, acc=0.5, champion=1, traffic all on a; then lr2, acc=0.9, champion=2, b at 50."""
    c = lf.Client()
    exp = c.create_experiment("cv")
    run = c.create_run(exp).info.run_id
    c.log_param(run, "lr", 0.1)
    c.log_metric(run, "acc", 0.5)
    c.create_registered_model("digits")
    for _ in range(2):
        c.create_model_version("digits", f"runs:/{run}/model")
    c.set_registered_model_alias("digits", "champion", 1)
    c.create_deployment("web", [A, B])
    http = httpx.Client(base_url=remote.url + API)
    token = http.get("/events/head").json()["token"]
    moment = now_ms()
    time.sleep(0.005)
    c.log_param(run, "lr2", 0.2)
    c.log_metric(run, "acc", 0.9)
    c.set_registered_model_alias("digits", "champion", 2)
    c.transition_model_version_stage("digits", 2, "Production")
    c.set_deployment_traffic("web", {"a": 50, "b": 50})
    c.rename_experiment(exp, "vision")
    yield Past(http, run, exp, token, moment)
    http.close()


def test_read_routes_answer_as_of_a_position_or_a_time_and_name_the_position(past: Past):
    h = past.http
    for as_of in (past.token, str(past.moment), AsOf(time_ms=past.moment).encode()):
        q = {"as_of": as_of}
        got = h.get(f"/runs/{past.run}", params=q)
        assert got.status_code == 200, got.text
        assert got.headers["X-Ledgerflow-As-Of"] == past.token
        assert got.json()["data"]["params"] == {"lr": "0.1"}
        found = h.post("/runs/search", params=q, json={"experiment_ids": [past.experiment]})
        assert [r["data"]["metrics"] for r in found.json()["runs"]] == [{"acc": 0.5}]
        history = h.get(f"/runs/{past.run}/metrics/history", params={**q, "key": "acc"})
        assert history.json()["values"] == [0.5]
        assert h.get(f"/experiments/{past.experiment}", params=q).json()["name"] == "cv"
        assert [e["name"] for e in h.get("/experiments", params=q).json()] == ["cv"]
        alias = h.get("/registered-models/digits/aliases/champion", params=q).json()
        assert alias["version"] == 1
        version = h.get("/registered-models/digits/versions/2", params=q).json()
        assert version["current_stage"] == "None"
        model = h.get("/registered-models/digits", params=q).json()
        assert model["aliases"] == {"champion": 1}
        versions = h.post("/model-versions/search", params=q, json={}).json()
        assert sorted(v["version"] for v in versions["model_versions"]) == [1, 2]
        deployment = h.get("/deployments/web", params=q).json()
        assert {v["name"]: v["weight"] for v in deployment["variants"]} == {"a": 100, "b": 0}
        changes = h.get("/deployments/web/history", params=q).json()
        assert [c["type"] for c in changes] == ["deployment.created"]
    now = h.get("/registered-models/digits/aliases/champion")
    assert now.json()["version"] == 2 and "X-Ledgerflow-As-Of" not in now.headers


def test_a_run_that_did_not_exist_yet_is_not_found_as_of_then(past: Past):
    got = past.http.get(f"/runs/{past.run}", params={"as_of": "1"})
    assert got.status_code == 404


def test_as_of_past_the_head_or_malformed_is_a_400_naming_as_of(past: Past):
    head = int(past.http.get("/events/head").json()["token"])
    for bad in (str(head + 1), "yesterday", "\u00b2", "99999999999999999999", "p/0=x"):
        got = past.http.get(f"/runs/{past.run}", params={"as_of": bad})
        assert got.status_code == 400 and got.json()["field"] == "as_of", got.text


def test_as_of_on_a_command_or_a_route_about_now_is_refused_not_ignored(past: Past):
    h = past.http
    head = h.get("/events/head").json()["token"]
    made = h.post("/experiments", params={"as_of": past.token}, json={"name": "new"})
    assert made.status_code == 400 and "read-only" in made.json()["message"]
    tags = h.put(f"/runs/{past.run}/tags", params={"as_of": past.token}, json={"tags": {"a": 1}})
    assert tags.status_code == 400 and tags.json()["field"] == "as_of"
    assert h.get("/events/head").json()["token"] == head  # nothing was appended
    for route in ("/whoami", "/deployments/web/analysis"):
        got = h.get(route, params={"as_of": past.token})
        assert got.status_code == 400 and "takes no as_of" in got.json()["message"], route


def test_the_head_as_of_a_time_is_the_position_the_log_had_reached(past: Past):
    got = past.http.get("/events/head", params={"as_of": str(past.moment)})
    assert got.json()["token"] == past.token
    assert past.http.get("/events/head", params={"as_of": "1990-01-01"}).json()["token"] == ""


def test_a_remote_client_as_of_reads_the_gateways_past_and_refuses_commands(past: Past):
    for point in (past.token, past.moment):
        c = lf.Client(as_of=point)
        assert c.get_run(past.run).data.params == {"lr": "0.1"}
        assert [r.data.metrics for r in c.search_runs([past.experiment])] == [{"acc": 0.5}]
        assert c.get_experiment(past.experiment).name == "cv"
        assert c.get_model_version_by_alias("digits", "champion").version == 1
        assert c.get_latest_versions("digits", ["Production"]) == []
        assert c.get_deployment("web").variants[0].weight == 100
        with pytest.raises(InvalidInput, match="read-only"):
            c.log_param(past.run, "x", 1)
        with pytest.raises(InvalidInput, match="read-only"):
            c.set_registered_model_alias("digits", "champion", 1)
        with pytest.raises(InvalidInput, match="read-only"):
            c.create_experiment("other")
    assert lf.Client().get_model_version_by_alias("digits", "champion").version == 2


def test_every_read_of_the_views_documents_as_of_and_nothing_else_does(remote: GatewayThread):
    doc = httpx.get(remote.url + "/openapi.json").json()
    takes = {
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if any(p["name"] == "as_of" for p in op.get("parameters", []))
    }
    for read in (
        "GET /api/v1/runs/{run_id}",
        "POST /api/v1/runs/search",
        "GET /api/v1/runs/{run_id}/metrics/history",
        "GET /api/v1/experiments",
        "GET /api/v1/experiments/{experiment_id}",
        "GET /api/v1/registered-models/{name}",
        "GET /api/v1/registered-models/{name}/versions/{version}",
        "GET /api/v1/registered-models/{name}/aliases/{alias}",
        "POST /api/v1/model-versions/search",
        "GET /api/v1/deployments/{name}",
        "GET /api/v1/deployments/{name}/history",
        "GET /api/v1/events/head",
        "GET /api/v1/runs/{run_id}/metrics/series",
        "POST /api/v1/metrics/series",
    ):
        assert read in takes, read
    assert all(
        t.startswith("GET ") or t.endswith(("/search", "/download-urls", "/metrics/series"))
        for t in takes
    )
    assert "GET /api/v1/whoami" not in takes
    assert "GET /api/v1/deployments/{name}/analysis" not in takes
    assert "GET /api/v1/webhooks/{name}/deliveries" not in takes  # not history: today's
