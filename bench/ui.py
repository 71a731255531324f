"""The web UI against MLflow's, side by side in the same headless Chromium (Debian's), on
the same data, in one run, with ratios:

- runs table: an experiment of 10,000 runs (10 params, 10 metrics each), time from
  navigation to its newest run's row on screen (ours: the runs page; MLflow: its
  experiment page). Bar: >= 5x.
- chart: a metric of 1,000,000 points, time from navigation to a drawn chart (ours: the
  run page's chart; MLflow: the run page's model-metrics chart). Bar: >= 10x; MLflow
  failing or timing out is reported as such.
- live: a separate training process logs a point every 0.1 s to the server; the open
  chart's `data-logged` attribute (what it already shows: points logged) is watched in
  the page, and the delay from just before the log call to the change is the latency.
  Bar: p99 <= 1 s. Ours only: MLflow's UI does not update an open chart.

    .venv/bin/python bench/ui.py              # 10,000 runs, 1,000,000 points, 50 live points
    .venv/bin/python bench/ui.py --quick      # 1,000 runs, 100,000 points, 20 live points
    .venv/bin/python bench/ui.py --repeats 5 --json build/bench-ui/results.json

The filled stores are cached under --cache (default build/bench-ui/): lf-R-P/ (a
Ledgerflow data directory) and mlflow-R-P/ (mlflow.db and artifacts), each with a
ready.json written when its fill finished; delete a folder to fill it again. Each
measurement is the median of --repeats navigations in fresh browser contexts.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tracking import T0_MS, _dataset, _lf_populate, _ml_populate, import_mlflow  # noqa: E402

from tests.conftest import free_port, python_env  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_ui, stop  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

LONG = "long"  # the run with the long metric, and the metric's key
LIVE = "live"
LONG_BATCH = 10_000  # points per event / per insert while filling the long metric
TIMEOUT_S = 120.0


def say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def _points(n: int) -> Iterator[list[tuple[str, float, int, int]]]:
    """The long metric: a noisy decay over n steps, one point per 10 ms."""
    for start in range(0, n, LONG_BATCH):
        yield [
            (LONG, 1.0 / (1 + i / 1000) + ((i * 7919) % 101) / 1000, T0_MS + 10 * i, i)
            for i in range(start, min(n, start + LONG_BATCH))
        ]


# filling ----------------------------------------------------------------------------------


def fill_ledgerflow(data: Path, runs: int, points: int) -> dict[str, str]:
    import ledgerflow as lf
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event

    client = lf.Client(tracking_uri=str(data))
    exp = client.create_experiment("bench-ui")
    _lf_populate(client, exp, _dataset(runs), api_runs=10)
    backend, actor = client._backend, client._actor
    long_id = uuid.uuid4().hex
    backend.log.append(
        [
            Event.of(
                p.RunStarted(
                    run_id=long_id, experiment_id=exp, run_name=LONG, start_time=T0_MS - 1,
                    user_id="bench", artifact_uri=backend.artifacts.uri(f"{exp}/{long_id}"),
                    tags={"mlflow.runName": LONG},
                ),
                actor=actor,
            )
        ]
    )  # fmt: skip
    for batch in _points(points):
        event = Event.of(p.RunMetricsLogged(run_id=long_id, points=tuple(batch)), actor=actor)
        backend.log.append([event])
    backend.projector.catch_up()
    live_id = client.create_run(exp, run_name=LIVE, start_time=T0_MS - 2).info.run_id
    client.log_metric(live_id, LIVE, 0.0, step=0)
    backend.close()
    return {"experiment": exp, "long": long_id, "live": live_id}


def fill_mlflow(folder: Path, runs: int, points: int) -> dict[str, str]:
    mlflow = import_mlflow()
    db = folder / "mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.create_experiment("bench-ui", artifact_location=(folder / "artifacts").as_uri())
    _ml_populate(client, exp, db, _dataset(runs), api_runs=10)
    long_id = client.create_run(exp, start_time=T0_MS - 1, run_name=LONG).info.run_id
    conn = sqlite3.connect(db)
    last: tuple[str, float, int, int] = (LONG, 0.0, 0, 0)
    with conn:
        for batch in _points(points):
            conn.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
                " VALUES (?, ?, ?, ?, ?, 0)",
                [(k, v, ts, long_id, st) for k, v, ts, st in batch],
            )
            last = batch[-1]
        conn.execute(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
            " VALUES (?, ?, ?, ?, 0, ?)",
            (last[0], last[1], last[2], last[3], long_id),
        )
    conn.close()
    return {"experiment": exp, "long": long_id}


def filled(folder: Path, fill: Callable[[Path, int, int], dict[str, str]], *size: int) -> Any:
    """The ids of a store filled by `fill`, from the cache when it finished there before."""
    ready = folder / "ready.json"
    if ready.exists():
        say(f"reusing {folder}")
        return json.loads(ready.read_text())
    if folder.exists():
        raise SystemExit(f"{folder} holds an unfinished fill: delete it and run again")
    folder.mkdir(parents=True)
    began = time.perf_counter()
    ids = fill(folder, *size)
    say(f"filled {folder} in {time.perf_counter() - began:.0f} s")
    ready.write_text(json.dumps(ids))
    return ids


# servers ----------------------------------------------------------------------------------


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    port = free_port()
    log = (folder.parent / f"{folder.name}.server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", (folder / "artifacts").as_uri()],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        import httpx

        if process.poll() is not None:
            raise SystemExit(f"mlflow server exited; see {log.name}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 120, "mlflow server to answer /health")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# measuring --------------------------------------------------------------------------------


def timed(browser: Any, url: str, ready: Callable[[Any], None], repeats: int) -> dict[str, Any]:
    """Median seconds from navigation to `ready(page)`, in a fresh context each time, with
    the requests the last navigation made (the network waterfall) and how long each took."""
    times: list[float] = []
    waterfall: list[tuple[str, float]] = []
    for _ in range(repeats):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_S * 1000)
        began = time.perf_counter()
        waterfall = []
        page.on("requestfinished", _recorder(waterfall, began))
        try:
            page.goto(url)
            ready(page)
        except Exception as e:  # a page that never gets there is a result, not a crash
            context.close()
            return {"failed": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
        times.append(time.perf_counter() - began)
        context.close()
    api = [w for w in waterfall if "/static" not in w[0] and "/assets" not in w[0]]
    return {"s": round(statistics.median(times), 3), "all": [round(t, 3) for t in times],
            "requests": api}  # fmt: skip


def _recorder(into: list[tuple[str, float]], began: float) -> Callable[[Any], None]:
    """Record each finished request's path tail and when it finished."""
    return lambda r: into.append((r.url.split("?")[0][-70:], round(time.perf_counter() - began, 3)))


