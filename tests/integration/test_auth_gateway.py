"""A gateway with auth on, through its real HTTP API.

The coverage test walks every operation of the OpenAPI document: without credentials
each is a 401; as a user holding nothing (the default level NO_PERMISSIONS, no grant)
each is a 403, except the few any identity may call, which this file names. So a route
added later without a permission check fails here (and `create_app` refuses a route
that declares no need at all).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events import webhook_commands as wc
from ledgerflow.events.envelope import Event
from ledgerflow.events.job_payloads import JobSubmitted
from ledgerflow.events.model_payloads import ModelAliasSet
from ledgerflow.events.settings import load_settings
from ledgerflow.services.deployments import commands as dc
from tests.integration.gateway_fixture import GatewayThread
from tests.waiting import wait_until

ADMIN = ("admin", "admin-password-1")
PASSWORD = "user-password-1"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class World:
    """A gateway with auth on (default NO_PERMISSIONS) and one of each resource."""

    def __init__(self, gateway: GatewayThread) -> None:
        self.gateway = gateway
        b = gateway.backend
        assert b is not None
        self.backend = b
        actor = "admin"
        for name in ("nobody", "reader", "editor", "manager"):
            b.auth.execute(ac.CreateUser(name=name, password=PASSWORD), actor=actor)
        self.experiment = b.tracking.execute(tc.CreateExperiment(name="exp"), actor=actor)
        self.run = b.tracking.create_run(self.experiment, user_id="admin", actor=actor).run_id
        self.job = "job-of-exp"  # recorded as submitted; nothing runs it
        b.committer.commit(
            [
                JobSubmitted(
                    job_id=self.job, name="j", kind="command", entry_point="true",
                    experiment_id=self.experiment, run_id=self.run, runtime="inline",
                )
            ],
            actor,
        )  # fmt: skip
        b.registry.execute(mc.CreateRegisteredModel(name="m"), actor=actor)
        b.registry.execute(mc.CreateModelVersion(name="m", source="/tmp/m"), actor=actor)
        b.registry.execute(
            mc.SetRegisteredModelAlias(name="m", alias="champion", version="1"), actor=actor
        )
        b.deployments.execute(
            dc.CreateDeployment(
                name="dep", variants=[{"name": "a", "model": "m", "version": 1, "weight": 1}]
            ),
            actor=actor,
        )
        b.webhooks.execute(
            wc.CreateWebhook(name="hook", url="http://127.0.0.1:9/hook", events=["model.*"]),
            actor=actor,
        )
        b.auth.execute(ac.CreateGroup(group="g"), actor=actor)
        self.token = b.auth.execute(ac.CreateToken(user="admin"), actor=actor)
        for kind, key in (
            ("experiment", self.experiment), ("model", "m"), ("deployment", "dep"),
            ("webhook", "hook"),
        ):  # fmt: skip
            for user, level in (("reader", "READ"), ("editor", "EDIT"), ("manager", "MANAGE")):
                b.auth.execute(
                    ac.SetPermission(kind=kind, key=key, principal=f"user:{user}", level=level),
                    actor=actor,
                )

    def path_value(self, path: str, name: str) -> str:
        by_name = {
            "experiment_id": self.experiment, "run_id": self.run, "version": "1",
            "alias": "champion", "variant": "a", "path": "x.txt", "kind": "model", "key": "m",
            "principal": "user:reader", "id": self.token.id, "group": "g", "user": "reader",
            "job_id": self.job,
        }  # fmt: skip
        if name == "name":
            for prefix, value in (
                ("/api/v1/registered-models", "m"), ("/api/v1/deployments", "dep"),
                ("/api/v1/webhooks", "hook"), ("/api/v1/users", "admin"),
            ):  # fmt: skip
                if path.startswith(prefix):
                    return value
        return by_name[name]


@contextmanager
def running_world(data: Path) -> Iterator[World]:
    """A gateway with auth on over the data directory `data`, and its World."""
    settings = load_settings(
        tracking_uri=str(data), auth=True, auth_default="NO_PERMISSIONS",
        admin_user=ADMIN[0], admin_password=ADMIN[1],
        # the coverage tests fail to sign in on every route; the throttle has its own tests
        auth_failures_per_user=0, auth_failures_per_client=0,
    )  # fmt: skip
    gateway = GatewayThread(settings)
    gateway.start()
    assert gateway.backend is not None
    gateway.backend.auth.ensure_admin(ADMIN[0], ADMIN[1], actor="test")
    try:
        yield World(gateway)
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("auth-gateway") / "data") as w:
        yield w


def operations(world: World) -> list[tuple[str, str, str]]:
    """(method, concrete url, templated path) of every /api/ operation in the OpenAPI doc."""
    spec = httpx.get(world.gateway.url + "/openapi.json").json()
    ops = []
    for path, methods in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = re.sub(r"\{(\w+)(:path)?\}", lambda m, t=path: world.path_value(t, m.group(1)), path)
        for method in methods:
            ops.append((method.upper(), url, path))
    assert len(ops) > 60  # the whole API, not a part of it
    return ops


# What any identity may call, and the body that makes the call valid; everything else
# needs a level nobody holds.
ANYONE: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/experiments"): {"name": "nobody-exp"},
    ("GET", "/api/v1/experiments"): None,
    ("PUT", "/api/v1/experiments/by-name"): None,  # 403 on an existing one: see below
    ("PUT", "/api/v1/experiments/default"): None,
    ("POST", "/api/v1/registered-models"): {"name": "nobody-model"},
    ("POST", "/api/v1/registered-models/search"): {},
    ("POST", "/api/v1/model-versions/search"): {},
    ("POST", "/api/v1/webhooks"): {
        "name": "nobody-hook",
        "url": "http://127.0.0.1:9/x",
        "events": ["model.*"],
    },
    ("GET", "/api/v1/webhooks"): None,
    ("POST", "/api/v1/deployments"): None,  # 400 without a body; allowed to try
    ("GET", "/api/v1/deployments"): None,
    ("GET", "/api/v1/whoami"): None,
    ("GET", "/api/v1/permissions/mine"): None,  # their own level only (400 without kind/key)
    ("POST", "/api/v1/tokens"): {},
    ("GET", "/api/v1/tokens"): None,
    ("GET", "/api/v1/events/stream"): None,
    ("GET", "/api/v1/events/head"): None,
    ("GET", "/api/v1/audit"): None,  # filtered to what the caller may see (test_audit_gateway)
    ("GET", "/api/v1/jobs"): None,  # filtered to readable experiments (e2e/test_job_routes)
}


def _denied_body(world: World, method: str, path: str) -> Any:
    bodies = {
        ("POST", "/api/v1/runs"): {"experiment_id": world.experiment, "user_id": "nobody"},
        ("POST", "/api/v1/runs/search"): {"experiment_ids": [world.experiment]},
        ("POST", "/api/v1/model-versions/register"): {"name": "m", "model_uri": "/tmp/x"},
        ("POST", "/api/v1/events"): {"events": [_metric_event(world.run)]},
        ("POST", "/api/v1/metrics/series"): {"series": [{"run_id": world.run, "key": "loss"}]},
    }
    return bodies.get((method, path))


def _metric_event(run_id: str) -> dict[str, Any]:
    ev = Event.of(p.RunMetricsLogged(run_id=run_id, points=(("loss", 1.0, 1, 0),)), actor="x")
    return {**ev.envelope(), "data": ev.data.model_dump(mode="json")}


def _params(method: str, path: str, world: World) -> dict[str, str]:
    if path.endswith("/by-name"):
        return {"name": "exp"}
    if path.endswith("/resolve"):
        return {"uri": "models:/m/1"}
    if path.endswith(("/metrics/history", "/metrics/series")):
        return {"key": "loss"}
    if path in ("/api/v1/permissions", "/api/v1/permissions/mine"):
        return {"kind": "model", "key": "m"}
    if path == "/api/v1/tokens" and method == "GET":
        return {}
    return {}


def test_every_route_needs_an_identity(world: World) -> None:
    tried_passwords: set[str] = set()
    with httpx.Client(timeout=10) as http:
        for method, url, path in operations(world):
            params = _params(method, path, world)
            r = http.request(method, world.gateway.url + url, params=params)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.json()["error_code"] == "UNAUTHENTICATED"
            # a wrong password costs an argon2 check: every route tries an unknown token,
            # and a wrong password is tried on one route per path's first method
            bad = {"Authorization": "Bearer lf_not-a-token"}
            if path not in tried_passwords:
                tried_passwords.add(path)
                bad = basic("nobody", "bad")
            wrong = http.request(method, world.gateway.url + url, params=params, headers=bad)
            assert wrong.status_code == 401, (method, path, wrong.text)


def test_every_route_checks_the_level_it_needs(world: World) -> None:
    allowed = []
    with httpx.Client(timeout=10, headers=basic("nobody", PASSWORD)) as http:
        for method, url, path in operations(world):
            if (method, path) in ANYONE:
                allowed.append((method, path))
                continue
            r = http.request(
                method, world.gateway.url + url, params=_params(method, path, world),
                json=_denied_body(world, method, path),
            )  # fmt: skip
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
    assert len(allowed) == len(ANYONE)  # every exception named here is a real route


def test_what_anyone_may_call_answers_them(world: World) -> None:
    with httpx.Client(timeout=10, headers=basic("nobody", PASSWORD)) as http:
        for (method, path), body in ANYONE.items():
            if path == "/api/v1/events/stream":
                continue  # an endless stream; tested with the streams below
            url = world.gateway.url + path
            params = {"name": "nobody-own"} if path.endswith("/by-name") else {}
            r = http.request(method, url, json=body, params=params)
            assert r.status_code in (200, 201, 204, 400), (method, path, r.status_code, r.text)
        # what they may not read is not listed
        names = [e["name"] for e in http.get(world.gateway.url + "/api/v1/experiments").json()]
        assert "exp" not in names and "nobody-exp" in names
        models = http.post(world.gateway.url + "/api/v1/registered-models/search", json={})
        assert [m["name"] for m in models.json()["registered_models"]] == ["nobody-model"]
        assert http.get(world.gateway.url + "/api/v1/deployments").json() == []
        hooks = http.get(world.gateway.url + "/api/v1/webhooks").json()
        assert [h["name"] for h in hooks] == ["nobody-hook"]
        existing = http.put(
            world.gateway.url + "/api/v1/experiments/by-name", params={"name": "exp"}
        )
        assert existing.status_code == 403


def test_the_forged_alias_move_is_refused_and_nothing_reaches_the_log(world: World) -> None:
    """The attack of the issue: an event appended straight to the log under a made-up actor."""
    b = world.backend
    head = b.log.head()
    forged = Event.of(
        ModelAliasSet(name="m", alias="champion", version=2), actor="user:ceo-of-everything"
    )
    body = {
        "events": [{**forged.envelope(), "data": forged.data.model_dump(mode="json")}],
        "wait": True,
    }
    for who in (basic("manager", PASSWORD), basic(*ADMIN)):
        r = httpx.post(world.gateway.url + "/api/v1/events", json=body, headers=who)
        assert r.status_code == 403, r.text
        assert "only run telemetry" in r.json()["message"]
    # nothing but the record of the two refusals (docs/audit.md)
    refused = [(i.event.type, i.event.actor) for i in b.log.read(head)]
    assert refused == [("auth.denied", "manager"), ("auth.denied", "admin")]


def test_events_carry_the_authenticated_actor_not_the_header(world: World) -> None:
    headers = {**basic("editor", PASSWORD), "X-Ledgerflow-Actor": "user:someone-else"}
    r = httpx.put(
        f"{world.gateway.url}/api/v1/experiments/{world.experiment}/tags",
        json={"key": "k", "value": "v"}, headers=headers,
    )  # fmt: skip
    assert r.status_code == 204, r.text
    ingest = {"events": [_metric_event(world.run)], "wait": True}
    r = httpx.post(world.gateway.url + "/api/v1/events", json=ingest, headers=headers)
    assert r.status_code == 200, r.text
    last = list(world.backend.log.read())[-2:]
    assert [e.event.actor for e in last] == ["editor", "editor"]

    token = world.backend.auth.execute(ac.CreateToken(user="editor"), actor="admin")
    r = httpx.put(
        f"{world.gateway.url}/api/v1/experiments/{world.experiment}/tags",
        json={"key": "k2", "value": "v"}, headers={"Authorization": f"Bearer {token.token}"},
    )  # fmt: skip
    assert r.status_code == 204
    assert list(world.backend.log.read())[-1].event.actor == f"editor#token:{token.id}"


@pytest.mark.parametrize(
    ("user", "level", "read", "edit", "manage"),
    [
        ("nobody", "NO_PERMISSIONS", 403, 403, 403),
        ("reader", "READ", 200, 403, 403),
        ("editor", "EDIT", 200, 204, 403),
        ("manager", "MANAGE", 200, 204, 204),
    ],
)
def test_levels_on_a_model(
    world: World, user: str, level: str, read: int, edit: int, manage: int
) -> None:
    url = world.gateway.url + "/api/v1/registered-models/m"
    with httpx.Client(timeout=10, headers=basic(user, PASSWORD)) as http:
        assert http.get(url).status_code == read
        assert http.put(url + "/tags", json={"key": "owner", "value": user}).status_code == edit
        # moving the production alias needs MANAGE
        assert http.put(url + "/aliases/staging", json={"version": 1}).status_code == manage
        # what the UI offers them: their own level on the model
        mine = http.get(
            world.gateway.url + "/api/v1/permissions/mine", params={"kind": "model", "key": "m"}
        )
        assert mine.json() == {"kind": "model", "key": "m", "level": level}


def test_ones_own_level_says_nothing_about_what_exists(world: World) -> None:
    """The default level for a model nobody made, as for one the caller has no grant on;
    an admin holds MANAGE on everything."""
    url = world.gateway.url + "/api/v1/permissions/mine"
    with httpx.Client(timeout=10) as http:
        for key in ("m", "no-such-model"):
            r = http.get(
                url, params={"kind": "model", "key": key}, headers=basic("nobody", PASSWORD)
            )
            assert r.json()["level"] == "NO_PERMISSIONS", r.text
        r = http.get(url, params={"kind": "deployment", "key": "x"}, headers=basic(*ADMIN))
        assert r.json()["level"] == "MANAGE"
        r = http.get(url, params={"kind": "run", "key": "x"}, headers=basic(*ADMIN))
        assert r.status_code == 400 and "kind" in r.text


def test_revoking_a_token_takes_effect_on_the_next_request(world: World) -> None:
    made = world.backend.auth.execute(ac.CreateToken(user="reader"), actor="admin")
    headers = {"Authorization": f"Bearer {made.token}"}
    url = world.gateway.url + "/api/v1/whoami"
    assert httpx.get(url, headers=headers).json()["user"] == "reader"
    r = httpx.delete(
        f"{world.gateway.url}/api/v1/tokens/{made.id}", headers=basic("reader", PASSWORD)
    )
    assert r.status_code == 204, r.text
    assert httpx.get(url, headers=headers).status_code == 401


def test_two_gateways_behind_one_log_agree_on_identities_and_grants(tmp_path: Path) -> None:
    """Each gateway folds its own views from the shared log: a token or grant made through
    one counts on the other from its next request; a revocation holds on the gateway that
    took it from its next request, and on the other within the 50 ms it may keep what it
    verified (`AUTH_VIEWS_TTL_S`)."""
    data = tmp_path / "data"
    common = {"tracking_uri": str(data), "auth": True, "auth_default": "NO_PERMISSIONS"}
    a = GatewayThread(load_settings(**common, views_db=f"sqlite:///{tmp_path / 'a.db'}")).start()
    b = GatewayThread(load_settings(**common, views_db=f"sqlite:///{tmp_path / 'b.db'}")).start()
    try:
        assert a.backend is not None
        a.backend.auth.ensure_admin(*ADMIN, actor="test")
        admin = basic(*ADMIN)
        r = httpx.post(
            f"{a.url}/api/v1/users", json={"name": "carol", "password": PASSWORD}, headers=admin
        )
        assert r.status_code == 201, r.text
        made = httpx.post(f"{a.url}/api/v1/tokens", json={"user": "carol"}, headers=admin).json()
        bearer = {"Authorization": f"Bearer {made['token']}"}
        assert httpx.get(f"{b.url}/api/v1/whoami", headers=bearer).json()["user"] == "carol"
        exp = httpx.post(f"{b.url}/api/v1/experiments", json={"name": "shared"}, headers=admin)
        experiment = exp.json()["experiment_id"]
        assert (
            httpx.get(f"{b.url}/api/v1/experiments/{experiment}", headers=bearer).status_code == 403
        )
        grant = f"{a.url}/api/v1/permissions/experiment/{experiment}/user:carol"
        assert httpx.put(grant, json={"level": "READ"}, headers=admin).status_code == 200
        assert (
            httpx.get(f"{b.url}/api/v1/experiments/{experiment}", headers=bearer).status_code == 200
        )
        assert httpx.get(f"{b.url}/api/v1/whoami", headers=bearer).status_code == 200  # cached
        assert httpx.delete(f"{a.url}/api/v1/tokens/{made['id']}", headers=admin).status_code == 204
        assert httpx.get(f"{a.url}/api/v1/whoami", headers=bearer).status_code == 401
        wait_until(
            lambda: httpx.get(f"{b.url}/api/v1/whoami", headers=bearer).status_code == 401,
            timeout=5.0,
            what="the other gateway to refuse the revoked token",
        )
    finally:
        b.stop()
        a.stop()


def test_as_of_reads_are_checked_with_todays_permissions(world: World) -> None:
    """As of the moment the experiment was made, nobody had been granted anything yet;
    what counts is what the caller holds now."""
    made = next(
        item.position
        for item in world.backend.log.read()
        if getattr(item, "event", None) is not None and item.event.type == "experiment.created"
    )
    then = {"as_of": str(made)}
    url = world.gateway.url + "/api/v1"
    with httpx.Client(timeout=10, headers=basic("reader", PASSWORD)) as http:
        got = http.get(f"{url}/experiments/{world.experiment}", params=then)
        assert got.status_code == 200 and got.json()["name"] == "exp"
        assert [e["name"] for e in http.get(f"{url}/experiments", params=then).json()] == ["exp"]
        found = http.post(
            f"{url}/runs/search", params=then, json={"experiment_ids": [world.experiment]}
        )
        assert found.status_code == 200 and found.json()["runs"] == []  # no run yet
    with httpx.Client(timeout=10, headers=basic("nobody", PASSWORD)) as http:
        refused = http.get(f"{url}/experiments/{world.experiment}", params=then)
        assert refused.status_code == 403
        assert http.get(f"{url}/experiments", params=then).json() == []
        searched = http.post(
            f"{url}/runs/search", params=then, json={"experiment_ids": [world.experiment]}
        )
        assert searched.status_code == 403
