"""How fast the projector folds a bulk log into empty views: a replay from offset zero.

    .venv/bin/python bench/replay.py                 # 1,000,000 events
    .venv/bin/python bench/replay.py --quick         # 50,000 events, a smoke run
    .venv/bin/python bench/replay.py --events 200000 --repeats 3
    .venv/bin/python bench/replay.py --quick --profile 25   # cProfile, the top 25 by own time

The log holds realistic tracking events, five per run: run.started (two tags),
run.params_logged (10 params), run.metrics_logged (5 metrics of 2 points each),
run.tags_set (2 tags), run.finished; after one experiment.created. It is built once
per size and kept under `build/bench-replay/` (building 1,000,000 events takes a few
minutes of appends with the hash chain); `--fresh-log` builds it again.

Event ids are made as the product makes them (`--ids product`, the default): UUIDv7
from the event's time for telemetry, so they sort by time as the log does, and the
name-derived id of `Event.of` for a run's start (a hash: random order). `--ids random`
gives every event a random id, as this bench did before 2026-12-06 (its logs keep the
old file name, `log-<events>.db`): every applied id then lands at a random place in
the applied-id index, which a real log does not do.

Each repeat projects the whole log into a fresh SQLite views file with one
`Projector.catch_up()` (what a new projector, or `ledgerflow replay` on empty views,
does) and prints wall seconds, CPU seconds of this process, events per second of each,
and the machine's 1-minute load average (what else ran: this is a 2-core machine shared
with other benchmarks). `--views-db` names another empty database instead (a PostgreSQL
URL: its tables are dropped and made again before each repeat).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ACTOR = "bench#token:0193"
PER_RUN = 5
STORE = Path(__file__).resolve().parent.parent / "build" / "bench-replay"


def uuid7_at(ms: int, rng: random.Random) -> str:
    """A UUIDv7 as `ledgerflow.events.envelope.uuid7` makes it at `ms`, its random bits
    from `rng` (so a log is the same each time it is built)."""
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    return str(uuid.UUID(int=value | 0b10 << 62 | rng.getrandbits(62)))


def run_events(i: int, experiment: str, rng: random.Random, ids: str = "product") -> list[Any]:
    """The five events of the `i`-th run, with ids made as `ids` says (see the module)."""
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event, named_id

    run = uuid.UUID(int=rng.getrandbits(128)).hex
    t0 = 1_700_000_000_000 + i * 1_000
    name = f"run-{i}"
    points = tuple(
        (f"m{k}", rng.random(), t0 + 100 * step, step) for k in range(5) for step in range(2)
    )
    payloads = [
        p.RunStarted(run_id=run, experiment_id=experiment, run_name=name, start_time=t0,
                     user_id="bench", artifact_uri=f"/artifacts/{experiment}/{run}",
                     tags={"mlflow.runName": name, "mlflow.user": "bench"}),
        p.RunParamsLogged(run_id=run, params={f"p{j}": str(rng.randrange(100))
                                              for j in range(10)}),
        p.RunMetricsLogged(run_id=run, points=points),
        p.RunTagsSet(run_id=run, tags={"team": f"t{i % 7}", "stage": "sweep"}),
        p.RunFinished(run_id=run, status="FINISHED", end_time=t0 + 900),
    ]  # fmt: skip
    if ids == "random":
        made = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in payloads]
    else:  # as Event.of: a name-derived id for what happens once (a run's start)
        made = [named_id(d.TYPE, key) if (key := d.identity()) is not None
                else uuid7_at(t0 + k, rng) for k, d in enumerate(payloads)]  # fmt: skip
    return [Event(id=made[k], type=d.TYPE, stream=f"run:{run}", time=t0 + k, v=d.VERSION,
                  actor=ACTOR, data=d)
            for k, d in enumerate(payloads)]  # fmt: skip


def build_log(path: Path, events: int, *, say: Any, ids: str = "product") -> None:
    """A log of `events` events (rounded up to whole runs) at `path`."""
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event
    from ledgerflow.events.sqlite_log import SQLiteEventLog

    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.unlink(missing_ok=True)
    log = SQLiteEventLog(part)
    rng = random.Random(17)
    created = p.ExperimentCreated(experiment_id="1", name="bench", artifact_location="/a")
    batch: list[Any] = [Event.of(created, actor=ACTOR)]
    began = time.monotonic()
    for i in range(-(-(events - 1) // PER_RUN)):
        batch += run_events(i, "1", rng, ids)
        if len(batch) >= 5_000:
            log.append(batch)
            batch = []
            if i % 20_000 < 1_000:  # once per 100,000 events
                say(f"  log: {(i + 1) * PER_RUN:,} events, {time.monotonic() - began:.0f} s")
    log.append(batch)
    log.close()
    part.rename(path)


def fresh_views(url: str | None, folder: Path) -> str:
    """An empty views database: a new SQLite file, or `url`'s tables dropped."""
    if url is None:
        return f"sqlite:///{folder / f'views-{uuid.uuid4().hex[:8]}.db'}"
    from sqlalchemy import create_engine

    from ledgerflow.services.projector import projector  # noqa: F401 - every view table
    from ledgerflow.services.projector.tables import METADATA

    engine = create_engine(url)
    with engine.begin() as conn:
        METADATA.drop_all(conn)
    engine.dispose()
    return url


