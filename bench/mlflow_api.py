"""MLflow's own client against `ledgerflow server` and against `mlflow server`, side by side.

    .venv/bin/python bench/mlflow_api.py              # the full run (several minutes)
    .venv/bin/python bench/mlflow_api.py --quick      # smaller sizes, a smoke run
    .venv/bin/python bench/mlflow_api.py --json results.json

The bench starts both servers, each in its own process on a fresh temporary directory
(`ledgerflow server`; `mlflow server --workers 1` on SQLite with a local artifact root), and
runs the same `MlflowClient` script against each, in this process, phase by phase (ours,
then theirs, then the next phase, so load from elsewhere falls on both alike): runs
created, params and metrics logged one by one and in batches, runs searched (about 10, 500
and all of the search experiment's runs), metric histories read (small and large), and,
when the gateway serves MLflow's registry, registry calls. Every phase is timed as the
client sees it (wall time, parsing included); reads are also timed as a bare HTTP round
trip, the server's share. Last, the same script runs against a floor server
(bench/mlflow_floor.py) that does no work: canned answers to writes, and reads answered
from memory with the answers Ledgerflow gave. That times MLflow's client alone, so
`MLflow s / floor s` is the best ratio any server could reach on each phase.
The ratio is how many times faster Ledgerflow is: above 1 means ours wins.
docs/benchmarks.md ("MLflow REST API") records a run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
T0_MS = 1_700_000_000_000
API = "/api/2.0/mlflow"
REGISTRY_MODULE = "ledgerflow.services.gateway.mlflow_api.registry"


@dataclass(frozen=True)
class Sizes:
    runs: int = 300  # runs created one by one (each gets one param and a small batch)
    metric_calls: int = 1_000  # log_metric calls
    history: int = 100_000  # points of the large history, logged 1,000 per log_batch
    small_history: int = 1_000  # points of the small history
    search_runs: int = 5_000  # runs in the searched experiment
    fill_clients: int = 4  # clients filling the searched experiment in parallel
    repeats: int = 5  # timed repetitions of each read (median reported)
    versions: int = 50  # model versions registered (registry phase)


FULL = Sizes()
QUICK = Sizes(runs=100, metric_calls=200, history=20_000, search_runs=1_000, repeats=3, versions=10)


@dataclass
class Row:
    name: str
    lf: float  # seconds
    ml: float
    bar: float | None = None  # least ratio that passes
    floor: float | None = None  # seconds against the floor server (MLflow's client alone)

    @property
    def ratio(self) -> float:
        return self.ml / self.lf if self.lf else float("inf")

    @property
    def best(self) -> float | None:
        """The best ratio any server could reach: MLflow's time over the client's own."""
        return None if not self.floor else self.ml / self.floor

    @property
    def passed(self) -> bool | None:
        return None if self.bar is None else self.ratio >= self.bar


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFLOW_", "MLFLOW_"))}
    return env | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


# the servers ------------------------------------------------------------------------------
@contextmanager
def server(kind: str, folder: Path, upstream: str = "") -> Iterator[str]:
    """`ledgerflow server`, `mlflow server` or the floor (bench/mlflow_floor.py, reads
    kept from `upstream`) on `folder`, in its own process group; its URL."""
    port = free_port()
    folder.mkdir(parents=True)
    if kind == "floor":
        argv = [sys.executable, str(REPO / "bench" / "mlflow_floor.py"), str(port), upstream]
        env = quiet_env()
    elif kind == "ledgerflow":
        argv = [sys.executable, "-m", "ledgerflow.cli", "--tracking-uri", str(folder / "data"),
                "server", "--port", str(port)]  # fmt: skip
        env = quiet_env()
    else:
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                "--default-artifact-root", str(folder / "artifacts")]  # fmt: skip
        env = quiet_env() | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    url = f"http://127.0.0.1:{port}"
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} server exited; see {folder / 'server.log'}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} server did not answer /health in 180 s")
            time.sleep(0.2)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def import_mlflow() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


# the script -------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_of(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `fn` over `repeats` calls after one untimed warm-up call."""
    fn()
    return statistics.median(timed(fn) for _ in range(repeats))


