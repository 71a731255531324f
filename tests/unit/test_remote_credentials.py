"""The identity remote mode presents to a gateway: which setting gives which header, that
the secret never shows in a repr or a message, and how a 401 or 403 is told."""

from __future__ import annotations

import base64

import httpx
import pytest

from ledgerflow.events.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from ledgerflow.events.settings import load_settings
from ledgerflow.remote.credentials import credentials_from, fingerprint
from ledgerflow.remote.http import GatewayHTTP, explain

URL = "http://gateway.example:5000"
TOKEN = "lf_" + "s" * 40
PASSWORD = "hunter2-but-longer"


def sent(auth: httpx.Auth) -> str:
    request = httpx.Request("GET", URL)
    return next(auth.auth_flow(request)).headers["Authorization"]


def test_a_token_is_sent_as_bearer_and_wins_over_basic_credentials() -> None:
    s = load_settings(
        tracking_uri=URL,
        tracking_token=TOKEN,
        tracking_username="alice",
        tracking_password=PASSWORD,
    )
    creds = credentials_from(s)
    assert creds is not None and sent(creds) == f"Bearer {TOKEN}"


def test_a_user_name_and_password_are_sent_as_basic() -> None:
    creds = credentials_from(
        load_settings(tracking_uri=URL, tracking_username="alice", tracking_password=PASSWORD)
    )
    assert creds is not None
    assert sent(creds) == "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert creds.user == "alice"


def test_mlflows_variable_names_are_read_when_ledgerflows_are_not_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    creds = credentials_from(load_settings(tracking_uri=URL))
    assert creds is not None and creds.scheme == "Basic" and creds.user == "alice"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    creds = credentials_from(load_settings(tracking_uri=URL))
    assert creds is not None and sent(creds) == f"Bearer {TOKEN}"


def test_no_credentials_is_none_and_half_of_basic_is_an_error_naming_the_missing_one() -> None:
    assert credentials_from(load_settings(tracking_uri=URL)) is None
    assert fingerprint(load_settings(tracking_uri=URL)) == ""
    with pytest.raises(InvalidInput) as e:
        credentials_from(load_settings(tracking_uri=URL, tracking_username="alice"))
    assert e.value.field == "LEDGERFLOW_TRACKING_PASSWORD"


def test_the_secret_shows_in_no_repr_and_identities_are_told_apart_without_it() -> None:
    token = credentials_from(load_settings(tracking_uri=URL, tracking_token=TOKEN))
    basic = credentials_from(
        load_settings(tracking_uri=URL, tracking_username="alice", tracking_password=PASSWORD)
    )
    assert token is not None and basic is not None
    for shown in (repr(token), repr(basic), token.describe(), basic.describe()):
        assert TOKEN not in shown and PASSWORD not in shown and "c3Nz" not in shown
    assert token.fingerprint() != basic.fingerprint()
    assert TOKEN not in token.fingerprint()
    settings = load_settings(tracking_uri=URL, tracking_token=TOKEN, tracking_password=PASSWORD)
    assert TOKEN not in repr(settings) and PASSWORD not in repr(settings)


def test_a_401_says_what_to_set_or_which_credential_was_refused() -> None:
    missing = explain(Unauthenticated("this server requires an identity"), URL, None)
    assert isinstance(missing, Unauthenticated)
    assert f"the gateway at {URL} requires credentials" in missing.message
    assert "LEDGERFLOW_TRACKING_TOKEN" in missing.message
    assert "LEDGERFLOW_TRACKING_USERNAME" in missing.message

    creds = credentials_from(load_settings(tracking_uri=URL, tracking_token=TOKEN))
    refused = explain(Unauthenticated("token 0193 was revoked"), URL, creds)
    assert "refused the token in LEDGERFLOW_TRACKING_TOKEN" in refused.message
    assert "token 0193 was revoked" in refused.message and TOKEN not in refused.message


def test_a_403_keeps_what_was_denied_and_says_who_can_grant_it() -> None:
    denied = explain(
        PermissionDenied("bob needs EDIT on experiment '7' for this", kind="experiment", key="7"),
        URL,
        None,
    )
    assert isinstance(denied, PermissionDenied) and (denied.kind, denied.key) == ("experiment", "7")
    assert "bob needs EDIT on experiment '7'" in denied.message
    assert "ledgerflow permissions set experiment 7 USER LEVEL" in denied.message
    admin_only = explain(PermissionDenied("only an admin may do this"), URL, None)
    assert "permissions set" not in admin_only.message
    other = NotFound("no run 'x'")
    assert explain(other, URL, None) is other


def test_presigned_urls_get_no_gateway_credentials() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("Authorization")
        return httpx.Response(200, json={})

    creds = credentials_from(load_settings(tracking_uri=URL, tracking_token=TOKEN))
    http = GatewayHTTP(URL, credentials=creds)
    transport = httpx.MockTransport(handler)
    http._client = httpx.Client(base_url=URL, transport=transport, auth=creds)
    http._direct = httpx.Client(transport=transport)
    try:
        http.upload("/api/v1/runs/r/artifacts/content/a.txt", b"x")
        http.upload("https://bucket.s3.example/a.txt?X-Amz-Signature=abc", b"x")
    finally:
        http.close()
    assert seen == {"gateway.example": f"Bearer {TOKEN}", "bucket.s3.example": None}


def test_a_spool_file_is_adopted_in_the_background_only_under_its_writers_identity(
    tmp_path,
) -> None:
    from ledgerflow.remote.spool import Claim, orphans, owner_of

    alice = Claim.new(tmp_path, "alice-digest")
    anonymous = Claim.new(tmp_path)
    for claim in (alice, anonymous):
        claim.db.write_bytes(b"")
        claim.release(remove=False)  # its process is gone
    assert owner_of(alice.db) == "alice-digest" and owner_of(anonymous.db) == ""
    found = {c.db: c for c in orphans(tmp_path, owner="bob-digest")}
    assert found == {}
    found = {c.db: c for c in orphans(tmp_path, owner="alice-digest")}
    assert list(found) == [alice.db]
    for c in found.values():
        c.release(remove=True)
    assert not alice.db.with_suffix(".owner").exists()
    everyone = list(orphans(tmp_path))  # `ledgerflow sync` ships whatever is left
    assert [c.db for c in everyone] == [anonymous.db]
    everyone[0].release(remove=False)
