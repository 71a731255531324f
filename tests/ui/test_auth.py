"""The web UI with auth on: the page asks the browser for credentials (401 with
`WWW-Authenticate: Basic`), then the page, its fetches and its event stream use them; an
API token signs in as user `token`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import python_env
from tests.ui.conftest import UiServer, shot, start_ui, stop

ADMIN, PASSWORD = "ada", "correct horse battery"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    root = tmp_path_factory.mktemp("ui-auth")
    env = python_env(root / "data") | {
        "LEDGERFLOW_ADMIN_USER": ADMIN,
        "LEDGERFLOW_ADMIN_PASSWORD": PASSWORD,
    }
    server = start_ui(root / "data", root / "ui.log", "--auth", env=env)
    yield server
    stop(server)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_page_asks_the_browser_for_a_user_and_password(secured: UiServer) -> None:
    for path in ("/", "/experiments", "/signin"):
        r = httpx.get(secured.url + path, timeout=10)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="ledgerflow"'
    wrong = httpx.get(secured.url + "/", headers=_basic(ADMIN, "nope"), timeout=10)
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    assert (
        httpx.get(secured.url + "/", headers=_basic(ADMIN, PASSWORD), timeout=10).status_code == 200
    )


def test_a_deep_link_signs_in_at_the_root_so_the_credentials_cover_the_api(
    secured: UiServer,
) -> None:
    # A browser sends Basic credentials only below the path that asked for them: a
    # challenge at /runs/abc/ would not cover /api/v1/.
    r = httpx.get(secured.url + "/runs/abc/metrics?x=1", timeout=10)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=%2Fruns%2Fabc%2Fmetrics%3Fx%3D1"
    signed = httpx.get(
        secured.url + "/signin", params={"next": "/runs/abc/metrics?x=1"},
        headers=_basic(ADMIN, PASSWORD), timeout=10,
    )  # fmt: skip
    assert signed.status_code == 303 and signed.headers["location"] == "/runs/abc/metrics?x=1"
    for elsewhere in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        away = httpx.get(
            secured.url + "/signin", params={"next": elsewhere},
            headers=_basic(ADMIN, PASSWORD), timeout=10,
        )  # fmt: skip
        assert away.status_code == 303 and away.headers["location"] == "/"


def test_a_browser_opening_a_deep_link_first_can_use_the_page(
    secured: UiServer, browser: Any
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        http_credentials={"username": ADMIN, "password": PASSWORD},
    )
    page = context.new_page()
    try:
        page.goto(secured.url + "/models/nothing-here")  # the first page this browser opens
        assert "/models/nothing-here" in page.url
        expect(page.get_by_text("requires an identity")).to_have_count(0)
        expect(page.get_by_text("nothing-here").first).to_be_visible()
    finally:
        context.close()


def test_an_api_token_signs_in_as_user_token(secured: UiServer) -> None:
    made = httpx.post(
        f"{secured.url}/api/v1/tokens", json={"description": "browser"},
        headers=_basic(ADMIN, PASSWORD), timeout=10,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    me = httpx.get(f"{secured.url}/api/v1/whoami", headers=_basic("token", token), timeout=10)
    assert me.status_code == 200 and me.json()["user"] == ADMIN
    assert (
        httpx.get(secured.url + "/", headers=_basic("token", token), timeout=10).status_code == 200
    )
    bad = httpx.get(f"{secured.url}/api/v1/whoami", headers=_basic("token", "lf_nope"), timeout=10)
    assert bad.status_code == 401


def test_signed_in_the_browser_uses_the_ui_and_its_live_stream(
    secured: UiServer, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        http_credentials={"username": ADMIN, "password": PASSWORD},
    )
    page = context.new_page()
    try:
        page.goto(secured.url + "/experiments")
        page.get_by_label("New experiment name").fill("secured-experiment")
        page.get_by_role("button", name="Create").click()
        page.get_by_role("link", name="secured-experiment").click()
        expect(page.get_by_role("heading", name="Runs of secured-experiment")).to_be_visible()
        experiment_id = page.url.split("/experiments/")[1].split("/")[0]
        r = httpx.post(
            f"{secured.url}/api/v1/runs",
            json={"experiment_id": experiment_id, "user_id": ADMIN, "run_name": "seen-live"},
            headers=_basic(ADMIN, PASSWORD), timeout=10,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        expect(page.get_by_role("link", name="seen-live")).to_be_visible()  # over SSE, signed in
        shot(page, "auth-runs")
    finally:
        context.close()
