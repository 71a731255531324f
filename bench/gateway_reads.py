"""The gateway's hottest REST reads with the read cache and without it, side by side.

    .venv/bin/python bench/gateway_reads.py            # 2,000 reads of each kind
    .venv/bin/python bench/gateway_reads.py --reads 500

One data directory, two gateways on it in this process (uvicorn in a thread each): one as
`ledgerflow gateway` runs (`ReadCache` with its invalidator, in memory), one without a
cache (the views on every read). Each gateway answers `GET /api/v1/runs/ID`,
`.../registered-models/NAME/versions/N` and `.../aliases/A` from one keep-alive HTTP
client, in turns (with, without, with, ...) so load from elsewhere falls on both alike; a
run has 10 params, 10 tags and 10 metrics. Printed: the median and p99 of each and the
ratio (how many times faster the cached read is). docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distributed import free_port  # bench/distributed.py's, shared


@contextmanager
def serving(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(10)


def timed(get: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        get()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--reads", type=int, default=2000, help="reads of each kind, per gateway")
    args = ap.parse_args()

    import httpx

    from ledgerflow.events import model_commands as mc
    from ledgerflow.events import tracking_commands as tc
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap
    from ledgerflow.services.gateway.app import create_app
    from ledgerflow.services.gateway.cache import ReadCache
    from ledgerflow.services.gateway.hub import Hub

    with tempfile.TemporaryDirectory(prefix="ledgerflow-bench-") as tmp:
        backend = bootstrap(load_settings(tracking_uri=str(Path(tmp) / "data")))
        exp = backend.tracking.execute(tc.CreateExperiment(name="reads"), actor="bench")
        run = backend.tracking.create_run(exp, user_id="bench", actor="bench").run_id
        backend.tracking.log_batch(
            run,
            metrics=[(f"m{i}", i / 10, 0, 0) for i in range(10)],
            params={f"p{i}": f"v{i}" for i in range(10)},
            tags={f"t{i}": f"x{i}" for i in range(10)},
            actor="bench",
        )
        backend.registry.execute(mc.CreateRegisteredModel(name="m"), actor="bench")
        backend.registry.execute(mc.CreateModelVersion(name="m", source="/m/1"), actor="bench")
        alias = mc.SetRegisteredModelAlias(name="m", alias="live", version=1)
        backend.registry.execute(alias, actor="bench")
        hub = Hub(backend.log).start()
        cache = ReadCache(backend, hub, redis_url="").start()
        while not cache.fresh():
            time.sleep(0.01)
        paths = {
            "run": f"/runs/{run}",
            "model version": "/registered-models/m/versions/1",
            "alias": "/registered-models/m/aliases/live",
        }
        results: dict[str, dict[str, list[float]]] = {k: {"with": [], "without": []} for k in paths}
        apps = {"with": create_app(backend, hub, cache=cache), "without": create_app(backend, hub)}
        with serving(apps["with"]) as cached_url, serving(apps["without"]) as plain_url:
            clients = {
                "with": httpx.Client(base_url=cached_url),
                "without": httpx.Client(base_url=plain_url),
            }
            for kind, path in paths.items():

                def get(c: httpx.Client, p: str = path) -> None:
                    c.get(p).raise_for_status()

                for c in clients.values():  # warm both: connections, the first fill
                    timed(lambda c=c: get(c), 20)
                for _ in range(10):  # in turns, a tenth at a time
                    for side, c in clients.items():
                        results[kind][side] += timed(lambda c=c: get(c), args.reads // 10)
            for c in clients.values():
                c.close()
        print(f"gateway REST reads, {args.reads:,} of each per gateway; cache stats {cache.stats}")
        head = ("read", "with cache p50", "p99", "without p50", "p99", "ratio")
        print("{:16} {:>15} {:>8} {:>12} {:>8} {:>6}".format(*head))
        for kind, sides in results.items():
            w, wo = sorted(sides["with"]), sorted(sides["without"])
            p50w, p50wo = statistics.median(w) * 1e3, statistics.median(wo) * 1e3
            p99w, p99wo = w[int(len(w) * 0.99)] * 1e3, wo[int(len(wo) * 0.99)] * 1e3
            print(f"{kind:16} {p50w:>12.2f} ms {p99w:>5.2f} ms {p50wo:>9.2f} ms {p99wo:>5.2f} ms "
                  f"{p50wo / p50w:>5.2f}x")  # fmt: skip
        cache.close()
        hub.close()
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
