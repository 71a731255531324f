"""The gateway's /metrics, read from a real gateway: requests labelled by the route
template (never the raw path), their status and latency, events ingested and batches, and
the live subscribers gauge; each app has its own registry."""

from __future__ import annotations

import httpx

import ledgerflow as lf
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from tests.integration.gateway_fixture import GatewayThread
from tests.metrics_text import kinds, sample

API = "/api/v1"


def _metric_event(run_id: str) -> dict[str, object]:
    ev = Event.of(p.RunMetricsLogged(run_id=run_id, points=(("loss", 1.0, 1, 0),)), actor="x")
    return {**ev.envelope(), "data": ev.data.model_dump(mode="json")}


def _run(gateway: GatewayThread) -> str:
    client = lf.Client(tracking_uri=gateway.url)
    return client.create_run(client.create_experiment("metrics")).info.run_id


def test_requests_are_counted_by_route_template_status_and_latency(
    gateway: GatewayThread,
) -> None:
    run_id = _run(gateway)
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        before = http.get("/metrics").text
        for _ in range(3):
            assert http.get(f"{API}/runs/{run_id}").status_code == 200
        assert http.get(f"{API}/runs/no-such-run").status_code == 404
        assert http.get("/nowhere").status_code == 404
        body = {"events": [_metric_event(run_id), _metric_event(run_id)], "wait": True}
        assert http.post(f"{API}/events", json=body).status_code == 200
        r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = f"{API}/runs/{{run_id}}"

    def grew(name: str, **labels: str) -> float:
        return (sample(text, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    requests = "ledgerflow_gateway_requests_total"
    assert grew(requests, route=route, method="GET", status="200") == 3
    assert grew(requests, route=route, method="GET", status="404") == 1
    assert run_id not in text  # raw paths never become labels
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert sample(text, "ledgerflow_gateway_requests_total", **unmatched) == 1
    latency = "ledgerflow_gateway_request_duration_seconds_count"
    assert grew(latency, route=route, method="GET") == 4
    assert sample(text, "ledgerflow_gateway_ingest_events_total") == 2
    assert sample(text, "ledgerflow_gateway_ingest_batches_total") == 1
    # clients' streams only: the gateway's read-cache invalidator is not one
    assert sample(text, "ledgerflow_gateway_subscribers") == 0
    assert kinds(text)["ledgerflow_gateway_request_duration_seconds"] == "histogram"


def test_an_invalid_request_is_counted_with_its_status(gateway: GatewayThread) -> None:
    run_id = _run(gateway)
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        assert http.get(f"{API}/runs/{run_id}/metrics/history").status_code == 400  # no key
        text = http.get("/metrics").text
    route = f"{API}/runs/{{run_id}}/metrics/history"
    labels = {"route": route, "method": "GET", "status": "400"}
    assert sample(text, "ledgerflow_gateway_requests_total", **labels) == 1


def test_mlflow_calls_are_counted_by_their_path_and_unknown_ones_as_unserved(
    gateway: GatewayThread,
) -> None:
    """MLflow's fixed paths are served from a table ahead of the routes: their requests are
    still labelled by the path they are served at, a wrong method falls through to the
    routes (MLflow's 501 for what is not served here), and a 404 names the run."""
    mlflow = "/api/2.0/mlflow"
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        before = http.get("/metrics").text
        exp = http.post(f"{mlflow}/experiments/create", json={"name": "fixed-paths"})
        assert exp.status_code == 200, exp.text
        got = http.get(
            f"{mlflow}/experiments/get", params={"experiment_id": exp.json()["experiment_id"]}
        )
        assert got.status_code == 200 and got.json()["experiment"]["name"] == "fixed-paths"
        missing = http.get(f"{mlflow}/runs/get", params={"run_id": "no-such-run"})
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        head = http.head(f"{mlflow}/experiments/get", params={"experiment_id": "0"})
        assert head.status_code == 200 and head.content == b""
        wrong = http.put(f"{mlflow}/experiments/get", json={})
        assert wrong.status_code == 501 and wrong.json()["error_code"] == "NOT_IMPLEMENTED"
        text = http.get("/metrics").text

    def grew(**labels: str) -> float:
        name = "ledgerflow_gateway_requests_total"
        return (sample(text, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    assert grew(route=f"{mlflow}/experiments/create", method="POST", status="200") == 1
    assert grew(route=f"{mlflow}/experiments/get", method="GET", status="200") == 1
    assert grew(route=f"{mlflow}/runs/get", method="GET", status="404") == 1
    assert grew(route=f"{mlflow}/{{rest:path}}", method="PUT", status="501") == 1
