"""The deployment pages: variants, weights and roles, live statistics that follow real
inference traffic through the `ledgerflow ui` process's own deployment routes, canary
progress, guardrails, history, and promotion (confirmed first) changing the roles."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot
from tests.waiting import wait_until


def _send(ui: UiServer, name: str, users: range) -> None:
    for u in users:
        r = httpx.post(f"{ui.url}/deployments/{name}/invocations", json={"inputs": [[0.5, 0.2]]},
                       headers={"X-User": f"user-{u}"}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text


def _ready(ui: UiServer, name: str) -> None:
    wait_until(lambda: httpx.get(f"{ui.url}/deployments/{name}/ready", timeout=10).status_code == 200,
               90, f"deployment {name} to be ready")  # fmt: skip


def _requests(page: Any, variant: str) -> int:
    row = page.get_by_role("row", name=f"Statistics of {variant}")
    return int(row.get_attribute("data-requests") or 0)


def test_a_variants_request_count_grows_while_traffic_flows(ui: UiServer, page: Any) -> None:
    _ready(ui, "web")
    page.goto(f"{ui.url}/deployments")
    page.get_by_role("link", name="web").click()
    expect(page.get_by_role("heading", name="Deployment web")).to_be_visible()
    expect(page.get_by_role("row", name="Variant a").get_by_label("Role")).to_have_text("baseline")
    expect(page.get_by_role("row", name="Variant b").get_by_label("Role")).to_have_text(
        "canary candidate"
    )
    expect(page.get_by_role("row", name="Variant a")).to_contain_text("90%")
    expect(page.get_by_text("step 1 of 3")).to_be_visible()
    expect(page.get_by_role("list", name="Guardrails")).to_contain_text("error_rate ≤ 0.5")
    expect(page.get_by_role("table", name="History")).to_contain_text("created")
    expect(page.get_by_role("row", name="Statistics of a")).to_be_visible()
    before = _requests(page, "a")
    _send(ui, "web", range(0, 60))  # the page is not reloaded: the event stream refreshes it
    wait_until(lambda: _requests(page, "a") > before, 30, "variant a's request count to grow")
    first = _requests(page, "a")
    _send(ui, "web", range(60, 120))
    wait_until(lambda: _requests(page, "a") > first, 30, "variant a's count to grow again")
    stats = page.get_by_role("row", name="Statistics of a")
    expect(stats).to_contain_text("ms")  # latency percentiles
    expect(stats).to_contain_text("baseline")  # its verdict column
    shot(page, "deployment")


def test_promoting_after_confirming_makes_the_winner_the_baseline(ui: UiServer, page: Any) -> None:
    name = f"promo-{uuid.uuid4().hex[:6]}"
    ui.api("POST", "/deployments", json={"name": name, "variants": [
        {"name": "old", "model": "digits-classifier", "version": 1, "weight": 50},
        {"name": "new", "model": "digits-classifier", "version": 2, "weight": 50},
    ]})  # fmt: skip
    page.goto(f"{ui.url}/deployments/{name}")
    new = page.get_by_role("row", name="Variant new")
    expect(new.get_by_label("Role")).to_have_text("challenger")
    page.get_by_label("Variant to promote").select_option("new")
    page.get_by_role("button", name="Promote…").click()
    dialog = page.get_by_role("alertdialog", name="Confirm")
    expect(dialog).to_contain_text("Promote new")
    dialog.get_by_role("button", name="Cancel").click()
    assert ui.api("GET", f"/deployments/{name}")["baseline"] == "old"  # nothing happened
    page.get_by_role("button", name="Promote…").click()
    page.get_by_role("alertdialog", name="Confirm").get_by_role("button", name="Confirm").click()
    expect(new.get_by_label("Role")).to_have_text("baseline")
    expect(page.get_by_role("row", name="Variant old").get_by_label("Role")).to_have_text(
        "challenger"
    )
    expect(new).to_contain_text("100%")
    expect(page.get_by_role("table", name="History")).to_contain_text("promoted from the web UI")
    assert ui.api("GET", "/registered-models/digits-classifier/aliases/champion")["version"] == 2
    ui.api("PUT", "/registered-models/digits-classifier/aliases/champion", json={"version": 1})
    page.get_by_role("button", name="Pause…").click()
    page.get_by_role("alertdialog", name="Confirm").get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name=f"Deployment {name}")).to_contain_text("paused")
    shot(page, "deployment-promoted")
