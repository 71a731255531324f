"""Model servers with auth, over real HTTP and gRPC: the deployments `ledgerflow server`
hosts beside its gateway, and a replica's REST and OIP gRPC fronts.

Inference needs READ on the deployment where inference needs an identity; feedback needs
EDIT whenever there is auth, and is recorded as the caller's; probes and /metrics answer
anyone.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf.message_factory import GetMessageClass

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events import auth_commands as ac
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import InvalidInput, PermissionDenied, Unauthenticated
from ledgerflow.events.permissions import Level
from ledgerflow.events.settings import load_settings
from ledgerflow.pyfunc import PythonModel
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.gateway.app import create_app as gateway_app
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.server import _host_deployments
from ledgerflow.services.serving.app import create_app
from ledgerflow.services.serving.auth import ServingAuth
from ledgerflow.services.serving.deployment import DeploymentHost, variant_loader
from ledgerflow.services.serving.deployment_grpc import start_deployment_grpc
from ledgerflow.services.serving.deployment_routes import deployment_routes
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.serving.sources import BackendSource
from tests.conftest import free_port
from tests.integration.gateway_fixture import ServerThread

PASSWORD = "user-password-1"
ROW = {"inputs": [[2.0]]}
OIP_ROW = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2.0]}]}
OPEN_OIP = {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata"}
"""The OIP gRPC methods anyone may call (probes); the rest need an identity."""


class Scale(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return np.asarray(model_input, dtype=float) * 2


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class World:
    backend: Backend
    token: str  # the reader's API token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Auth on (default NO_PERMISSIONS); deployment `dep` of model `scale` v1 (x2); users
    nobody, reader (READ on dep), editor (EDIT on dep)."""
    data = tmp_path_factory.mktemp("auth-serving") / "data"
    lf.set_tracking_uri(str(data))
    with lf.start_run():
        lf.pyfunc.log_model(name="m", python_model=Scale(), registered_model_name="scale")
    session.reset()
    settings = load_settings(
        tracking_uri=str(data), auth=True, auth_default="NO_PERMISSIONS",
        admin_user="admin", admin_password="admin-password-1",
    )  # fmt: skip
    b = bootstrap(settings)
    b.auth.ensure_admin("admin", "admin-password-1", actor="test")
    for user in ("nobody", "reader", "editor"):
        b.auth.execute(ac.CreateUser(name=user, password=PASSWORD), actor="admin")
    variants = [{"name": "a", "model": "scale", "version": 1, "weight": 1}]
    b.deployments.execute(dc.CreateDeployment(name="dep", variants=variants), actor="admin")
    for user, level in (("reader", "READ"), ("editor", "EDIT")):
        grant = ac.SetPermission(kind="deployment", key="dep", principal=f"user:{user}",
                                 level=level)  # fmt: skip
        b.auth.execute(grant, actor="admin")
    token = b.auth.execute(ac.CreateToken(user="reader"), actor="admin").token
    try:
        yield World(b, token)
    finally:
        b.close()


def wait_ready(url: str, name: str = "dep") -> None:
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/deployments/{name}/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the deployment never got ready"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def hosted(world: World) -> Iterator[str]:
    """`ledgerflow server`'s gateway app with its deployments hosted, over real HTTP."""
    hub = Hub(world.backend.log, redis_url=None).start()
    app = gateway_app(world.backend, hub)
    _host_deployments(app, world.backend)
    server = ServerThread(app, free_port(), name="auth-serving").start()
    try:
        wait_ready(server.url)
        yield server.url
    finally:
        hub.close()
        server.stop()


def last_feedback_actor(backend: Backend) -> str:
    feedback = [
        r.event
        for r in backend.log.read(None, limit=100_000)
        if isinstance(r, Recorded) and r.event.type == "feedback.recorded"
    ]
    return feedback[-1].actor


