"""Compare runs: the diff table marks what differs (and can show only that), the
parallel-coordinates view and the scatter draw the compared runs."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot
from tests.ui.pipeline import pipeline  # noqa: F401  (the fixture)


def test_the_diff_table_marks_a_differing_param_and_hides_equal_rows_on_request(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, ids = pipeline
    page.goto(f"{ui.url}/compare?runs={','.join(ids['runs'])}")
    table = page.get_by_role("table", name="Params and metrics")
    lr = table.get_by_role("row", name=re.compile(r"^params\.lr"))
    optimizer = table.get_by_role("row", name=re.compile(r"^params\.optimizer"))
    expect(lr).to_have_class("differs")
    expect(lr).to_contain_text("0.001")
    expect(optimizer).to_contain_text("adam")
    expect(optimizer).not_to_have_class("differs")
    expect(page.get_by_text("3 of 4 differ")).to_be_visible()

    page.get_by_label("Show only differences").click()  # the URL holds it: react-router's
    expect(page.get_by_label("Show only differences")).to_be_checked()  # update is async
    expect(optimizer).to_have_count(0)
    expect(lr).to_be_visible()
    assert "diff=1" in page.url
    page.reload()  # the choice is in the URL
    expect(page.get_by_label("Show only differences")).to_be_checked()
    expect(table.get_by_role("row", name=re.compile(r"^params\.optimizer"))).to_have_count(0)


def test_parallel_coordinates_and_a_scatter_of_any_two_columns(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, ids = pipeline
    page.goto(f"{ui.url}/compare?runs={','.join(ids['runs'])}")
    parallel = page.get_by_role("figure", name="Parallel coordinates")
    # by default the columns that differ: lr, accuracy, loss
    expect(parallel).to_have_attribute("data-axes", "3")
    expect(parallel).to_have_attribute("data-lines", "3")
    expect(parallel.locator("canvas")).to_have_count(1)
    expect(parallel).to_contain_text("lr-0.01")  # the legend names each run
    ranges = page.get_by_role("table", name="Axis ranges")
    expect(ranges).to_contain_text("0.7100 … 0.8300")

    page.get_by_role("group", name="Axes of the parallel coordinates").get_by_label(
        "params.optimizer"
    ).click()
    expect(parallel).to_have_attribute("data-axes", "4")
    expect(ranges).to_contain_text("adam")
    assert "axes=" in page.url

    scatter = page.get_by_role("figure", name="Scatter of metrics.accuracy against params.lr")
    expect(scatter).to_have_attribute("data-points", "3")
    expect(scatter.locator("canvas")).to_have_count(1)
    page.get_by_label("Scatter y").select_option("metrics.loss")
    expect(
        page.get_by_role("figure", name="Scatter of metrics.loss against params.lr")
    ).to_be_visible()
    assert "y=metrics.loss" in page.url
    page.get_by_role(
        "heading", name="Parallel coordinates and scatter"
    ).scroll_into_view_if_needed()
    shot(page, "compare-plots")
