"""The gateway's gRPC service with auth on, over real channels.

The coverage tests walk every method of the service as the generated descriptor lists
it, calling each by its path with the shape the descriptor gives (unary, client or
server streaming): without credentials each is UNAUTHENTICATED; as a user holding
nothing (the default level NO_PERMISSIONS, no grant) each is PERMISSION_DENIED, except
`Subscribe`, which any identity may open and which then sends only what they may read.
So an RPC added to the proto later is covered here with no change (and `serve` refuses
to start one that declares no check).
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.codec import encode
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.model_payloads import ModelAliasSet
from ledgerflow.services.auth.denials import DenialLimiter
from ledgerflow.services.gateway.grpc_auth import SERVICE
from ledgerflow.services.gateway.grpc_server import serve
from ledgerflow.services.gateway.limits import RateLimiter, Rates
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from ledgerflow.services.gateway.proto.ledgerflow_pb2_grpc import LedgerflowStub
from tests.integration.test_auth_gateway import ADMIN, PASSWORD, World, running_world

ANYONE = {"Subscribe"}
"""Methods any identity may call; everything else needs a level `nobody` lacks."""


def basic(user: str, password: str = PASSWORD) -> tuple[tuple[str, str], ...]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (("authorization", f"Basic {token}"),)


@dataclass
class GrpcWorld:
    world: World
    channel: grpc.Channel
    stub: LedgerflowStub

    @property
    def backend(self) -> Any:
        return self.world.backend


@contextmanager
def serving_grpc(world: World) -> Iterator[GrpcWorld]:
    """The world's gateway's gRPC service, on a free port, with a channel to it."""
    gateway = world.gateway
    assert gateway.backend is not None and gateway.hub is not None
    server = serve(gateway.backend, gateway.hub, "127.0.0.1", 0)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.bound_port}")
    try:
        yield GrpcWorld(world, channel, LedgerflowStub(channel))
    finally:
        channel.close()
        server.stop(None).wait(5)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcWorld]:
    data = tmp_path_factory.mktemp("auth-grpc") / "data"
    with running_world(data) as world, serving_grpc(world) as served:
        yield served


def metric_event(run_id: str, actor: str = "user:someone-else") -> str:
    ev = Event.of(p.RunMetricsLogged(run_id=run_id, points=(("loss", 1.0, 1, 0),)), actor=actor)
    return encode(ev).decode()


def requests(world: World) -> dict[str, Message]:
    """A valid request of each method, naming the world's resources."""
    return {
        "Ingest": pb.EventBatch(events=[metric_event(world.run)]),
        "GetRun": pb.GetRunRequest(run_id=world.run),
        "SearchRuns": pb.SearchRunsRequest(experiment_ids=[world.experiment]),
        "GetMetricHistory": pb.GetMetricHistoryRequest(run_id=world.run, key="loss"),
        "GetModelVersion": pb.GetModelVersionRequest(name="m", version=1),
        "GetLatestVersions": pb.GetLatestVersionsRequest(name="m"),
        "Subscribe": pb.SubscribeRequest(),
        "Execute": pb.CommandRequest(
            command="SetRegisteredModelTag", body=b'{"name": "m", "key": "k", "value": "v"}'
        ),
    }


def call(
    channel: grpc.Channel, name: str, request: Message | None, metadata: Any, timeout: float = 10
) -> list[Any]:
    """Call the service's method `name` as its descriptor says it is shaped; every answer
    (one for a unary reply, what arrived for a stream)."""
    method = SERVICE.methods_by_name[name]
    request = request if request is not None else GetMessageClass(method.input_type)()
    path = f"/{SERVICE.full_name}/{name}"
    shape = {
        (False, False): channel.unary_unary,
        (True, False): channel.stream_unary,
        (False, True): channel.unary_stream,
        (True, True): channel.stream_stream,
    }[(method.client_streaming, method.server_streaming)]
    stub = shape(
        path,
        request_serializer=type(request).SerializeToString,
        response_deserializer=GetMessageClass(method.output_type).FromString,
    )
    sent = iter([request]) if method.client_streaming else request
    answer = stub(sent, metadata=metadata, timeout=timeout)
    return list(answer) if method.server_streaming else [answer]


def refused(
    gw: GrpcWorld, name: str, metadata: Any, request: Message | None = None, timeout: float = 10
) -> Any:
    with pytest.raises(grpc.RpcError) as e:
        call(gw.channel, name, request, metadata, timeout)
    return e.value


def test_every_rpc_needs_an_identity(gw: GrpcWorld) -> None:
    wanted = requests(gw.world)
    for method in SERVICE.methods:
        request = wanted.get(method.name)
        for metadata in (
            None,
            basic("nobody", "wrong password"),
            (("authorization", "Bearer lf_not-a-token"),),
            (("authorization", "Digest nope"),),
            (("x-ledgerflow-actor", "admin"),),  # the auth-off actor names nobody here
        ):
            error = refused(gw, method.name, metadata, request)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, (method.name, metadata)
            trailing = dict(error.trailing_metadata() or ())
            assert trailing["ledgerflow-error-code"] == "UNAUTHENTICATED"


