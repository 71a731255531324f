"""A deployment served in-process on the embedded backend: routing, shadows, recorded
traffic, live statistics, and the deployer acting on them (rollback, canary steps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from tritonclient.http import InferenceServerClient, InferInput

import ledgerflow as lf
from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.events.log import EventLog
from ledgerflow.events.settings import load_settings
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.pyfunc import PythonModel
from ledgerflow.services.analytics.live import FollowedStats, RedisStats, analysis, stats_for
from ledgerflow.services.analytics.snapshots import RedisTrafficSnapshots
from ledgerflow.services.analytics.traffic import TrafficFollower, TrafficRecorder
from ledgerflow.services.analytics.window import TrafficStats
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.deployer.loop import Deployer
from ledgerflow.services.serving.app import create_app
from ledgerflow.services.serving.deployment import DeploymentHost, Loader, variant_loader
from ledgerflow.services.serving.deployment_grpc import start_deployment_grpc
from ledgerflow.services.serving.deployment_routes import deployment_routes
from ledgerflow.services.serving.oip_binary import HEADER_LENGTH
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.serving.routing_cache import RoutingCache
from ledgerflow.services.serving.scoring import ModelRequest
from ledgerflow.services.serving.sources import BackendSource
from tests.integration.eventlog_contract import tag_event


class Scale(PythonModel):
    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return np.asarray(model_input, dtype=float) * self.k


class Broken(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        raise ValueError("broken on purpose")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Registered model `scale`: v1 doubles nothing (x1), v2 doubles (x2), v3 always fails."""
    root = tmp_path_factory.mktemp("deploy")
    lf.set_tracking_uri(str(root))
    with lf.start_run():
        for i, model in enumerate((Scale(1), Scale(2), Broken())):
            lf.pyfunc.log_model(name=f"m{i}", python_model=model, registered_model_name="scale")
    yield root


@pytest.fixture
def backend(data: Path) -> Iterator[Backend]:
    lf.set_tracking_uri(str(data))
    b = bootstrap(load_settings(tracking_uri=str(data)))
    yield b
    b.close()


def loader(backend: Backend) -> Loader:
    """Variants load from the backend the deployments live in."""
    return variant_loader(BackendSource(backend), allow_pickle=True)


def serve(backend: Backend, name: str, body: Any) -> Any:
    """Run `body(host)` against a started host on a fresh loop, then stop it."""

    async def main() -> Any:
        recorder = TrafficRecorder(backend.log, "test")
        host = DeploymentHost(
            backend.log,
            ModelRepository(),
            replica="test",
            recorder=recorder,
            loader=loader(backend),
        )
        await host.start()
        for _ in range(400):
            if host.ready(name):
                break
            await asyncio.sleep(0.05)
        assert host.ready(name)
        try:
            return await body(host)
        finally:
            await host.settle()  # every shadow copy answered and recorded
            await host.stop()
            recorder.close()
            await host.repository.close()

    return asyncio.run(main())


async def call(host: DeploymentHost, name: str, key: str | None, rid: str, x: float = 1.0) -> Any:
    route = host.choose(name, key=key, request_id=rid, forced=None)
    return await host.invoke(name, route, ModelRequest(np.array([[x]])), rid, "test")


def test_sticky_split_with_a_shadow_that_never_changes_answers(backend: Backend):
    lf.deployments.create(
        "split",
        [
            {"name": "a", "model": "scale", "version": 1, "weight": 80},
            {"name": "b", "model": "scale", "version": 2, "weight": 20},
            {"name": "s", "model": "scale", "version": 2, "shadow": True},
        ],
    )

    async def body(host: DeploymentHost) -> list[tuple[str, str, float]]:
        seen = []
        for i in range(600):
            answer = await call(host, "split", f"user-{i % 300}", f"r{i}", x=3.0)
            seen.append((f"user-{i % 300}", answer.variant, float(answer.predictions[0][0])))
        return seen

    seen = serve(backend, "split", body)
    by_user: dict[str, set[str]] = {}
    for user, variant, value in seen:
        by_user.setdefault(user, set()).add(variant)
        assert value == (3.0 if variant == "a" else 6.0)  # never the shadow's answer
    assert all(len(v) == 1 for v in by_user.values())  # sticky
    share_b = Counter(next(iter(v)) for v in by_user.values())["b"] / len(by_user)
    assert 0.13 < share_b < 0.27  # 20% of 300 users; ~4.6 standard errors wide

    stats = FollowedStats(backend.log)
    stats.refresh()
    snap = stats.snapshot("split")
    assert snap["a"].requests + snap["b"].requests == 600
    assert snap["s"].shadow and snap["s"].requests == 600  # a copy of every request
    assert snap["s"].agreed == snap["b"].requests  # s is b's model version: agrees with it only


