"""The permission matrix: each level (NO_PERMISSIONS, READ, EDIT, MANAGE) on each kind of
resource (experiment, registered model, deployment, webhook), tried through every way a
caller reaches a gateway: REST, gRPC, the SDK's `lf.Client` against the gateway, and the
`ledgerflow` CLI as a subprocess.

Each kind has a representative read, edit and manage operation; a caller holding a level
may do exactly those whose level it reaches, and is refused the others the way that
client says it (403, PERMISSION_DENIED, `PermissionDenied`, exit code 1 and the
message). Every cell gets its own resource (a manage operation deletes or promotes),
created by the admin and granted to the user of that level alone; the gateway and its
users are made once for the whole file. The CLI costs a process per call, so it tries
one operation per kind, at every level.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events import webhook_commands as wc
from ledgerflow.events.errors import PermissionDenied
from ledgerflow.events.permissions import Level
from ledgerflow.events.settings import load_settings
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from tests.integration.test_auth_gateway import PASSWORD, World, basic, running_world
from tests.integration.test_auth_grpc import GrpcWorld, metric_event, serving_grpc
from tests.integration.test_auth_grpc import basic as grpc_basic

ADMIN_ACTOR = "admin"
USERS = {
    Level.NO_PERMISSIONS: "nobody",
    Level.READ: "reader",
    Level.EDIT: "editor",
    Level.MANAGE: "manager",
}
"""The world's users, one per level; each cell grants its user that level alone."""
KINDS = ("experiment", "model", "deployment", "webhook")
OPS = {"read": Level.READ, "edit": Level.EDIT, "manage": Level.MANAGE}


class Refused(Exception):
    """The client's own way of saying the caller lacks a level."""


@dataclass(frozen=True)
class Resource:
    kind: str
    key: str  # the experiment id, or the model, deployment or webhook name
    run: str = ""  # an experiment's run
    model: str = ""  # a deployment's model


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcWorld]:
    """One gateway with auth on (default NO_PERMISSIONS), its gRPC service, and users."""
    data = tmp_path_factory.mktemp("permission-matrix") / "data"
    with running_world(data) as world, serving_grpc(world) as served:
        yield served


def make(world: World, kind: str, level: Level) -> Resource:
    """A fresh resource of `kind`, made by the admin; the user of `level` holds `level`
    on it (an explicit grant, NO_PERMISSIONS included), and nobody else a grant."""
    b, name = world.backend, f"mx-{kind}-{uuid.uuid4().hex[:8]}"
    if kind == "experiment":
        key = b.tracking.execute(tc.CreateExperiment(name=name), actor=ADMIN_ACTOR)
        run = b.tracking.create_run(key, user_id="admin", actor=ADMIN_ACTOR).run_id
        found = Resource(kind, key, run=run)
    elif kind == "model":
        b.registry.execute(mc.CreateRegisteredModel(name=name), actor=ADMIN_ACTOR)
        b.registry.execute(mc.CreateModelVersion(name=name, source="/tmp/m"), actor=ADMIN_ACTOR)
        found = Resource(kind, name)
    elif kind == "deployment":
        model = f"{name}-model"
        b.registry.execute(mc.CreateRegisteredModel(name=model), actor=ADMIN_ACTOR)
        b.registry.execute(mc.CreateModelVersion(name=model, source="/tmp/m"), actor=ADMIN_ACTOR)
        arms = [
            {"name": "a", "model": model, "version": 1, "weight": 1},
            {"name": "b", "model": model, "version": 1, "weight": 0},
        ]
        b.deployments.execute(dc.CreateDeployment(name=name, variants=arms), actor=ADMIN_ACTOR)
        found = Resource(kind, name, model=model)
    else:
        hook = wc.CreateWebhook(name=name, url="http://127.0.0.1:9/hook", events=["model.*"])
        b.webhooks.execute(hook, actor=ADMIN_ACTOR)
        found = Resource(kind, name)
    grant = ac.SetPermission(
        kind=kind, key=found.key, principal=f"user:{USERS[level]}", level=level.name
    )  # type: ignore[arg-type]
    b.auth.execute(grant, actor=ADMIN_ACTOR)
    return found


# REST ---------------------------------------------------------------------------------


