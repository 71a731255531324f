"""The web UI's Events page under a burst: N events appended to the log by another process
(in batches of 1,000) while the page tails them in headless Chromium (Debian's). Reports
the time from the first append to the page having received them all, the rows in the DOM
and the page's JS heap before and after (the page keeps the newest 1,000).

    .venv/bin/python bench/ui_events.py               # 20,000 events
    .venv/bin/python bench/ui_events.py --events 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_ui, stop  # noqa: E402

BATCH = 1000
HEAP = "() => performance.memory.usedJSHeapSize"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp()) / "data"

    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap

    server = start_ui(data, data.parent / "ui.log")
    results: dict[str, float | int] = {"events": args.events}
    try:
        exp = server.api("POST", "/experiments", json={"name": "burst"})["experiment_id"]
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(600_000)
            with page.expect_response(lambda r: "/events/stream" in r.url):
                page.goto(f"{server.url}/events?types=experiment.tag_set")
            results["heap_before_mb"] = round(page.evaluate(HEAP) / 2**20, 1)
            backend = bootstrap(load_settings(tracking_uri=str(data)))
            t = time.perf_counter()
            try:
                for start in range(0, args.events, BATCH):
                    backend.log.append([
                        Event.of(p.ExperimentTagSet(experiment_id=exp, key="n", value=str(i)),
                                 actor="user:bench")
                        for i in range(start, min(args.events, start + BATCH))
                    ])  # fmt: skip
                results["append_s"] = round(time.perf_counter() - t, 2)
                page.get_by_text(f"{args.events} received").wait_for()
                results["all_received_s"] = round(time.perf_counter() - t, 2)
            finally:
                backend.close()
            results["rows_in_dom"] = page.get_by_role("listitem").count()
            page.evaluate("() => window.gc && window.gc()")
            results["heap_after_mb"] = round(page.evaluate(HEAP) / 2**20, 1)
            browser.close()
    finally:
        stop(server)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