def test_every_rpc_checks_the_level_it_needs(gw: GrpcWorld) -> None:
    wanted = requests(gw.world)
    names = {m.name for m in SERVICE.methods}
    assert names >= ANYONE  # every exception named here is a real method
    for name in sorted(names - ANYONE):
        error = refused(gw, name, basic("nobody"), wanted.get(name))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (name, error.details())
        assert "nobody needs" in error.details()
    # Subscribe: allowed, and the whole log (all on what nobody may not read) shows nothing
    error = refused(gw, "Subscribe", basic("nobody"), wanted["Subscribe"], timeout=1.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_reads_and_commands_answer_the_level_they_need(gw: GrpcWorld) -> None:
    s, w = gw.stub, gw.world
    reader = basic("reader")
    assert s.GetRun(pb.GetRunRequest(run_id=w.run), metadata=reader).info.run_id == w.run
    runs = s.SearchRuns(pb.SearchRunsRequest(experiment_ids=[w.experiment]), metadata=reader)
    assert [r.info.run_id for r in runs.runs] == [w.run]
    version = s.GetModelVersion(pb.GetModelVersionRequest(name="m", alias="champion"),
                                metadata=reader)  # fmt: skip
    assert version.version == 1
    assert s.GetLatestVersions(pb.GetLatestVersionsRequest(name="m"), metadata=reader).versions
    # asking for one experiment the caller may not read refuses the whole search
    secret = gw.backend.tracking.execute(tc.CreateExperiment(name="secret-search"), actor="admin")
    both = pb.SearchRunsRequest(experiment_ids=[w.experiment, secret])
    with pytest.raises(grpc.RpcError) as e:
        s.SearchRuns(both, metadata=reader)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and secret in e.value.details()

    tag = requests(w)["Execute"]
    with pytest.raises(grpc.RpcError) as e:
        s.Execute(tag, metadata=reader)  # EDIT on the model
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    trailing = dict(e.value.trailing_metadata())
    assert (trailing["ledgerflow-kind"], trailing["ledgerflow-key"]) == ("model", "m")
    assert json.loads(s.Execute(tag, metadata=basic("editor")).body) is None
    admin_only = pb.CommandRequest(command="CreateUser", body=b'{"name": "mallory"}')
    for who in ("manager", "editor"):
        with pytest.raises(grpc.RpcError) as e:
            s.Execute(admin_only, metadata=basic(who))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert json.loads(s.Execute(admin_only, metadata=basic(*ADMIN)).body)["name"] == "mallory"


def test_execute_records_the_principal_as_the_actor_never_the_metadata(gw: GrpcWorld) -> None:
    s, w, b = gw.stub, gw.world, gw.backend
    forged = (*basic("editor"), ("x-ledgerflow-actor", "user:ceo-of-everything"))
    body = json.dumps({"experiment_id": w.experiment, "key": "owner", "value": "editor"})
    s.Execute(pb.CommandRequest(command="SetExperimentTag", body=body.encode()), metadata=forged)
    assert list(b.log.read())[-1].event.actor == "editor"

    token = b.auth.execute(ac.CreateToken(user="editor"), actor="admin")
    bearer = (("authorization", f"Bearer {token.token}"),)
    s.Execute(pb.CommandRequest(command="SetExperimentTag", body=body.encode()), metadata=bearer)
    assert list(b.log.read())[-1].event.actor == f"editor#token:{token.id}"


def test_ingest_takes_only_telemetry_on_runs_the_caller_may_edit_stamped_with_them(
    gw: GrpcWorld,
) -> None:
    s, w, b = gw.stub, gw.world, gw.backend
    batches = [pb.EventBatch(events=[metric_event(w.run)]) for _ in range(2)]
    with pytest.raises(grpc.RpcError) as e:
        s.Ingest(iter(batches), metadata=basic("reader"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    reply = s.Ingest(iter(batches), metadata=basic("editor"))
    assert (reply.events, reply.batches) == (2, 2)
    last = [r.event for r in b.log.read() if isinstance(r, Recorded)][-2:]
    assert [(e.type, e.actor) for e in last] == [("run.metrics_logged", "editor")] * 2

    elsewhere = b.tracking.execute(tc.CreateExperiment(name="not-editors"), actor="admin")
    other_run = b.tracking.create_run(elsewhere, user_id="admin", actor="admin").run_id
    head = b.log.head()
    mixed = pb.EventBatch(
        events=[metric_event(w.run), metric_event(w.run), metric_event(other_run)]
    )
    with pytest.raises(grpc.RpcError) as e:  # every run of a batch is checked, once each
        s.Ingest(iter([mixed]), metadata=basic("editor"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and other_run in e.value.details()
    assert only_denials_since(b, head)

    alias = Event.of(ModelAliasSet(name="m", alias="champion", version=2), actor="user:x")
    for who in (basic("manager"), basic(*ADMIN)):
        with pytest.raises(grpc.RpcError) as e:
            s.Ingest(iter([pb.EventBatch(events=[encode(alias).decode()])]), metadata=who)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "only run telemetry" in e.value.details()
    assert only_denials_since(b, head)


def only_denials_since(b: Any, head: Any) -> bool:
    """Nothing but refusals (`auth.denied`) reached the log after `head`."""
    return all(isinstance(r, Recorded) and r.event.type == "auth.denied" for r in b.log.read(head))


def _subscribe(gw: GrpcWorld, metadata: Any, after: str) -> tuple[queue.Queue[Any], Any]:
    """Read a subscription from a thread into a queue; cancel it with the returned call."""
    got: queue.Queue[Any] = queue.Queue()
    stream = gw.stub.Subscribe(
        pb.SubscribeRequest(after=after, types=["experiment.*"]), metadata=metadata, timeout=30
    )

    def read() -> None:
        try:
            for message in stream:
                got.put(message)
        except grpc.RpcError as e:
            got.put(e)

    threading.Thread(target=read, daemon=True).start()
    return got, stream


def test_subscribe_hides_events_of_experiments_the_subscriber_cannot_read(gw: GrpcWorld) -> None:
    w, b = gw.world, gw.backend
    secret = b.tracking.execute(tc.CreateExperiment(name="secret"), actor="admin")
    after = b.log.head().encode()
    as_reader, reader_call = _subscribe(gw, basic("reader"), after)
    as_admin, admin_call = _subscribe(gw, basic(*ADMIN), after)
    try:
        for experiment in (secret, w.experiment):
            tag = tc.SetExperimentTag(experiment_id=experiment, key="seen", value="yes")
            b.tracking.execute(tag, actor="admin")
        shown = as_reader.get(timeout=10)
        assert shown.stream == f"experiment:{w.experiment}", shown
        admin_saw = [as_admin.get(timeout=10).stream for _ in range(2)]
        assert admin_saw == [f"experiment:{secret}", f"experiment:{w.experiment}"]
        assert as_reader.empty()
    finally:
        reader_call.cancel()
        admin_call.cancel()


def test_a_callers_writes_and_ingested_events_are_rate_limited(gw: GrpcWorld) -> None:
    b, g = gw.backend, gw.world.gateway
    assert g.hub is not None
    slow = Rates(RateLimiter(0.001, 1), RateLimiter(0.001, 1))
    server = serve(b, g.hub, "127.0.0.1", 0, rates=slow)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.bound_port}") as channel:
            stub = LedgerflowStub(channel)
            tag = requests(gw.world)["Execute"]
            stub.Execute(tag, metadata=basic("editor"))
            with pytest.raises(grpc.RpcError) as e:
                stub.Execute(tag, metadata=basic("editor"))
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert int(dict(e.value.trailing_metadata())["retry-after"]) > 1
            stub.Execute(tag, metadata=basic("manager"))  # each user has their own bucket
            two = pb.EventBatch(events=[metric_event(gw.world.run)] * 2)
            with pytest.raises(grpc.RpcError) as e:
                stub.Ingest(iter([two]), metadata=basic("editor"))
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(None).wait(5)


def _grpc_denials(gw: GrpcWorld, after: Any = None) -> list[Any]:
    return [
        r.event
        for r in gw.backend.log.read(after)
        if isinstance(r, Recorded)
        and r.event.type == "auth.denied"
        and r.event.data.method == "GRPC"
    ]


def test_grpc_refusals_are_recorded_as_auth_denied_and_rate_limited_like_rest(
    gw: GrpcWorld,
) -> None:
    w = gw.world
    path = f"/{SERVICE.full_name}/GetRun"
    head = gw.backend.log.head()
    # a fresh interval: refusals of the same route by earlier tests on this shared gateway
    # would otherwise hold back the ones this test makes
    gw.backend.denials.limiter = DenialLimiter()
    request = pb.GetRunRequest(run_id=w.run)
    for _ in range(5):  # a wrong password, five times: one recorded in the interval
        refused(gw, "GetRun", basic("nobody", "not-the-password"), request)
    for _ in range(5):  # known, without READ
        refused(gw, "GetRun", basic("nobody"), request)
    refused(gw, "Execute", basic("reader"), requests(w)["Execute"])  # refused by the method

    denied = _grpc_denials(gw)
    unknown = [e for e in denied if e.data.path == path and e.data.status == 401]
    assert unknown and unknown[-1].actor == "anonymous"
    d = unknown[-1].data
    assert (d.route, d.claimed_user, d.credential, d.client) == (
        path,
        "nobody",
        "basic",
        "127.0.0.1",
    )
    assert "not-the-password" not in json.dumps([e.data.model_dump() for e in denied])
    lacking = [e for e in denied if e.data.path == path and e.data.status == 403]
    assert lacking and lacking[-1].actor == "nobody"
    assert lacking[-1].data.needs == f"READ on run {w.run!r}"
    execute = [e for e in denied if e.data.path.endswith("/Execute") and e.actor == "reader"]
    assert execute and execute[-1].data.needs == "EDIT on model 'm'"

    recent = _grpc_denials(gw, head)  # rate limited per caller and method, as over REST
    assert len([e for e in recent if e.data.path == path and e.data.status == 401]) <= 1
    assert len([e for e in recent if e.data.path == path and e.data.status == 403]) <= 1