def rest_ops(http: httpx.Client, r: Resource) -> dict[str, Callable[[], httpx.Response]]:
    v1 = "/api/v1"
    if r.kind == "experiment":
        metric = {"metrics": [{"key": "loss", "value": 0.5, "timestamp": 1}]}
        grant = f"{v1}/permissions/experiment/{r.key}/user:someone"
        return {
            "read": lambda: http.post(f"{v1}/runs/search", json={"experiment_ids": [r.key]}),
            "edit": lambda: http.post(f"{v1}/runs/{r.run}/metrics", json=metric),
            "manage": lambda: http.put(grant, json={"level": "READ"}),
        }
    if r.kind == "model":
        model = f"{v1}/registered-models/{r.key}"
        return {
            "read": lambda: http.get(model),
            "edit": lambda: http.put(f"{model}/tags", json={"key": "k", "value": "v"}),
            "manage": lambda: http.put(f"{model}/aliases/champion", json={"version": 1}),
        }
    if r.kind == "deployment":
        dep = f"{v1}/deployments/{r.key}"
        return {
            "read": lambda: http.get(dep),
            "edit": lambda: http.post(f"{dep}/pause", json={"reason": "matrix"}),
            "manage": lambda: http.post(f"{dep}/promote", json={"variant": "b", "alias": None}),
        }
    hook = f"{v1}/webhooks/{r.key}"
    return {
        "read": lambda: http.get(hook),
        "edit": lambda: http.patch(hook, json={"description": "matrix"}),
        "manage": lambda: http.delete(hook),
    }


def rest(http: httpx.Client, r: Resource, op: str) -> None:
    answer = rest_ops(http, r)[op]()
    if answer.status_code == 403:
        error = answer.json()
        assert error["error_code"] == "PERMISSION_DENIED", answer.text
        assert error["kind"] in (r.kind, "run"), answer.text
        raise Refused(answer.text)
    assert answer.is_success, (op, r, answer.status_code, answer.text)


# gRPC ---------------------------------------------------------------------------------


def execute(gw: GrpcWorld, metadata: Any, command: str, body: str) -> None:
    gw.stub.Execute(pb.CommandRequest(command=command, body=body.encode()), metadata=metadata)


def grpc_ops(gw: GrpcWorld, r: Resource, metadata: Any) -> dict[str, Callable[[], Any]]:
    """No RPC reads a deployment or a webhook (REST does); their read cell is left out."""
    s = gw.stub
    if r.kind == "experiment":
        grant = f'{{"kind": "experiment", "key": "{r.key}", "principal": "user:someone", '
        grant += '"level": "READ"}'
        batch = pb.EventBatch(events=[metric_event(r.run)])
        return {
            "read": lambda: s.SearchRuns(
                pb.SearchRunsRequest(experiment_ids=[r.key]), metadata=metadata
            ),
            "edit": lambda: s.Ingest(iter([batch]), metadata=metadata),
            "manage": lambda: execute(gw, metadata, "SetPermission", grant),
        }
    if r.kind == "model":
        tag = f'{{"name": "{r.key}", "key": "k", "value": "v"}}'
        alias = f'{{"name": "{r.key}", "alias": "champion", "version": 1}}'
        return {
            "read": lambda: s.GetModelVersion(
                pb.GetModelVersionRequest(name=r.key, version=1), metadata=metadata
            ),
            "edit": lambda: execute(gw, metadata, "SetRegisteredModelTag", tag),
            "manage": lambda: execute(gw, metadata, "SetRegisteredModelAlias", alias),
        }
    if r.kind == "deployment":
        return {
            "edit": lambda: execute(gw, metadata, "Pause", f'{{"name": "{r.key}"}}'),
            "manage": lambda: execute(
                gw, metadata, "Promote", f'{{"name": "{r.key}", "variant": "b", "alias": null}}'
            ),
        }
    return {
        "edit": lambda: execute(
            gw, metadata, "UpdateWebhook", f'{{"name": "{r.key}", "description": "matrix"}}'
        ),
        "manage": lambda: execute(gw, metadata, "DeleteWebhook", f'{{"name": "{r.key}"}}'),
    }


# SDK ----------------------------------------------------------------------------------


def sdk_ops(client: lf.Client, r: Resource) -> dict[str, Callable[[], Any]]:
    """Logging is spooled (its refusal arrives later); a tag is the experiment's edit."""
    if r.kind == "experiment":
        return {
            "read": lambda: client.search_runs([r.key]),
            "edit": lambda: client.set_experiment_tag(r.key, "k", "v"),
            "manage": lambda: client.set_permission("experiment", r.key, "someone", "READ"),
        }
    if r.kind == "model":
        return {
            "read": lambda: client.get_registered_model(r.key),
            "edit": lambda: client.set_registered_model_tag(r.key, "k", "v"),
            "manage": lambda: client.set_registered_model_alias(r.key, "champion", 1),
        }
    if r.kind == "deployment":
        return {
            "read": lambda: client.get_deployment(r.key),
            "edit": lambda: client.pause_deployment(r.key, reason="matrix"),
            "manage": lambda: client.promote_deployment(r.key, "b", alias=None),
        }
    return {
        "read": lambda: client.get_webhook(r.key),
        "edit": lambda: client.update_webhook(r.key, description="matrix"),
        "manage": lambda: client.delete_webhook(r.key),
    }


# the matrix ---------------------------------------------------------------------------


