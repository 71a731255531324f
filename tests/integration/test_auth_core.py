"""Identities and permissions on an embedded backend: the commands, the views folded from
their events, authentication of each kind of credential and the levels the authorizer
gives (docs/security.md). The gateway's use of them is tested with the gateway."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.codec import encode
from ledgerflow.events.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from ledgerflow.events.permissions import Level
from ledgerflow.events.settings import load_settings
from ledgerflow.services.auth.authenticate import Authenticator
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.projector.projector import Projector

ADMIN = "root-admin"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    b = bootstrap(load_settings(tracking_uri=str(tmp_path / "data"), auth=True))
    b.auth.ensure_admin("admin", "correct horse battery", actor=ADMIN)
    yield b
    b.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def make_user(b: Backend, name: str, password: str | None = "password-" + "x" * 4) -> ac.User:
    user: ac.User = b.auth.execute(ac.CreateUser(name=name, password=password), actor=ADMIN)
    return user


def test_first_start_needs_an_admin_and_invents_no_password(tmp_path: Path) -> None:
    b = bootstrap(load_settings(tracking_uri=str(tmp_path / "data"), auth=True))
    try:
        with pytest.raises(InvalidInput, match="LEDGERFLOW_ADMIN_USER"):
            b.auth.ensure_admin(None, None, actor=ADMIN)
        assert b.auth.ensure_admin("boss", "long enough pw", actor=ADMIN) == "boss"
        assert b.auth.ensure_admin("boss", "long enough pw", actor=ADMIN) is None
        assert b.authenticator.authenticate(basic("boss", "long enough pw")).admin
    finally:
        b.close()


def test_users_are_validated_and_no_secret_reaches_the_log(backend: Backend) -> None:
    alice = make_user(backend, "alice", "s3cret-passw0rd")
    assert (alice.name, alice.admin, alice.has_password) == ("alice", False, True)
    with pytest.raises(AlreadyExists):
        make_user(backend, "alice")
    with pytest.raises(InvalidInput) as bad:
        make_user(backend, "bad name")
    assert bad.value.field == "name"
    with pytest.raises(InvalidInput) as short:
        make_user(backend, "bob", "short")
    assert short.value.field == "password"
    token = backend.auth.execute(ac.CreateToken(user="alice"), actor=ADMIN).token
    log = b"".join(encode(r.event) for r in backend.log.read())
    assert b"s3cret-passw0rd" not in log and token.encode() not in log
    assert b"$argon2id$" in log
    assert "s3cret" not in repr(ac.CreateUser(name="x", password="s3cret-passw0rd"))


def test_passwords_authenticate_until_changed_or_deleted(backend: Backend) -> None:
    make_user(backend, "alice", "first-password")
    who = backend.authenticator.authenticate(basic("alice", "first-password"))
    assert (who.user, who.method, who.actor) == ("alice", "password", "alice")
    for wrong in (basic("alice", "nope-nope"), basic("mallory", "first-password")):
        with pytest.raises(Unauthenticated, match="wrong user name or password"):
            backend.authenticator.authenticate(wrong)
    backend.auth.execute(ac.SetPassword(name="alice", password="second-password"), actor=ADMIN)
    with pytest.raises(Unauthenticated):
        backend.authenticator.authenticate(basic("alice", "first-password"))
    assert backend.authenticator.authenticate(basic("alice", "second-password")).user == "alice"
    backend.auth.execute(ac.DeleteUser(name="alice"), actor=ADMIN)
    with pytest.raises(Unauthenticated):
        backend.authenticator.authenticate(basic("alice", "second-password"))


@pytest.mark.parametrize(
    "header",
    [None, "", "Token abc", "Basic", "Basic not-base64!!", "Bearer lf_unknown"],
)
def test_missing_or_malformed_credentials_are_refused(backend: Backend, header: str) -> None:
    with pytest.raises(Unauthenticated):
        backend.authenticator.authenticate(header)


def test_tokens_are_shown_once_and_stop_on_revoke_expiry_and_user_deletion(
    backend: Backend,
) -> None:
    make_user(backend, "svc-train", password=None)
    made = backend.auth.execute(ac.CreateToken(user="svc-train", description="CI"), actor="admin")
    assert made.token.startswith("lf_") and made.user == "svc-train"
    listed = backend.auth.queries.tokens("svc-train")
    assert [t.id for t in listed] == [made.id] and "token" not in listed[0].model_dump()
    who = backend.authenticator.authenticate(f"Bearer {made.token}")
    assert (who.user, who.token_id, who.method) == ("svc-train", made.id, "token")
    assert who.actor == f"svc-train#token:{made.id}"

    backend.auth.execute(ac.RevokeToken(id=made.id), actor="admin")
    with pytest.raises(Unauthenticated, match="revoked"):
        backend.authenticator.authenticate(f"Bearer {made.token}")

    clock = [time.time()]
    timed = Authenticator(backend.auth.queries, backend.settings, clock=lambda: clock[0])
    short = backend.auth.execute(ac.CreateToken(user="svc-train", expires_in_s=60), actor="a")
    assert timed.authenticate(f"Bearer {short.token}").user == "svc-train"
    clock[0] += 61
    with pytest.raises(Unauthenticated, match="expired"):
        timed.authenticate(f"Bearer {short.token}")

    other = backend.auth.execute(ac.CreateToken(user="svc-train"), actor="admin")
    backend.auth.execute(ac.DeleteUser(name="svc-train"), actor="admin")
    with pytest.raises(Unauthenticated):
        backend.authenticator.authenticate(f"Bearer {other.token}")
    with pytest.raises(NotFound):
        backend.auth.execute(ac.CreateToken(user="nobody"), actor="admin")
    with pytest.raises(InvalidInput):
        ac.CreateToken(user="x", expires_in_s=-1)


def test_the_cache_answers_only_what_was_verified_until_the_auth_views_change(
    backend: Backend,
) -> None:
    """What a model server asks on its event loop before verifying off it."""
    make_user(backend, "svc-serve", password=None)
    made = backend.auth.execute(ac.CreateToken(user="svc-serve"), actor="admin")
    header = f"Bearer {made.token}"
    clock = [time.time()]
    z = Authenticator(backend.auth.queries, backend.settings, clock=lambda: clock[0])
    assert z.cached(header) is None and z.cached(None) is None  # never verified here yet
    assert z.authenticate(header).user == "svc-serve"
    assert z.cached(header) == z.authenticate(header)
    assert z.cached("Bearer lf_other") is None  # a refused one is never kept
    backend.auth.execute(ac.RevokeToken(id=made.id), actor="admin")
    assert z.cached(header) is None  # the views changed: verify again, and be refused
    with pytest.raises(Unauthenticated, match="revoked"):
        z.authenticate(header)
    short = backend.auth.execute(ac.CreateToken(user="svc-serve", expires_in_s=60), actor="a")
    z.authenticate(f"Bearer {short.token}")
    clock[0] += 61
    assert z.cached(f"Bearer {short.token}") is None


def test_a_token_defaults_to_its_caller(backend: Backend) -> None:
    make_user(backend, "alice")
    made = backend.auth.execute(ac.CreateToken(), actor="alice#token:abc")
    assert made.user == "alice"


def test_levels_grants_groups_defaults_and_admins(backend: Backend) -> None:
    z = backend.authorizer
    for name in ("alice", "bob", "carol"):
        make_user(backend, name)
    exp = backend.tracking.execute(tc.CreateExperiment(name="team-exp"), actor="carol")
    alice = backend.authenticator.authenticate(basic("alice", "password-xxxx"))
    bob = backend.authenticator.authenticate(basic("bob", "password-xxxx"))
    carol = backend.authenticator.authenticate(basic("carol", "password-xxxx"))
    admin = backend.authenticator.authenticate(basic("admin", "correct horse battery"))
    assert z.level(carol, "experiment", exp) == Level.MANAGE  # the creator
    assert z.level(alice, "experiment", exp) == Level.READ  # the default
    assert z.level(admin, "experiment", exp) == Level.MANAGE

    backend.auth.execute(ac.CreateGroup(group="ml-team"), actor=ADMIN)
    backend.auth.execute(ac.AddGroupMember(group="ml-team", user="alice"), actor=ADMIN)
    backend.auth.execute(ac.AddGroupMember(group="ml-team", user="bob"), actor=ADMIN)
    backend.auth.execute(
        ac.SetPermission(kind="experiment", key=exp, principal="group:ml-team", level="EDIT"),
        actor=ADMIN,
    )
    alice = backend.authenticator.authenticate(basic("alice", "password-xxxx"))
    bob = backend.authenticator.authenticate(basic("bob", "password-xxxx"))
    assert alice.groups == ("ml-team",)
    assert z.level(alice, "experiment", exp) == Level.EDIT
    # the user's own grant wins over the group's, in both directions
    backend.auth.execute(
        ac.SetPermission(kind="experiment", key=exp, principal="user:bob", level="NO_PERMISSIONS"),
        actor=ADMIN,
    )
    assert z.level(bob, "experiment", exp) == Level.NO_PERMISSIONS
    with pytest.raises(PermissionDenied, match="needs READ on experiment"):
        z.require(bob, "experiment", exp, Level.READ)
    # a run's level is its experiment's
    run = backend.tracking.create_run(exp, user_id="carol", actor="carol").run_id
    assert z.level(alice, "run", run) == Level.EDIT
    assert z.level(bob, "run", run) == Level.NO_PERMISSIONS

    backend.auth.execute(ac.RemoveGroupMember(group="ml-team", user="alice"), actor=ADMIN)
    alice = backend.authenticator.authenticate(basic("alice", "password-xxxx"))
    assert z.level(alice, "experiment", exp) == Level.READ
    with pytest.raises(NotFound):
        backend.auth.execute(
            ac.SetPermission(kind="model", key="m", principal="user:ghost", level="READ"),
            actor=ADMIN,
        )
    with pytest.raises(InvalidInput) as bad:
        ac.SetPermission(kind="model", key="m", principal="user:alice", level="ROOT")  # type: ignore[arg-type]
    assert bad.value.field == "level"


def test_grants_follow_their_resource(backend: Backend) -> None:
    make_user(backend, "alice")
    backend.registry.execute(mc.CreateRegisteredModel(name="digits"), actor="alice")
    assert backend.auth.queries.permission("model", "digits", "user:alice") is not None
    backend.registry.execute(
        mc.RenameRegisteredModel(name="digits", new_name="digits-v2"), actor="alice"
    )
    assert backend.auth.queries.permissions("model", "digits") == []
    moved = backend.auth.queries.permission("model", "digits-v2", "user:alice")
    assert moved is not None and (moved.level, moved.source) == ("MANAGE", "creator")
    backend.registry.execute(mc.DeleteRegisteredModel(name="digits-v2"), actor="alice")
    assert backend.auth.queries.permissions("model") == []
    # a model created again under the old name starts with its new creator's grant only
    make_user(backend, "bob")
    backend.registry.execute(mc.CreateRegisteredModel(name="digits-v2"), actor="bob#token:t1")
    assert [p.principal for p in backend.auth.queries.permissions("model")] == ["user:bob"]


def test_a_replay_folds_the_same_auth_views(backend: Backend, tmp_path: Path) -> None:
    make_user(backend, "alice")
    backend.auth.execute(ac.CreateGroup(group="g"), actor=ADMIN)
    backend.auth.execute(ac.AddGroupMember(group="g", user="alice"), actor=ADMIN)
    backend.auth.execute(ac.CreateToken(user="alice"), actor=ADMIN)
    backend.auth.execute(
        ac.SetPermission(kind="deployment", key="d", principal="group:g", level="MANAGE"),
        actor=ADMIN,
    )
    q = backend.auth.queries
    before = (q.users(), q.groups(), q.tokens(), q.permissions())
    from ledgerflow.services.projector.database import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'replayed.db'}", writer=True)
    Projector(backend.log, engine, inline=True).catch_up()
    from ledgerflow.services.auth.queries import AuthQueries

    again = AuthQueries(engine)
    assert (again.users(), again.groups(), again.tokens(), again.permissions()) == before


class _Issuer:
    def __init__(self, tmp_path: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="k1", alg="RS256", use="sig")
        self.jwks = tmp_path / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [jwk]}))

    def token(self, **claims: object) -> str:
        body = {"iss": "https://idp.test", "aud": "ledgerflow", "exp": time.time() + 300}
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


def test_oidc_bearer_jwts_are_checked_and_mapped(backend: Backend, tmp_path: Path) -> None:
    issuer = _Issuer(tmp_path)
    settings = load_settings(
        tracking_uri=str(tmp_path / "data"), auth=True, oidc_issuer="https://idp.test",
        oidc_audience="ledgerflow", oidc_jwks=str(issuer.jwks),
    )  # fmt: skip
    auth = Authenticator(backend.auth.queries, settings)
    other = tmp_path / "other-issuer"
    other.mkdir()
    who = auth.authenticate("Bearer " + issuer.token(preferred_username="dana", groups=["ml-team"]))
    assert (who.user, who.groups, who.method, who.admin) == ("dana", ("ml-team",), "oidc", False)
    make_user(backend, "dana")
    backend.auth.execute(ac.SetAdmin(name="dana", admin=True), actor=ADMIN)
    assert auth.authenticate("Bearer " + issuer.token(preferred_username="dana")).admin
    for bad in (
        issuer.token(iss="https://evil.test", sub="x"),
        issuer.token(aud="someone-else", sub="x"),
        issuer.token(exp=time.time() - 10, sub="x"),
        _Issuer(other).token(sub="x"),  # signed by another key
    ):
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {bad}")


def test_a_webhook_delivers_only_what_its_owner_may_read_until_revoked(
    tmp_path: Path,
) -> None:
    from ledgerflow.events import webhook_commands as wc
    from ledgerflow.services.auth.visibility import webhook_filter
    from ledgerflow.services.webhooks.backoff import Backoff
    from ledgerflow.services.webhooks.dispatcher import WebhookDispatcher
    from tests.integration.webhook_receiver import Receiver

    b = bootstrap(
        load_settings(tracking_uri=str(tmp_path / "data"), auth=True, auth_default="NO_PERMISSIONS")
    )
    receiver = Receiver().up()
    dispatcher = WebhookDispatcher(
        b.log, b.projector.engine, secrets=lambda: b.secret_box, reader=b.queries.engine,
        backoff=Backoff(base_s=0.05, cap_s=0.4), scan_interval_s=0.1, refresh=b.refresh,
        may_deliver=webhook_filter(b.auth.queries, b.authorizer),
    )  # fmt: skip
    try:
        make_user(b, "alice")
        b.registry.execute(mc.CreateRegisteredModel(name="hers"), actor="alice")
        b.registry.execute(mc.CreateRegisteredModel(name="secret"), actor=ADMIN)
        hook = b.webhooks.execute(
            wc.CreateWebhook(name="alices", url=receiver.url, events=["model.*"]),
            actor="alice#token:t",
        )
        receiver.secret = hook.secret or ""
        dispatcher.start()
        tag = mc.SetRegisteredModelTag
        b.registry.execute(tag(name="secret", key="k", value="hidden"), actor=ADMIN)
        b.registry.execute(tag(name="hers", key="k", value="1"), actor="alice")
        receiver.wait_for(1)
        b.registry.execute(mc.SetRegisteredModelTag(name="hers", key="k", value="2"), actor="alice")
        receiver.wait_for(2)
        # alice loses READ on her own model: the next change is not delivered
        b.auth.execute(
            ac.SetPermission(
                kind="model", key="hers", principal="user:alice", level="NO_PERMISSIONS"
            ),
            actor=ADMIN,
        )
        b.registry.execute(tag(name="hers", key="k", value="3"), actor=ADMIN)
        b.registry.execute(mc.CreateRegisteredModel(name="theirs"), actor=ADMIN)
        b.auth.execute(
            ac.SetPermission(kind="model", key="theirs", principal="user:alice", level="READ"),
            actor=ADMIN,
        )
        b.registry.execute(tag(name="theirs", key="k", value="seen"), actor=ADMIN)
        receiver.wait_for(3)
        bodies = [r.body for r in receiver.requests]
        names = [body["data"]["name"] for body in bodies]
        assert names == ["hers", "hers", "theirs"], names
    finally:
        dispatcher.stop()
        receiver.down()
        b.close()