def test_a_variant_that_failed_to_load_is_loaded_again_without_a_change_to_its_deployment(
    backend: Backend,
):
    """A replica that could not load a variant (the artifact store cut off as it
    started) tries again by itself: otherwise the variant would get no traffic until the
    deployment changed, and nothing the deployer judges by would ever come from it."""
    lf.deployments.create(
        "retry",
        [{"name": "a", "model": "scale", "version": 1, "weight": 1},
         {"name": "b", "model": "scale", "version": 2, "weight": 1}],
    )  # fmt: skip
    real = loader(backend)
    failures: list[str] = []

    def flaky(spec: d.VariantSpec) -> Any:
        if spec.name == "b" and len(failures) < 2:
            failures.append(spec.name)
            raise ConnectionError("the artifact store is cut off")
        return real(spec)

    async def main() -> tuple[bool, dict[str, str], bool]:
        host = DeploymentHost(backend.log, ModelRepository(), replica="t", loader=flaky)
        await host.start()
        try:
            await asyncio.sleep(0.5)
            failed = (host.ready("retry"), dict(host.load_errors))
            for _ in range(100):  # retried after 1 s, then 2 s
                if host.ready("retry"):
                    break
                await asyncio.sleep(0.1)
            return (*failed, host.ready("retry"))
        finally:
            await host.stop()
            await host.repository.close()

    ready_at_first, errors, ready_later = asyncio.run(main())
    assert not ready_at_first and "cut off" in errors["retry:b"]
    assert ready_later and failures == ["b", "b"]


def test_a_failing_variant_trips_its_guardrail_and_traffic_returns_to_the_baseline(
    backend: Backend,
):
    lf.deployments.create(
        "guarded",
        [
            {"name": "good", "model": "scale", "version": 1, "weight": 50},
            {"name": "bad", "model": "scale", "version": 3, "weight": 50},
        ],
        guardrails=[{"metric": "error_rate", "threshold": 0.05, "min_samples": 20}],
    )

    async def body(host: DeploymentHost) -> int:
        failures = 0
        for i in range(120):
            try:
                await call(host, "guarded", f"u{i}", f"g{i}")
            except InvalidInput as e:
                assert "broken on purpose" in e.message
                failures += 1
        return failures

    failures = serve(backend, "guarded", body)
    assert 30 < failures < 90
    service = backend.deployments
    deployer = Deployer(service, FollowedStats(backend.log), before_tick=backend.refresh)
    [action] = deployer.tick()
    assert action.kind == "rolled_back" and "error_rate of bad" in action.detail
    dep = service.get("guarded")
    assert dep.weights == {"good": 50.0, "bad": 0.0} or dep.shares()["bad"] == 0.0
    assert dep.last_action == "rolled_back"
    assert any(c.type == "deployment.guardrail_tripped" for c in service.history("guarded"))
    assert deployer.tick() == []  # judged on traffic since the rollback: nothing more to do
    registry = deployer.metrics.registry
    decided = {"deployment": "guarded", "kind": "rolled_back"}
    assert registry.get_sample_value("ledgerflow_deployer_decisions_total", decided) == 1
    trip = {"deployment": "guarded", "variant": "bad", "metric": "error_rate"}
    assert registry.get_sample_value("ledgerflow_deployer_guardrail_trips_total", trip) == 1
    assert registry.get_sample_value("ledgerflow_deployer_ticks_total") == 2


