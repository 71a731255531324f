"""The gateway's REST API over HTTP, against a real uvicorn server and SQLite backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledgerflow.events import codec
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from tests.integration.gateway_fixture import GatewayThread
from tests.integration.s3_fixture import S3Endpoint

API = "/api/v1"


@pytest.fixture
def http(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


@pytest.fixture
def run_id(http: httpx.Client) -> str:
    exp = http.post(f"{API}/experiments", json={"name": "api"}).json()["experiment_id"]
    r = http.post(f"{API}/runs", json={"experiment_id": exp, "user_id": "u"})
    assert r.status_code == 201, r.text
    return str(r.json()["run_id"])


def _event(payload: p.Payload) -> dict[str, object]:
    return json.loads(codec.encode(Event.of(payload, actor="user:test")))


def test_health_answers_and_openapi_documents_every_route_with_a_summary_and_tag(http):
    assert http.get("/health").json()["status"] == "ok"
    spec = http.get("/openapi.json").json()
    ops = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    ]
    assert len(ops) >= 45
    for path, method, op in ops:
        assert op.get("summary") and op.get("tags"), f"{method.upper()} {path}"
    for path in (
        "/api/v1/events",
        "/api/v1/runs/search",
        "/api/v1/runs/{run_id}/metrics/history",
        "/api/v1/model-versions/resolve",
        "/api/v1/registered-models/{name}/aliases/{alias}",
        "/api/v1/runs/{run_id}/artifacts/upload-urls",
    ):
        assert path in spec["paths"]
    assert "ErrorOut" in spec["components"]["schemas"]


def test_an_unknown_run_is_a_404_with_the_error_body(http):
    r = http.get(f"{API}/runs/nope")
    assert r.status_code == 404
    assert r.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "no run with id 'nope'",
        "field": None,
        "kind": "run",
        "key": "nope",
    }


def test_bad_input_is_a_400_naming_the_field(http, run_id):
    r = http.get(f"{API}/runs/{run_id}/metrics/history", params={"key": "m", "max_points": 1})
    assert r.status_code == 400 and r.json()["field"] == "max_points"
    r = http.post(f"{API}/runs/{run_id}/params", json={"params": {"lr": 1}, "extra": 2})
    assert r.status_code == 400 and r.json()["field"] == "extra"
    r = http.post(f"{API}/runs/{run_id}/params", json={"params": {"bad key!": 1}})
    assert r.status_code == 400 and r.json()["field"] == "param"
    r = http.post(f"{API}/runs/{run_id}/finish", json={"status": "DONE"})
    assert r.status_code == 400 and r.json()["field"] == "status"
    for view_type in ("\u00b2", "9" * 5000):  # digits to str.isdigit(), not to int()
        r = http.get(f"{API}/experiments", params={"view_type": view_type})
        assert r.status_code == 400 and r.json()["field"] == "run_view_type", r.text


def test_a_changed_param_is_a_409(http, run_id):
    assert http.post(f"{API}/runs/{run_id}/params", json={"params": {"lr": 1}}).status_code == 204
    r = http.post(f"{API}/runs/{run_id}/params", json={"params": {"lr": 2}})
    assert r.status_code == 409 and r.json()["error_code"] == "INVALID_STATE"


def test_experiments_are_searched_by_filter_and_by_the_older_name_like(http):
    for name, team in (("it's-a", "cv"), ("it's-b", "nlp"), ("other", "cv")):
        r = http.post(f"{API}/experiments", json={"name": name, "tags": {"team": team}})
        assert r.status_code == 201, r.text

    def names(**params: object) -> list[str]:
        r = http.get(f"{API}/experiments", params=params)
        assert r.status_code == 200, r.text
        return [e["name"] for e in r.json()]

    assert names(name_like="it's%", order_by_name=True) == ["it's-a", "it's-b"]
    assert names(filter="tags.team = 'cv'", order_by=["name DESC"]) == ["other", "it's-a"]
    either = names(filter="tags.team = 'cv' OR name = 'it''s-b'", name_like="it%", order_by="name")
    assert either == ["it's-a", "it's-b"]
    r = http.get(f"{API}/experiments", params={"filter": "name = "})
    assert r.status_code == 400 and "position 7" in r.json()["message"]


def test_ingesting_a_batch_twice_stores_each_event_once(http, run_id, gateway):
    batch = [
        _event(p.RunMetricsLogged(run_id=run_id, points=(("m", 1.0, 1, i),))) for i in range(5)
    ]
    for _ in range(2):
        r = http.post(f"{API}/events", json={"events": batch, "wait": True})
        assert r.status_code == 200 and r.json()["accepted"] == 5 and r.json()["projected"]
    history = http.get(f"{API}/runs/{run_id}/metrics/history", params={"key": "m"}).json()
    assert history["steps"] == [0, 1, 2, 3, 4]
    ids = {e["id"] for e in batch}
    stored = [i.event.id for i in gateway.backend.log.read(limit=10_000) if i.event.id in ids]
    assert sorted(stored) == sorted(ids)


def test_events_ingested_without_waiting_are_visible_to_the_next_read(http, run_id):
    tags = _event(p.RunTagsSet(run_id=run_id, tags={"phase": "warmup"}))
    r = http.post(f"{API}/events", json={"events": [tags]})
    assert r.json() == {"accepted": 1, "projected": False, "rejected": []}
    assert http.get(f"{API}/runs/{run_id}").json()["data"]["tags"]["phase"] == "warmup"


def test_an_empty_waiting_ingest_answers_once_what_was_shipped_before_it_is_projected(
    tmp_path: Path,
):
    """The SDK's flush ends with `{"events": [], "wait": true}` after its background thread
    shipped without waiting: a barrier, which must hold where a projector service, not the
    gateway, keeps the views (Kafka). Here nothing projects until the test does."""
    settings = load_settings(
        tracking_uri=str(tmp_path / "data"), project_inline=False, projection_timeout_s=1
    )
    gateway = GatewayThread(settings).start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            created = _event(
                p.ExperimentCreated(experiment_id="e1", name="barrier", artifact_location="x")
            )
            assert not http.post(f"{API}/events", json={"events": [created]}).json()["projected"]
            r = http.post(f"{API}/events", json={"events": [], "wait": True})
            assert r.status_code == 504, r.text  # not projected: nobody projects here yet
            assert gateway.backend is not None
            gateway.backend.projector.catch_up()
            r = http.post(f"{API}/events", json={"events": [], "wait": True})
            assert r.status_code == 200 and r.json()["projected"], r.text
    finally:
        gateway.stop()


def test_an_invalid_event_is_refused_whole_batch_naming_the_event_and_field(http, run_id):
    good = _event(p.RunTagsSet(run_id=run_id, tags={"a": "1"}))
    bad = dict(good, id="other-id", data={"run_id": run_id, "tags": {"a": ["x"]}})
    r = http.post(f"{API}/events", json={"events": [good, bad]})
    assert r.status_code == 400
    assert r.json()["field"] == "events[1].data.tags.a"
    assert "events[1] (id other-id)" in r.json()["message"]
    assert "a" not in http.get(f"{API}/runs/{run_id}").json()["data"]["tags"]


def test_waiting_ingest_reports_events_the_projector_refused(http, run_id):
    first = _event(p.RunParamsLogged(run_id=run_id, params={"lr": "0.1"}))
    second = _event(p.RunParamsLogged(run_id=run_id, params={"lr": "0.2"}))
    http.post(f"{API}/events", json={"events": [first], "wait": True})
    r = http.post(f"{API}/events", json={"events": [second], "wait": True}).json()
    assert [x["id"] for x in r["rejected"]] == [second["id"]]
    assert "lr" in r["rejected"][0]["reason"]


def test_artifacts_stream_through_the_gateway_when_the_store_cannot_presign(http, run_id):
    up = http.post(
        f"{API}/runs/{run_id}/artifacts/upload-urls", json={"paths": ["model/w.bin", "x.txt"]}
    ).json()["files"]
    assert [f["presigned"] for f in up] == [False, False]
    stored = []
    for f, data in zip(up, [b"\x00\x01" * 1000, b"hello"], strict=True):
        r = http.put(f["url"], content=data)
        assert r.status_code == 200, r.text
        stored.append(r.json())
    assert stored[1]["size"] == 5
    assert http.get(f"{API}/runs/{run_id}/artifacts").json() == []  # stored, not committed
    r = http.post(f"{API}/runs/{run_id}/artifacts/commit", json={"files": stored})
    assert r.status_code == 204, r.text
    listing = http.get(f"{API}/runs/{run_id}/artifacts").json()
    assert [(f["path"], f["is_dir"]) for f in listing] == [("model", True), ("x.txt", False)]
    down = http.post(
        f"{API}/runs/{run_id}/artifacts/download-urls", json={"paths": ["model/w.bin"]}
    ).json()["files"]
    assert http.get(down[0]["url"]).content == b"\x00\x01" * 1000


def test_committing_an_artifact_that_was_never_uploaded_is_refused(http, run_id):
    ghost = {"path": "ghost.txt", "size": 1, "sha256": "0" * 64}
    r = http.post(f"{API}/runs/{run_id}/artifacts/commit", json={"files": [ghost]})
    assert r.status_code == 400 and "upload it first" in r.json()["message"]


def test_downloading_a_missing_artifact_is_a_404(http, run_id):
    assert http.get(f"{API}/runs/{run_id}/artifacts/content/none.txt").status_code == 404
    r = http.post(f"{API}/runs/{run_id}/artifacts/download-urls", json={"paths": ["none.txt"]})
    assert r.status_code == 404 and r.json()["kind"] == "artifact"


def test_an_object_store_gets_presigned_urls_handed_out_and_bytes_go_straight_to_it(
    tmp_path: Path, s3_endpoint: S3Endpoint
):
    settings = load_settings(
        tracking_uri=str(tmp_path / "data"),
        artifacts=f"s3://gw-{uuid.uuid4().hex[:8]}/team",
        s3_endpoint=s3_endpoint.url,
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key,
    )
    g = GatewayThread(settings).start()
    payload = b"\x00\x01" * 5000
    try:
        with httpx.Client(base_url=g.url) as c:
            exp = c.post(f"{API}/experiments", json={"name": "s"}).json()["experiment_id"]
            run = c.post(f"{API}/runs", json={"experiment_id": exp, "user_id": "u"}).json()
            rid = run["run_id"]
            up = c.post(f"{API}/runs/{rid}/artifacts/upload-urls", json={"paths": ["m/a.bin"]})
            [f] = up.json()["files"]
            assert f["presigned"] is True and f["url"].startswith(s3_endpoint.url)
            assert httpx.put(f["url"], content=payload).status_code == 200
            short = {"path": "m/a.bin", "size": 3, "sha256": "0" * 64}
            r = c.post(f"{API}/runs/{rid}/artifacts/commit", json={"files": [short]})
            assert r.status_code == 400 and "not the 3 reported" in r.json()["message"]
            done = {"path": "m/a.bin", "size": len(payload), "sha256": "0" * 64}
            assert c.post(f"{API}/runs/{rid}/artifacts/commit", json={"files": [done]}).is_success
            down = c.post(f"{API}/runs/{rid}/artifacts/download-urls", json={"paths": ["m/a.bin"]})
        [d] = down.json()["files"]
        assert d["presigned"] is True
        assert httpx.get(d["url"]).content == payload
    finally:
        g.stop()


def test_registry_writes_are_readable_in_the_next_call(http, run_id):
    r = http.post(
        f"{API}/model-versions/register", json={"model_uri": f"runs:/{run_id}/m", "name": "reg"}
    )
    assert r.status_code == 201 and r.json()["version"] == 1
    assert (
        http.put(f"{API}/registered-models/reg/aliases/champion", json={"version": 1}).status_code
        == 204
    )
    resolved = http.get(f"{API}/model-versions/resolve", params={"uri": "models:/reg@champion"})
    assert resolved.json()["version"] == 1 and resolved.json()["aliases"] == ["champion"]
    staged = http.post(f"{API}/registered-models/reg/versions/1/stage", json={"stage": "staging"})
    assert staged.json()["current_stage"] == "Staging"
    latest = http.get(f"{API}/registered-models/reg/latest-versions", params={"stages": "Staging"})
    assert [v["version"] for v in latest.json()] == [1]
    assert http.get(f"{API}/registered-models/nope").status_code == 404


def test_text_with_a_lone_surrogate_is_a_400_naming_the_field_not_a_500(http, run_id):
    """A JSON body can spell "\\ud800", which no UTF-8 store, log or answer can hold."""

    def post(path: str, body: str) -> httpx.Response:
        return http.post(
            f"{API}{path}", content=body.encode(), headers={"content-type": "application/json"}
        )

    r = post(f"/runs/{run_id}/params", '{"params": {"lr": "\\ud800"}}')
    assert r.status_code == 400 and r.json()["field"] == "params", r.text
    event = _event(p.RunTagsSet(run_id=run_id, tags={"x": "y"}))
    r = post("/events", json.dumps({"events": [event]}).replace('"x"', '"\\udc00"'))
    assert r.status_code == 400 and r.json()["field"] == "tags", r.text
    exp = http.get(f"{API}/runs/{run_id}").json()["info"]["experiment_id"]
    for text in ("tags.a = '\\ud800'", "tags.a = 'b' AND \\ud800"):
        r = post("/runs/search", f'{{"experiment_ids": ["{exp}"], "filter": "{text}"}}')
        assert r.status_code == 400 and r.json()["field"] == "filter", r.text
    assert r.json()["token"] == "?"  # the lone surrogate, underlined where it is


def test_a_bad_search_filter_is_a_400_with_the_offset_and_token_to_underline(http, run_id):
    exp = http.get(f"{API}/runs/{run_id}").json()["info"]["experiment_id"]
    text = "metrics.acc > 0.9 and (params.lr = 0.01 or tags.team = 'cv')"
    r = http.post(f"{API}/runs/search", json={"experiment_ids": [exp], "filter": text})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and body["field"] == "filter"
    assert (body["position"], body["token"]) == (35, "0.01")
    assert text[body["position"] :].startswith(body["token"])
    assert "position 35" in body["message"] and "params.lr = '0.01'" in body["message"]
    ok = http.post(f"{API}/runs/search", json={"experiment_ids": [exp], "filter": "tags.a = 'b'"})
    assert ok.status_code == 200
    r = http.get(f"{API}/experiments", params={"filter": "name = "})
    assert r.status_code == 400 and (r.json()["position"], r.json()["token"]) == (7, "")


def test_starting_a_run_with_a_chosen_id_again_answers_that_run_once(http, gateway):
    exp = http.post(f"{API}/experiments", json={"name": "chosen"}).json()["experiment_id"]
    start = {"experiment_id": exp, "user_id": "u", "run_id": "c" * 32, "start_time": 1000}
    first = http.post(f"{API}/runs", json=start)
    again = http.post(f"{API}/runs", json=start | {"run_name": "ignored", "tags": {"a": "1"}})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    other = http.post(f"{API}/runs", json=start | {"start_time": 2000})
    assert other.status_code == 409, other.text
    message = other.json()["message"]
    assert "run cccc" in message and "choose another run_id" in message
    bad = http.post(f"{API}/runs", json=start | {"run_id": "../escape"})
    assert bad.status_code == 400 and bad.json()["field"] == "run_id"
    assert gateway.backend is not None
    started = [r for r in gateway.backend.log.read() if r.event.type == "run.started"]
    assert len(started) == 1
