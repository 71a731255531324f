"""A deployment served by two `ledgerflow serve --deployment` replicas and by `ledgerflow
server`, all real processes on one data directory: they route every user alike, follow a
traffic change live, and what they served is recorded and analysed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import ledgerflow as lf
from ledgerflow.events.settings import load_settings
from ledgerflow.services import model_servers
from tests.conftest import free_port
from tests.e2e.test_serve_process import serving_all
from tests.integration.gateway_fixture import GatewayProcess

pytestmark = pytest.mark.slow
USERS = [f"user-{i}" for i in range(60)]


@pytest.fixture
def deployment(tracking: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] > 0).astype(int)
    with lf.start_run():
        for i, c in enumerate((1.0, 0.01)):
            lf.sklearn.log_model(LogisticRegression(C=c).fit(x, y), name=f"m{i}",
                                 input_example=x[:2], registered_model_name="clf")  # fmt: skip
    lf.deployments.create(
        "ab",
        [
            {"name": "a", "model": "clf", "version": 1, "weight": 50},
            {"name": "b", "model": "clf", "version": 2, "weight": 50},
        ],
        key_header="X-User",
    )
    return tracking


def routes(url: str, users: list[str]) -> dict[str, str]:
    body = {"inputs": [[0.5, -0.2, 0.1, 0.3]]}
    served = {}
    for user in users:
        r = httpx.post(f"{url}/deployments/ab/invocations", json=body,
                       headers={"X-User": user}, timeout=10)  # fmt: skip
        assert r.status_code == 200, r.text
        served[user] = r.headers["X-Ledgerflow-Variant"]
    return served


def tf_serving_predicts_as_invocations(url: str, users: list[str]) -> None:
    """A TF Serving client's predict through the deployment: routed as /invocations is, the
    same predictions; TF Serving's error shape for what a deployment does not serve."""
    rows = [[0.5, -0.2, 0.1, 0.3], [-1.0, 0.0, 0.2, 0.1]]
    tf_url = f"{url}/deployments/ab/v1/models/ab:predict"
    for user in users:
        headers = {"X-User": user}
        mlflow = httpx.post(f"{url}/deployments/ab/invocations", json={"instances": rows},
                            headers=headers, timeout=10)  # fmt: skip
        r = httpx.post(tf_url, json={"instances": rows}, headers=headers, timeout=10)
        assert r.status_code == 200 and r.json() == mlflow.json(), r.text
        assert r.headers["X-Ledgerflow-Variant"] == mlflow.headers["X-Ledgerflow-Variant"]
        r = httpx.post(tf_url, json={"inputs": rows}, headers=headers, timeout=10)
        assert r.json() == {"outputs": mlflow.json()["predictions"]}
    for path, code in (("other:predict", 404), ("ab/versions/1:predict", 400),
                       ("ab:classify", 400), ("ab:explain", 404)):  # fmt: skip
        r = httpx.post(f"{url}/deployments/ab/v1/models/{path}", json={"instances": rows})
        assert r.status_code == code and list(r.json()) == ["error"], r.text
    tf_serving_status_and_metadata(url)


def tf_serving_status_and_metadata(url: str) -> None:
    """TF Serving's status and metadata of the deployment's variants (versions 1 and 2), as
    a model server answers them; the label `champion` (an alias set while serving) names the
    version the alias points at."""
    tf_url = f"{url}/deployments/ab/v1/models/ab"

    def available(*versions: str) -> dict[str, object]:
        ok = {"error_code": "OK", "error_message": ""}
        return {"model_version_status": [
            {"version": v, "state": "AVAILABLE", "status": ok} for v in versions
        ]}  # fmt: skip

    assert httpx.get(tf_url).json() == available("1", "2")
    assert httpx.get(f"{tf_url}/versions/1").json() == available("1")
    deadline = time.monotonic() + 15
    while (r := httpx.get(f"{tf_url}/labels/champion")).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    assert r.json() == available("2")
    meta = httpx.get(f"{tf_url}/versions/1/metadata").json()
    assert meta["model_spec"] == {"name": "ab", "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert [d["size"] for d in sig["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "4"]
    assert httpx.get(f"{tf_url}/metadata").json()["model_spec"]["version"] == "2"
    for path, code in (("/versions/7", 404), ("/labels/nope", 400), ("/versions/7/metadata", 404),
                       (":predict", 404), ("/extra/thing", 404)):  # fmt: skip
        r = httpx.get(tf_url + path)
        assert r.status_code == code and list(r.json()) == ["error"], (path, r.text)
    r = httpx.get(f"{url}/deployments/ab/v1/models/other")
    assert r.status_code == 404 and "Servable not found" in r.json()["error"], r.text