def test_deployers_sharing_a_database_watch_each_deployment_by_lease(backend: Backend):
    from ledgerflow.services.leases import Leases

    lf.deployments.create(
        "leased",
        [
            {"name": "good", "model": "scale", "version": 1, "weight": 50},
            {"name": "bad", "model": "scale", "version": 3, "weight": 50},
        ],
        guardrails=[{"metric": "error_rate", "threshold": 0.05, "min_samples": 20}],
    )

    async def body(host: DeploymentHost) -> None:
        for i in range(60):
            with contextlib.suppress(InvalidInput):  # the bad variant's answers
                await call(host, "leased", f"u{i}", f"l{i}")

    serve(backend, "leased", body)  # the breach is there for whoever watches
    leases = Leases(backend.projector.engine, "deployment")
    assert leases.claim("leased", "a-deployer-that-died", 400) is not None

    def deployer() -> Deployer:
        return Deployer(
            backend.deployments, FollowedStats(backend.log), before_tick=backend.refresh,
            interval_s=0.05, leases=leases, lease_s=30,  # outlives a slow tick on a busy machine
        )  # fmt: skip

    survivor, standby = deployer(), deployer()
    mine = [a for a in survivor.tick() if a.deployment == "leased"]
    assert mine == []  # still the dead one's: nobody acts on it twice
    time.sleep(0.5)  # its lease runs out
    [action] = [a for a in survivor.tick() if a.deployment == "leased"]
    assert action.kind == "rolled_back"
    assert [a for a in standby.tick() if a.deployment == "leased"] == []
    assert leases.claim("leased", standby.holder, 400) is None  # the survivor's now
    stop = threading.Event()
    stop.set()
    survivor.run(stop)  # stopping gives its leases up at once
    assert leases.claim("leased", standby.holder, 400) is not None
    rollbacks = [
        c for c in backend.deployments.history("leased") if c.type == "deployment.rolled_back"
    ]
    assert len(rollbacks) == 1


def test_a_canary_advances_once_its_step_has_served_enough_and_analysis_reports_it(
    backend: Backend,
):
    lf.deployments.create(
        "canary",
        [
            {"name": "base", "model": "scale", "version": 1, "weight": 100},
            {"name": "new", "model": "scale", "version": 2, "weight": 0},
        ],
        plan={
            "candidate": "new",
            "steps": [{"weight": 30, "min_requests": 20}, {"weight": 60}, {"weight": 100}],
        },
    )
    assert lf.deployments.get("canary").shares()["new"] == pytest.approx(0.3)
    time.sleep(1.0)  # a step counts the requests of the (1 s) windows that start after it

    async def body(host: DeploymentHost) -> list[str]:
        return [(await call(host, "canary", None, f"c{i}")).variant for i in range(150)]

    served = serve(backend, "canary", body)
    for i, variant in enumerate(served):
        lf.deployments.feedback("canary", f"c{i}", 1.0 if (variant == "new" or i % 3) else 0.0)
    service = backend.deployments
    stats = FollowedStats(backend.log)
    [action] = Deployer(service, stats, before_tick=backend.refresh).tick()
    assert action.kind == "step_advanced"
    dep = service.get("canary")
    assert dep.step == 1 and dep.shares()["new"] == pytest.approx(0.6)
    doc = analysis(dep, stats)
    rows = {r["variant"]: r for r in doc["variants"]}
    assert doc["metric"] == "conversion" and set(rows) == {"base", "new"}
    assert rows["new"]["n"] + rows["base"]["n"] == 150
    assert rows["new"]["value"] == 1.0 and rows["base"]["value"] < 0.8


