"""The runs table: columns, the filter language with its errors, sorting, nested runs,
selection for comparing, and live updates through the event stream."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot


def _open(page: Any, ui: UiServer, ids: dict[str, Any], query: str = "") -> None:
    page.goto(f"{ui.url}/experiments/{ids['experiments']['image-classifier']}/runs{query}")
    expect(page.get_by_role("link", name="wide-net")).to_be_visible()


def _row(page: Any, run_id: str) -> Any:
    return page.locator(f'[role="row"][data-run-id="{run_id}"]')


def test_the_table_shows_each_runs_metrics_and_params_and_nests_runs_under_their_parent(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    _open(page, ui, ids)
    wide = _row(page, ids["other"])
    expect(wide.locator('[data-column="metrics.accuracy"]')).to_have_text("0.9500")
    expect(wide.locator('[data-column="params.optimizer"]')).to_have_text("sgd")
    # baseline, its two nested runs, "other", and the "candidate" tests/ui/fill_registry.py adds
    expect(page.get_by_text("5 runs")).to_be_visible()
    order = page.locator('[role="row"][data-run-id]').evaluate_all(
        "rows => rows.map(r => r.dataset.runId)"
    )
    parent = order.index(ids["parent"])
    assert sorted(order.index(c) for c in ids["children"]) == [parent + 1, parent + 2]
    shot(page, "runs-table")
    page.get_by_role("button", name="Hide 2 nested runs of baseline").click()
    for child in ids["children"]:
        expect(_row(page, child)).to_have_count(0)
    page.get_by_role("button", name="Show 2 nested runs of baseline").click()
    expect(_row(page, ids["children"][0])).to_be_visible()


def test_the_filter_takes_the_search_language_and_shows_an_error_at_its_position(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    _open(page, ui, ids)
    box = page.get_by_label("Filter runs", exact=True)
    box.fill("metrics.accuracy > 0.9 and params.optimizer = 'sgd'")
    box.press("Enter")
    expect(page.get_by_text("1 runs")).to_be_visible()
    expect(_row(page, ids["other"])).to_be_visible()
    expect(_row(page, ids["parent"])).to_have_count(0)
    expect(page).to_have_url(re.compile(r"filter=metrics.accuracy"))

    refused = "metrics.accuracy > 0.9 and (params.lr = 0.01 or tags.team = 'cv')"
    box.fill(refused)
    page.get_by_role("button", name="Apply").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("position 40")  # params.lr is text: '0.01', not 0.01
    mark = alert.locator("[data-position]")
    expect(mark).to_have_attribute("data-position", "40")
    expect(mark.locator("mark")).to_have_text("0.01")  # the whole token, underlined
    expect(box).to_have_attribute("aria-invalid", "true")
    shot(page, "runs-filter-error")


def test_sorting_by_a_metric_column_orders_the_runs_on_the_server(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    _open(page, ui, ids)
    page.get_by_role("button", name="accuracy").click()
    expect(page).to_have_url(re.compile(r"sort=metrics.accuracy"))
    first = page.locator('[role="row"][data-run-id]').first
    expect(first).to_have_attribute("data-run-id", ids["other"])  # 0.95, the highest
    header = page.locator('[role="columnheader"][aria-sort="descending"]')
    expect(header).to_contain_text("accuracy")
    page.get_by_role("button", name="accuracy").click()
    expect(page.locator('[role="columnheader"][aria-sort="ascending"]')).to_contain_text("accuracy")


def test_selected_runs_open_in_the_compare_page(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    _open(page, ui, ids)
    page.get_by_label("Select run wide-net").check()
    page.get_by_label("Select run baseline").check()
    page.get_by_role("link", name="Compare 2 selected runs").click()
    expect(page.get_by_role("heading", name="Compare 2 runs")).to_be_visible()
    differs = page.locator("tr.differs", has_text="params.optimizer")
    expect(differs).to_contain_text("adam")
    expect(differs).to_contain_text("sgd")
    shot(page, "compare")
    # the charts come after the diff table and the parallel coordinates: drawn once in view
    page.get_by_role("heading", name="Metrics", exact=True).scroll_into_view_if_needed()
    chart = page.locator('figure[aria-label="Chart accuracy"]')
    expect(chart).to_have_attribute("data-series-count", "2")


def test_a_new_run_and_its_metrics_appear_live_without_a_reload(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    _open(page, ui, ids)
    page.evaluate("window.__sameDocument = true")
    experiment = ids["experiments"]["image-classifier"]
    run = ui.api("POST", "/runs", json={
        "experiment_id": experiment, "user_id": "live-user", "run_name": "live-run",
    })  # fmt: skip
    run_id = run["run_id"]
    row = _row(page, run_id)
    expect(row).to_contain_text("live-run")
    expect(row).to_contain_text("RUNNING")
    now = int(time.time() * 1000)
    ui.api("POST", f"/runs/{run_id}/metrics", json={
        "metrics": [{"key": "accuracy", "value": 0.777, "timestamp": now, "step": 0}],
    })  # fmt: skip
    expect(row.locator('[data-column="metrics.accuracy"]')).to_have_text("0.7770")
    ui.api("POST", f"/runs/{run_id}/finish", json={"status": "FINISHED"})
    expect(row).to_contain_text("FINISHED")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