def test_a_hosted_deployment_needs_read_to_infer_and_edit_to_give_feedback(
    world: World, hosted: str
) -> None:
    with httpx.Client(base_url=hosted, timeout=30) as http:
        for path, body in (("invocations", ROW), ("infer", OIP_ROW)):
            url = f"/deployments/dep/{path}"
            anonymous = http.post(url, json=body)
            assert anonymous.status_code == 401, anonymous.text
            assert "Bearer" in anonymous.headers["WWW-Authenticate"]
            assert http.post(url, json=body, headers=basic("reader", "wrong")).status_code == 401
            denied = http.post(url, json=body, headers=basic("nobody"))
            assert denied.status_code == 403, denied.text
            assert "nobody needs READ on deployment 'dep'" in denied.text
            for who in (basic("reader"), {"Authorization": f"Bearer {world.token}"}):
                ok = http.post(url, json=body, headers=who)
                assert ok.status_code == 200, ok.text
        tf = "/deployments/dep/v1/models/dep"  # TF Serving's predict, status and metadata
        for method, url, body in (("POST", f"{tf}:predict", {"instances": [[2.0]]}),
                                  ("GET", tf, None), ("GET", f"{tf}/versions/1/metadata", None),
                                  ("GET", f"{tf}/versions/9", None)):  # fmt: skip
            anonymous = http.request(method, url, json=body)
            assert anonymous.status_code == 401 and list(anonymous.json()) == ["error"], url
            denied = http.request(method, url, json=body, headers=basic("nobody"))
            assert denied.status_code == 403 and list(denied.json()) == ["error"], url
            ok = http.request(method, url, json=body, headers=basic("reader"))
            assert ok.status_code == (404 if url.endswith("/9") else 200), (url, ok.text)
        status = http.get(tf, headers=basic("reader")).json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        answered = http.post("/deployments/dep/invocations", json=ROW, headers=basic("reader"))
        assert answered.json() == {"predictions": [[4.0]]}
        assert http.post("/deployments/elsewhere/invocations", json=ROW,
                         headers=basic("reader")).status_code == 403  # fmt: skip

        feedback = {"request_id": answered.headers["x-request-id"], "converted": True}
        assert http.post("/deployments/dep/feedback", json=feedback).status_code == 401
        refused = http.post("/deployments/dep/feedback", json=feedback, headers=basic("reader"))
        assert refused.status_code == 403 and "EDIT" in refused.json()["message"]
        recorded = http.post("/deployments/dep/feedback", json=feedback, headers=basic("editor"))
        assert recorded.status_code == 202 and recorded.json()["variant"] == "a"
        assert last_feedback_actor(world.backend) == "editor"

        assert http.get("/deployments/dep/ready").status_code == 200  # probes: anyone
        assert http.get("/metrics").status_code == 200


@contextmanager
def replica(backend: Backend, auth: ServingAuth) -> Iterator[tuple[str, int]]:
    """A replica of `dep` as `ledgerflow serve -d dep` runs one: REST (uvicorn, real HTTP)
    and OIP gRPC on the server's loop; yields (REST URL, gRPC port)."""
    repository = ModelRepository()
    loader = variant_loader(BackendSource(backend), allow_pickle=True)
    host = DeploymentHost(backend.log, repository, replica="t", only="dep", loader=loader)
    started: dict[str, Any] = {}

    async def start() -> None:
        await host.start()
        started["grpc"] = await start_deployment_grpc(host, "127.0.0.1", 0, auth)

    async def stop() -> None:
        if "grpc" in started:
            await started["grpc"].stop(grace=0)
        await host.stop()

    app = create_app(repository, extra_routes=deployment_routes(host, auth), on_startup=start,
                     on_shutdown=stop, auth=auth)  # fmt: skip
    server = ServerThread(app, free_port(), name="replica").start()
    try:
        wait_ready(server.url)
        while "grpc" not in started:
            time.sleep(0.02)
        yield server.url, started["grpc"].port
    finally:
        server.stop()


def test_a_replica_with_open_inference_still_guards_feedback(world: World) -> None:
    auth = ServingAuth.of(world.backend, inference=False)
    with replica(world.backend, auth) as (url, port), httpx.Client(base_url=url) as http:
        r = http.post("/deployments/dep/invocations", json=ROW)
        assert r.status_code == 200, r.text
        oip = http.post("/v2/models/dep:a/infer", json=OIP_ROW)
        assert oip.status_code == 200, oip.text
        feedback = {"request_id": r.headers["x-request-id"], "value": 1.0}
        assert http.post("/deployments/dep/feedback", json=feedback).status_code == 401
        fb = http.post("/deployments/dep/feedback", json=feedback, headers=basic("editor"))
        assert fb.status_code == 202
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ModelInfer(infer_request("dep"), timeout=10).outputs


def infer_request(name: str) -> Any:
    request = pb.ModelInferRequest(model_name=name)
    tensor = request.inputs.add(name="x", datatype="FP64", shape=[1, 1])
    tensor.contents.fp64_contents.extend([2.0])
    return request


def oip_requests() -> dict[str, Any]:
    return {
        "ModelReady": pb.ModelReadyRequest(name="dep"),
        "ModelMetadata": pb.ModelMetadataRequest(name="dep"),
        "ModelInfer": infer_request("dep"),
    }


