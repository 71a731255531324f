"""Audit: the trail of one experiment with each change's before and after, filtered from
the form (the filters are in the URL), and paged with the cursor."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot
from tests.ui.pipeline import AUDIT_TAGS, pipeline  # noqa: F401  (the fixture)


def test_an_experiments_trail_with_before_and_after_a_page_at_a_time(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, ids = pipeline
    exp = ids["experiment"]
    # the entity filter matches what is in the experiment too (its runs): its own events
    page.goto(f"{ui.url}/audit?entity=experiment:{exp}&type=experiment.*")
    rows = page.get_by_role("table", name="Audit entries").locator("tbody tr")
    expect(rows).to_have_count(50)
    newest = rows.first
    expect(newest).to_contain_text("experiment.tag_set")
    expect(newest.locator("td").nth(5)).to_contain_text(f'"tags.revision":"{AUDIT_TAGS - 2}"')
    expect(newest.locator("td").nth(6)).to_contain_text(f'"tags.revision":"{AUDIT_TAGS - 1}"')
    shot(page, "audit")

    page.get_by_role("button", name="Load older entries").click()
    expect(rows).to_have_count(AUDIT_TAGS + 2)  # and the creation and the rename
    expect(page.get_by_role("button", name="Load older entries")).to_have_count(0)
    renamed = rows.filter(has_text="experiment.renamed")
    expect(renamed.locator("td").nth(5)).to_contain_text('"name":"sweep-draft"')
    expect(renamed.locator("td").nth(6)).to_contain_text('"name":"sweep"')


def test_filters_from_the_form_and_a_refused_one_explained(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, ids = pipeline
    page.goto(f"{ui.url}/audit")
    page.get_by_label("Entity").fill(f"experiment:{ids['experiment']}")
    page.get_by_label("Type").fill("experiment.renamed")
    page.get_by_label("Type").press("Enter")
    rows = page.get_by_role("table", name="Audit entries").locator("tbody tr")
    expect(rows).to_have_count(1)
    assert re.search(r"type=experiment\.renamed", page.url)

    page.get_by_label("Since").fill("last tuesday")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_contain_text("since")
