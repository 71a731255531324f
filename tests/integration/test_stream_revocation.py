"""An open event stream ends soon after its credentials stop being good: a revoked or
expired token, or a caller whose admin flag changed, over SSE and gRPC `Subscribe`,
against a real gateway. Each stream here is idle when that happens: the check runs on
its own (every second), not only when an event passes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ledgerflow.events import auth_commands as ac
from ledgerflow.events.settings import load_settings
from ledgerflow.services.gateway.grpc_server import serve
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from ledgerflow.services.gateway.proto.ledgerflow_pb2_grpc import LedgerflowStub
from tests.integration.gateway_fixture import GatewayThread, SSEReader

ENDS_WITHIN_S = 5.0
"""A generous bound on "about a second" (the check runs every second)."""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayThread]:
    settings = load_settings(tracking_uri=str(tmp_path / "data"), auth=True)
    g = GatewayThread(settings).start()
    assert g.backend is not None
    g.backend.auth.ensure_admin("admin", "admin-password", actor="test")
    g.backend.auth.execute(ac.CreateUser(name="alice", password="alice-password"), actor="admin")
    yield g
    g.stop()


def bearer(g: GatewayThread, **kw: object) -> tuple[str, str]:
    assert g.backend is not None
    made = g.backend.auth.execute(ac.CreateToken(user="alice", **kw), actor="admin")
    return made.id, f"Bearer {made.token}"


def ended(reader: SSEReader) -> tuple[dict[str, str], float]:
    """The final message, and how long it took (events within the last second before the
    check, such as the change that ended it, may come first)."""
    started = time.monotonic()
    message = reader.next()
    while message is not None and message.event != "subscription.ended":
        message = reader.next()
    elapsed = time.monotonic() - started
    assert message is not None, "the stream ended without a final message"
    assert reader.next() is None  # and the stream is over
    return json.loads(message.data), elapsed


def test_revoking_a_token_ends_its_open_sse_stream_with_a_final_message(gateway):
    token_id, authorization = bearer(gateway)
    reader = SSEReader(gateway.url, {"after": "latest"}, {"Authorization": authorization})
    try:
        assert reader.response.status_code == 200
        assert gateway.backend is not None
        gateway.backend.auth.execute(ac.RevokeToken(id=token_id), actor="admin")
        body, elapsed = ended(reader)
    finally:
        reader.close()
    assert body["error_code"] == "UNAUTHENTICATED"
    assert f"token {token_id} was revoked" in body["message"]
    assert "subscribe again" in body["message"]
    assert elapsed < ENDS_WITHIN_S


def test_a_token_that_expires_ends_its_open_sse_stream(gateway):
    _, authorization = bearer(gateway, expires_in_s=1.5)
    reader = SSEReader(gateway.url, {"after": "latest"}, {"Authorization": authorization})
    try:
        body, elapsed = ended(reader)
    finally:
        reader.close()
    assert body["error_code"] == "UNAUTHENTICATED" and "expired" in body["message"]
    assert elapsed < 1.5 + ENDS_WITHIN_S


def test_an_admin_made_a_plain_user_has_their_open_stream_ended(gateway):
    assert gateway.backend is not None
    gateway.backend.auth.execute(ac.SetAdmin(name="alice", admin=True), actor="admin")
    basic = "Basic " + base64.b64encode(b"alice:alice-password").decode()
    reader = SSEReader(gateway.url, {"after": "latest"}, {"Authorization": basic})
    try:
        gateway.backend.auth.execute(ac.SetAdmin(name="alice", admin=False), actor="admin")
        body, elapsed = ended(reader)
    finally:
        reader.close()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert "alice's admin flag or groups changed" in body["message"]
    assert elapsed < ENDS_WITHIN_S


def test_revoking_a_token_ends_its_open_grpc_subscribe(gateway):
    assert gateway.backend is not None and gateway.hub is not None
    token_id, authorization = bearer(gateway)
    server = serve(gateway.backend, gateway.hub, "127.0.0.1", 0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.bound_port}") as channel:
            head = gateway.backend.log.head().encode()
            call = LedgerflowStub(channel).Subscribe(
                pb.SubscribeRequest(after=head), metadata=(("authorization", authorization),),
                timeout=30,
            )  # fmt: skip
            time.sleep(0.5)  # open and idle
            gateway.backend.auth.execute(ac.RevokeToken(id=token_id), actor="admin")
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                list(call)
            elapsed = time.monotonic() - started
    finally:
        server.stop(None).wait(5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert f"token {token_id} was revoked" in (e.value.details() or "")
    assert elapsed < ENDS_WITHIN_S