def first_row(name: str) -> Callable[[Any], None]:
    return lambda page: page.get_by_text(name, exact=True).first.wait_for(state="visible")


def lf_chart_drawn(points: int) -> Callable[[Any], None]:
    def ready(page: Any) -> None:
        # One check polled every animation frame, like MLflow's below (a locator's wait
        # retries after 20, 50, 100... ms, which would add its back-off to a fast page)
        page.wait_for_function(
            "([sel, n]) => { const f = document.querySelector(sel);"
            " const c = f && f.querySelector('canvas');"
            " return !!c && c.getBoundingClientRect().width > 0"
            " && +f.dataset.logged === n && +f.dataset.points > 0; }",
            arg=[f'figure[aria-label="Chart {LONG}"]', points],
            timeout=TIMEOUT_S * 1000,
            polling="raf",
        )

    return ready


def mlflow_chart_drawn(page: Any) -> None:
    # MLflow's run page draws metric charts with Plotly: a drawn trace is an SVG path
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line')]"
        ".some(p => (p.getAttribute('d') || '').length > 10)",
        timeout=TIMEOUT_S * 1000,
        polling="raf",
    )


LIVE_SCRIPT = """
import sys, time, json
import ledgerflow as lf
client = lf.Client(tracking_uri=sys.argv[1])
run_id, n, gap = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
for i in range(1, n + 1):
    time.sleep(gap)
    t = time.time() * 1000
    client.log_metric(run_id, "live", float(i), step=i)
    print(json.dumps([i, t]), flush=True)
"""