def outcomes(ops: dict[str, Callable[[], Any]], refusal: type[Exception]) -> dict[str, bool]:
    """Whether each operation was allowed, tried in order read, edit, manage."""
    allowed: dict[str, bool] = {}
    for op in OPS:
        if op not in ops:
            continue
        try:
            ops[op]()
            allowed[op] = True
        except refusal:
            allowed[op] = False
    return allowed


def expected(level: Level, ops: dict[str, Callable[[], Any]]) -> dict[str, bool]:
    return {op: level >= needs for op, needs in OPS.items() if op in ops}


CELLS = [(kind, level) for kind in KINDS for level in USERS]
IDS = [f"{kind}-{level.name}" for kind, level in CELLS]


@pytest.fixture
def someone(matrix: GrpcWorld) -> str:
    """The user the manage cells grant to (once: creating a user twice is a conflict)."""
    if matrix.backend.auth.queries.user("someone") is None:
        matrix.backend.auth.execute(ac.CreateUser(name="someone"), actor=ADMIN_ACTOR)
    return "someone"


@pytest.mark.parametrize(("kind", "level"), CELLS, ids=IDS)
def test_rest_allows_exactly_what_the_level_reaches(
    matrix: GrpcWorld, someone: str, kind: str, level: Level
) -> None:
    r = make(matrix.world, kind, level)
    with httpx.Client(
        base_url=matrix.world.gateway.url, headers=basic(USERS[level], PASSWORD)
    ) as h:
        ops = {op: (lambda op=op: rest(h, r, op)) for op in OPS}  # type: ignore[misc]
        assert outcomes(ops, Refused) == expected(level, ops)


@pytest.mark.parametrize(("kind", "level"), CELLS, ids=IDS)
def test_grpc_allows_exactly_what_the_level_reaches(
    matrix: GrpcWorld, someone: str, kind: str, level: Level
) -> None:
    r = make(matrix.world, kind, level)
    ops = grpc_ops(matrix, r, grpc_basic(USERS[level]))
    got: dict[str, bool] = {}
    for op, call in ops.items():
        try:
            call()
            got[op] = True
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, (op, e.details())
            got[op] = False
    assert got == expected(level, ops)


@pytest.fixture
def sdk_client(matrix: GrpcWorld, spool_dir: Path) -> Iterator[Callable[[str], lf.Client]]:
    def signed_in(user: str) -> lf.Client:
        settings = load_settings(
            tracking_uri=matrix.world.gateway.url,
            tracking_username=user,
            tracking_password=PASSWORD,
        )
        return lf.Client(backend=session.backend_for(settings))

    yield signed_in
    session.reset()


@pytest.mark.parametrize(("kind", "level"), CELLS, ids=IDS)
def test_the_sdk_client_allows_exactly_what_the_level_reaches(
    matrix: GrpcWorld,
    someone: str,
    sdk_client: Callable[[str], lf.Client],
    kind: str,
    level: Level,
) -> None:
    r = make(matrix.world, kind, level)
    ops = sdk_ops(sdk_client(USERS[level]), r)
    assert outcomes(ops, PermissionDenied) == expected(level, ops)


# the CLI: one operation per kind, at every level ----------------------------------------

CLI_OPS: dict[str, tuple[Level, Callable[[Resource], list[str]]]] = {
    "experiment": (Level.READ, lambda r: ["runs", "search", "-e", r.key, "--json"]),
    "model": (Level.READ, lambda r: ["models", "show", r.key, "--json"]),
    "deployment": (Level.MANAGE, lambda r: ["deployments", "traffic", r.key, "a=0", "b=1"]),
    "webhook": (Level.EDIT, lambda r: ["webhooks", "update", r.key, "-d", "matrix"]),
}


@pytest.fixture(scope="session")
def tokens(matrix: GrpcWorld) -> dict[str, str]:
    """An API token for each level's user: what the CLI signs in with."""
    b = matrix.backend
    return {
        user: b.auth.execute(ac.CreateToken(user=user), actor=ADMIN_ACTOR).token
        for user in USERS.values()
    }


@pytest.mark.parametrize(("kind", "level"), CELLS, ids=IDS)
def test_the_cli_allows_exactly_what_the_level_reaches(
    matrix: GrpcWorld, tokens: dict[str, str], tmp_path: Path, kind: str, level: Level
) -> None:
    r = make(matrix.world, kind, level)
    needs, argv = CLI_OPS[kind]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFLOW_", "MLFLOW_"))}
    env |= {
        "LEDGERFLOW_TRACKING_URI": matrix.world.gateway.url,
        "LEDGERFLOW_TRACKING_TOKEN": tokens[USERS[level]],
        "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ledgerflow.cli", *argv(r)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if level >= needs:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert f"{USERS[level]} needs {needs.name} on {kind}" in done.stderr, done.stderr
