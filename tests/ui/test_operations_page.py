"""Operations: the projector caught up, a dead letter's reason appearing on the next
refresh, jobs by status and the gateway's requests by route."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap
from tests.ui.conftest import UiServer, shot
from tests.ui.pipeline import pipeline  # noqa: F401  (the fixture)


def test_a_dead_letter_and_its_reason_appear_without_reloading(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, _ = pipeline
    page.goto(f"{ui.url}/operations")
    expect(page.get_by_role("heading", name="Projector lag")).to_contain_text("up to date")
    expect(page.get_by_role("list", name="Jobs by status")).to_contain_text("FINISHED")
    expect(page.get_by_role("heading", name="Dead letters")).to_contain_text("0")
    servers = page.get_by_role("region", name="Model servers")  # `ledgerflow ui` hosts none
    expect(servers).to_contain_text("LEDGERFLOW_MODEL_SERVERS")

    # an event its stream contradicts, appended to the log by another process
    backend = bootstrap(load_settings(tracking_uri=str(ui.data_dir)))
    try:
        bad = p.RunMetricsLogged(run_id="no-such-run", points=(("m", 1.0, 1, 0),))
        backend.log.append([Event.of(bad, actor="user:test")])
    finally:
        backend.close()

    letters = page.get_by_role("table", name="Latest dead letters")
    expect(letters).to_contain_text("run.metrics_logged", timeout=30_000)
    expect(letters).to_contain_text("no-such-run")
    expect(letters).to_contain_text("rejected")
    requests = page.get_by_role("table", name="Gateway requests by route")
    expect(requests).to_contain_text("GET /api/v1/operations")
    # the second read gives rates
    expect(
        requests.get_by_role("row", name="GET /api/v1/operations ", exact=False).first
    ).not_to_contain_text("…")
    shot(page, "operations")
