"""The Experiments page: list, search, create, rename, delete and restore."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot


def test_the_experiments_page_lists_the_experiments_and_links_to_their_runs(
    ui: UiServer, page: Any, ids: dict[str, Any]
) -> None:
    page.goto(ui.url + "/")
    expect(page).to_have_url(re.compile(r"/experiments$"))
    table = page.get_by_role("table")
    for name in ("image-classifier", "text-summarizer", "to-be-deleted"):
        expect(table.get_by_role("link", name=name)).to_be_visible()
    shot(page, "experiments")
    page.get_by_role("link", name="image-classifier").click()
    expect(page).to_have_url(
        re.compile(rf"/experiments/{ids['experiments']['image-classifier']}/runs")
    )
    expect(page.get_by_role("heading", name="Runs of image-classifier")).to_be_visible()


def test_searching_experiments_keeps_the_search_in_the_url(ui: UiServer, page: Any) -> None:
    page.goto(ui.url + "/experiments")
    page.get_by_label("Search experiments").fill("summ")
    expect(page.get_by_role("link", name="text-summarizer")).to_be_visible()
    expect(page.get_by_role("link", name="image-classifier")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"q=summ"))
    page.reload()
    expect(page.get_by_label("Search experiments")).to_have_value("summ")
    expect(page.get_by_role("link", name="image-classifier")).to_have_count(0)


def test_an_experiment_is_created_renamed_deleted_and_restored_from_the_page(
    ui: UiServer, page: Any
) -> None:
    page.goto(ui.url + "/experiments")
    page.get_by_label("New experiment name").fill("made-in-the-browser")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("link", name="made-in-the-browser")).to_be_visible()

    page.get_by_role("button", name="Rename made-in-the-browser").click()
    page.get_by_label("New name for made-in-the-browser").fill("renamed-in-the-browser")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="renamed-in-the-browser")).to_be_visible()
    names = [e["name"] for e in ui.api("GET", "/experiments")]
    assert "renamed-in-the-browser" in names and "made-in-the-browser" not in names

    page.get_by_role("button", name="Delete renamed-in-the-browser").click()
    expect(page.get_by_role("link", name="renamed-in-the-browser")).to_have_count(0)
    page.get_by_label("Show").select_option("DELETED_ONLY")
    page.get_by_role("button", name="Restore renamed-in-the-browser").click()
    expect(page.get_by_role("link", name="renamed-in-the-browser")).to_have_count(0)
    page.get_by_label("Show").select_option("ACTIVE_ONLY")
    expect(page.get_by_role("link", name="renamed-in-the-browser")).to_be_visible()


def test_a_refused_create_shows_the_gateways_message(ui: UiServer, page: Any) -> None:
    page.goto(ui.url + "/experiments")
    page.get_by_label("New experiment name").fill("text-summarizer")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("alert")).to_contain_text("text-summarizer")
