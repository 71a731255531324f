"""Jobs: the list with statuses that change as jobs run, and a job's page following its log
while it runs, then linking the run it produced."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiServer, shot
from tests.ui.pipeline import pipeline, train  # noqa: F401  (the fixture)

SLOW = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo step $i; sleep 1; done; echo all done"


def test_a_running_job_shows_up_and_its_log_is_followed_to_the_end(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, _ = pipeline
    page.goto(f"{ui.url}/jobs")
    table = page.get_by_role("table", name="Jobs")
    expect(table.get_by_role("row", name=re.compile("finished-job"))).to_contain_text("FINISHED")

    job = train(ui.data_dir, SLOW, "slow-job")
    try:
        row = table.get_by_role("row", name=re.compile("slow-job"))
        expect(row).to_contain_text("RUNNING", timeout=60_000)  # from the job.* events
        shot(page, "jobs")
        row.get_by_role("link", name="slow-job").click()
        heading = page.get_by_role("heading", name=re.compile("Job slow-job"))
        expect(heading).to_contain_text("RUNNING")
        log = page.get_by_label("Log", exact=True)
        expect(log).to_contain_text("step 1", timeout=30_000)
        expect(page.get_by_text("following…")).to_be_visible()
        assert "all done" not in log.inner_text()  # read while the job still runs
        expect(log).to_contain_text("all done", timeout=60_000)
        expect(heading).to_contain_text("FINISHED", timeout=30_000)
        expect(page.get_by_text("complete", exact=True)).to_be_visible()
        assert log.inner_text().count("step 5") == 1  # followed from offsets, never repeated
        shot(page, "job")
        page.locator("dt", has_text="Run").locator("+ dd").get_by_role("link").click()
        expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("slow-job")
    finally:
        job.wait(120)


def test_an_unknown_job_says_so(
    pipeline: tuple[UiServer, dict[str, Any]],  # noqa: F811
    page: Any,
) -> None:
    ui, _ = pipeline
    page.goto(f"{ui.url}/jobs/no-such-job")
    expect(page.get_by_role("alert")).to_contain_text("no job 'no-such-job'")
