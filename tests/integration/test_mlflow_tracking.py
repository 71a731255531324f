"""MLflow's own client (MlflowClient and the fluent API) against `ledgerflow server`:
every experiment, run and metric endpoint through the client's methods, MLflow's error
codes and statuses, runs crossing between MLflow's client and Ledgerflow's SDK, and a
handful of answers compared with a real `mlflow server` on the same calls.

Where Ledgerflow answers differently from `mlflow server` on purpose, a test says so:
infinite metric values are kept (MLflow's SQL store clamps them to ±1.8e308), and a
history of a run that does not exist is RESOURCE_DOES_NOT_EXIST (MLflow answers an
empty list)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

import ledgerflow as lf
from ledgerflow import session
from tests.integration.gateway_fixture import GatewayProcess
from tests.integration.mlflow_reference import MlflowServer

pytestmark = pytest.mark.usefixtures("mlflow_client_settings")

API = "/api/2.0/mlflow"
T0 = 1_700_000_000_000


@dataclass
class Servers:
    ours: GatewayProcess
    reference: MlflowServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """`ledgerflow server` and `mlflow server`, started side by side."""
    root = tmp_path_factory.mktemp("mlflow-tracking")
    reference = MlflowServer(root / "mlflow").launch()
    ours = GatewayProcess(root / "data", root / "server.log", command="server")
    try:
        ours.start()
        yield Servers(ours, reference)
    finally:
        ours.stop()
        reference.stop()


@pytest.fixture(scope="module")
def url(servers: Servers) -> str:
    return servers.ours.url


@pytest.fixture(scope="module")
def reference(servers: Servers) -> str:
    return servers.reference.wait_ready().url


def client(url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(call: Any) -> MlflowException:
    with pytest.raises(MlflowException) as raised:
        call()
    return raised.value


def rest(url: str, method: str, path: str, **fields: Any) -> httpx.Response:
    """One MLflow REST call as the client sends it (GET: query string; else JSON)."""
    if method == "GET":
        return httpx.get(url + API + path, params=fields, timeout=30)
    return httpx.request(method, url + API + path, json=fields, timeout=30)


def audit(url: str, run_id: str) -> list[dict[str, Any]]:
    """The events of a run, oldest first."""
    r = httpx.get(url + "/api/v1/audit", params={"entity": f"run:{run_id}"}, timeout=30)
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["entries"]))


# the Default experiment ---------------------------------------------------------------


def test_a_fresh_server_has_the_default_experiment_and_a_run_without_experiment_goes_there(
    fluent: str,
) -> None:
    c = client(fluent)
    # the module's first test: nothing has asked for the Default experiment yet, and a
    # search lists it all the same, as MLflow's server does from its first start
    assert [e.name for e in c.search_experiments()] == ["Default"]
    default = c.get_experiment("0")
    assert (default.name, default.lifecycle_stage) == ("Default", "active")
    assert c.get_experiment_by_name("Default").experiment_id == "0"
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
    assert run.info.experiment_id == "0"
    assert c.get_run(run.info.run_id).info.status == "FINISHED"
    assert error_of(lambda: c.create_experiment("Default")).error_code == (
        "RESOURCE_ALREADY_EXISTS"
    )


# experiments ---------------------------------------------------------------------------


def test_experiments_are_created_read_renamed_tagged_deleted_and_restored(url: str) -> None:
    c = client(url)
    name = unique("exp")
    eid = c.create_experiment(name, tags={"team": "cv", "gone": "soon"})
    exp = c.get_experiment(eid)
    assert (exp.name, exp.lifecycle_stage, exp.tags) == (
        name, "active", {"team": "cv", "gone": "soon"},
    )  # fmt: skip
    assert exp.artifact_location.startswith("mlflow-artifacts:/")
    assert c.get_experiment_by_name(name).experiment_id == eid
    assert c.get_experiment_by_name(unique("nothing")) is None

    c.rename_experiment(eid, name + "-renamed")
    assert c.get_experiment(eid).name == name + "-renamed"
    assert c.get_experiment_by_name(name) is None
    c.set_experiment_tag(eid, "stage", "dev")
    c.delete_experiment_tag(eid, "gone")
    assert c.get_experiment(eid).tags == {"team": "cv", "stage": "dev"}

    c.delete_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "deleted"
    c.restore_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "active"


def test_set_experiment_creates_by_name_once_and_then_reads_it_back(fluent: str) -> None:
    name = unique("set-exp")
    made = mlflow.set_experiment(name)  # get-by-name -> RESOURCE_DOES_NOT_EXIST -> create
    again = mlflow.set_experiment(name)  # found by name
    assert made.experiment_id == again.experiment_id and again.name == name
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    assert run.info.experiment_id == made.experiment_id
    assert mlflow.set_experiment(experiment_id=made.experiment_id).name == name


def test_experiment_search_filters_orders_pages_and_sees_deleted_ones_by_view_type(
    url: str,
) -> None:
    c = client(url)
    prefix = unique("search-exp")
    ids = [c.create_experiment(f"{prefix}-{i}", tags={"i": str(i)}) for i in range(5)]
    c.delete_experiment(ids[4])
    where = f"name LIKE '{prefix}-%'"

    names = [e.name for e in c.search_experiments(filter_string=where, order_by=["name DESC"])]
    assert names == [f"{prefix}-{i}" for i in (3, 2, 1, 0)]
    tagged = c.search_experiments(filter_string=f"{where} AND tags.i = '2'")
    assert [e.experiment_id for e in tagged] == [ids[2]]

    pages, token = [], None
    while True:
        page = c.search_experiments(
            max_results=2, filter_string=where, order_by=["name ASC"], page_token=token
        )
        pages.append([e.name for e in page])
        token = page.token
        if not token:
            break
    assert pages == [[f"{prefix}-0", f"{prefix}-1"], [f"{prefix}-2", f"{prefix}-3"]]

    deleted = c.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=where)
    assert [e.experiment_id for e in deleted] == [ids[4]]
    every = c.search_experiments(view_type=ViewType.ALL, filter_string=where)
    assert sorted(e.experiment_id for e in every) == sorted(ids)


# runs ----------------------------------------------------------------------------------


def test_a_run_is_created_updated_tagged_deleted_and_restored(url: str) -> None:
    c = client(url)
    eid = c.create_experiment(unique("runs"))
    run = c.create_run(eid, start_time=T0, tags={"team": "cv", "gone": "x"}, run_name="first")
    rid = run.info.run_id
    assert (run.info.run_name, run.info.status, run.info.start_time) == ("first", "RUNNING", T0)
    assert run.data.tags["team"] == "cv" and run.data.tags["mlflow.runName"] == "first"

    c.set_tag(rid, "k", "v")
    c.delete_tag(rid, "gone")
    c.log_param(rid, "lr", 0.1)
    c.update_run(rid, name="second")
    got = c.get_run(rid)
    assert got.info.run_name == "second" and got.data.tags["mlflow.runName"] == "second"
    assert {k: got.data.tags[k] for k in ("team", "k")} == {"team": "cv", "k": "v"}
    assert "gone" not in got.data.tags and got.data.params == {"lr": "0.1"}

    c.update_run(rid, status="FAILED")
    assert c.get_run(rid).info.status == "FAILED"
    c.set_terminated(rid, "FINISHED", end_time=T0 + 5000)
    info = c.get_run(rid).info
    assert (info.status, info.end_time) == ("FINISHED", T0 + 5000)

    c.delete_run(rid)
    assert c.get_run(rid).info.lifecycle_stage == "deleted"
    assert error_of(lambda: c.set_tag(rid, "k", "w")).error_code == "INVALID_PARAMETER_VALUE"
    c.restore_run(rid)
    assert c.get_run(rid).info.lifecycle_stage == "active"


def test_a_changed_param_is_refused_and_the_first_value_kept(url: str) -> None:
    c = client(url)
    rid = c.create_run(c.create_experiment(unique("params"))).info.run_id
    c.log_param(rid, "batch", 32)
    c.log_param(rid, "batch", 32)  # the same value again is fine
    refused = error_of(lambda: c.log_param(rid, "batch", 64))
    assert refused.error_code == "INVALID_PARAMETER_VALUE"
    assert "batch" in refused.message
    assert c.get_run(rid).data.params == {"batch": "32"}


def test_metrics_with_nan_and_infinite_values_round_trip(url: str) -> None:
    c = client(url)
    rid = c.create_run(c.create_experiment(unique("nan"))).info.run_id
    values = [math.nan, math.inf, -math.inf, 0.5]
    for step, value in enumerate(values):
        c.log_metric(rid, "m", value, timestamp=T0 + step, step=step)
    history = c.get_metric_history(rid, "m")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert math.isnan(history[0].value)
    assert [m.value for m in history[1:]] == [math.inf, -math.inf, 0.5]  # MLflow: ±1.8e308
    latest = c.get_run(rid).data.metrics["m"]
    assert latest == 0.5


def test_log_batch_writes_metrics_params_and_tags_together(url: str) -> None:
    c = client(url)
    rid = c.create_run(c.create_experiment(unique("batch"))).info.run_id
    c.log_batch(
        rid,
        metrics=[Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(1500)],  # 2 requests
        params=[Param("opt", "adam")],
        tags=[RunTag("kind", "batch")],
    )
    got = c.get_run(rid)
    assert got.data.params == {"opt": "adam"} and got.data.tags["kind"] == "batch"
    assert got.data.metrics["loss"] == pytest.approx(1 / 1500)
    assert len(c.get_metric_history(rid, "loss")) == 1500


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("metrics", {"metrics": [{"key": "m", "value": 1.0, "timestamp": T0, "step": i}
                                 for i in range(1001)]}),
        ("params", {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}),
        ("tags", {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}),
    ],
)  # fmt: skip
def test_log_batch_over_mlflows_limits_is_refused_and_nothing_is_logged(
    url: str, what: str, body: dict[str, Any]
) -> None:
    """MLflow's client splits its batches itself, so the limits are checked on the wire."""
    c = client(url)
    rid = c.create_run(c.create_experiment(unique("limits"))).info.run_id
    before = audit(url, rid)
    r = rest(url, "POST", "/runs/log-batch", run_id=rid, **body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"at most {1000 if what == 'metrics' else 100} {what}" in r.json()["message"]
    got = c.get_run(rid).data
    assert (got.metrics, got.params) == ({}, {}) and not any(k.startswith("t") for k in got.tags)
    assert audit(url, rid) == before


def fill_search(c: MlflowClient, eid: str) -> dict[str, str]:
    """Six runs, ties on `acc`, one without it, started in another order than made
    (ties on start time would go by run id, which differs between servers): the same on both
    servers. Returns run name -> run id. (A NaN `acc` sorts with the missing ones here,
    between the numbers and the missing ones on `mlflow server`.)"""
    rows = [("r0", 0.9, "a"), ("r1", 0.5, "b"), ("r2", 0.9, "c"), ("r3", None, "a"),
            ("r4", 0.1, "b"), ("r5", 0.3, "c")]  # fmt: skip
    ids = {}
    for i, (name, acc, p) in enumerate(rows):
        run = c.create_run(eid, start_time=T0 + 1000 * (i * 5 % 6), run_name=name, tags={"g": p})
        rid = ids[name] = run.info.run_id
        metrics = [] if acc is None else [Metric("acc", acc, T0, 0)]
        c.log_batch(rid, metrics=metrics, params=[Param("p", p), Param("i", str(i))])
    c.set_terminated(ids["r4"], "FINISHED")
    c.delete_run(ids["r1"])
    return ids


SEARCHES: list[tuple[str, list[str], str]] = [
    ("", [], "ACTIVE_ONLY"),
    ("", ["metrics.acc DESC"], "ACTIVE_ONLY"),
    ("", ["metrics.acc ASC"], "ACTIVE_ONLY"),
    ("", ["params.p DESC"], "ALL"),
    ("", ["tags.g ASC", "attributes.start_time ASC"], "ACTIVE_ONLY"),
    ("", ["attributes.run_name DESC"], "DELETED_ONLY"),
    ("metrics.acc >= 0.5", ["metrics.acc DESC"], "ALL"),
    ("params.p != 'b'", [], "ACTIVE_ONLY"),
    ("tags.g != 'b' AND attributes.status = 'RUNNING'", ["attributes.run_name"], "ACTIVE_ONLY"),
    ("attributes.run_name LIKE 'r%' AND metrics.acc < 0.5", [], "ALL"),
]


def search_names(c: MlflowClient, eid: str, ids: dict[str, str], search: Any) -> list[str]:
    where, order_by, view = search
    names = {rid: name for name, rid in ids.items()}
    runs = c.search_runs([eid], where, getattr(ViewType, view), order_by=order_by)
    return [names[r.info.run_id] for r in runs]


def test_run_search_filters_orders_pages_and_keeps_to_its_view(url: str) -> None:
    c = client(url)
    eid = c.create_experiment(unique("search"))
    ids = fill_search(c, eid)
    search = lambda *s: search_names(c, eid, ids, s)  # noqa: E731
    # ties by the latest start; missing last
    assert search("", ["metrics.acc DESC"], "ACTIVE_ONLY")[:2] == ["r2", "r0"]
    assert search("", ["metrics.acc DESC"], "ACTIVE_ONLY")[-1] == "r3"
    assert search("", [], "DELETED_ONLY") == ["r1"]
    assert sorted(search("metrics.acc >= 0.5", [], "ALL")) == ["r0", "r1", "r2"]
    assert search("params.i = '4'", [], "ACTIVE_ONLY") == ["r4"]
    assert search("attributes.status = 'FINISHED'", [], "ACTIVE_ONLY") == ["r4"]
    assert sorted(search("tags.g = 'c'", [], "ALL")) == ["r2", "r5"]

    eid_many = c.create_experiment(unique("pages"))
    made = [c.create_run(eid_many, start_time=T0 + i).info.run_id for i in range(23)]
    seen, token, pages = [], None, 0
    while True:
        page = c.search_runs([eid_many], max_results=10, page_token=token)
        seen += [r.info.run_id for r in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == 3 and seen == made[::-1]


def test_run_search_orders_and_filters_as_mlflow_server_does(url: str, reference: str) -> None:
    answers = []
    for server in (url, reference):
        c = client(server)
        eid = c.create_experiment(unique("compare-search"))
        ids = fill_search(c, eid)
        answers.append([search_names(c, eid, ids, s) for s in SEARCHES])
    ours, theirs = answers
    for search, a, b in zip(SEARCHES, ours, theirs, strict=True):
        assert a == b, (search, a, b)


# metric histories ----------------------------------------------------------------------


def test_a_history_longer_than_a_page_is_read_whole_and_pages_on_the_wire(url: str) -> None:
    c = client(url)
    rid = c.create_run(c.create_experiment(unique("history"))).info.run_id
    count = 25_000 + 1_500  # MLflow's client asks for pages of 25,000 points
    points = [Metric("loss", float(s), T0 + s, s) for s in range(count)]
    for start in range(0, count, 1000):
        c.log_batch(rid, metrics=points[start : start + 1000])
    history = c.get_metric_history(rid, "loss")
    assert [m.step for m in history] == list(range(count))
    assert history[-1].value == count - 1

    first = rest(url, "GET", "/metrics/get-history", run_id=rid, metric_key="loss",
                 max_results=100).json()  # fmt: skip
    assert [m["step"] for m in first["metrics"]] == list(range(100))
    second = rest(url, "GET", "/metrics/get-history", run_id=rid, metric_key="loss",
                  max_results=100, page_token=first["next_page_token"]).json()  # fmt: skip
    assert [m["step"] for m in second["metrics"]] == list(range(100, 200))
    assert c.get_metric_history(rid, "nothing") == []


def fill_curves(c: MlflowClient, eid: str) -> list[str]:
    """Three runs of `loss` with different lengths and strides (steps 0..199 by 1, 0..298
    by 2, 0..297 by 3): the same on both servers."""
    runs = []
    for k in range(3):
        rid = c.create_run(eid).info.run_id
        steps = range(0, (200 - 50 * k) * (k + 1), k + 1)
        c.log_batch(rid, metrics=[Metric("loss", s / 10, T0 + s, s) for s in steps])
        runs.append(rid)
    return runs


BULK_QUERIES: list[dict[str, Any]] = [
    {"max_results": 10},
    {"max_results": 10, "start_step": 5, "end_step": 77},
    {"max_results": 3},
    {"max_results": 1},
    {"max_results": 2500, "start_step": 190, "end_step": 1000},
]


def bulk(url: str, runs: list[str], **query: Any) -> list[list[int]]:
    r = rest(url, "GET", "/metrics/get-history-bulk-interval", run_ids=runs,
             metric_key="loss", **query)  # fmt: skip
    assert r.status_code == 200, r.text
    steps: list[list[int]] = [[] for _ in runs]
    for m in r.json().get("metrics", []):
        steps[runs.index(m["run_id"])].append(m["step"])
        assert m["value"] == m["step"] / 10 and m["key"] == "loss"
    return steps


def test_history_bulk_interval_samples_each_run_keeping_its_first_and_last_step(
    url: str,
) -> None:
    c = client(url)
    runs = fill_curves(c, c.create_experiment(unique("bulk")))
    every = bulk(url, runs)
    assert [len(s) for s in every] == [200, 150, 100]
    sampled = bulk(url, runs, max_results=10)
    for steps, whole in zip(sampled, every, strict=True):
        assert len(steps) == 10 and steps == sorted(steps)
        assert (steps[0], steps[-1]) == (whole[0], whole[-1])
    window = bulk(url, runs, max_results=5, start_step=20, end_step=120)
    for steps, whole in zip(window, every, strict=True):
        inside = [s for s in whole if 20 <= s <= 120]
        assert len(steps) == 5 and (steps[0], steps[-1]) == (inside[0], inside[-1])
    assert bulk(url, runs, max_results=1) == [[199], [298], [297]]

    for query in ({"max_results": 0}, {"max_results": 2501}, {"start_step": 3},
                  {"start_step": 9, "end_step": 3}):  # fmt: skip
        r = rest(url, "GET", "/metrics/get-history-bulk-interval", run_ids=runs,
                 metric_key="loss", **query)  # fmt: skip
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), query


def test_history_bulk_interval_samples_as_mlflow_server_does(url: str, reference: str) -> None:
    answers = []
    for server in (url, reference):
        c = client(server)
        runs = fill_curves(c, c.create_experiment(unique("compare-bulk")))
        answers.append([bulk(server, runs, **q) for q in BULK_QUERIES])
    for query, ours, theirs in zip(BULK_QUERIES, *answers, strict=True):
        assert ours == theirs, query


# nested runs ---------------------------------------------------------------------------


def test_a_nested_run_names_its_parent(fluent: str) -> None:
    mlflow.set_experiment(unique("nested"))
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        mlflow.log_metric("inner", 1.0)
    got = client(fluent).get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    children = client(fluent).search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert [r.info.run_id for r in children] == [child.info.run_id]


# errors --------------------------------------------------------------------------------


def error_answers(url: str) -> dict[str, tuple[int, str]]:
    """(HTTP status, error_code) of each mistake, made on `url`."""
    c = client(url)
    name = unique("errors")
    eid = c.create_experiment(name)
    rid = c.create_run(eid).info.run_id
    c.log_param(rid, "p", "1")
    gone = c.create_run(eid).info.run_id
    c.delete_run(gone)
    missing_run, missing_exp = uuid.uuid4().hex, "987654321"
    calls = {
        "get a missing run": ("GET", "/runs/get", {"run_id": missing_run}),
        "get a missing experiment": ("GET", "/experiments/get", {"experiment_id": missing_exp}),
        "get an experiment by a missing name": (
            "GET", "/experiments/get-by-name", {"experiment_name": unique("none")},
        ),
        "create a duplicate experiment": ("POST", "/experiments/create", {"name": name}),
        "create a run in a missing experiment": (
            "POST", "/runs/create", {"experiment_id": missing_exp, "start_time": T0},
        ),
        "log to a missing run": (
            "POST", "/runs/log-metric",
            {"run_id": missing_run, "key": "m", "value": 1.0, "timestamp": T0},
        ),
        "change a param": ("POST", "/runs/log-parameter", {"run_id": rid, "key": "p", "value": "2"}),
        "log to a deleted run": ("POST", "/runs/set-tag", {"run_id": gone, "key": "k", "value": "v"}),
        "delete a missing experiment": ("POST", "/experiments/delete", {"experiment_id": missing_exp}),
        "update a missing run": ("POST", "/runs/update", {"run_id": missing_run, "status": "FAILED"}),
        "search with a bad filter": ("POST", "/runs/search", {"experiment_ids": [eid],
                                                               "filter": "metrics.m >> 1"}),
        "a bulk interval of 0 points": (
            "GET", "/metrics/get-history-bulk-interval",
            {"run_ids": [rid], "metric_key": "m", "max_results": 0},
        ),
    }  # fmt: skip
    out = {}
    for what, (method, path, fields) in calls.items():
        r = rest(url, method, path, **fields)
        out[what] = (r.status_code, r.json().get("error_code", ""))
    return out


def test_mistakes_answer_mlflows_error_codes_and_statuses(url: str) -> None:
    got = error_answers(url)
    assert got["get a missing run"] == (404, "RESOURCE_DOES_NOT_EXIST")
    assert got["get a missing experiment"] == (404, "RESOURCE_DOES_NOT_EXIST")
    assert got["create a duplicate experiment"] == (400, "RESOURCE_ALREADY_EXISTS")
    assert got["change a param"] == (400, "INVALID_PARAMETER_VALUE")
    c = client(url)
    missing = error_of(lambda: c.get_run(uuid.uuid4().hex))
    assert (missing.error_code, missing.get_http_status_code()) == (
        "RESOURCE_DOES_NOT_EXIST", 404,
    )  # fmt: skip
    name = unique("dup")
    c.create_experiment(name)
    duplicate = error_of(lambda: c.create_experiment(name))
    assert (duplicate.error_code, duplicate.get_http_status_code()) == (
        "RESOURCE_ALREADY_EXISTS", 400,
    )  # fmt: skip
    # a history of a run that does not exist: MLflow answers [], we say it does not exist
    r = rest(url, "GET", "/metrics/get-history", run_id=uuid.uuid4().hex, metric_key="m")
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_mistakes_answer_the_codes_and_statuses_of_mlflow_server(url: str, reference: str) -> None:
    assert error_answers(url) == error_answers(reference)


# Ledgerflow's SDK and MLflow's client on the same runs ----------------------------------


def test_a_run_logged_by_ledgerflows_sdk_reads_the_same_through_mlflows_client(
    url: str, spool_dir: Any
) -> None:
    try:
        ours = lf.Client(url)
        eid = ours.create_experiment(unique("from-ledgerflow"))
        rid = ours.create_run(eid, run_name="native").info.run_id
        ours.log_param(rid, "lr", 0.01)
        ours.set_tag(rid, "team", "cv")
        for step in range(5):
            ours.log_metric(rid, "loss", 1.0 / (step + 1), timestamp=T0 + step, step=step)
        ours.set_terminated(rid, "FINISHED")
        lf.flush()
    finally:
        session.reset()

    c = client(url)
    got = c.get_run(rid)
    assert (got.info.run_name, got.info.status, got.info.experiment_id) == (
        "native", "FINISHED", eid,
    )  # fmt: skip
    assert got.data.params == {"lr": "0.01"} and got.data.tags["team"] == "cv"
    assert got.data.metrics == {"loss": pytest.approx(0.2)}
    history = c.get_metric_history(rid, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (s, pytest.approx(1.0 / (s + 1)), T0 + s) for s in range(5)
    ]
    assert [r.info.run_id for r in c.search_runs([eid], "params.lr = '0.01'")] == [rid]


def test_a_run_logged_by_mlflows_client_is_a_ledgerflow_run_with_its_events(
    fluent: str, spool_dir: Any
) -> None:
    exp = mlflow.set_experiment(unique("from-mlflow"))
    with mlflow.start_run(run_name="mlflow-made") as run:
        mlflow.log_params({"depth": 3})
        mlflow.log_metrics({"acc": 0.7}, step=1)
        mlflow.log_metric("acc", 0.8, step=2)
        mlflow.set_tag("source", "mlflow")
    rid = run.info.run_id

    try:
        ours = lf.Client(fluent)
        got = ours.get_run(rid)
        assert (got.info.run_name, got.info.status, got.info.experiment_id) == (
            "mlflow-made", "FINISHED", exp.experiment_id,
        )  # fmt: skip
        assert got.data.params == {"depth": "3"} and got.data.tags["source"] == "mlflow"
        assert [(m.step, m.value) for m in ours.get_metric_history(rid, "acc")] == [
            (1, 0.7), (2, 0.8),
        ]  # fmt: skip
    finally:
        session.reset()
    native = httpx.get(f"{fluent}/api/v1/runs/{rid}", timeout=30).json()
    assert native["data"]["metrics"] == {"acc": 0.8}
    events = [e["type"] for e in audit(fluent, rid)]
    assert events[0] == "run.started" and events[-1] == "run.finished"
    assert {"run.params_logged", "run.metrics_logged", "run.tags_set"} <= set(events)
