"""Request body limits (413) and, with auth on, per-user rates (429 with Retry-After),
against a real gateway."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledgerflow.events import auth_commands as ac
from ledgerflow.events.settings import load_settings
from ledgerflow.services.gateway.limits import RateLimited, RateLimiter
from tests.integration.gateway_fixture import GatewayThread


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[GatewayThread]:
    settings = load_settings(
        tracking_uri=str(tmp_path / "data"), auth=True, max_request_mb=0.01,
        max_ingest_mb=0.02, rate_limit_writes=0.05, rate_limit_ingest_events=5,
    )  # fmt: skip
    g = GatewayThread(settings).start()
    assert g.backend is not None
    g.backend.auth.ensure_admin("admin", "admin-password", actor="test")
    g.backend.auth.execute(ac.CreateUser(name="alice", password="alice-password"), actor="a")
    yield g
    g.stop()


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_body_over_its_limit_is_a_413_read_or_not(limited: GatewayThread) -> None:
    big = {"name": "x" * 20_000}
    r = httpx.post(
        limited.url + "/api/v1/experiments", json=big, headers=auth("alice", "alice-password")
    )
    assert r.status_code == 413 and r.json()["error_code"] == "REQUEST_TOO_LARGE"
    assert "LEDGERFLOW_MAX_REQUEST_MB" in r.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"name": "'
        for _ in range(40):
            yield b"y" * 1000
        yield b'"}'

    r = httpx.post(
        limited.url + "/api/v1/experiments", content=chunks(),
        headers={**auth("alice", "alice-password"), "Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 413
    # the ingest route has its own, larger limit
    r = httpx.post(
        limited.url + "/api/v1/events", content=b'{"events": []' + b" " * 15_000 + b"}",
        headers={**auth("alice", "alice-password"), "Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert limited.backend is not None
    assert [u.name for u in limited.backend.auth.queries.users()] == ["admin", "alice"]


def test_writes_over_the_users_rate_get_429_with_retry_after(limited: GatewayThread) -> None:
    """One write every 20 s (a burst of one): the second in a row is refused."""
    with httpx.Client(headers=auth("alice", "alice-password")) as http:
        first = http.post(limited.url + "/api/v1/experiments", json={"name": "e1"})
        assert first.status_code == 201, first.text
        second = http.post(limited.url + "/api/v1/experiments", json={"name": "e2"})
        assert second.status_code == 429, second.text
        assert second.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert 1 <= int(second.headers["Retry-After"]) <= 20
        # reads are not counted, and another user has a bucket of their own
        assert http.get(limited.url + "/api/v1/experiments").status_code == 200
    r = httpx.post(
        limited.url + "/api/v1/experiments", json={"name": "admins"},
        headers=auth("admin", "admin-password"),
    )  # fmt: skip
    assert r.status_code == 201
    assert limited.backend is not None
    names = [e.name for e in limited.backend.queries.search_experiments("ALL", 100, None, None)]
    assert "e2" not in names and {"e1", "admins"} <= set(names)


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = RateLimiter(2, 4, clock=lambda: now[0])
    for _ in range(4):
        bucket.take("alice")
    with pytest.raises(RateLimited) as over:
        bucket.take("alice")
    assert over.value.retry_after_s == pytest.approx(0.5)
    now[0] += 0.5
    bucket.take("alice")
    bucket.take("bob", 4)
    with pytest.raises(RateLimited):
        bucket.take("alice", 100)


def test_failed_sign_ins_are_throttled_per_user_and_address_before_any_check(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        tracking_uri=str(tmp_path / "data"), auth=True,
        auth_failures_per_user=3, auth_failures_per_client=5,
    )  # fmt: skip
    g = GatewayThread(settings).start()
    try:
        assert g.backend is not None
        g.backend.auth.ensure_admin("admin", "admin-password", actor="test")
        for name in ("alice", "bob"):
            g.backend.auth.execute(ac.CreateUser(name=name, password=f"{name}-password"), actor="a")
        url = g.url + "/api/v1/whoami"
        signed_in = auth("alice", "alice-password")
        with httpx.Client(timeout=10) as http:
            assert http.get(url, headers=signed_in).status_code == 200
            for _ in range(3):
                assert http.get(url, headers=auth("alice", "guess")).status_code == 401
            r = http.get(url, headers=auth("alice", "guess"))
            assert r.status_code == 429 and r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
            assert "too many failed sign-ins for user name 'alice'" in r.json()["message"]
            assert 15 <= int(r.headers["Retry-After"]) <= 20  # 3 a minute: one every 20 s
            # refused before the password is looked at: even the right one, sent anew
            fresh = {"Authorization": signed_in["Authorization"].replace("Basic", "basic")}
            assert http.get(url, headers=fresh).status_code == 429
            # a client already signed in is not affected
            assert http.get(url, headers=signed_in).json()["user"] == "alice"
            # the address: 3 failures so far, 2 more (another name), then nothing from it
            for _ in range(2):
                assert http.get(url, headers=auth("bob", "guess")).status_code == 401
            r = http.get(url, headers={"Authorization": "Bearer lf_" + "x" * 43})
            assert r.status_code == 429 and "address 127.0.0.1" in r.json()["message"]
            assert http.get(url, headers=signed_in).status_code == 200
    finally:
        g.stop()


def test_failed_sign_ins_over_grpc_are_throttled_with_resource_exhausted(tmp_path: Path) -> None:
    import grpc

    from ledgerflow.services.gateway.grpc_server import serve
    from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
    from ledgerflow.services.gateway.proto.ledgerflow_pb2_grpc import LedgerflowStub

    settings = load_settings(
        tracking_uri=str(tmp_path / "data"), auth=True, auth_failures_per_user=2
    )
    g = GatewayThread(settings).start()
    assert g.backend is not None and g.hub is not None
    g.backend.auth.ensure_admin("admin", "admin-password", actor="test")
    server = serve(g.backend, g.hub, "127.0.0.1", 0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.bound_port}") as channel:
            stub = LedgerflowStub(channel)
            request = pb.GetRunRequest(run_id="r")

            def code(password: str) -> grpc.StatusCode:
                with pytest.raises(grpc.RpcError) as e:
                    stub.GetRun(request, metadata=[("authorization", auth("admin", password)
                                                    ["Authorization"])], timeout=30)  # fmt: skip
                return e.value.code()

            assert [code("guess"), code("guess")] == [grpc.StatusCode.UNAUTHENTICATED] * 2
            assert code("guess") == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert code("admin-password") == grpc.StatusCode.RESOURCE_EXHAUSTED  # unchecked
    finally:
        server.stop(None).wait(5)
        g.stop()
