"""Subscriptions over gRPC and Server-Sent Events against a real gateway on a real backend."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator

import grpc
import httpx
import pytest

from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from tests.integration.gateway_fixture import Gateway, SSEMessage, running_gateway

LAST_TYPE = "model.alias_set"


@pytest.fixture
def gateway(backend: Backend) -> Iterator[Gateway]:
    hub = Hub(backend.log).start()
    try:
        with running_gateway(backend, hub) as gw:
            yield gw
    finally:
        hub.close()


def write_history(backend: Backend) -> tuple[str, str]:
    exp = backend.tracking.execute(tc.CreateExperiment(name="streams"), actor="t")
    run = backend.tracking.create_run(exp, user_id="u", actor="t")
    backend.tracking.log_metrics(run.run_id, [("loss", 1.0, 0, 0)], actor="t")
    return exp, run.run_id


def write_live(backend: Backend, exp: str, run_a: str) -> None:
    run_b = backend.tracking.create_run(exp, user_id="u", actor="t").run_id
    for step in range(1, 8):
        backend.tracking.log_metrics(run_a, [("loss", 1.0 / step, 0, step)], actor="t")
        backend.tracking.log_metrics(run_b, [("acc", step / 10, 0, step)], actor="t")
    backend.tracking.set_tags(run_b, {"team": "cv"}, actor="t")
    backend.tracking.finish_run(run_a, actor="t")
    register = mc.RegisterModel(model_uri=f"runs:/{run_a}/model", name="clf")
    version = backend.registry.execute(register, actor="t")
    alias = mc.SetRegisteredModelAlias(name="clf", alias="champion", version=version.version)
    backend.registry.execute(alias, actor="t")


def grpc_until(gw: Gateway, last_type: str, **request: object) -> list[pb.EventMessage]:
    call = gw.stub.Subscribe(pb.SubscribeRequest(**request), timeout=30)
    out: list[pb.EventMessage] = []
    for message in call:
        out.append(message)
        if message.type == last_type:
            break
    call.cancel()
    return out


def sse_until(gw: Gateway, last_type: str, **params: object) -> list[SSEMessage]:
    reader = gw.sse(**params)
    out: list[SSEMessage] = []
    try:
        while not out or out[-1].event != last_type:
            got = reader.next()
            assert got is not None, "the stream ended early"
            out.append(got)
    finally:
        reader.close()
    return out


def in_background(fn: object, *args: object) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn(*args)))  # type: ignore[operator]
    thread.start()
    return thread, result


def by_stream(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    """stream -> event ids in the order they arrived."""
    out: dict[str, list[str]] = defaultdict(list)
    for stream, id_ in items:
        out[stream].append(id_)
    return dict(out)


def test_grpc_and_sse_subscribers_see_the_same_events_in_stream_order(gateway: Gateway):
    backend = gateway.backend
    exp, run_a = write_history(backend)
    grpc_thread, grpc_got = in_background(grpc_until, gateway, LAST_TYPE)
    sse_thread, sse_got = in_background(sse_until, gateway, LAST_TYPE)

    write_live(backend, exp, run_a)  # while both are subscribed
    grpc_thread.join(30)
    sse_thread.join(30)

    [over_grpc], [over_sse] = grpc_got, sse_got
    logged = list(backend.log.read(limit=10_000))
    assert len(over_grpc) == len(over_sse) == len(logged) > 20
    grpc_pairs = [(m.stream, m.id) for m in over_grpc]  # type: ignore[attr-defined]
    sse_docs = [json.loads(m.data) for m in over_sse]  # type: ignore[attr-defined]
    sse_pairs = [(d["stream"], d["id"]) for d in sse_docs]
    log_pairs = [(i.event.stream, i.event.id) for i in logged]  # type: ignore[union-attr]
    assert by_stream(grpc_pairs) == by_stream(sse_pairs) == by_stream(log_pairs)
    # Same resume tokens and types on both transports; the SSE id is the token.
    assert [(m.token, m.type) for m in over_grpc] == [(m.id, m.event) for m in over_sse]  # type: ignore[attr-defined]
    assert over_grpc[-1].json == json.dumps(sse_docs[-1], separators=(",", ":"))  # type: ignore[attr-defined]


def test_a_subscriber_resumes_after_a_disconnect_with_no_gap_or_duplicate(gateway: Gateway):
    backend = gateway.backend
    exp, run_a = write_history(backend)  # 3 events

    first_grpc = grpc_until(gateway, "run.started")  # experiment.created, run.started
    reader = gateway.sse()
    first_sse = reader.take(2)
    reader.close()
    assert [m.type for m in first_grpc] == [m.event for m in first_sse]

    write_live(backend, exp, run_a)  # while both are disconnected

    rest_grpc = grpc_until(gateway, LAST_TYPE, after=first_grpc[-1].token)
    rest_sse = sse_until(gateway, LAST_TYPE, headers={"Last-Event-ID": first_sse[-1].id})
    all_ids = [i.event.id for i in backend.log.read(limit=10_000)]  # type: ignore[union-attr]
    assert [m.id for m in first_grpc + rest_grpc] == all_ids
    assert [json.loads(m.data)["id"] for m in first_sse + rest_sse] == all_ids


def test_the_types_filter_gives_only_matching_events_on_both_transports(gateway: Gateway):
    backend = gateway.backend
    exp, run_a = write_history(backend)
    write_live(backend, exp, run_a)

    over_grpc = grpc_until(gateway, LAST_TYPE, types=["model.*"])
    over_sse = sse_until(gateway, LAST_TYPE, types="model.version_created,model.alias_set")
    wanted = ["model.created", "model.version_created", "model.alias_set"]
    assert [m.type for m in over_grpc] == wanted
    assert [m.event for m in over_sse] == wanted[1:]
    tagged = grpc_until(gateway, "run.tags_set", types=["run.tags_set"])
    assert [m.type for m in tagged] == ["run.tags_set"]


def test_sse_sends_heartbeats_and_a_retry_hint_on_a_quiet_stream(gateway: Gateway):
    write_history(gateway.backend)
    reader = gateway.sse(after="latest")
    try:
        assert reader.next_comment() == "keep-alive"
        assert reader.next_comment() == "keep-alive"
        assert reader.retry == "2000"
        assert reader.response.headers["content-type"].startswith("text/event-stream")
        assert reader.response.headers["cache-control"] == "no-cache"
    finally:
        reader.close()


def test_a_closed_sse_connection_ends_its_subscription(gateway: Gateway):
    from tests.waiting import wait_until

    reader = gateway.sse(after="latest")
    wait_until(lambda: gateway.hub.subscribers == 1, what="the SSE subscriber to attach")
    reader.close()
    wait_until(lambda: gateway.hub.subscribers == 0, what="the subscription to end")


def test_bad_tokens_and_types_are_refused_before_the_stream_starts(gateway: Gateway):
    write_history(gateway.backend)
    url = f"{gateway.http}/api/v1/events/stream"
    for params, needle in (
        ({"after": "a=b=c,"}, "bad checkpoint"),
        ({"after": "\u00b2"}, "bad checkpoint"),  # a digit to isdigit(), not to int()
        ({"after": "99999999999999999999"}, "does not fit in 64 bits"),
        ({"after": "999"}, "past the end of this event log"),
        ({"types": "rn.*"}, "matches no event type"),
    ):
        reply = httpx.get(url, params=params, timeout=10)
        assert reply.status_code == 400, params
        assert needle in reply.json()["message"]
        assert reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    for request, needle in (
        (pb.SubscribeRequest(after="999"), "past the end"),
        (pb.SubscribeRequest(types=["nothing.*"]), "matches no event type"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            list(gateway.stub.Subscribe(request, timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in err.value.details()
        assert ("ledgerflow-field", "after" if "after" in str(request) else "types") in list(
            err.value.trailing_metadata()
        )


def test_the_head_endpoint_gives_a_token_to_subscribe_from_now(gateway: Gateway):
    _, run_a = write_history(gateway.backend)
    token = httpx.get(f"{gateway.http}/api/v1/events/head", timeout=10).json()["token"]
    assert token == "3"
    gateway.backend.tracking.finish_run(run_a, actor="t")
    [finished] = grpc_until(gateway, "run.finished", after=token)
    assert finished.position == 4


def test_a_subscriber_left_behind_is_told_where_to_resume_on_both_transports(backend: Backend):
    from tests.integration.eventlog_contract import tag_event
    from tests.waiting import wait_until

    hub = Hub(backend.log, queue_size=5).start()
    try:
        with running_gateway(backend, hub) as gw:
            backend.log.append([tag_event("a", 0)])
            grpc_call = gw.stub.Subscribe(pb.SubscribeRequest(after="latest"), timeout=30)
            reader = gw.sse(after="latest")
            wait_until(lambda: hub.subscribers == 2, what="both subscribers to go live")
            backend.log.append([tag_event("a", n) for n in range(1, 301)])  # one burst

            got_grpc: list[pb.EventMessage] = []
            with pytest.raises(grpc.RpcError) as err:
                for message in grpc_call:
                    got_grpc.append(message)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "fell more than 5 events behind" in err.value.details()
            meta = dict(err.value.trailing_metadata())
            assert meta["ledgerflow-resume-token"] == got_grpc[-1].token

            got_sse: list[SSEMessage] = []
            while (message := reader.next()) is not None:
                got_sse.append(message)
            reader.close()
            ended = json.loads(got_sse.pop().data)
            assert ended["error_code"] == "SUBSCRIBER_TOO_SLOW"
            assert ended["token"] == got_sse[-1].id

            rest = grpc_until(gw, "run.tags_set", after=meta["ledgerflow-resume-token"])
            assert rest[0].position == got_grpc[-1].position + 1
    finally:
        hub.close()


def test_sse_messages_carry_their_position_and_until_ends_the_stream_there(gateway: Gateway):
    from ledgerflow.remote.sse import SSEParser

    _, run_a = write_history(gateway.backend)
    head = httpx.get(f"{gateway.http}/api/v1/events/head", timeout=10).json()["token"]
    gateway.backend.tracking.finish_run(run_a, actor="t")  # after the head: not wanted
    url = f"{gateway.http}/api/v1/events/stream"
    parser = SSEParser()
    with httpx.stream("GET", url, params={"types": "run.*", "until": head}, timeout=10) as r:
        got = [e for line in r.iter_lines() if (e := parser.feed(line)) is not None]
    assert [(e.type, e.fields.get("position"), e.id) for e in got] == [
        ("run.started", "2", "2"),
        ("run.metrics_logged", "3", "3"),
        ("subscription.caught_up", None, "3"),
    ]
    assert json.loads(got[-1].data) == {"token": "3"}

    reply = httpx.get(url, params={"until": "99"}, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["field"] == "until"
    assert "past the end of this event log" in reply.json()["message"]