def oip_call(channel: grpc.Channel, name: str, metadata: Any) -> Any:
    """Call the OIP method `name` by its descriptor (every one is unary)."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    method = service.methods_by_name[name]
    request = oip_requests().get(name) or GetMessageClass(method.input_type)()
    call = channel.unary_unary(
        f"/{service.full_name}/{name}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=GetMessageClass(method.output_type).FromString,
    )
    return call(request, metadata=metadata, timeout=10)


def test_a_replica_with_inference_auth_guards_every_front(world: World) -> None:
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    reader = tuple((k.lower(), v) for k, v in basic("reader").items())
    nobody = tuple((k.lower(), v) for k, v in basic("nobody").items())
    auth = ServingAuth.of(world.backend, inference=True)
    with replica(world.backend, auth) as (url, port), httpx.Client(base_url=url) as http:
        # a variant by its own name is the deployment's: READ on it
        for path, body in (
            ("/v2/models/dep:a/infer", OIP_ROW),
            ("/invocations", ROW),  # the replica's only served model
            ("/deployments/dep/invocations", ROW),
        ):
            assert http.post(path, json=body).status_code == 401, path
            assert http.post(path, json=body, headers=basic("nobody")).status_code == 403, path
            ok = http.post(path, json=body, headers=basic("reader"))
            assert ok.status_code == 200, (path, ok.text)
        meta = http.get("/v2/models/dep:a")
        assert meta.status_code == 401 and "error" in meta.json()
        assert http.get("/v2/models/dep:a", headers=basic("reader")).is_success
        for probe in ("/ping", "/v2/health/ready", "/v2/models/dep:a/ready", "/metrics"):
            assert http.get(probe).status_code == 200, probe

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for method in service.methods:
                if method.name in OPEN_OIP:
                    oip_call(channel, method.name, None)
                    continue
                for metadata, code in (
                    (None, grpc.StatusCode.UNAUTHENTICATED),
                    ((("authorization", "Bearer lf_nope"),), grpc.StatusCode.UNAUTHENTICATED),
                    (nobody, grpc.StatusCode.PERMISSION_DENIED),
                ):
                    with pytest.raises(grpc.RpcError) as e:
                        oip_call(channel, method.name, metadata)
                    assert e.value.code() == code, (method.name, metadata)
                oip_call(channel, method.name, reader)
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            for name in ("dep", "dep:a"):  # routed, and a variant by its own name
                with pytest.raises(grpc.RpcError) as e:
                    stub.ModelInfer(infer_request(name), metadata=nobody, timeout=10)
                assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
                answer = stub.ModelInfer(infer_request(name), metadata=reader, timeout=10)
                assert list(answer.outputs[0].contents.fp64_contents) == [4.0]


def test_a_model_server_beside_a_remote_gateway_reads_its_views_database(
    world: World,
) -> None:
    remote = load_settings(tracking_uri="http://127.0.0.1:9", auth=True)
    with pytest.raises(InvalidInput, match="LEDGERFLOW_VIEWS_DB"):
        ServingAuth.over_views(remote, inference=True)
    views = world.backend.settings.views_db_url
    beside = load_settings(tracking_uri="http://127.0.0.1:9", views_db=views,
                           auth_default="NO_PERMISSIONS")  # fmt: skip
    auth = ServingAuth.over_views(beside, inference=True)

    async def check() -> None:
        reader = await auth.caller(f"Bearer {world.token}")
        assert reader.user == "reader"
        auth.require(reader, ("deployment", "dep"), Level.READ)
        with pytest.raises(PermissionDenied):
            auth.require(reader, ("deployment", "dep"), Level.EDIT)
        with pytest.raises(Unauthenticated):
            await auth.caller("Bearer lf_nope")

    asyncio.run(check())


def test_a_revocation_reaches_a_model_server_within_its_generation_ttl(world: World) -> None:
    b = world.backend
    auth = ServingAuth.of(b, inference=True, generation_ttl_s=0.3)
    made = b.auth.execute(ac.CreateToken(user="reader"), actor="admin")
    header = f"Bearer {made.token}"

    async def check() -> None:
        assert (await auth.caller(header)).user == "reader"
        b.auth.execute(ac.RevokeToken(id=made.id), actor="admin")
        assert (await auth.caller(header)).user == "reader"  # the generation read is reused
        await asyncio.sleep(0.35)
        with pytest.raises(Unauthenticated, match="revoked"):
            await auth.caller(header)

    asyncio.run(check())


def test_failed_sign_ins_at_a_model_server_are_throttled_with_a_429(
    world: World, hosted: str
) -> None:
    world.backend.auth.execute(ac.CreateUser(name="guessed", password=PASSWORD), actor="admin")
    allowed = int(world.backend.settings.auth_failures_per_user)
    with httpx.Client(base_url=hosted, timeout=30) as http:
        url = "/deployments/dep/invocations"
        answers = []
        for _ in range(allowed + 5):  # the bucket refills one every 6 s meanwhile
            answers.append(http.post(url, json=ROW, headers=basic("guessed", "guess")))
            if answers[-1].status_code != 401:
                break
        assert len(answers) > allowed and answers[-1].status_code == 429, answers[-1].text
        assert "too many failed sign-ins for user name 'guessed'" in answers[-1].text
        assert int(answers[-1].headers["Retry-After"]) >= 1
        throttled = http.post(url, json=ROW, headers=basic("guessed", PASSWORD))  # even right
        assert throttled.status_code == 429, throttled.text