@dataclass
class Made:
    """What a run of the script made that its reads read: the floor's run reads these
    (those of the Ledgerflow run) through its kept answers."""

    search_experiment: str = ""
    small_run: str = ""
    big_run: str = ""


def script(
    url: str, sz: Sizes, registry: bool, made: Made, *, floor: bool = False
) -> Iterator[tuple[str, float]]:
    """The same MLflow client workload against `url`, a phase at a time: (phase, seconds).
    Records in `made` what it made; with `floor`, reads what `made` names instead (the
    floor server made nothing) and leaves out the round trips and the registry."""
    mlflow = import_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    c = mlflow.MlflowClient(tracking_uri=url)
    http = httpx.Client(timeout=300)
    rng = random.Random(7)

    exp = c.create_experiment("bench-writes")
    runs: list[str] = []
    yield (
        f"create_run x{sz.runs}",
        timed(lambda: runs.extend(c.create_run(exp).info.run_id for _ in range(sz.runs))),
    )
    yield f"log_param x{sz.runs}", timed(lambda: [c.log_param(r, "lr", "0.01") for r in runs])
    yield (
        f"log_metric x{sz.metric_calls}",
        timed(
            lambda: [
                c.log_metric(runs[i % len(runs)], "loss", 1.0 / (i + 1), step=i)
                for i in range(sz.metric_calls)
            ]
        ),
    )

    def small_batches() -> None:
        for r in runs:
            c.log_batch(
                r,
                metrics=[Metric(f"m{k}", rng.random(), T0_MS, 0) for k in range(10)],
                params=[Param(f"p{k}", str(k)) for k in range(10)],
                tags=[RunTag(f"t{k}", "x") for k in range(5)],
            )

    yield f"log_batch 25 items x{sz.runs}", timed(small_batches)

    big = c.create_run(exp).info.run_id
    points = [Metric("curve", rng.random(), T0_MS + s, s) for s in range(sz.history)]
    yield (
        f"log_batch 1000 metrics x{sz.history // 1000}",
        timed(
            lambda: [
                c.log_batch(big, metrics=points[i : i + 1000]) for i in range(0, sz.history, 1000)
            ]
        ),
    )
    small = runs[0]
    c.log_batch(small, metrics=[Metric("small", s / 10, T0_MS, s) for s in range(sz.small_history)])
    if not floor:
        made.small_run, made.big_run = small, big

    say(f"{url}: filling the search experiment with {sz.search_runs:,} runs ...")
    sexp = c.create_experiment("bench-search")

    def one_run(i: int) -> None:
        rid = c.create_run(sexp, start_time=T0_MS + i, run_name=f"run-{i}").info.run_id
        c.log_batch(
            rid,
            metrics=[Metric("acc", (i * 7919 % 1000) / 1000, T0_MS, 0),
                     Metric("loss", i, T0_MS, 0)],
            params=[Param("group", f"g{i % 500}"), Param("bucket", f"b{i % 10}"),
                    Param("lr", "0.01")],
            tags=[RunTag("team", "cv" if i % 2 else "nlp")],
        )  # fmt: skip

    with ThreadPoolExecutor(sz.fill_clients) as pool:
        yield (
            f"fill {sz.search_runs} runs ({sz.fill_clients} clients)",
            timed(lambda: list(pool.map(one_run, range(sz.search_runs)))),
        )
    if floor:
        sexp, small, big = made.search_experiment, made.small_run, made.big_run
    else:
        made.search_experiment = sexp

    def search(where: str, expected: int) -> Callable[[], None]:
        def go() -> None:
            found, token = 0, None
            while True:
                page = c.search_runs(
                    [sexp], where, max_results=1000, order_by=["metrics.acc DESC"],
                    page_token=token,
                )  # fmt: skip
                found += len(page)
                token = page.token
                if not token:
                    break
            if found != expected:
                raise SystemExit(f"{url}: search {where!r} found {found}, expected {expected}")

        return go

    n = sz.search_runs
    yield "search ~10 runs", median_of(search("params.group = 'g7'", n // 500), sz.repeats)
    yield "search ~500 runs", median_of(search("params.bucket = 'b3'", n // 10), sz.repeats)
    yield f"search all {n} runs", median_of(search("", n), max(1, sz.repeats // 2))
    body = {"experiment_ids": [sexp], "max_results": 1000, "order_by": ["metrics.acc DESC"]}
    if not floor:
        yield (
            "  round trip: search 1000 runs",
            median_of(
                lambda: http.post(url + API + "/runs/search", json=body).raise_for_status(),
                sz.repeats,
            ),
        )

    def history(run_id: str, key: str, count: int) -> Callable[[], None]:
        def go() -> None:
            got = c.get_metric_history(run_id, key)
            if len(got) != count:
                raise SystemExit(f"{url}: history of {key} has {len(got)} points, not {count}")

        return go

    yield (
        f"history {sz.small_history} points",
        median_of(history(small, "small", sz.small_history), sz.repeats),
    )
    yield (
        f"history {sz.history} points",
        median_of(history(big, "curve", sz.history), max(1, sz.repeats // 2)),
    )
    page = {"run_id": big, "metric_key": "curve", "max_results": 25_000}
    if not floor:
        yield (
            "  round trip: history page of 25000",
            median_of(
                lambda: http.get(
                    url + API + "/metrics/get-history", params=page
                ).raise_for_status(),
                sz.repeats,
            ),
        )
    http.close()
    if registry and not floor:
        yield from registry_phase(c, runs, sz)


def registry_phase(c: Any, runs: Sequence[str], sz: Sizes) -> Iterator[tuple[str, float]]:
    name = "bench-model"

    def register() -> None:
        c.create_registered_model(name)
        for i in range(sz.versions):
            c.create_model_version(name, f"runs:/{runs[i]}/model", run_id=runs[i])

    yield f"registry: model + {sz.versions} versions", timed(register)
    c.set_registered_model_alias(name, "champion", "1")
    yield (
        "registry: search versions",
        median_of(lambda: c.search_model_versions(f"name = '{name}'"), sz.repeats),
    )
    yield (
        "registry: alias + latest",
        median_of(
            lambda: (c.get_model_version_by_alias(name, "champion"), c.get_registered_model(name)),
            sz.repeats,
        ),
    )


# reporting --------------------------------------------------------------------------------
def machine_info() -> list[tuple[str, str]]:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "?"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    git = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [
        ("cpus", f"{os.cpu_count()} x {cpu}"),
        ("load average (1 min) at start", f"{load:.2f}"),
        ("python", platform.python_version()),
        ("ledgerflow", f"{version('ledgerflow')} at {git or '?'}"),
        ("mlflow (client and server)", version("mlflow")),
    ]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def build_report(lf: dict[str, float], ml: dict[str, float], floor: dict[str, float]) -> Report:
    rep = Report()
    for name, seconds in lf.items():
        reads = name.startswith(("search", "history"))
        bar = 10.0 if reads else None
        rep.rows.append(Row(name, seconds, ml[name], bar, floor.get(name)))
    timed_rows = [r for r in rep.rows if not r.name.startswith("  ")]
    total_lf = sum(r.lf for r in timed_rows)
    total_ml = sum(r.ml for r in timed_rows)
    floored = [r for r in timed_rows if r.floor is not None]
    total_floor = sum(r.floor or 0.0 for r in floored) + sum(
        r.lf
        for r in timed_rows
        if r.floor is None  # the registry: no floor, ours counts
    )
    rep.rows.append(Row(
        "overall (every phase above, round trips aside)", total_lf, total_ml, 3.0,
        total_floor if floored else None,
    ))  # fmt: skip
    return rep


def print_report(rep: Report) -> None:
    head = ("phase", "Ledgerflow s", "MLflow s", "ratio", "floor s", "best", "bar", "result")
    lines = [
        (
            r.name,
            f"{r.lf:.3f}",
            f"{r.ml:.3f}",
            f"{r.ratio:.1f}x",
            "" if r.floor is None else f"{r.floor:.3f}",
            "" if r.best is None else f"{r.best:.1f}x",
            "" if r.bar is None else f">= {r.bar:g}x",
            {True: "PASS", False: "MISS", None: ""}[r.passed],
        )
        for r in rep.rows
    ]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    print("\n" + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(
            c.rjust(w) if 0 < i < 6 else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ))  # fmt: skip
    print("\nratio = how many times faster Ledgerflow is (above 1: Ledgerflow wins)")
    print("round trip = the same REST call with httpx, without MLflow's client parsing it")
    print("floor = the same phase against a server that does no work (canned writes, reads")
    print("  answered from memory with Ledgerflow's own answers): MLflow's client alone;")
    print("  best = MLflow s / floor s, the most any server could reach on the phase")
    for note in rep.notes:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--search-runs", type=int, help=f"runs searched (default {FULL.search_runs})")
    ap.add_argument("--json", type=Path, help="also write the results here as JSON")
    ap.add_argument(
        "--no-floor", action="store_true",
        help="skip the floor run (MLflow's client against a server that does no work)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    sz = QUICK if args.quick else FULL
    if args.search_runs:
        sz = Sizes(**{**asdict(sz), "search_runs": args.search_runs})
    registry = importlib.util.find_spec(REGISTRY_MODULE) is not None

    print("MLflow's client: ledgerflow server vs mlflow server (sqlite)"
          + (" [--quick]" if args.quick else ""))  # fmt: skip
    for k, v in machine_info():
        print(f"  {k:32} {v}")
    print(f"  {'sizes':32} {asdict(sz)}")
    started = time.perf_counter()
    results: dict[str, dict[str, float]]
    results = {"ledgerflow": {}, "mlflow": {}, "floor": {}}
    made = Made()
    with (
        tempfile.TemporaryDirectory(prefix="ledgerflow-bench-mlflow-") as tmp,
        server("ledgerflow", Path(tmp) / "ledgerflow") as lf_url,
        server("mlflow", Path(tmp) / "mlflow") as ml_url,
    ):
        # phase by phase, ours then theirs: load from elsewhere hits both alike
        phases = zip(
            script(lf_url, sz, registry, made), script(ml_url, sz, registry, Made()), strict=True
        )
        for (name, lf_s), (_, ml_s) in phases:
            say(f"{name}: {lf_s:.3f} s / {ml_s:.3f} s")
            results["ledgerflow"][name], results["mlflow"][name] = lf_s, ml_s
        if not args.no_floor:
            with server("floor", Path(tmp) / "floor", upstream=lf_url) as floor_url:
                for name, s in script(floor_url, sz, registry, made, floor=True):
                    say(f"{name}: floor {s:.3f} s")
                    results["floor"][name] = s
    rep = build_report(results["ledgerflow"], results["mlflow"], results["floor"])
    if not registry:
        rep.notes.append(
            f"registry phase skipped: this checkout has no {REGISTRY_MODULE} "
            "(the gateway does not serve MLflow's registry yet)"
        )
    if args.quick:
        rep.notes.append("--quick sizes are smaller than the bars assume; PASS/MISS is indicative")
    print_report(rep)
    print(f"total benchmark time: {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": dict(machine_info()), "sizes": asdict(sz), "ledgerflow": results[
                "ledgerflow"], "mlflow": results["mlflow"], "floor": results["floor"],
             "rows": [dict(asdict(r), ratio=r.ratio, passed=r.passed) for r in rep.rows],
             "notes": rep.notes},
            indent=2,
        ))  # fmt: skip
    return 1 if any(r.passed is False for r in rep.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
