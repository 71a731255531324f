"""The SDK against a real gateway with auth on: signing in with a token, HTTP Basic or
MLflow's variables; what a caller without credentials, or without EDIT, is told; the spool
when the gateway refuses what it ships; and the identity methods of the Client next to the
log and over the gateway (docs/security.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.cli.app import app
from ledgerflow.events.errors import NotFound, PermissionDenied, Unauthenticated
from ledgerflow.events.settings import load_settings
from ledgerflow.remote import RemoteBackend
from ledgerflow.remote.spool import REFUSED_FILE, folder_for
from tests.integration.gateway_fixture import GatewayThread

ADMIN, ADMIN_PW = "admin", "admin-password-1"
BOB_PW = "bob-password-12"


@pytest.fixture
def secured(data_dir: Path, spool_dir: Path) -> Iterator[GatewayThread]:
    """A gateway with auth on (default level READ) and an admin; SDK state reset after."""
    g = GatewayThread(load_settings(tracking_uri=str(data_dir), auth=True)).start()
    assert g.backend is not None
    g.backend.auth.ensure_admin(ADMIN, ADMIN_PW, actor="test")
    yield g
    session.reset()
    g.stop()


def client(url: str, **credentials: str) -> lf.Client:
    """A Client of `url` signed in with the given settings (tracking_token, ...)."""
    return lf.Client(backend=session.backend_for(load_settings(tracking_uri=url, **credentials)))


def admin(url: str) -> lf.Client:
    return client(url, tracking_username=ADMIN, tracking_password=ADMIN_PW)


def test_a_client_signs_in_with_a_token_with_basic_credentials_or_with_mlflows_variables(
    secured: GatewayThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = admin(secured.url)
    assert root.whoami().model_dump(include={"user", "admin", "method", "auth"}) == {
        "user": ADMIN, "admin": True, "method": "password", "auth": True,
    }  # fmt: skip
    root.create_user("alice", "alice-password-1")
    made = root.create_token("alice", "notebook", expires_in="1d")
    # a day from when it was made (the expiry is decided a moment before the event is stamped)
    assert made.expires is not None and 0 <= 86_400_000 - (made.expires - made.creation_time) < 1000
    assert made.token not in repr(made)

    by_token = client(secured.url, tracking_token=made.token).whoami()
    assert (by_token.user, by_token.method, by_token.token_id) == ("alice", "token", made.id)
    by_password = client(
        secured.url, tracking_username="alice", tracking_password="alice-password-1"
    )
    assert by_password.whoami().method == "password"
    assert [t.id for t in by_password.list_tokens()] == [made.id]  # the caller's own

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", made.token)
    assert lf.Client(secured.url).whoami().user == "alice"
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-password-1")
    me = lf.Client(secured.url).whoami()
    assert (me.user, me.method) == ("alice", "password")


def test_without_credentials_the_client_is_told_what_to_set_and_no_secret_is_echoed(
    secured: GatewayThread,
) -> None:
    with pytest.raises(Unauthenticated) as missing:
        lf.Client(secured.url).search_experiments()
    assert f"the gateway at {secured.url} requires credentials" in missing.value.message
    assert "LEDGERFLOW_TRACKING_TOKEN" in missing.value.message

    wrong = client(secured.url, tracking_username=ADMIN, tracking_password="not-the-password")
    with pytest.raises(Unauthenticated) as refused:
        wrong.whoami()
    assert f"refused user {ADMIN!r}" in refused.value.message
    assert "not-the-password" not in refused.value.message + repr(refused.value)

    with pytest.raises(Unauthenticated, match="requires credentials"):
        list(lf.Client(secured.url)._backend.log.subscribe(follow=False))


def test_a_reader_is_denied_logging_by_the_fluent_api_and_the_client_until_granted_edit(
    secured: GatewayThread, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = admin(secured.url)
    root.create_user("bob", BOB_PW)
    experiment_id = root.create_experiment("shared")
    theirs = root.create_run(experiment_id).info.run_id

    monkeypatch.setenv("LEDGERFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("LEDGERFLOW_TRACKING_PASSWORD", BOB_PW)
    lf.set_tracking_uri(secured.url)
    lf.set_experiment("shared")  # READ is enough to find it
    with pytest.raises(PermissionDenied) as denied:
        lf.log_metric("loss", 0.5)  # starts a run in an experiment bob may only read
    assert denied.value.kind == "experiment" and denied.value.key == experiment_id
    assert "bob needs EDIT" in denied.value.message
    assert f"ledgerflow permissions set experiment {experiment_id}" in denied.value.message
    with pytest.raises(PermissionDenied):
        lf.start_run(run_id=theirs)

    bob = lf.Client()  # logging is spooled; the gateway refuses it when it arrives
    bob.log_metric(theirs, "loss", 0.5)
    with pytest.raises(PermissionDenied, match=r"1 logged event\(s\) were refused"):
        bob.get_run(theirs)
    assert bob.get_run(theirs).data.metrics == {}  # said once; the rest goes on
    refused = folder_for(spool_dir, secured.url) / REFUSED_FILE
    [line] = refused.read_text().splitlines()
    assert json.loads(line)["event"]["data"]["run_id"] == theirs
    assert "bob needs EDIT" in json.loads(line)["reason"]

    root.set_permission("experiment", experiment_id, "bob", "edit")
    with lf.start_run() as run:
        lf.log_metric("loss", 0.25)
    assert bob.get_run(run.info.run_id).data.metrics == {"loss": 0.25}  # shipped, projected
    assert secured.backend is not None
    actors = {
        r.event.actor
        for r in secured.backend.log.read()
        if r.event.stream == f"run:{run.info.run_id}"
    }
    assert actors == {"bob"}  # whatever actor the SDK wrote, the gateway stamps the caller


def test_runs_started_while_the_gateway_is_down_are_judged_by_its_permissions_on_arrival(
    secured: GatewayThread, spool_dir: Path
) -> None:
    root = admin(secured.url)
    root.create_user("dana", None)
    token = root.create_token("dana")
    shared = root.create_experiment("dana-shared")
    other = root.create_experiment("dana-other")  # dana may only READ it (the default)
    root.set_permission("experiment", shared, "user:dana", "EDIT")
    secured.stop()
    settings = load_settings(tracking_uri=secured.url, tracking_token=token.token)
    backend = RemoteBackend(settings, exit_wait_s=1)
    dana = lf.Client(backend=backend)
    try:
        allowed = dana.create_run(shared).info.run_id  # the gateway is down: both wait
        dana.log_param(allowed, "lr", 0.1)
        denied = dana.create_run(other).info.run_id
        dana.log_param(denied, "lr", 0.2)
        secured.start()
        with pytest.raises(PermissionDenied, match=f"the start of run {denied}, made .* refused"):
            dana.get_run(allowed)
        run = dana.get_run(allowed)
        assert run.info.user_id == "dana" and run.data.params == {"lr": "0.1"}
        with pytest.raises(NotFound):
            root.get_run(denied)
    finally:
        backend.close()
    refused = (folder_for(spool_dir, secured.url) / REFUSED_FILE).read_text().splitlines()
    assert len(refused) == 2 and token.token not in "".join(refused)


def test_refused_credentials_keep_the_spool_and_say_so_loudly_once(
    secured: GatewayThread, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = admin(secured.url)
    root.create_user("carol", None)
    token = root.create_token("carol")
    experiment_id = root.create_experiment("carols")
    root.set_permission("experiment", experiment_id, "user:carol", "EDIT")

    settings = load_settings(tracking_uri=secured.url, tracking_token=token.token)
    backend = RemoteBackend(settings, exit_wait_s=5)
    carol = lf.Client(backend=backend)
    run_id = carol.create_run(experiment_id).info.run_id
    root.revoke_token(token.id)

    carol.log_metric(run_id, "acc", 0.9)
    with pytest.raises(Unauthenticated, match=f"token {token.id} was revoked"):
        carol.get_run(run_id)
    assert backend.shipper.pending() == 1
    with caplog.at_level(logging.ERROR, logger="ledgerflow"):
        backend.close()  # gives up at once: waiting does not change the answer
    said = [r.getMessage() for r in caplog.records if "NOT being shipped" in r.getMessage()]
    assert len(said) == 1 and token.token not in said[0]
    spooled = list(folder_for(spool_dir, secured.url).glob("*.db"))
    assert len(spooled) == 1  # kept for a process with accepted credentials

    fresh = root.create_token("carol")
    shipped = CliRunner().invoke(
        app, ["--tracking-uri", secured.url, "sync"], env={"LEDGERFLOW_TRACKING_TOKEN": fresh.token}
    )
    assert shipped.exit_code == 0, shipped.output
    assert "shipped 1 events from 1 spool files" in shipped.output
    assert root.get_run(run_id).data.metrics == {"acc": 0.9}


def test_identity_methods_work_next_to_the_log_as_the_local_user(
    tracking: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGERFLOW_USER", "ops")
    c = lf.Client()
    me = c.whoami()
    assert (me.user, me.admin, me.method, me.auth) == ("ops", True, "local", False)
    c.create_user("ops", None, admin=True)
    token = c.create_token(expires_in=3600)  # for the local user
    assert token.user == "ops" and [t.id for t in c.list_tokens()] == [token.id]
    c.create_user("alice", "alice-password-1")
    c.create_group("team")
    assert c.add_group_member("team", "alice").members == ["alice"]
    assert c.get_user("alice").groups == ["team"]
    experiment_id = c.create_experiment("local")
    c.set_permission("experiment", experiment_id, "group:team", "read")
    assert {
        (p.principal, p.level, p.source) for p in c.list_permissions("experiment", experiment_id)
    } == {
        ("user:ops", "MANAGE", "creator"),  # the creator, without the SDK's user: prefix
        ("group:team", "READ", "grant"),
    }
    c.remove_permission("experiment", experiment_id, "group:team")
    c.revoke_token(token.id)
    assert c.list_tokens("ops")[0].revoked
    c.delete_group("team")
    c.delete_user("alice")
    with pytest.raises(NotFound):
        c.get_user("alice")
