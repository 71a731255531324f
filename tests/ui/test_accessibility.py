"""Accessibility: every page, filled as for the other browser tests, audited by axe-core
(the engine behind Lighthouse's and Chrome's accessibility audits; from npm, in
ui/node_modules) against WCAG 2.1 A and AA: names and labels, roles and their required
children, colour contrast, landmarks, keyboard-reachable controls."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.ui.conftest import UiServer

AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"
AUDIT = """async () => (await axe.run(document, {
  runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
})).violations.map(v => `${v.id} (${v.impact}) on ${v.nodes.length} element(s), e.g. ` +
  `${v.nodes[0].target.join(" ")}: ${v.nodes[0].failureSummary.split("\\n").slice(1).join(";")}`)"""


def pages(ids: dict[str, Any]) -> list[str]:
    run, model = ids["parent"], ids["model"]
    experiments = ",".join(ids["experiments"].values())
    return [
        "/experiments",
        f"/experiments/{experiments}/runs",
        f"/runs/{run}",
        f"/runs/{run}/metrics",
        f"/runs/{run}/artifacts?path=model/MLmodel",
        f"/runs/{run}/models",
        f"/compare?runs={run},{ids['other']}",
        "/models",
        f"/models/{model}",
        f"/models/{model}/versions/1",
        f"/models/{model}/compare?versions=1,2",
        "/deployments",
        f"/deployments/{ids['deployment']}",
        "/jobs",
        "/events",
        "/audit",
        "/operations",
        "/no/such/page",
    ]


def test_every_page_passes_an_axe_audit(ui: UiServer, page: Any, ids: dict[str, Any]) -> None:
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE}: run scripts/build-ui.sh (npm ci in ui/)")
    found = []
    for path in pages(ids):
        page.goto(ui.url + path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_text("Loading", exact=False)).to_have_count(0)
        page.add_script_tag(path=str(AXE))
        found.extend(f"{path}: {v}" for v in page.evaluate(AUDIT))
    assert not found, "accessibility violations:\n" + "\n".join(found)
