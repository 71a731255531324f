"""Tamper evidence: how fast `ledgerflow verify` walks a big SQLite log, and what the hash
chain costs an append.

    .venv/bin/python bench/verify.py                       # both: append, then verify 1M events
    .venv/bin/python bench/verify.py --only verify --events 200000
    .venv/bin/python bench/verify.py --only append         # append throughput only

`verify` writes `--events` events (default 1,000,000: runs of 100 events each, a mix of
run.started, params, tags and metric batches of 10 points) through `SQLiteEventLog.append`
in batches of 10,000, then times `ledgerflow verify` as a user runs it (a fresh process,
`--log sqlite:///...`), and the same walk in this process. The bar: under 30 s.

`append` times `SQLiteEventLog.append` with the three shapes the SDK produces: one small
event per call (each call a durable transaction: fsync-bound), 1,000 small events per
call, and metric batches (10 events of 1,000 points per call). It only uses the public
`append`, so it runs unchanged on code from before the chain, for a before/after.
docs/benchmarks.md records the results.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BAR_S = 30.0
T0_MS = 1_700_000_000_000


def say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def run_events(run: int, size: int) -> Iterator[object]:
    """`size` events of one run's stream: started, params, then tags and metric batches."""
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event

    rid = f"{run:032x}"
    yield Event.of(
        p.RunStarted(
            run_id=rid, experiment_id="0", run_name=f"run-{run}", start_time=T0_MS + run,
            user_id="bench", artifact_uri=f"file:///tmp/{rid}", tags={},
        ),
        actor="user:bench",
    )  # fmt: skip
    yield Event.of(p.RunParamsLogged(run_id=rid, params={"lr": "0.01", "seed": str(run)}))
    for i in range(size - 2):
        if i % 10 == 9:
            yield Event.of(p.RunTagsSet(run_id=rid, tags={"step": str(i)}), actor="user:bench")
        else:
            points = tuple((f"m{k}", 0.001 * (i + k), T0_MS + i, i) for k in range(10))
            yield Event.of(p.RunMetricsLogged(run_id=rid, points=points), actor="user:bench")


def fill(path: Path, events: int, per_run: int = 100, batch: int = 10_000) -> float:
    """Append `events` events to a fresh SQLite log through the adapter; the seconds it took."""
    from ledgerflow.events.sqlite_log import SQLiteEventLog

    log = SQLiteEventLog(path)
    pending: list[object] = []
    written = 0
    t0 = time.perf_counter()
    run = 0
    while written < events:
        for ev in run_events(run, min(per_run, events - written)):
            pending.append(ev)
            written += 1
        run += 1
        if len(pending) >= batch or written >= events:
            log.append(pending)  # type: ignore[arg-type]
            pending = []
            if written % 100_000 < per_run:
                say(f"{written:,} events written")
    took = time.perf_counter() - t0
    log.close()
    return took


def bench_verify(events: int, tmp: Path) -> list[tuple[str, str]]:
    path = tmp / "verify.db"
    say(f"writing {events:,} events through SQLiteEventLog.append ...")
    wrote = fill(path, events)
    size_mb = path.stat().st_size / 2**20
    say(f"wrote {events:,} events in {wrote:.1f}s ({events / wrote:,.0f}/s), {size_mb:,.0f} MiB")
    cmd = [sys.executable, "-m", "ledgerflow", "verify", "--log", f"sqlite:///{path}"]
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    cli_s = time.perf_counter() - t0
    cli_cpu = _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"`ledgerflow verify` failed ({done.returncode}):\n{done.stderr}")
    say(done.stdout.strip())

    from ledgerflow.events.sqlite_log import SQLiteEventLog
    from ledgerflow.events.verify import verify

    log = SQLiteEventLog(path)
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = verify(log)
    walk_s, walk_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    log.close()
    if not report.ok or report.checked != events:
        raise SystemExit(f"in-process verify: {report.checked} checked, ok={report.ok}")
    verdict = "PASS" if cli_s < BAR_S else "MISS"
    return [
        ("events", f"{events:,} in {events // 100:,} streams, {size_mb:,.0f} MiB on disk"),
        ("writing them (append, 10,000 per call)", f"{wrote:.1f} s ({events / wrote:,.0f}/s)"),
        (
            "`ledgerflow verify`, wall (new process)",
            f"{cli_s:.1f} s, CPU {cli_cpu:.1f} s  [{verdict}, bar < {BAR_S:g} s]",
        ),
        (
            "verify() in this process",
            f"{walk_s:.1f} s, CPU {walk_cpu:.1f} s ({events / walk_s:,.0f} events/s)",
        ),
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median_rate(
    make: Callable[[], list[Any]], per_call: int, log: Any, repeats: int, points: int = 0
) -> str:
    """Median rate of appending `make()`'s events `per_call` at a time (the events are made
    before the clock starts), by wall clock and by this process's CPU time: the second is
    steadier on a shared machine, the first includes waiting for fsync."""
    wall, cpu = [], []
    for _ in range(repeats):
        events = make()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(events), per_call):
            log.append(events[i : i + per_call])
        n = len(events) * (points or 1)
        wall.append(n / (time.perf_counter() - t0))
        cpu.append(n / (time.process_time() - c0))
    unit = "points" if points else "events"
    return (
        f"{statistics.median(wall):,.0f} {unit}/s (per CPU second: {statistics.median(cpu):,.0f})"
    )


def bench_append(tmp: Path, repeats: int) -> list[tuple[str, str]]:
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event
    from ledgerflow.events.sqlite_log import SQLiteEventLog

    log = SQLiteEventLog(tmp / "append.db")
    counter = iter(range(10**9))

    def tags(n: int) -> list[Event]:
        return [
            Event.of(p.RunTagsSet(run_id=f"r{i % 50}", tags={"n": str(i)}), actor="user:bench")
            for i in (next(counter) for _ in range(n))
        ]

    def metric_batches() -> list[Event]:
        points = tuple(("loss", 0.5, T0_MS + k, k) for k in range(1000))
        return [
            Event.of(p.RunMetricsLogged(run_id=f"r{b % 50}", points=points), actor="user:bench")
            for b in range(200)
        ]

    log.append(tags(1000))  # warm-up, and streams that already have events
    rows = [
        ("append, 1 small event per call", _median_rate(lambda: tags(500), 1, log, repeats)),
        (
            "append, 1,000 small events per call",
            _median_rate(lambda: tags(50_000), 1000, log, repeats),
        ),
        (
            "append, 10 metric batches of 1,000 points per call",
            _median_rate(metric_batches, 10, log, repeats, points=1000),
        ),
    ]
    log.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=1_000_000, help="events for verify")
    ap.add_argument("--only", choices=("append", "verify"), action="append")
    ap.add_argument("--repeats", type=int, default=5, help="append: median of this many")
    args = ap.parse_args()
    chosen = args.only or ["append", "verify"]
    git = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    python = sys.version.split()[0]
    print(f"tamper-evidence benchmarks at {git or '?'}, {os.cpu_count()} cpus, Python {python}")
    rows: list[tuple[str, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ledgerflow-bench-verify-") as tmp:
        if "append" in chosen:
            rows += bench_append(Path(tmp), args.repeats)
        if "verify" in chosen:
            rows += bench_verify(args.events, Path(tmp))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"total: {time.perf_counter() - started:.0f} s")
    return 1 if any("[MISS" in value for _, value in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
