"""The run page: overview, params, charts, artifacts with previews, models."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot


def test_the_overview_shows_status_params_tags_and_the_nested_runs(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/runs/{ids['parent']}")
    expect(page.get_by_role("heading", name="Run baseline")).to_contain_text("FINISHED")
    params = page.get_by_role("region", name="Parameters")
    expect(params.get_by_role("row", name="lr")).to_contain_text("0.01")
    expect(page.get_by_role("region", name="Tags").get_by_role("row", name="team")).to_contain_text(
        "vision"
    )
    expect(page.get_by_role("link", name="trial-0")).to_be_visible()
    shot(page, "run-overview")
    page.get_by_role("link", name="trial-1").click()
    expect(page.get_by_role("heading", name="Run trial-1")).to_be_visible()
    expect(page.get_by_role("link", name=ids["parent"])).to_be_visible()  # its parent


def test_metric_charts_draw_the_long_metric_downsampled_and_switch_axes(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/runs/{ids['parent']}/metrics")
    chart = page.locator('figure[aria-label="Chart loss"]')
    expect(chart).to_have_attribute("data-series-count", "1")
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart).to_have_attribute("data-logged", "20000")
    drawn = int(chart.get_attribute("data-points") or 0)
    assert 0 < drawn <= 1000, drawn  # 20,000 points logged, at most 1,000 buckets drawn
    expect(chart).to_contain_text("of 20000 points drawn")
    page.get_by_label("X axis").select_option("relative")
    expect(chart.locator(".u-legend")).to_be_visible()
    page.get_by_label("Log scale").check()
    shot(page, "run-metrics")


def test_a_deep_linked_metrics_page_asks_for_the_run_and_each_chart_once(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    """The run and the first charts' series are asked for while the application script is
    still starting (ui/src/prefetch.ts); the page takes those answers instead of asking
    again, so each request goes out once."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(f"{r.method} {r.url.split('?')[0]}"))
    opened = page.goto(f"{ui.url}/runs/{ids['parent']}/metrics")
    assert opened is not None
    assert opened.headers["link"] == (  # the browser fetches the run while the script loads
        f"</api/v1/runs/{ids['parent']}>; rel=preload; as=fetch; crossorigin=anonymous"
    )
    chart = page.locator('figure[aria-label="Chart loss"]')
    expect(chart).to_have_attribute("data-logged", "20000")
    drawn = page.locator("figure.chart").count()
    api = [s for s in sent if "/api/v1/" in s]
    assert api.count(f"GET {ui.url}/api/v1/runs/{ids['parent']}") == 1, api
    assert api.count(f"POST {ui.url}/api/v1/metrics/series") == drawn, api


def test_zooming_a_chart_fetches_the_range_again_in_more_detail(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/runs/{ids['parent']}/metrics")
    chart = page.locator('figure[aria-label="Chart loss"]')
    expect(chart).to_have_attribute("data-logged", "20000")
    box = chart.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + 5 + box["width"] * 0.03, y, steps=5)
    page.mouse.up()
    expect(chart).to_contain_text("zoomed")
    # the zoomed range holds ~3% of the points, all of them now drawn (no downsampling)
    expect(chart).not_to_have_attribute("data-logged", "20000")
    logged = int(chart.get_attribute("data-logged") or 0)
    assert 0 < logged < 1000, logged
    expect(chart).to_have_attribute("data-points", str(logged))
    page.get_by_role("button", name="Reset zoom").click()
    expect(chart).to_have_attribute("data-logged", "20000")


def test_an_open_chart_draws_new_points_as_they_are_logged(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    run_id = ids["children"][0]
    page.goto(f"{ui.url}/runs/{run_id}/metrics")
    chart = page.locator('figure[aria-label="Chart loss"]')
    expect(chart).to_have_attribute("data-logged", "50")
    now = int(time.time() * 1000)
    ui.api("POST", f"/runs/{run_id}/metrics", json={
        "metrics": [{"key": "loss", "value": 0.001, "timestamp": now, "step": 50 + i} for i in range(3)],
    })  # fmt: skip
    expect(chart).to_have_attribute("data-logged", "53")


def test_charts_below_the_fold_are_drawn_only_when_scrolled_to(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/runs/{ids['other']}/metrics")
    expect(page.locator("figure.chart").first).to_be_visible()
    waiting = page.locator('[data-lazy="waiting"]')
    assert waiting.count() > 0
    before = page.locator("figure.chart").count()
    page.locator("[data-lazy]").last.scroll_into_view_if_needed()
    expect(page.locator("[data-lazy]").last).to_have_attribute("data-lazy", "drawn")
    assert page.locator("figure.chart").count() > before


def test_the_artifact_browser_previews_csv_json_images_and_the_mlmodel_signature(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/runs/{ids['parent']}/artifacts")
    page.get_by_role("link", name="report.csv").click()
    csv = page.get_by_role("table", name="CSV preview")
    expect(csv.get_by_role("columnheader", name="precision")).to_be_visible()
    expect(csv.get_by_role("row", name="cat 0.93 0.90")).to_be_visible()

    page.get_by_role("link", name="config.json").click()
    expect(page.locator("pre.code")).to_contain_text('"activation": "relu"')

    page.get_by_role("link", name="plots").click()
    page.get_by_role("link", name="confusion.png").click()
    image = page.get_by_role("img", name="Artifact plots/confusion.png")
    expect(image).to_be_visible()
    assert image.evaluate("i => i.naturalWidth") == 64

    page.goto(f"{ui.url}/runs/{ids['parent']}/artifacts?path=model/MLmodel")
    inputs = page.get_by_role("table", name="Signature inputs")
    expect(inputs).to_contain_text("float64")
    expect(inputs).to_contain_text("[-1, 2]")
    shot(page, "run-artifacts-mlmodel")


def test_the_models_tab_lists_the_logged_model_and_its_registered_version(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/runs/{ids['parent']}/models")
    expect(page.get_by_role("link", name="model", exact=True)).to_be_visible()
    versions = page.get_by_role("table", name="Registered versions")
    expect(versions.get_by_role("row", name="digits-classifier 1")).to_be_visible()
    shot(page, "run-models")


def test_a_deep_link_opens_its_page_and_an_unknown_page_says_so(ui: UiServer, page: Any) -> None:
    page.goto(f"{ui.url}/no/such/page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.goto(f"{ui.url}/runs/0000/metrics")
    expect(page.get_by_role("alert")).to_contain_text("0000")


def test_the_links_the_mlflow_client_prints_open_the_same_pages_here(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    """MLflow's client prints 'View run at: <server>/#/experiments/<id>/runs/<run>'."""
    experiment, run = next(iter(ids["experiments"].values())), ids["parent"]
    page.goto(f"{ui.url}/#/experiments/{experiment}/runs/{run}")
    expect(page.get_by_role("heading", name="Run baseline")).to_be_visible()
    assert page.url.endswith(f"/runs/{run}")
    page.goto(f"{ui.url}/#/experiments/{experiment}")
    expect(page).to_have_url(f"{ui.url}/experiments/{experiment}/runs")
    page.goto(f"{ui.url}/#/models/{ids['model']}/versions/1")
    expect(page).to_have_url(f"{ui.url}/models/{ids['model']}/versions/1")
    page.goto(f"{ui.url}/")
    expect(page).to_have_url(f"{ui.url}/experiments")
