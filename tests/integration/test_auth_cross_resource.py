"""Commands whose payload names a second resource check it too, the same way over REST,
gRPC `Execute` and the SDK against a gateway: a deployment serves only models its
creator may READ, a model version comes only from a run (or model) its registrant may
READ. A refused command leaves nothing on the log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.errors import PermissionDenied
from ledgerflow.events.settings import load_settings
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from tests.integration.test_auth_gateway import PASSWORD, basic, running_world
from tests.integration.test_auth_grpc import GrpcWorld, serving_grpc
from tests.integration.test_auth_grpc import basic as grpc_basic

ADMIN = "admin"
USER = "editor"  # holds nothing on what each test makes, until granted


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcWorld]:
    data = tmp_path_factory.mktemp("auth-cross") / "data"
    with running_world(data) as world, serving_grpc(world) as served:
        yield served


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def secret_model(gw: GrpcWorld) -> str:
    """A model with a version, made by the admin; the user holds nothing on it."""
    name = fresh("secret")
    gw.backend.registry.execute(mc.CreateRegisteredModel(name=name), actor=ADMIN)
    gw.backend.registry.execute(mc.CreateModelVersion(name=name, source="/tmp/m"), actor=ADMIN)
    return name


def secret_run(gw: GrpcWorld) -> tuple[str, str]:
    """(experiment id, run id), made by the admin; the user holds nothing on them."""
    b = gw.backend
    experiment = b.tracking.execute(tc.CreateExperiment(name=fresh("secret")), actor=ADMIN)
    return experiment, b.tracking.create_run(experiment, user_id=ADMIN, actor=ADMIN).run_id


def grant(gw: GrpcWorld, kind: str, key: str, level: str = "READ") -> None:
    command = ac.SetPermission(kind=kind, key=key, principal=f"user:{USER}", level=level)  # type: ignore[arg-type]
    gw.backend.auth.execute(command, actor=ADMIN)


def written_since(gw: GrpcWorld, head: object) -> set[str]:
    return {r.event.type for r in gw.backend.log.read(head)}  # type: ignore[arg-type]


def arms(model: str) -> list[dict[str, object]]:
    return [{"name": "a", "model": model, "version": 1, "weight": 1}]


@pytest.fixture
def http(gw: GrpcWorld) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.world.gateway.url, headers=basic(USER, PASSWORD)) as h:
        yield h


def refused(answer: httpx.Response, kind: str, key: str) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert (body["error_code"], body["kind"], body["key"]) == ("PERMISSION_DENIED", kind, key)
    assert f"{USER} needs READ on {kind} {key!r}" in body["message"]


def test_rest_a_deployment_needs_read_on_every_variants_model(
    gw: GrpcWorld, http: httpx.Client
) -> None:
    mine, theirs = secret_model(gw), secret_model(gw)
    grant(gw, "model", mine)
    name, head = fresh("dep"), gw.backend.log.head()
    body = {"name": name, "variants": [*arms(mine), {**arms(theirs)[0], "name": "b"}]}
    refused(http.post("/api/v1/deployments", json=body), "model", theirs)
    assert written_since(gw, head) <= {"auth.denied"}  # only the refusal, for the audit

    grant(gw, "model", theirs)
    assert http.post("/api/v1/deployments", json=body).status_code == 201

    other = secret_model(gw)  # adding a variant: EDIT on the deployment (its creator)...
    variant = {"name": "c", "model": other, "version": 1}
    refused(http.post(f"/api/v1/deployments/{name}/variants", json=variant), "model", other)
    grant(gw, "model", other)  # ...and READ on the new variant's model
    assert http.post(f"/api/v1/deployments/{name}/variants", json=variant).is_success


def test_rest_a_model_version_needs_read_on_the_run_or_model_it_comes_from(
    gw: GrpcWorld, http: httpx.Client
) -> None:
    experiment, run = secret_run(gw)
    name = fresh("mine")
    register = {"name": name, "model_uri": f"runs:/{run}/model"}
    refused(http.post("/api/v1/model-versions/register", json=register), "run", run)
    assert not gw.backend.registry.queries.model_exists(name)  # nor made the model

    other = secret_model(gw)
    copy = {"name": name, "model_uri": f"models:/{other}/1"}
    refused(http.post("/api/v1/model-versions/register", json=copy), "model", other)

    grant(gw, "experiment", experiment)
    made = http.post("/api/v1/model-versions/register", json=register)
    assert made.status_code == 201 and made.json()["run_id"] == run

    _, run2 = secret_run(gw)  # the user now MANAGEs `name` (its creator)
    versions = f"/api/v1/registered-models/{name}/versions"
    by_id = http.post(versions, json={"source": "/tmp/elsewhere", "run_id": run2})
    assert by_id.status_code == 403 and by_id.json()["key"] == run2
    by_uri = http.post(versions, json={"source": f"runs:/{run2}/model"})
    assert by_uri.status_code == 403 and by_uri.json()["key"] == run2
    assert http.post(versions, json={"source": "/tmp/plain-files"}).status_code == 201


def test_grpc_execute_checks_the_resources_the_payload_names(gw: GrpcWorld) -> None:
    theirs = secret_model(gw)
    body = json.dumps({"name": fresh("dep"), "variants": arms(theirs)}).encode()
    request = pb.CommandRequest(command="CreateDeployment", body=body)
    with pytest.raises(grpc.RpcError) as e:
        gw.stub.Execute(request, metadata=grpc_basic(USER))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    trailing = dict(e.value.trailing_metadata())
    assert (trailing["ledgerflow-kind"], trailing["ledgerflow-key"]) == ("model", theirs)

    _, run = secret_run(gw)
    register = json.dumps({"name": fresh("mine"), "model_uri": f"runs:/{run}/model"}).encode()
    with pytest.raises(grpc.RpcError) as e:
        gw.stub.Execute(
            pb.CommandRequest(command="RegisterModel", body=register), metadata=grpc_basic(USER)
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and run in e.value.details()

    grant(gw, "model", theirs)
    answer = gw.stub.Execute(request, metadata=grpc_basic(USER))
    assert json.loads(answer.body)["variants"][0]["model"] == theirs


def test_the_sdk_against_a_gateway_is_refused_the_same_way(gw: GrpcWorld, spool_dir: Path) -> None:
    settings = load_settings(
        tracking_uri=gw.world.gateway.url, tracking_username=USER, tracking_password=PASSWORD
    )
    client = lf.Client(backend=session.backend_for(settings))
    try:
        theirs = secret_model(gw)
        with pytest.raises(PermissionDenied) as e:
            client.create_deployment(fresh("dep"), arms(theirs))
        assert (e.value.kind, e.value.key) == ("model", theirs)
        _, run = secret_run(gw)
        mine = client.create_registered_model(fresh("mine")).name  # its creator: MANAGE
        with pytest.raises(PermissionDenied) as e:
            client.create_model_version(mine, f"runs:/{run}/model")
        assert (e.value.kind, e.value.key) == ("run", run)
    finally:
        session.reset()


def test_an_admin_needs_no_grant_on_the_models_a_deployment_serves(gw: GrpcWorld) -> None:
    theirs = secret_model(gw)
    with httpx.Client(
        base_url=gw.world.gateway.url, headers=basic("admin", "admin-password-1")
    ) as h:
        body = {"name": fresh("dep"), "variants": arms(theirs)}
        assert h.post("/api/v1/deployments", json=body).status_code == 201


def test_promoting_with_an_alias_needs_manage_on_the_model_it_moves(
    gw: GrpcWorld, http: httpx.Client
) -> None:
    model = secret_model(gw)
    grant(gw, "model", model)  # READ: enough to deploy it
    name = fresh("dep")
    both = [*arms(model), {"name": "b", "model": model, "version": 1, "weight": 0}]
    assert http.post("/api/v1/deployments", json={"name": name, "variants": both}).is_success
    promote = f"/api/v1/deployments/{name}/promote"  # its creator MANAGEs the deployment
    answer = http.post(promote, json={"variant": "b"})  # moves `champion` by default
    assert answer.status_code == 403, answer.text
    assert (answer.json()["kind"], answer.json()["key"]) == ("model", model)
    assert f"{USER} needs MANAGE on model {model!r}" in answer.json()["message"]
    assert http.post(promote, json={"variant": "b", "alias": None}).is_success

    grant(gw, "model", model, "MANAGE")
    assert http.post(promote, json={"variant": "a", "alias": "prod"}).is_success
    moved = gw.backend.registry.queries.get_model_version_by_alias(model, "prod")
    assert moved.version == 1
