"""What publishing and reading a deployment's traffic snapshot costs as traffic accumulates:
the whole JSON document that the Faust worker wrote twice a second and the deployer read
every second until the chunked layout, against the chunked layout
(`services/analytics/snapshots.py`) in steady traffic.

    .venv/bin/python bench/traffic_snapshot.py                  # 10 min, 1 h, 2 h of traffic
    .venv/bin/python bench/traffic_snapshot.py --minutes 1 10   # a smoke run

The traffic is the soak's (`bench/soak.py`): 2 variants, 25 requests a second, feedback
for one in four, folded by `TrafficStats` (one-second windows, the default retention of
an hour: windows older than that are compacted every hour). For each amount it times
(the median of `--repeats`):

- *whole*: encoding the deployment's `DeploymentTraffic` as one document and decoding it,
  as the single key `ledgerflow:traffic:<name>` held it before;
- *chunked*: one more second of traffic, then what the worker's publish encodes (the chunks
  that second touched, and the head) and writes, and what a reader that has read the
  snapshot before decodes (one script call to Redis: head, versions, changed chunks),
  timed through Redis on 127.0.0.1:6379 under a key prefix of its own (deleted after);
- *tick*: what the deployer does every second for the deployment, `snapshot(since)` and
  `requests_since` over every window since the first request (a split unchanged for that
  long): before, two whole decodes and two sums over all windows; chunked, two reads and
  the sums resumed from the settled chunks' totals (`snapshots._Held.total`).

Not a test; results in docs/reliability.md (soak section).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

T0 = 1_800_000_000_000


def fold_seconds(stats: Any, start_s: int, seconds: int, rng: random.Random) -> None:
    from ledgerflow.events.deployment_payloads import (
        FeedbackRecorded,
        InferenceRecord,
        InferenceRecorded,
    )

    for s in range(start_s, start_s + seconds):
        base = T0 + s * 1000
        records = tuple(
            InferenceRecord(
                request_id=f"q{s}-{i}", variant="ab"[rng.random() < 0.5],
                time=base + i * 40, latency_ms=rng.lognormvariate(2, 0.5), ok=rng.random() > 0.01,
            )
            for i in range(25)
        )  # fmt: skip
        stats.apply(InferenceRecorded(deployment="soak", replica="r", records=records))
        for i in range(0, 25, 4):
            value = float(rng.random() < 0.3)
            stats.apply(
                FeedbackRecorded(deployment="soak", request_id=f"q{s}-{i}", value=value, time=base)
            )


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 120])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()

    from ledgerflow.services.analytics.series import DeploymentTraffic
    from ledgerflow.services.analytics.snapshots import (
        RedisTrafficSnapshots,
        snapshot_keys,
        write_sync,
    )
    from ledgerflow.services.analytics.window import TrafficStats

    rows: list[dict[str, Any]] = []
    prefix = f"bench-snapshot-{uuid.uuid4().hex[:8]}:"
    writer = RedisTrafficSnapshots.from_url(args.redis, prefix=prefix)
    reader = RedisTrafficSnapshots.from_url(args.redis, prefix=prefix)
    try:
        rng = random.Random(1)
        stats = TrafficStats()
        done = 0
        for minutes in sorted(args.minutes):
            seconds = int(minutes * 60)
            fold_seconds(stats, done, seconds - done, rng)
            done = seconds
            dep = stats.deployment("soak")
            windows = sum(len(s.windows) for s in dep.variants.values())
            doc = json.dumps({"published_ms": 0, "traffic": dep.to_dict()}, separators=(",", ":"))

            def old_tick(doc: str = doc) -> None:  # two loads, as the deployer did every second
                for _ in range(2):
                    traffic = DeploymentTraffic.from_dict(json.loads(doc)["traffic"])
                traffic.snapshot(T0), traffic.requests_since("b", T0)

            whole_enc = median_ms(lambda d=dep: json.dumps({"traffic": d.to_dict()}), args.repeats)
            whole_dec = median_ms(
                lambda d=doc: DeploymentTraffic.from_dict(json.loads(d)["traffic"]), args.repeats
            )
            whole_tick = median_ms(old_tick, args.repeats)
            writer.writer.forget("soak")
            reader._held.clear()
            stats.drain_changes()
            writer.publish("soak", dep)  # whole: a new generation
            reader.snapshot("soak", T0), reader.requests_since("soak", "b", T0)
            pub_ms, read_ms, tick_ms, written = [], [], [], []
            for _ in range(args.repeats):  # one more second each, as in steady traffic
                fold_seconds(stats, done, 1, rng)
                done += 1
                changed = [key[2] for key, _ in stats.drain_changes()]
                t0 = time.perf_counter()
                pub = writer.writer.plan("soak", dep, changed)
                write_sync(writer.client, snapshot_keys("soak", prefix), pub)
                pub_ms.append((time.perf_counter() - t0) * 1000)
                written.append(len(pub.head) + sum(map(len, pub.chunks.values())))
                t0 = time.perf_counter()
                got = reader.load("soak")
                read_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                stats_now = reader.snapshot("soak", T0)
                requests = reader.requests_since("soak", "b", T0)
                tick_ms.append((time.perf_counter() - t0) * 1000)
                if got is None or got[0] != dep or stats_now != dep.snapshot(T0):
                    raise SystemExit("the reader's traffic differs from the writer's")
                if requests != dep.requests_since("b", T0):
                    raise SystemExit("the reader's requests differ from the writer's")
            row = {
                "minutes": minutes, "windows": windows, "whole_kib": len(doc) / 1024,
                "whole_encode_ms": whole_enc, "whole_decode_ms": whole_dec,
                "whole_tick_ms": whole_tick, "publish_kib": statistics.median(written) / 1024,
                "publish_ms": statistics.median(pub_ms), "read_ms": statistics.median(read_ms),
                "tick_ms": statistics.median(tick_ms),
            }  # fmt: skip
            rows.append(row)
            print(f"  .. {row}", file=sys.stderr, flush=True)
    finally:
        writer.delete("soak")
        writer.close()
        reader.close()

    print("\ntraffic snapshot of one deployment (2 variants, 25 requests/s, feedback 1 in 4)")
    print(
        f"{'traffic':>8} {'windows':>8} | {'whole KiB':>9} {'encode':>7} {'decode':>7} "
        f"{'tick':>7} | {'publish KiB':>11} {'publish':>7} {'read':>6} {'tick':>6}  (ms)"
    )
    for r in rows:
        print(f"{r['minutes']:>6g} m {r['windows']:>8,} | {r['whole_kib']:>9,.0f} "
              f"{r['whole_encode_ms']:>7.1f} {r['whole_decode_ms']:>7.1f} "
              f"{r['whole_tick_ms']:>7.1f} | {r['publish_kib']:>11.1f} {r['publish_ms']:>7.2f} "
              f"{r['read_ms']:>6.2f} {r['tick_ms']:>6.2f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