def test_the_replica_routes_answers_says_who_served_and_refuses_bad_input_with_400(
    backend: Backend,
):
    lf.deployments.create(
        "rest",
        [
            {"name": "a", "model": "scale", "version": 1, "weight": 1},
            {"name": "b", "model": "scale", "version": 2, "weight": 1},
        ],
        key_header="X-User",
    )
    repository = ModelRepository()
    recorder = TrafficRecorder(backend.log, "rest")
    host = DeploymentHost(backend.log, repository, replica="rest", recorder=recorder, only="rest",
                          loader=loader(backend))  # fmt: skip

    async def start() -> None:
        await host.start()

    app = create_app(repository, extra_routes=deployment_routes(host), on_startup=start,
                     on_shutdown=host.stop)  # fmt: skip
    with TestClient(app) as client:
        for _ in range(200):
            if client.get("/deployments/rest/ready").status_code == 200:
                break
            asyncio.run(asyncio.sleep(0.05))
        ok = client.post("/deployments/rest/invocations", json={"inputs": [[2.0]]},
                         headers={"X-User": "ada"})  # fmt: skip
        assert ok.status_code == 200, ok.text
        variant = ok.headers["X-Ledgerflow-Variant"]
        assert ok.json()["predictions"] == [[2.0 if variant == "a" else 4.0]]
        again = client.post("/deployments/rest/invocations", json={"inputs": [[2.0]]},
                            headers={"X-User": "ada"})  # fmt: skip
        assert again.headers["X-Ledgerflow-Variant"] == variant
        forced = client.post("/deployments/rest/invocations", json={"inputs": [[2.0]]},
                             headers={"X-Ledgerflow-Variant": "b"})  # fmt: skip
        assert forced.json()["predictions"] == [[4.0]]
        unknown = client.post("/deployments/rest/invocations", json={"inputs": [[2.0]]},
                              headers={"X-Ledgerflow-Variant": "zz"})  # fmt: skip
        assert unknown.status_code == 400 and "X-Ledgerflow-Variant" in unknown.json()["message"]
        bad = client.post("/deployments/rest/invocations", json={"rows": [[2.0]]})
        assert bad.status_code == 400 and "inputs" in bad.json()["message"]
        missing = client.post("/deployments/nope/invocations", json={"inputs": [[2.0]]})
        assert missing.status_code == 404
        oip = client.post("/deployments/rest/infer", headers={"X-User": "ada"}, json={
            "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2.0]}]})  # fmt: skip
        assert oip.status_code == 200, oip.text
        assert oip.json()["parameters"]["variant"] == variant
        binary_body, json_size = binary_infer_request(np.array([[2.0]]))
        binary = client.post("/deployments/rest/infer", content=binary_body,
                             headers={"X-User": "ada", HEADER_LENGTH: str(json_size)})  # fmt: skip
        assert binary.headers["content-type"] == "application/octet-stream", binary.text
        got = InferenceServerClient.parse_response_body(
            binary.content, header_length=int(binary.headers[HEADER_LENGTH])
        )
        assert got.get_response()["parameters"]["variant"] == variant
        assert got.as_numpy(got.get_response()["outputs"][0]["name"]).tolist() == [
            [2.0 if variant == "a" else 4.0]
        ]
        fb = client.post("/deployments/rest/feedback",
                         json={"request_id": ok.headers["x-request-id"], "converted": True})  # fmt: skip
        assert fb.status_code == 202 and fb.json()["variant"] == variant
        no_value = client.post("/deployments/rest/feedback", json={"request_id": "x"})
        assert no_value.status_code == 400 and "value" in no_value.json()["message"]
    recorder.close()


def test_a_binary_oip_request_is_routed_by_the_key_field_of_its_json_header(
    backend: Backend,
):
    lf.deployments.create(
        "binkey",
        [
            {"name": "a", "model": "scale", "version": 1, "weight": 1},
            {"name": "b", "model": "scale", "version": 2, "weight": 1},
        ],
        key_field="user",
    )
    repository = ModelRepository()
    recorder = TrafficRecorder(backend.log, "binkey")
    host = DeploymentHost(backend.log, repository, replica="binkey", recorder=recorder,
                          only="binkey", loader=loader(backend))  # fmt: skip

    async def start() -> None:
        await host.start()

    def infer(client: TestClient, user: str, binary: bool) -> str:
        tensor = {"name": "x", "shape": [1, 1], "datatype": "FP64"}
        if not binary:
            doc = {"user": user, "inputs": [{**tensor, "data": [2.0]}]}
            r = client.post("/deployments/binkey/infer", json=doc)
        else:
            tensor["parameters"] = {"binary_data_size": 8}
            head = json.dumps({"user": user, "inputs": [tensor]}).encode()
            r = client.post("/deployments/binkey/infer", content=head + np.float64(2).tobytes(),
                            headers={HEADER_LENGTH: str(len(head))})  # fmt: skip
        assert r.status_code == 200, r.text
        return str(r.headers["X-Ledgerflow-Variant"])

    app = create_app(repository, extra_routes=deployment_routes(host), on_startup=start,
                     on_shutdown=host.stop)  # fmt: skip
    with TestClient(app) as client:
        for _ in range(200):
            if client.get("/deployments/binkey/ready").status_code == 200:
                break
            asyncio.run(asyncio.sleep(0.05))
        users = [f"user-{i}" for i in range(24)]
        by_json = {u: infer(client, u, binary=False) for u in users}
        assert set(by_json.values()) == {"a", "b"}
        assert {u: infer(client, u, binary=True) for u in users} == by_json
    recorder.close()


def binary_infer_request(x: np.ndarray) -> tuple[bytes, int]:
    """An OIP infer body with `x` as input "x" in binary, as tritonclient.http builds it."""
    t = InferInput("x", list(x.shape), "FP64")
    t.set_data_from_numpy(x)
    body, json_size = InferenceServerClient.generate_request_body([t])
    return body, json_size


class CountingLog(SQLiteEventLog):
    """The real SQLite log, remembering where each subscription started."""

    starts: list[object]

    def subscribe(self, after: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.starts.append(after)
        return super().subscribe(after, *args, **kwargs)


def test_replicas_share_their_routing_state_through_redis_and_resume_from_it(
    backend: Backend, data: Path, redis_url: str, redis_prefix: str
):
    lf.deployments.create("cached", [{"name": "a", "model": "scale", "version": 1, "weight": 1},
                                     {"name": "b", "model": "scale", "version": 2, "weight": 1}])  # fmt: skip
    lf.deployments.set_traffic("cached", {"a": 1, "b": 3})

    def replica() -> tuple[DeploymentHost, CountingLog]:
        log = CountingLog(data / "events.db")
        log.starts = []
        cache = RoutingCache.from_url(redis_url, prefix=redis_prefix)
        host = DeploymentHost(log, ModelRepository(), replica="r", only="cached", cache=cache,
                              loader=loader(backend))  # fmt: skip
        return host, log

    async def run(host: DeploymentHost) -> dict[str, str]:
        await host.start()
        for _ in range(400):
            if host.ready("cached"):
                break
            await asyncio.sleep(0.05)
        routed = {f"k{i}": host.choose("cached", key=f"k{i}", request_id="x", forced=None).variant
                  for i in range(50)}  # fmt: skip
        await host.stop()
        await host.repository.close()
        return routed

    first, first_log = replica()
    routed = asyncio.run(run(first))
    assert first_log.starts[0] is None  # nothing cached yet: folded from the start of the log
    cached = RoutingCache.from_url(redis_url, prefix=redis_prefix).load("cached")
    assert cached is not None and cached[0] == lf.deployments.get("cached")

    second, second_log = replica()
    assert asyncio.run(run(second)) == routed
    assert second_log.starts[0] == cached[1]  # resumed where the cached state was folded


def test_the_deployer_acts_on_the_stream_workers_snapshots_in_redis(
    backend: Backend, redis_url: str, redis_prefix: str
):
    lf.deployments.create(
        "streamed",
        [
            {"name": "a", "model": "scale", "version": 1, "weight": 1},
            {"name": "b", "model": "scale", "version": 2, "weight": 1},
        ],
        guardrails=[{"metric": "latency_p99_ms", "threshold": 100, "min_samples": 20}],
    )
    now = lf.deployments.get("streamed").traffic_since + 1000
    traffic = TrafficStats()
    traffic.apply(d.InferenceRecorded(deployment="streamed", replica="w", records=tuple(
        d.InferenceRecord(request_id=f"q{i}", variant="ab"[i % 2], time=now,
                          latency_ms=5.0 if i % 2 == 0 else 400.0)
        for i in range(60)
    )))  # fmt: skip
    snapshots = RedisTrafficSnapshots.from_url(redis_url, prefix=redis_prefix)
    snapshots.publish("streamed", traffic.deployment("streamed"))
    settings = backend.settings.model_copy(
        update={"traffic_stats": "redis", "redis_url": redis_url}
    )
    source = stats_for(settings, backend.log)
    assert isinstance(source, RedisStats)
    source.snapshots.prefix = redis_prefix
    service = backend.deployments
    actions = Deployer(service, source).tick()
    [action] = [a for a in actions if a.deployment == "streamed"]  # others share the data dir
    assert action.kind == "rolled_back" and "latency_p99_ms of b" in action.detail
    assert service.get("streamed").shares()["b"] == 0.0


def test_redis_statistics_without_a_redis_url_are_refused_naming_the_setting(backend: Backend):
    settings = backend.settings.model_copy(update={"traffic_stats": "redis", "redis_url": None})
    with pytest.raises(InvalidInput) as e:
        stats_for(settings, backend.log)
    assert e.value.field == "LEDGERFLOW_REDIS_URL"


def test_a_deployment_is_routed_over_oip_grpc_by_the_key_in_the_call_metadata(backend: Backend):
    lf.deployments.create(
        "grpc",
        [
            {"name": "a", "model": "scale", "version": 1, "weight": 1},
            {"name": "b", "model": "scale", "version": 2, "weight": 1},
        ],
        key_header="X-User",
    )

    async def body(host: DeploymentHost) -> None:
        server = await start_deployment_grpc(host, "127.0.0.1", 0)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                request = pb.ModelInferRequest(model_name="grpc")
                tensor = request.inputs.add(name="x", datatype="FP64", shape=[1, 1])
                tensor.contents.fp64_contents.extend([2.0])
                seen = {}
                for user in ("ada", "bob", "cy", "dee", "eve", "fay"):
                    call = stub.ModelInfer(request, metadata=(("x-user", user),))
                    response = await call
                    variant = response.parameters["variant"].string_param
                    trailing = dict(await call.trailing_metadata())
                    assert trailing["x-ledgerflow-variant"] == variant
                    value = response.outputs[0].contents.fp64_contents[0]
                    assert value == (2.0 if variant == "a" else 4.0)
                    seen[user] = variant
                    rest = host.choose("grpc", key=user, request_id="r", forced=None).variant
                    assert rest == variant  # the same user, the same variant as over REST
                forced = await stub.ModelInfer(request, metadata=(("x-ledgerflow-variant", "b"),))
                assert forced.parameters["variant"].string_param == "b"
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await stub.ModelInfer(request, metadata=(("x-ledgerflow-variant", "zz"),))
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "X-Ledgerflow-Variant" in (e.value.details() or "")
                ready = await stub.ModelReady(pb.ModelReadyRequest(name="grpc"))
                meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="grpc"))
                assert ready.ready and meta.name == "grpc"
        finally:
            await server.stop(grace=0)

    serve(backend, "grpc", body)


def test_a_failing_shadow_never_fails_a_request_nor_rolls_the_split_back(backend: Backend):
    lf.deployments.create(
        "shadowed",
        [
            {"name": "live", "model": "scale", "version": 1, "weight": 1},
            {"name": "next", "model": "scale", "version": 2, "weight": 1},
            {"name": "broken", "model": "scale", "version": 3, "shadow": True},
        ],
        guardrails=[{"metric": "error_rate", "threshold": 0.05, "min_samples": 20}],
    )

    async def body(host: DeploymentHost) -> list[str]:
        return [(await call(host, "shadowed", f"u{i}", f"s{i}")).variant for i in range(60)]

    served = serve(backend, "shadowed", body)
    assert set(served) == {"live", "next"}  # every request answered, none by the shadow
    service = backend.deployments
    stats = FollowedStats(backend.log)
    actions = Deployer(service, stats, before_tick=backend.refresh).tick()
    assert [a for a in actions if a.deployment == "shadowed"] == []
    rows = {r["variant"]: r for r in analysis(service.get("shadowed"), stats)["variants"]}
    assert rows["broken"]["shadow"] and rows["broken"]["error_rate"] == 1.0
    assert rows["broken"]["count"] == 60


@pytest.mark.parametrize("kind", ["sqlite", "kafka"])
def test_a_traffic_catch_up_resumes_past_the_events_that_are_not_traffic(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """The deployer catches the in-process statistics up every second. Its reading must
    resume past everything it read, not past the last traffic event only: on Kafka that
    left every partition without traffic to be read again from its start each second
    (bench/soak.py: the server's CPU and memory grew with the log)."""
    log: EventLog
    if kind == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        log = KafkaEventLog(bootstrap, topic_prefix=f"traffic-{uuid.uuid4().hex[:10]}",
                            partitions=2, idempotent=False)  # fmt: skip
    else:
        log = SQLiteEventLog(tmp_path / "events.db")
    try:
        served = d.InferenceRecord(request_id="q1", variant="a", time=1_000, latency_ms=3.0)
        log.append([Event.of(d.InferenceRecorded(deployment="dep", replica="r",
                                                 records=(served,)), actor="test")])  # fmt: skip
        log.append([tag_event(f"run-{i}", i) for i in range(20)])  # runs, models: not traffic
        follower = TrafficFollower(log).catch_up()

        assert follower.checkpoint.covers(log.head())
        assert follower.stats.snapshot("dep")["a"].requests == 1
        assert follower.catch_up().stats.snapshot("dep")["a"].requests == 1  # folded once
    finally:
        log.close()
