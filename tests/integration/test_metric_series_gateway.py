"""Metric series over a real gateway: GET for one run and metric, POST for several, the
remote Client reading the same objects as the embedded one, NaN and infinities as the
strings the metric history route uses, and errors in the gateway's error shape."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest

import ledgerflow as lf
from ledgerflow.entities import Metric
from ledgerflow.exceptions import InvalidInput
from tests.integration.gateway_fixture import GatewayThread, SSEReader

API = "/api/v1"


@pytest.fixture
def http(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


def _value(step: int) -> float:
    return {10: math.nan, 20: math.inf, 4_000: 99.0}.get(step, step / 1000)


@pytest.fixture
def run_id(remote: GatewayThread) -> str:
    client = lf.Client()
    run_id = client.create_run(client.create_experiment("charts")).info.run_id
    client.log_batch(run_id, metrics=[Metric("m", _value(s), 1_000 + s, s) for s in range(5_000)])
    client.log_batch(run_id, metrics=[Metric("n", 1.0, 1_000 + s, s) for s in range(3)])
    client.get_run(run_id)  # ships the client's spool before the raw HTTP reads below
    return run_id


def test_one_series_over_get_keeps_the_spike_and_encodes_non_finite_values(http, run_id):
    r = http.get(f"{API}/runs/{run_id}/metrics/series", params={"key": "m", "points": 100})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {
        "run_id", "key", "x", "count", "downsampled", "xs", "values", "mins", "maxs", "timestamps"
    }  # fmt: skip
    assert doc["run_id"] == run_id and doc["key"] == "m" and doc["x"] == "step"
    assert doc["count"] == 5_000 and doc["downsampled"] and len(doc["xs"]) == 100
    assert 99.0 in doc["maxs"] and "Infinity" in doc["maxs"]
    zoom = http.get(
        f"{API}/runs/{run_id}/metrics/series",
        params={"key": "m", "points": 100, "start": 5, "end": 25},
    ).json()
    assert not zoom["downsampled"] and zoom["xs"] == list(range(5, 26))
    assert zoom["values"][5] == "NaN" and zoom["values"][15] == "Infinity"
    assert zoom["timestamps"] == [1_000 + s for s in range(5, 26)]


def test_several_series_over_post_in_the_order_asked(http, run_id):
    body = {"series": [{"run_id": run_id, "key": "n"}, {"run_id": run_id, "key": "m"}]}
    r = http.post(f"{API}/metrics/series", json=dict(body, points=10, x="time"))
    assert r.status_code == 200, r.text
    n, m = r.json()["series"]
    assert n["key"] == "n" and n["values"] == [1.0, 1.0, 1.0] and not n["downsampled"]
    assert m["x"] == "time" and m["downsampled"] and m["xs"] == m["timestamps"]


def test_the_remote_client_reads_what_the_embedded_one_reads(remote, run_id):
    client = lf.Client()
    over_http = client.get_metric_series(run_id, "m", points=50, start=100, end=4_500)
    embedded = lf.Client(backend=remote.backend).get_metric_series(
        run_id, "m", points=50, start=100, end=4_500
    )
    assert over_http == embedded and over_http.downsampled
    both = client.get_metric_series_bulk([(run_id, "m"), (run_id, "n")], points=20)
    assert [s.key for s in both] == ["m", "n"] and both[1].count == 3
    with pytest.raises(InvalidInput) as e:
        client.get_metric_series(run_id, "m", x="wall")
    assert e.value.field == "x"


def test_bad_series_requests_are_400s_naming_the_field(http, run_id):
    url = f"{API}/runs/{run_id}/metrics/series"
    for params, field in (
        ({"key": "m", "points": 1}, "points"),
        ({"key": "m", "points": "many"}, "points"),
        ({"key": "m", "x": "wall"}, "x"),
        ({"key": "m", "start": 9, "end": 3}, "start"),
        ({}, "key"),
    ):
        r = http.get(url, params=params)
        assert r.status_code == 400 and r.json()["field"] == field, (params, r.text)
    many = {"series": [{"run_id": run_id, "key": "m"}] * 101}
    r = http.post(f"{API}/metrics/series", json=many)
    assert r.status_code == 400 and r.json()["field"] == "series"
    r = http.post(f"{API}/metrics/series", json={"series": [{"run_id": "nope", "key": "m"}]})
    assert r.status_code == 404 and r.json()["kind"] == "run"
    spec = http.get("/openapi.json").json()
    assert {"/api/v1/runs/{run_id}/metrics/series", "/api/v1/metrics/series"} <= set(spec["paths"])


def test_following_the_stream_from_a_series_answer_gives_every_later_point_once(
    http, run_id, remote
):
    """A live chart asks for its series, then follows the event stream from the log
    position the answer reflects (`after`): the points logged in between arrive on the
    stream, and none the answer already held."""
    body = {"series": [{"run_id": run_id, "key": "n"}], "points": 10}
    answer = http.post(f"{API}/metrics/series", json=body).json()
    assert answer["after"] == remote.backend.projector.checkpoint().encode()
    assert answer["series"][0]["count"] == 3
    client = lf.Client()
    client.log_batch(run_id, metrics=[Metric("n", 2.0, 9_000 + s, 3 + s) for s in range(2)])
    client.get_run(run_id)  # shipped and projected before the stream is opened
    stream = SSEReader(
        remote.url, {"types": "run.metrics_logged", "after": answer["after"], "until": head(http)}
    )
    try:
        steps = []
        while (message := stream.next()) is not None and message.event == "run.metrics_logged":
            data = json.loads(message.data)["data"]
            steps += [step for key, _, _, step in data["points"] if key == "n"]
    finally:
        stream.close()
    assert steps == [3, 4]  # logged after the answer; 0-2 were in it


def head(http: httpx.Client) -> str:
    return str(http.get(f"{API}/events/head").json()["token"])
