"""`ledgerflow server --auth` and the identity commands, as real processes: a server that
nobody could sign in to refuses to start; one with an admin answers who is calling; users
and tokens made with the CLI sign in until revoked."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.errors import Unauthenticated
from ledgerflow.events.settings import load_settings
from tests.conftest import PYTHON
from tests.e2e.test_cli import clean_error, cli_env, doc
from tests.integration.gateway_fixture import GatewayProcess

pytestmark = pytest.mark.slow

ADMIN, ADMIN_PW = "root", "root-password-1"
DAVE_PW = "dave-password-1"


def run_cli(
    target: str, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", target, *args],
        env=cli_env(Path(target)) | env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def as_admin() -> dict[str, str]:
    return {"LEDGERFLOW_TRACKING_USERNAME": ADMIN, "LEDGERFLOW_TRACKING_PASSWORD": ADMIN_PW}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayProcess]:
    s = GatewayProcess(
        tmp_path / "data", tmp_path / "server.log", command="server", extra=("--auth",),
        env={"LEDGERFLOW_ADMIN_USER": ADMIN, "LEDGERFLOW_ADMIN_PASSWORD": ADMIN_PW},
    )  # fmt: skip
    s.start()
    yield s
    s.stop()
    session.reset()


@pytest.mark.parametrize(
    ("command", "flags", "env"),
    [("server", ("--auth",), {}), ("gateway", (), {"LEDGERFLOW_AUTH": "true"})],
)
def test_a_server_with_auth_and_no_admin_refuses_to_start_saying_what_to_set(
    tmp_path: Path, command: str, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    result = run_cli(str(tmp_path / "data"), command, *flags, "--port", "0", **env)
    line = clean_error(result)
    assert "no admin exists: set LEDGERFLOW_ADMIN_USER and LEDGERFLOW_ADMIN_PASSWORD" in line


def test_a_server_with_auth_ensures_its_admin_and_answers_who_is_calling(
    server: GatewayProcess,
) -> None:
    said = server.output()
    assert f"auth is on: every API call needs an identity; admins: {ADMIN}" in said
    assert ADMIN_PW not in said
    me = httpx.get(server.url + "/api/v1/whoami", auth=(ADMIN, ADMIN_PW), timeout=10)
    assert me.status_code == 200
    assert me.json() == {
        "user": ADMIN, "admin": True, "groups": [], "token_id": None, "method": "password",
        "auth": True,
    }  # fmt: skip
    assert httpx.get(server.url + "/api/v1/whoami", timeout=10).status_code == 401


def test_a_user_and_token_made_with_the_cli_sign_in_until_the_token_is_revoked(
    server: GatewayProcess, tmp_path: Path
) -> None:
    url = server.url
    made = run_cli(url, "users", "create", "dave", "--password-stdin", "--json",
                   stdin=DAVE_PW + "\n", **as_admin())  # fmt: skip
    assert doc(made) | {"creation_time": 0} == {
        "name": "dave", "admin": False, "has_password": True, "groups": [], "creation_time": 0,
    }  # fmt: skip
    dave = {"LEDGERFLOW_TRACKING_USERNAME": "dave", "LEDGERFLOW_TRACKING_PASSWORD": DAVE_PW}
    assert doc(run_cli(url, "whoami", "--json", **dave))["method"] == "password"

    created = run_cli(url, "tokens", "create", "--user", "dave", "--expires", "30d",
                      "--description", "ci", **as_admin())  # fmt: skip
    assert created.returncode == 0, created.stderr
    [export] = [x for x in created.stdout.splitlines() if x.startswith("export ")]
    token = export.split("=", 1)[1]
    assert "only time the token is shown" in created.stderr
    listed = doc(run_cli(url, "tokens", "list", "--user", "dave", "--json", **as_admin()))
    [record] = listed
    assert record["description"] == "ci" and "token" not in record

    spool = {"LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool")}
    shown = doc(run_cli(url, "whoami", "--json", LEDGERFLOW_TRACKING_TOKEN=token, **spool))
    assert (shown["user"], shown["token_id"]) == ("dave", record["id"])
    c = lf.Client(backend=session.backend_for(load_settings(
        tracking_uri=url, tracking_token=token, spool_dir=str(tmp_path / "spool"),
    )))  # fmt: skip
    assert c.whoami().user == "dave"
    c.create_experiment("daves")  # any identity creates; dave gets MANAGE on it

    revoked = run_cli(url, "tokens", "revoke", record["id"], "--json", **as_admin())
    assert doc(revoked) == {"revoked": record["id"]}
    with pytest.raises(Unauthenticated, match=f"token {record['id']} was revoked"):
        c.whoami()
    refused = run_cli(url, "experiments", "list", LEDGERFLOW_TRACKING_TOKEN=token, **spool)
    assert "refused the token in LEDGERFLOW_TRACKING_TOKEN" in clean_error(refused)
    assert token not in refused.stderr

    grants = doc(run_cli(url, "permissions", "list", "experiment", "daves", "--json",
                         **as_admin()))  # fmt: skip
    assert [(g["principal"], g["level"], g["source"]) for g in grants] == [
        ("user:dave", "MANAGE", "creator")
    ]
