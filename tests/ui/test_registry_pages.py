"""The model registry pages: models, a model with its versions and aliases, a version with
its bundles and parity, a version comparison, and setting / removing aliases (refused
with a clear message without MANAGE)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import python_env
from tests.ui.conftest import UiServer, shot, start_ui, stop


def test_the_models_list_searches_and_opens_a_model_with_aliases_next_to_versions(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/models")
    expect(page.get_by_role("row", name="digits-classifier")).to_contain_text("@champion → v1")
    page.get_by_label("Search models").fill("nothing-like-it")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No registered model matches")).to_be_visible()
    page.get_by_label("Search models").fill("digits")
    page.keyboard.press("Enter")
    shot(page, "models")
    page.get_by_role("link", name="digits-classifier").click()
    expect(page.get_by_role("heading", name="Model digits-classifier")).to_be_visible()
    expect(page.get_by_text("Classifies digits from two features.")).to_be_visible()
    v1 = page.get_by_role("row", name="Version 1", exact=True)
    v2 = page.get_by_role("row", name="Version 2", exact=True)
    expect(v1).to_contain_text("@champion")
    expect(v1).to_contain_text("Production")
    expect(v2).to_contain_text("@challenger")
    expect(v2).to_contain_text("validated=yes")
    shot(page, "model")
    v2.get_by_role("link", name=ids["candidate"][:12]).click()
    expect(page.get_by_role("heading", name="Run candidate")).to_be_visible()


def test_a_version_page_shows_its_bundles_with_their_parity(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/models/digits-classifier/versions/1")
    expect(page.get_by_role("heading", name="digits-classifier version 1")).to_be_visible()
    bundle = page.get_by_role("table", name="Bundles").get_by_role("row", name="Bundle onnx")
    expect(bundle).to_contain_text("built")
    expect(bundle).to_contain_text("passed on 4 inputs")
    expect(bundle).to_contain_text(ids["bundle"])
    expect(page.get_by_label("Signature")).to_contain_text("float64")
    expect(page.get_by_role("link", name=ids["parent"])).to_be_visible()  # the source run
    shot(page, "model-version")
    page.goto(f"{ui.url}/models/digits-classifier/versions/2")
    expect(page.get_by_text("No bundle was built from this version")).to_be_visible()


def test_comparing_versions_highlights_the_params_that_differ(ui: UiServer, page: Any) -> None:
    page.goto(f"{ui.url}/models/digits-classifier")
    page.get_by_label("Select version 1").check()
    page.get_by_label("Select version 2").check()
    page.get_by_role("button", name="Compare 2 selected versions").click()
    expect(page).to_have_url(f"{ui.url}/models/digits-classifier/compare?versions=1,2")
    table = page.get_by_role("table", name="Versions compared")
    lr = table.get_by_role("row", name="params.lr", exact=True)
    expect(lr).to_contain_text("0.01")
    expect(lr).to_contain_text("0.05")
    expect(lr).to_have_class("differs")
    expect(table.get_by_role("row", name="params.optimizer", exact=True)).not_to_have_class(
        "differs"
    )
    expect(table.get_by_role("row", name="signature inputs", exact=True)).to_contain_text("float64")
    shot(page, "model-compare")


def test_an_alias_is_set_and_removed_from_the_model_page(ui: UiServer, page: Any) -> None:
    page.goto(f"{ui.url}/models/digits-classifier")
    page.get_by_label("Alias", exact=True).fill("nightly")
    page.get_by_label("on version").select_option("2")
    page.get_by_role("button", name="Set alias").click()
    v2 = page.get_by_role("row", name="Version 2", exact=True)
    expect(v2).to_contain_text("@nightly")
    assert ui.api("GET", "/registered-models/digits-classifier/aliases/nightly")["version"] == 2
    page.once("dialog", lambda d: d.accept())
    v2.get_by_role("button", name="Remove alias nightly").click()
    expect(v2).not_to_contain_text("@nightly")
    r = httpx.get(f"{ui.url}/api/v1/registered-models/digits-classifier/aliases/nightly")
    assert r.status_code == 404


ADMIN, PASSWORD = "ada", "correct horse battery"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    root = tmp_path_factory.mktemp("ui-registry-auth")
    env = python_env(root / "data") | {
        "LEDGERFLOW_ADMIN_USER": ADMIN,
        "LEDGERFLOW_ADMIN_PASSWORD": PASSWORD,
    }
    server = start_ui(root / "data", root / "ui.log", "--auth", env=env)
    yield server
    stop(server)


def test_without_manage_setting_an_alias_is_not_offered_and_a_refusal_says_why(
    secured: UiServer, browser: Any
) -> None:
    admin = _basic(ADMIN, PASSWORD)

    def call(method: str, path: str, body: Any) -> None:
        r = httpx.request(
            method, f"{secured.url}/api/v1{path}", json=body, headers=admin, timeout=30
        )
        assert r.status_code < 300, r.text

    call("POST", "/registered-models", {"name": "fraud"})
    call("POST", "/registered-models/fraud/versions", {"source": "/tmp/fraud-model"})
    call("POST", "/users", {"name": "bob", "password": "bob-secret-pw"})
    call("PUT", "/permissions/model/fraud/user:bob", {"level": "READ"})
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        http_credentials={"username": "bob", "password": "bob-secret-pw"},
    )
    page = context.new_page()
    try:
        page.goto(f"{secured.url}/models")  # signs in for the whole site (a deep link
        # first would scope the browser's credentials to /models/)
        page.get_by_role("link", name="fraud").click()
        expect(page.get_by_role("row", name="Version 1", exact=True)).to_be_visible()
        # READ: the action is not offered, and the page says why
        expect(page.get_by_role("button", name="Set alias")).to_be_disabled()
        expect(page.get_by_text("You have READ on model fraud")).to_contain_text("needs MANAGE")

        call("PUT", "/permissions/model/fraud/user:bob", {"level": "MANAGE"})
        page.reload()
        expect(page.get_by_role("button", name="Set alias")).to_be_enabled()
        # the grant is lowered while the page is open: the gateway refuses, the page says why
        call("PUT", "/permissions/model/fraud/user:bob", {"level": "READ"})
        page.get_by_label("Alias", exact=True).fill("champion")
        page.get_by_role("button", name="Set alias").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("You may not change this")
        expect(alert).to_contain_text("bob needs MANAGE on model 'fraud'")
        shot(page, "model-alias-refused")
    finally:
        context.close()
