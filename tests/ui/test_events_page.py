"""Events: a live tail of the event stream, filtered by type globs, paused and resumed
without losing what happened meanwhile, each event opening to its JSON."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot
from tests.ui.pipeline import pipeline  # noqa: F401  (the fixture)


def _open_tail(page: Any, url: str) -> None:
    """Open the page and wait until its stream is subscribed (the response has started)."""
    with page.expect_response(lambda r: "/api/v1/events/stream" in r.url):
        page.goto(url)


def test_the_tail_shows_events_logged_after_the_page_opened_filtered_by_type(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, _ = pipeline
    _open_tail(page, f"{ui.url}/events?types=experiment.tag*")
    expect(page.get_by_label("Event types")).to_have_value("experiment.tag*")
    exp = ui.api("POST", "/experiments", json={"name": "tailed"})["experiment_id"]
    ui.api("PUT", f"/experiments/{exp}/tags", json={"key": "seen", "value": "live"})

    events = page.get_by_role("list", name="Events, newest first")
    first = events.get_by_role("listitem").first
    expect(first).to_contain_text("experiment.tag_set")
    expect(first).to_contain_text(f"experiment:{exp}")
    expect(events).not_to_contain_text("experiment.created")  # filtered out
    first.get_by_role("button").click()
    as_json = page.get_by_label("Event experiment.tag_set as JSON")
    expect(as_json).to_contain_text('"value": "live"')
    expect(first.get_by_role("button")).to_have_attribute("aria-expanded", "true")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text(re.compile(r"Paused · 1 received"))).to_be_visible()
    ui.api("PUT", f"/experiments/{exp}/tags", json={"key": "seen", "value": "while-paused"})
    page.wait_for_timeout(1000)
    expect(events.get_by_role("listitem")).to_have_count(1)
    page.get_by_role("button", name="Resume").click()  # picks up where it stopped
    expect(events.get_by_role("listitem")).to_have_count(2)
    expect(page.get_by_text(re.compile(r"Live · 2 received"))).to_be_visible()
    shot(page, "events")


def test_keyboard_changes_the_filter(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, _ = pipeline
    _open_tail(page, f"{ui.url}/events")
    box = page.get_by_label("Event types")
    box.focus()
    box.fill("run.*")
    with page.expect_response(lambda r: "types=run.*" in r.url.replace("%2A", "*")):
        page.keyboard.press("Enter")
    assert "types=run.*" in page.url.replace("%2A", "*")


def test_the_tail_keeps_only_the_last_events(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, _ = pipeline
    _open_tail(page, f"{ui.url}/events?types=experiment.tag_set&keep=3")
    exp = ui.api("POST", "/experiments", json={"name": "bounded"})["experiment_id"]
    for i in range(6):
        ui.api("PUT", f"/experiments/{exp}/tags", json={"key": "n", "value": str(i)})
    expect(page.get_by_text("6 received · 3 kept (at most 3)")).to_be_visible()
    items = page.get_by_role("list", name="Events, newest first").get_by_role("listitem")
    expect(items).to_have_count(3)
    items.first.get_by_role("button").press("Enter")  # opens from the keyboard
    expect(page.get_by_label("Event experiment.tag_set as JSON")).to_contain_text('"value": "5"')


def test_a_burst_past_the_servers_queue_is_all_received_and_only_the_newest_kept(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap

    ui, _ = pipeline
    _open_tail(page, f"{ui.url}/events?types=experiment.tag_set")
    exp = ui.api("POST", "/experiments", json={"name": "burst"})["experiment_id"]
    burst = 12_000  # more than the server queues for one subscriber (10,000): the stream ends
    # with subscription.ended and the page resumes from the token it names, missing nothing
    backend = bootstrap(load_settings(tracking_uri=str(ui.data_dir)))
    try:  # appended straight to the log by another process, in one batch
        backend.log.append([
            Event.of(p.ExperimentTagSet(experiment_id=exp, key="burst", value=str(i)),
                     actor="user:test")
            for i in range(burst)
        ])  # fmt: skip
    finally:
        backend.close()
    expect(page.get_by_text(f"{burst} received · 1000 kept (at most 1000)")).to_be_visible(
        timeout=120_000
    )
    items = page.get_by_role("list", name="Events, newest first").get_by_role("listitem")
    assert 5 < items.count() < 60  # virtualised: the rows in view and a few more
    items.first.get_by_role("button").click()
    expect(page.get_by_label("Event experiment.tag_set as JSON")).to_contain_text(
        f'"value": "{burst - 1}"'
    )