def project(log_path: Path, views: str, profile: int, batch: int) -> tuple[int, float, float]:
    """Events applied, wall seconds and CPU seconds of one catch-up into `views`."""
    from ledgerflow.events.sqlite_log import SQLiteEventLog
    from ledgerflow.services.projector.database import make_engine
    from ledgerflow.services.projector.projector import Projector

    log = SQLiteEventLog(log_path)
    engine = make_engine(views, writer=True)
    projector = Projector(log, engine, batch=batch)
    prof = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    applied = projector.catch_up()
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    dead = projector.dead_letter_count()
    if dead:
        raise SystemExit(f"{dead} dead letters: the bench's log should apply cleanly")
    engine.dispose()
    log.close()
    if prof:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(profile)
    return applied, wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=None, help="log size (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="50,000 events, one repeat")
    ap.add_argument("--repeats", type=int, default=1, help="catch-ups timed (default 1)")
    ap.add_argument("--batch", type=int, default=500, help="events per transaction (500)")
    ap.add_argument("--views-db", default=None, help="an empty views database URL instead")
    ap.add_argument("--log", type=Path, default=None, help="the log file to build or reuse")
    ap.add_argument("--fresh-log", action="store_true", help="build the log again")
    ap.add_argument("--ids", choices=("product", "random"), default="product",
                    help="event ids as the product makes them (default), or random")  # fmt: skip
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="cProfile the catch-up; print the top N functions to stderr")  # fmt: skip
    args = ap.parse_args(argv)
    events = args.events or (50_000 if args.quick else 1_000_000)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    suffix = "" if args.ids == "random" else "-product-ids"
    log_path = args.log or STORE / f"log-{events}{suffix}.db"
    if args.fresh_log or not log_path.exists():
        say(f"building a log of {events:,} events at {log_path}")
        build_log(log_path, events, say=say, ids=args.ids)
    print(f"{'repeat':>6} {'events':>10} {'wall s':>8} {'CPU s':>8} {'ev/s wall':>10} "
          f"{'ev/s CPU':>10} {'load':>5}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ledgerflow-replay-") as tmp:
        for r in range(args.repeats):
            views = fresh_views(args.views_db, Path(tmp))
            applied, wall, cpu = project(log_path, views, args.profile, args.batch)
            print(f"{r + 1:>6} {applied:>10,} {wall:>8.1f} {cpu:>8.1f} {applied / wall:>10,.0f} "
                  f"{applied / cpu:>10,.0f} {os.getloadavg()[0]:>5.1f}", flush=True)  # fmt: skip
            if views.startswith("sqlite:///"):
                Path(views.removeprefix("sqlite:///")).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
