"""The gRPC API end to end: streaming ingest, queries, and errors as status codes."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator

import grpc
import pytest

from ledgerflow.events import model_commands as mc
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.codec import encode
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.grpc_errors import status_of
from ledgerflow.services.gateway.hub import Hub, SubscriberTooSlow
from ledgerflow.services.gateway.limits import RateLimited
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from tests.integration.gateway_fixture import Gateway, running_gateway


@pytest.fixture
def gateway(backend: Backend) -> Iterator[Gateway]:
    hub = Hub(backend.log).start()
    try:
        with running_gateway(backend, hub) as gw:
            yield gw
    finally:
        hub.close()


def wire(payload: p.Payload) -> str:
    return encode(Event.of(payload, actor="ingest")).decode()


def run_events(exp: str, run: str) -> list[str]:
    return [
        wire(p.ExperimentCreated(experiment_id=exp, name=f"ingest-{exp}", artifact_location="/a")),
        wire(
            p.RunStarted(
                run_id=run,
                experiment_id=exp,
                run_name="r",
                start_time=1,
                user_id="u",
                artifact_uri="/a/r",
            )
        ),
    ]


def metric_batch(run: str, first_step: int, events: int = 10, points: int = 10) -> pb.EventBatch:
    out = []
    for e in range(events):
        steps = range(first_step + e * points, first_step + (e + 1) * points)
        pts = tuple(("loss", 1.0 / (s + 1), 1000 + s, s) for s in steps)
        out.append(wire(p.RunMetricsLogged(run_id=run, points=pts)))
    return pb.EventBatch(events=out)


def status(err: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    e = err.value
    return e.code(), e.details(), dict(e.trailing_metadata() or ())


def test_streamed_batches_are_stored_projected_and_answered_by_the_queries(gateway: Gateway):
    exp, run = uuid.uuid4().hex[:8], uuid.uuid4().hex

    def batches() -> Iterator[pb.EventBatch]:
        yield pb.EventBatch(events=run_events(exp, run))
        for b in range(4):
            yield metric_batch(run, b * 100)

    reply = gateway.stub.Ingest(batches(), timeout=60)
    assert (reply.events, reply.batches, reply.rejected) == (42, 5, 0)
    assert reply.checkpoint == gateway.backend.log.head().encode()

    got = gateway.stub.GetRun(pb.GetRunRequest(run_id=run))
    assert got.info.experiment_id == exp and got.info.status == "RUNNING"
    assert not got.info.HasField("end_time")
    assert math.isclose(got.data.metrics["loss"], 1 / 400)
    history = gateway.stub.GetMetricHistory(pb.GetMetricHistoryRequest(run_id=run, key="loss"))
    assert [h.step for h in history.metrics] == list(range(400))
    thin = gateway.stub.GetMetricHistory(
        pb.GetMetricHistoryRequest(run_id=run, key="loss", max_points=10)
    )
    assert 2 <= len(thin.metrics) <= 10
    found = gateway.stub.SearchRuns(
        pb.SearchRunsRequest(experiment_ids=[exp], filter="metrics.loss < 0.01")
    )
    assert [r.info.run_id for r in found.runs] == [run] and found.next_page_token == ""
    # The reply's checkpoint is a resume token: nothing of this ingest comes after it.
    after = gateway.stub.Subscribe(pb.SubscribeRequest(after=reply.checkpoint), timeout=1)
    with pytest.raises(grpc.RpcError) as err:
        next(iter(after))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_an_invalid_event_is_refused_by_name_and_its_whole_batch_is_not_stored(
    gateway: Gateway,
):
    exp, run = uuid.uuid4().hex[:8], uuid.uuid4().hex
    good = metric_batch(run, 0, events=1)
    bad = json.loads(metric_batch(run, 10, events=1).events[0])
    bad["data"]["points"] = [["loss", "not a number", 1, 1]]
    batches = [
        pb.EventBatch(events=run_events(exp, run)),
        pb.EventBatch(events=[good.events[0], json.dumps(bad)]),
    ]
    with pytest.raises(grpc.RpcError) as err:
        gateway.stub.Ingest(iter(batches), timeout=30)
    code, details, meta = status(err)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"batch 2, event 2 (id {bad['id']!r}): invalid run.metrics_logged")
    assert "points.0.1" in details
    assert meta["ledgerflow-stored-events"] == "2"
    assert meta["ledgerflow-stored-batches"] == "1"
    assert meta["ledgerflow-stored-checkpoint"] == gateway.backend.log.head().encode()
    assert gateway.stub.GetRun(pb.GetRunRequest(run_id=run)).data.metrics == {}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.pop("time"), "field 'time' must be a non-empty int, got None"),
        (lambda d: d.update(stream="run:other"), "does not match its data"),
        (lambda d: d.update(type="run.no_such_thing"), "unknown event type"),
    ],
)
def test_malformed_envelopes_are_refused_saying_what_is_wrong(
    gateway: Gateway, change: object, needle: str
):
    doc = json.loads(run_events("e1", "r1")[1])
    change(doc)  # type: ignore[operator]
    with pytest.raises(grpc.RpcError) as err:
        gateway.stub.Ingest(iter([pb.EventBatch(events=[json.dumps(doc)])]), timeout=30)
    code, details, _ = status(err)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("batch 1, event 1") and needle in details
    assert not gateway.backend.log.head()


def test_events_the_projector_rejects_are_counted_in_the_reply(gateway: Gateway):
    exp, run = uuid.uuid4().hex[:8], uuid.uuid4().hex
    params = [
        wire(p.RunParamsLogged(run_id=run, params={"lr": "0.1"})),
        wire(p.RunParamsLogged(run_id=run, params={"lr": "0.2"})),
    ]
    reply = gateway.stub.Ingest(iter([pb.EventBatch(events=run_events(exp, run) + params)]))
    assert (reply.events, reply.rejected) == (4, 1)
    assert "params cannot change" in reply.rejection
    assert gateway.stub.GetRun(pb.GetRunRequest(run_id=run)).data.params == {"lr": "0.1"}


def test_model_versions_are_found_by_alias_by_number_and_as_latest(gateway: Gateway):
    registry = gateway.backend.registry
    registry.execute(mc.CreateRegisteredModel(name="clf"), actor="t")
    for n in range(3):
        registry.execute(mc.CreateModelVersion(name="clf", source=f"/models/{n}"), actor="t")
    registry.execute(mc.SetRegisteredModelAlias(name="clf", alias="champion", version=2), actor="t")
    stage = mc.TransitionModelVersionStage(name="clf", version=1, stage="Production")
    registry.execute(stage, actor="t")

    by_alias = gateway.stub.GetModelVersion(pb.GetModelVersionRequest(name="clf", alias="champion"))
    assert (by_alias.version, list(by_alias.aliases), by_alias.source) == (
        2,
        ["champion"],
        "/models/1",
    )
    assert not by_alias.HasField("run_id")
    by_number = gateway.stub.GetModelVersion(pb.GetModelVersionRequest(name="clf", version=3))
    assert by_number.source == "/models/2"
    latest = gateway.stub.GetLatestVersions(pb.GetLatestVersionsRequest(name="clf"))
    assert sorted((v.current_stage, v.version) for v in latest.versions) == [
        ("None", 3),
        ("Production", 1),
    ]
    prod = gateway.stub.GetLatestVersions(
        pb.GetLatestVersionsRequest(name="clf", stages=["Production"])
    )
    assert [v.version for v in prod.versions] == [1]


@pytest.mark.parametrize(
    ("call", "code", "needle"),
    [
        (lambda s: s.GetRun(pb.GetRunRequest(run_id="nope")), "NOT_FOUND", "no run with id"),
        (lambda s: s.GetRun(pb.GetRunRequest()), "INVALID_ARGUMENT", "run_id is required"),
        (
            lambda s: s.SearchRuns(pb.SearchRunsRequest(experiment_ids=["0"], filter="metrics.")),
            "INVALID_ARGUMENT",
            "expected a key name after 'metrics.'",
        ),
        (
            lambda s: s.GetMetricHistory(pb.GetMetricHistoryRequest(run_id="nope", key="k")),
            "NOT_FOUND",
            "no run with id",
        ),
        (
            lambda s: s.GetModelVersion(pb.GetModelVersionRequest(name="clf")),
            "INVALID_ARGUMENT",
            "set `alias` or `version`",
        ),
        (
            lambda s: s.GetModelVersion(pb.GetModelVersionRequest(name="nope", alias="a")),
            "NOT_FOUND",
            "nope",
        ),
        (
            lambda s: s.GetLatestVersions(pb.GetLatestVersionsRequest(name="nope")),
            "NOT_FOUND",
            "nope",
        ),
    ],
)
def test_errors_come_back_as_grpc_status_codes_with_readable_details(
    gateway: Gateway, call: object, code: str, needle: str
):
    with pytest.raises(grpc.RpcError) as err:
        call(gateway.stub)  # type: ignore[operator]
    got, details, meta = status(err)
    assert got == getattr(grpc.StatusCode, code)
    assert needle in details and "Traceback" not in details
    assert meta["ledgerflow-error-code"] in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (InvalidInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (Conflict("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (Timeout("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (SubscriberTooSlow("x", token="1"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (RateLimited("x", retry_after_s=1), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (LedgerflowError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_kind_has_its_status_code(error: LedgerflowError, code: grpc.StatusCode):
    assert status_of(error) == code


def test_a_gateway_caps_its_grpc_subscriptions_instead_of_starving_its_reads(backend: Backend):
    from ledgerflow.services.gateway.grpc_server import serve
    from ledgerflow.services.gateway.proto import ledgerflow_pb2_grpc as pb_grpc
    from tests.conftest import free_port

    hub = Hub(backend.log).start()
    port = free_port()
    server = serve(backend, hub, "127.0.0.1", port, max_workers=4, max_subscribers=1)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.LedgerflowStub(channel)
    try:
        backend.tracking.execute(tc.CreateExperiment(name="x"), actor="t")
        first = stub.Subscribe(pb.SubscribeRequest(), timeout=30)
        assert next(iter(first)).type == "experiment.created"
        with pytest.raises(grpc.RpcError) as err:
            next(iter(stub.Subscribe(pb.SubscribeRequest(), timeout=30)))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "already serves 1 gRPC subscriptions" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.GetRun(pb.GetRunRequest(run_id="nope"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND  # reads still answered
        first.cancel()
    finally:
        channel.close()
        server.stop(None).wait(5)
        hub.close()


def test_a_port_in_use_is_reported_clearly(backend: Backend, gateway: Gateway):
    from ledgerflow.services.gateway.grpc_server import serve

    hub = Hub(backend.log).start()
    port = int(gateway.http.rsplit(":", 1)[1])  # held by uvicorn
    with pytest.raises(Unavailable, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
        serve(backend, hub, "127.0.0.1", port)
    hub.close()
