"""The audit trail through a gateway with auth on: refused requests recorded as
`auth.denied` (rate limited, never with the credentials), and `GET /api/v1/audit` showing
each caller what they may see."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events.audit_entities import AuditEntry, AuditQuery
from ledgerflow.events.envelope import Event
from ledgerflow.events.model_payloads import ModelAliasSet
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend
from tests.integration.gateway_fixture import GatewayThread

ADMIN = ("admin", "admin-password-1")
PASSWORD = "user-password-1"
INTERVAL_S = 1.0


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    settings = load_settings(
        tracking_uri=str(tmp_path_factory.mktemp("audit-gateway") / "data"), auth=True,
        auth_default="NO_PERMISSIONS", admin_user=ADMIN[0], admin_password=ADMIN[1],
        auth_denied_interval_s=INTERVAL_S,
        auth_failures_per_client=0,  # a burst of 101 refusals is what is tested here
    )  # fmt: skip
    g = GatewayThread(settings).start()
    b = g.backend
    assert b is not None
    b.auth.ensure_admin(*ADMIN, actor="test")
    for name in ("nobody", "manager", "reader"):
        b.auth.execute(ac.CreateUser(name=name, password=PASSWORD), actor="admin")
    b.registry.execute(mc.CreateRegisteredModel(name="m"), actor="admin")
    for _ in range(2):
        b.registry.execute(mc.CreateModelVersion(name="m", source="/tmp/m"), actor="admin")
    b.registry.execute(mc.CreateRegisteredModel(name="secret-model"), actor="admin")
    b.auth.execute(
        ac.SetPermission(kind="model", key="m", principal="user:manager", level="MANAGE"),
        actor="admin",
    )
    b.auth.execute(
        ac.SetPermission(kind="model", key="m", principal="user:reader", level="READ"),
        actor="admin",
    )
    try:
        yield g
    finally:
        g.stop()


def backend_of(gateway: GatewayThread) -> Backend:
    assert gateway.backend is not None
    return gateway.backend


def denials(gateway: GatewayThread, **query: Any) -> list[AuditEntry]:
    b = backend_of(gateway)
    b.refresh()
    return list(b.audit.search(AuditQuery(type="auth.denied", **query), max_results=1000))


def test_a_forged_ingest_is_refused_and_recorded_as_a_denied_attempt(
    gateway: GatewayThread,
) -> None:
    b = backend_of(gateway)
    head = b.log.head()
    forged = Event.of(ModelAliasSet(name="m", alias="champion", version=2), actor="user:ceo")
    body = {"events": [{**forged.envelope(), "data": forged.data.model_dump(mode="json")}]}
    r = httpx.post(gateway.url + "/api/v1/events", json=body, headers=basic("manager", PASSWORD))
    assert r.status_code == 403, r.text
    appended = [i.event for i in b.log.read(head)]
    assert [e.type for e in appended] == ["auth.denied"]  # the forged event never got in
    (entry,) = denials(gateway, actor="manager")
    assert entry.token_id is None and entry.stream == "audit:denied"
    assert entry.summary.startswith("403 POST /api/v1/events: needs a command on event")
    assert entry.detail is not None
    assert entry.detail["route"] == "/api/v1/events" and entry.detail["client"] == "127.0.0.1"
    assert "only run telemetry" in entry.detail["reason"]


def test_a_wrong_password_is_recorded_with_the_name_given_and_never_the_password(
    gateway: GatewayThread,
) -> None:
    b = backend_of(gateway)
    head = b.log.head()
    wrong = "not-the-Password-42"
    r = httpx.get(gateway.url + "/api/v1/registered-models/m", headers=basic("reader", wrong))
    assert r.status_code == 401
    (entry,) = [e for e in denials(gateway, actor="anonymous") if e.detail["claimed_user"]]
    assert entry.detail == {
        "status": 401, "method": "GET", "path": "/api/v1/registered-models/m",
        "route": "/api/v1/registered-models/{name}", "needs": "an identity",
        "reason": "wrong user name or password", "claimed_user": "reader",
        "credential": "basic", "client": "127.0.0.1", "suppressed": 0,
    }  # fmt: skip
    from ledgerflow.events.codec import encode

    assert all(wrong.encode() not in encode(i.event) for i in b.log.read(head))


def test_a_token_shows_in_what_it_was_refused_and_once_revoked_in_its_401(
    gateway: GatewayThread,
) -> None:
    b = backend_of(gateway)
    made = b.auth.execute(ac.CreateToken(user="nobody"), actor="admin")
    bearer = {"Authorization": f"Bearer {made.token}"}
    r = httpx.delete(gateway.url + "/api/v1/registered-models/m", headers=bearer)
    assert r.status_code == 403
    (refused,) = denials(gateway, actor="nobody")
    assert refused.token_id == made.id and refused.detail["credential"] == "token"
    assert "needs MANAGE on model 'm'" in refused.summary

    b.auth.execute(ac.RevokeToken(id=made.id), actor="admin")
    # (another route than the wrong password's: a 401 is limited per address and route)
    r = httpx.get(gateway.url + "/api/v1/whoami", headers=bearer)
    assert r.status_code == 401
    (revoked,) = denials(gateway, token=made.id, actor="anonymous")
    assert revoked.detail["reason"] == f"token {made.id} was revoked"
    assert made.token not in repr(denials(gateway))


def test_a_burst_of_bad_requests_records_a_few_denials_that_count_the_rest(
    gateway: GatewayThread,
) -> None:
    url = gateway.url + "/api/v1/deployments"
    bad = {"Authorization": "Bearer lf_" + "x" * 43}
    started = time.monotonic()
    with httpx.Client(timeout=10) as http:
        for _ in range(100):
            assert http.get(url, headers=bad).status_code == 401
        elapsed = time.monotonic() - started
        time.sleep(INTERVAL_S)  # then one more: it carries the count of those held back
        assert http.get(url, headers=bad).status_code == 401
    burst = [
        e
        for e in denials(gateway, actor="anonymous")
        if e.summary.startswith("401 GET /api/v1/deployments")
    ]
    assert len(burst) <= 2 + elapsed / INTERVAL_S
    assert len(burst) + sum(e.detail["suppressed"] for e in burst) == 101
    assert burst[0].detail["suppressed"] > 0  # the newest, after the pause


def audit(gateway: GatewayThread, who: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(gateway.url + "/api/v1/audit", params=params, headers=who)
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries


def test_each_caller_sees_the_entries_of_what_they_may_read_and_their_own_refusals(
    gateway: GatewayThread,
) -> None:
    as_admin = audit(gateway, basic(*ADMIN), max_results=1000)
    streams = {e["stream"] for e in as_admin}
    assert {"model:m", "model:secret-model", "permission:model:m", "user:reader"} <= streams

    # READ on m: its entries, not the other model's, nor who holds which grant on it
    reader = audit(gateway, basic("reader", PASSWORD), max_results=1000)
    assert {e["stream"] for e in reader if e["type"] != "auth.denied"} == {"model:m"}
    assert audit(gateway, basic("reader", PASSWORD), entity="model:secret-model") == []
    # MANAGE on m: the grants on it too
    manager = {e["stream"] for e in audit(gateway, basic("manager", PASSWORD), max_results=1000)}
    assert "permission:model:m" in manager and "model:secret-model" not in manager

    # their own refusals, not anybody else's
    r = httpx.get(gateway.url + "/api/v1/registered-models/secret-model",
                  headers=basic("reader", PASSWORD))  # fmt: skip
    assert r.status_code == 403
    mine = audit(gateway, basic("reader", PASSWORD), type="auth.denied")
    assert [(e["actor"], e["detail"]["path"]) for e in mine] == [
        ("reader", "/api/v1/registered-models/secret-model")
    ]
    assert audit(gateway, basic("nobody", PASSWORD), max_results=1000) == [
        e for e in audit(gateway, basic(*ADMIN), actor="nobody", type="auth.denied")
    ]


def test_the_route_filters_and_pages_like_the_client(gateway: GatewayThread) -> None:
    b = backend_of(gateway)
    for version in ("1", "2"):
        b.registry.execute(
            mc.SetRegisteredModelAlias(name="m", alias="champion", version=version),
            actor="manager",
        )
    moves = audit(gateway, basic("reader", PASSWORD), entity="model:m", type="model.alias_*",
                  since="1h")  # fmt: skip
    assert [(e["before"], e["after"]) for e in moves[:2]] == [
        ({"aliases.champion": 1}, {"aliases.champion": 2}),
        (None, {"aliases.champion": 1}),
    ]
    pages, token = [], None
    while True:
        params = {"entity": "model:m", "max_results": 2, "page_token": token}
        r = httpx.get(gateway.url + "/api/v1/audit", headers=basic(*ADMIN),
                      params={k: v for k, v in params.items() if v is not None})  # fmt: skip
        pages.append(r.json()["entries"])
        token = r.json()["next_page_token"]
        if token is None:
            break
    flat = [e["event_id"] for page in pages for e in page]
    every = audit(gateway, basic(*ADMIN), entity="model:m", max_results=1000)
    assert flat == [e["event_id"] for e in every] and len(pages) > 1
    r = httpx.get(gateway.url + "/api/v1/audit", params={"since": "last tuesday"},
                  headers=basic(*ADMIN))  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "since"