def live(browser: Any, url: str, run_id: str, points: int) -> dict[str, Any]:
    """Latency from a training process's log call to the open chart counting the point."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    page.goto(f"{url}/runs/{run_id}/metrics")
    selector = f'figure[aria-label="Chart {LIVE}"]'
    page.locator(selector).locator("canvas").first.wait_for(state="visible")
    base = int(page.locator(selector).get_attribute("data-logged") or 0)
    page.evaluate(
        """sel => { window.__seen = {}; const f = document.querySelector(sel);
        new MutationObserver(() => { window.__seen[f.dataset.logged] ??= Date.now(); })
          .observe(f, {attributes: true, attributeFilter: ['data-logged']}); }""",
        selector,
    )
    page.wait_for_timeout(1000)  # the event stream is open before the first point
    out = subprocess.run(
        [sys.executable, "-c", LIVE_SCRIPT, url, run_id, str(points), "0.1"],
        capture_output=True, text=True, timeout=600, env=python_env(), check=True,
    )  # fmt: skip
    logged = dict(json.loads(line) for line in out.stdout.splitlines())
    page.wait_for_function(
        f"() => Object.keys(window.__seen).map(Number).some(k => k >= {base + points})",
        timeout=10_000,
    )
    seen = {int(k): v for k, v in page.evaluate("window.__seen").items()}
    page.context.close()
    # a point counts as shown when the chart first counts it (or a later one)
    lags = []
    for i, t in logged.items():
        shown = min((v for k, v in seen.items() if k >= base + i), default=None)
        lags.append(float("inf") if shown is None else (shown - t) / 1000)
    in_order = [round(x, 3) for x in lags]
    lags.sort()
    return {"points": points, "p50_s": round(statistics.median(lags), 3),
            "p99_s": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3),
            "max_s": round(lags[-1], 3), "lags_s": in_order}  # fmt: skip


# the run ----------------------------------------------------------------------------------


def ratio(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    if "failed" in ours:
        return "ours failed"
    if "failed" in theirs:
        return "MLflow failed"
    return f"{theirs['s'] / ours['s']:.1f}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 runs, 100,000 points")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--points", type=int, default=None, help="points of the long metric")
    ap.add_argument("--live", type=int, default=None, help="points logged live (default 50)")
    ap.add_argument("--repeats", type=int, default=None, help="navigations per measurement")
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "bench-ui")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    runs = args.runs or (1_000 if args.quick else 10_000)
    points = args.points or (100_000 if args.quick else 1_000_000)
    live_points = args.live or (20 if args.quick else 50)
    repeats = args.repeats or (2 if args.quick else 3)

    lf_dir = args.cache / f"lf-{runs}-{points}"
    ml_dir = args.cache / f"mlflow-{runs}-{points}"
    lf_ids = filled(lf_dir, fill_ledgerflow, runs, points)
    ml_ids = filled(ml_dir, fill_mlflow, runs, points)
    newest = f"run-{runs - 1:05d}"  # both tables open newest first

    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"runs": runs, "points": points, "repeats": repeats}
    load = os.getloadavg()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        server = start_ui(lf_dir, args.cache / "lf-ui.log")
        try:
            timed(browser, f"{server.url}/experiments", lambda page: None, 1)  # warm up
            say("ledgerflow runs table ...")
            results["lf_runs"] = timed(
                browser, f"{server.url}/experiments/{lf_ids['experiment']}/runs",
                first_row(newest), repeats,
            )  # fmt: skip
            say("ledgerflow chart ...")
            results["lf_chart"] = timed(
                browser, f"{server.url}/runs/{lf_ids['long']}/metrics", lf_chart_drawn(points),
                repeats,
            )  # fmt: skip
            say("ledgerflow live ...")
            results["lf_live"] = live(browser, server.url, lf_ids["live"], live_points)
        finally:
            stop(server)
        with mlflow_server(ml_dir) as url:
            exp = ml_ids["experiment"]
            timed(browser, f"{url}/#/experiments", lambda page: None, 1)  # warm up
            say("mlflow runs table ...")
            results["ml_runs"] = timed(
                browser, f"{url}/#/experiments/{exp}/runs", first_row(newest), repeats
            )
            say("mlflow chart ...")
            results["ml_chart"] = timed(
                browser, f"{url}/#/experiments/{exp}/runs/{ml_ids['long']}/model-metrics",
                mlflow_chart_drawn, repeats,
            )  # fmt: skip
        browser.close()
    results["load_before"] = [round(x, 2) for x in load]
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]

    def show(r: dict[str, Any]) -> str:
        return r.get("failed") or f"{r['s']:.2f} s"

    rows = [
        (f"runs table, {runs:,} runs: navigation to first rows", results["lf_runs"],
         results["ml_runs"], 5.0),
        (f"chart of a {points:,}-point metric: navigation to drawn", results["lf_chart"],
         results["ml_chart"], 10.0),
    ]  # fmt: skip
    print(f"Ledgerflow UI vs MLflow {import_mlflow().__version__} UI, headless Chromium, "
          f"median of {repeats}" + (" [--quick]" if args.quick else ""))  # fmt: skip
    print(f"  load average before/after: {results['load_before']} / {results['load_after']}")
    print(f"{'measurement':58} {'Ledgerflow':>11} {'MLflow':>26} {'ratio':>14}  bar")
    missed = False
    for name, ours, theirs, bar in rows:
        r = ratio(ours, theirs)
        ok = "failed" not in ours and (
            "failed" in theirs or theirs["s"] / ours["s"] >= bar
        )  # fmt: skip
        missed |= not ok
        print(f"{name:58} {show(ours):>11} {show(theirs)[:26]:>26} {r:>14}  >= {bar:g}x "
              f"{'PASS' if ok else 'MISS'}")  # fmt: skip
    lv = results["lf_live"]
    ok = lv["p99_s"] <= 1.0
    missed |= not ok
    print(f"{'live point in an open chart, ' + str(lv['points']) + ' points':58} "
          f"p50 {lv['p50_s']:.3f} s, p99 {lv['p99_s']:.3f} s, max {lv['max_s']:.3f} s"
          f"  p99 <= 1 s {'PASS' if ok else 'MISS'}")  # fmt: skip
    say(f"live lags (s, in the order logged): {lv['lags_s']}")
    for key in ("lf_runs", "ml_runs", "lf_chart", "ml_chart"):
        say(f"{key} requests (path tail, seconds from navigation): {results[key].get('requests')}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
