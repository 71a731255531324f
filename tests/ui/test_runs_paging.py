"""The runs table with more runs than one page: only the visible rows are in the DOM, and
scrolling pages in the rest through the search API's cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot, start_ui, stop
from tests.ui.many_runs import log_many_runs

RUNS = 300  # three times the first page (FIRST_PAGE in ui/src/runs/useRunList.ts)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, str]]:
    data = tmp_path_factory.mktemp("ui-many") / "data"
    experiment_id = log_many_runs(data, RUNS)
    server = start_ui(data, data.parent / "ui.log")
    yield server, experiment_id
    stop(server)


def test_only_visible_rows_are_drawn_and_scrolling_pages_in_the_rest(
    many: tuple[UiServer, str], page: Any
) -> None:
    server, experiment_id = many
    page.goto(f"{server.url}/experiments/{experiment_id}/runs")
    expect(page.get_by_text("100 runs loaded (scroll for more)")).to_be_visible()
    rows = page.locator('[role="row"][data-run-id]')
    assert 10 < rows.count() < 80
    expect(page.get_by_role("table", name="Runs")).to_have_attribute("aria-rowcount", "101")
    shot(page, "runs-many")
    grid = page.locator(".runs-grid")
    for _ in range(50):
        if page.get_by_text(f"{RUNS} runs", exact=True).count():
            break
        grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
        page.wait_for_timeout(100)
    expect(page.get_by_text(f"{RUNS} runs", exact=True)).to_be_visible()
    assert rows.count() < 80
    grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
    expect(page.get_by_role("link", name="run-00000")).to_be_visible()  # the oldest, last