def test_replicas_and_the_server_route_alike_follow_traffic_changes_and_record_traffic(
    deployment: Path, tmp_path: Path
):
    # the server and both replicas start side by side
    server = GatewayProcess(deployment, tmp_path / "server.log", command="server").launch()
    try:
        replica = ("--deployment", "ab")
        with serving_all(deployment, (tmp_path / "r1.log", replica),
                         (tmp_path / "r2.log", replica)) as [r1, r2]:  # fmt: skip
            server.wait_ready()
            first, second = routes(r1, USERS), routes(r2, USERS)
            deadline = time.monotonic() + 30
            while httpx.get(f"{server.url}/deployments/ab/ready").status_code != 200:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.1)
            third = routes(server.url, USERS)
            assert first == second == third
            assert set(first.values()) == {"a", "b"}
            champion = httpx.put(f"{server.url}/api/v1/registered-models/clf/aliases/champion",
                                 json={"version": 2})  # fmt: skip
            assert champion.status_code == 204, champion.text
            for url in (r1, server.url):
                tf_serving_predicts_as_invocations(url, USERS[:6])

            moved = httpx.put(f"{server.url}/api/v1/deployments/ab/traffic",
                              json={"weights": {"a": 100, "b": 0}})  # fmt: skip
            assert moved.status_code == 200, moved.text
            deadline = time.monotonic() + 20
            while set(routes(r1, USERS[:10]).values()) != {"a"}:
                assert time.monotonic() < deadline, "the replica never followed the new split"
                time.sleep(0.2)
            assert set(routes(r2, USERS).values()) == {"a"}

            served = 3 * len(USERS) + len(USERS) + 10  # at least; r1 polled until it moved
            deadline = time.monotonic() + 20
            while True:
                doc = httpx.get(f"{server.url}/api/v1/deployments/ab/analysis").json()
                counted = sum(row["count"] for row in doc["variants"])
                if counted >= served:
                    break
                assert time.monotonic() < deadline, doc
                time.sleep(0.2)
            assert doc["metric"] == "error_rate" and doc["baseline"] == "a"
            assert all(row["errors"] == 0 for row in doc["variants"])
            for url in (r1, server.url):  # per-variant series, on replicas and the server
                metrics = httpx.get(f"{url}/metrics").text
                assert 'variant="a"' in metrics and 'variant="b"' in metrics

            # what the Operations page shows: the replica the server hosts, and the model
            # servers it is told of (LEDGERFLOW_MODEL_SERVERS), probed
            (hosted,) = httpx.get(f"{server.url}/api/v1/operations").json()["model_servers"]
            assert hosted["url"] == "(this server)" and hosted["ready"], hosted
            assert [(d["name"], d["ready"]) for d in hosted["deployments"]] == [("ab", True)]
            dead = f"http://127.0.0.1:{free_port()}"
            told = load_settings(tracking_uri=str(deployment), model_servers=f"{r1}, {r2},{dead}")
            up1, up2, down = model_servers.health(told.model_server_urls)
            for up, url in ((up1, r1), (up2, r2)):
                assert up.url == url and up.ready and up.error is None, up
                assert up.server is not None and up.server.startswith("ledgerflow")
                assert up.latency_ms is not None
            assert down.url == dead and not down.ready and down.latency_ms is None
            assert down.error is not None and down.error.startswith("unreachable: ")

            # input the model cannot take, last (the analysis counts it as an error)
            r = httpx.post(f"{r1}/deployments/ab/v1/models/ab:predict", json={"instances": [[1.0]]})
            assert r.status_code == 400 and list(r.json()) == ["error"], r.text
    finally:
        server.stop()
