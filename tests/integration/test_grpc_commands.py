"""gRPC `Execute` against a real gateway: every command the REST routes offer, by its
class name, with the same checks, answers and errors, and the actor from the metadata."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from ledgerflow.events.envelope import Recorded
from ledgerflow.services.gateway.grpc_server import serve
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from ledgerflow.services.gateway.proto.ledgerflow_pb2_grpc import LedgerflowStub
from ledgerflow.webhooks import standard_secret
from tests.integration.gateway_fixture import GatewayThread


@pytest.fixture
def stub(gateway: GatewayThread) -> Iterator[LedgerflowStub]:
    """gRPC on the REST gateway's own backend and hub, as `ledgerflow gateway` runs them."""
    assert gateway.backend is not None and gateway.hub is not None
    server = serve(gateway.backend, gateway.hub, "127.0.0.1", 0)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.bound_port}")
    yield LedgerflowStub(channel)
    channel.close()
    server.stop(None).wait(5)


def execute(stub: LedgerflowStub, command: str, actor: str | None = None, **fields: Any) -> Any:
    metadata = (("x-ledgerflow-actor", actor),) if actor else None
    request = pb.CommandRequest(command=command, body=json.dumps(fields).encode())
    reply = stub.Execute(request, metadata=metadata, timeout=30)
    return json.loads(reply.body)


def refused(stub: LedgerflowStub, command: str, body: bytes) -> tuple[Any, str, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as e:
        stub.Execute(pb.CommandRequest(command=command, body=body), timeout=30)
    return e.value.code(), e.value.details(), dict(e.value.trailing_metadata() or ())


def test_a_webhook_created_over_grpc_is_the_one_rest_shows_and_the_actor_is_recorded(
    gateway: GatewayThread, stub: LedgerflowStub
):
    hook = execute(stub, "CreateWebhook", actor="user:ana", name="ci",
                   url="https://example.com/hook", events=["model.*"])  # fmt: skip
    assert hook["name"] == "ci" and len(hook["secret"]) >= 16
    shown = httpx.get(f"{gateway.url}/api/v1/webhooks/ci").json()
    assert shown == {k: v for k, v in hook.items() if k not in ("secret", "standard_secret")}
    assert hook["standard_secret"] == standard_secret(hook["secret"])  # shown once too
    paused = execute(stub, "UpdateWebhook", name="ci", active=False)
    assert paused["active"] is False and "secret" not in paused
    assert gateway.backend is not None
    actors = {
        i.event.type: i.event.actor
        for i in gateway.backend.log.read(None, limit=1000)
        if isinstance(i, Recorded)
    }
    assert actors["webhook.created"] == "user:ana" and actors["webhook.updated"] == "anonymous"
    assert execute(stub, "DeleteWebhook", name="ci") is None  # REST answers 204


def test_a_deployment_is_created_and_changed_over_grpc_as_over_rest(
    gateway: GatewayThread, stub: LedgerflowStub
):
    execute(stub, "CreateRegisteredModel", name="m")
    for _ in range(2):
        version = execute(stub, "CreateModelVersion", name="m", source="file:///tmp/model")
    assert version["version"] == 2
    created = execute(stub, "CreateDeployment", name="web", variants=[
        {"name": "a", "model": "m", "version": 1, "weight": 100},
        {"name": "b", "model": "m", "version": 2},
    ])  # fmt: skip
    assert [v["name"] for v in created["variants"]] == ["a", "b"]
    changed = execute(stub, "SetTraffic", name="web", weights={"a": 90, "b": 10})
    assert changed == httpx.get(f"{gateway.url}/api/v1/deployments/web").json()
    assert {v["name"]: v["weight"] for v in changed["variants"]} == {"a": 90.0, "b": 10.0}
    execute(stub, "SetBundlePolicy", name="m", on_alias=["champion"])
    tags = httpx.get(f"{gateway.url}/api/v1/registered-models/m").json()["tags"]
    assert tags == {"ledgerflow.bundle.on_alias": "champion"}


def test_a_bad_body_is_invalid_argument_naming_the_field_as_rest_names_it(
    gateway: GatewayThread, stub: LedgerflowStub
):
    body = json.dumps({"name": "ci", "url": "https://x", "events": "model.*"}).encode()
    code, details, meta = refused(stub, "CreateWebhook", body)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("events: ")
    assert meta["ledgerflow-field"] == "events"
    assert meta["ledgerflow-error-code"] == "INVALID_PARAMETER_VALUE"
    rest = httpx.post(f"{gateway.url}/api/v1/webhooks", json=json.loads(body)).json()
    assert (rest["field"], rest["message"]) == ("events", details)
    code, details, meta = refused(stub, "DeleteWebhook", b'{"name": "ci", "colour": 1}')
    assert code == grpc.StatusCode.INVALID_ARGUMENT and meta["ledgerflow-field"] == "colour"
    code, details, _ = refused(stub, "DeleteWebhook", b"{not json")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "JSON" in details
    code, details, meta = refused(stub, "SetTraffic", b"")  # no body: no name either
    assert code == grpc.StatusCode.INVALID_ARGUMENT and meta["ledgerflow-field"] == "name"


def test_decisions_refuse_with_the_status_their_error_maps_to(stub: LedgerflowStub):
    code, details, meta = refused(stub, "DeleteWebhook", b'{"name": "nobody"}')
    assert code == grpc.StatusCode.NOT_FOUND and "nobody" in details
    hook = json.dumps({"name": "twice", "url": "https://example.com", "events": ["run.*"]})
    stub.Execute(pb.CommandRequest(command="CreateWebhook", body=hook.encode()), timeout=30)
    code, _, meta = refused(stub, "CreateWebhook", hook.encode())
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert meta["ledgerflow-error-code"] == "RESOURCE_ALREADY_EXISTS"


def test_an_unknown_command_or_one_the_gateway_does_not_offer_is_unimplemented_by_name(
    stub: LedgerflowStub,
):
    code, details, meta = refused(stub, "LaunchRocket", b"{}")
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert "unknown command 'LaunchRocket'" in details and "CreateWebhook" in details
    assert meta["ledgerflow-field"] == "command"
    body = b'{"model_uri": "models:/m/1"}'
    code, details, _ = refused(stub, "BuildBundles", body)
    assert code == grpc.StatusCode.UNIMPLEMENTED and "next to the event log" in details
    code, details, _ = refused(stub, "", b"{}")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details == "command is required"
