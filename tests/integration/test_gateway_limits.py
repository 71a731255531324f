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
