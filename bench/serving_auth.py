"""What `ledgerflow serve --auth` costs per inference: the same registered model served
without and with `--auth` (an API token, and Basic credentials), over REST and OIP gRPC,
one request at a time and 16 at once; and the check alone, in-process.

    .venv/bin/python bench/serving_auth.py            # about 3.5 minutes on 2 cores
    .venv/bin/python bench/serving_auth.py --quick    # one shorter round, about 1.5 minutes
    .venv/bin/python bench/serving_auth.py --json out.json

The model is scikit-learn LogisticRegression on the digits data (one row per request),
registered as `digits`; the caller has READ on it and the default level is NO_PERMISSIONS,
so every request is authenticated (from the cache: the credential was verified once) and
authorized (a cached grant). Servers run one at a time with OMP_NUM_THREADS=1, with the
load generator of bench/serving.py; each configuration is measured in `--rounds` rounds,
alternating, and the median round is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving as load  # bench/serving.py: the load generator and servers

PASSWORD = "bench-password-1"
CONCURRENCY = (1, 16)


def prepare(data: Path) -> tuple[list[float], str]:
    """The registered model, a user `reader` with READ on it; (one input row, a token)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow as lf
    from ledgerflow.events import auth_commands as ac
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap

    x, y = load_digits(return_X_y=True)
    lf.set_tracking_uri(str(data))
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(x, y), name="m", input_example=x[:2],
            registered_model_name="digits",
        )  # fmt: skip
    backend = bootstrap(load_settings(tracking_uri=str(data)))
    try:
        backend.auth.execute(ac.CreateUser(name="reader", password=PASSWORD), actor="bench")
        grant = ac.SetPermission(kind="model", key="digits", principal="user:reader", level="READ")
        backend.auth.execute(grant, actor="bench")
        token = backend.auth.execute(ac.CreateToken(user="reader"), actor="bench").token
    finally:
        backend.close()
    return x[0].tolist(), token


def check_alone(data: Path, headers: dict[str, str], n: int) -> dict[str, float]:
    """Microseconds per hot-path check (cached authentication, then the level), in-process."""
    from ledgerflow.events.permissions import Level
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import bootstrap
    from ledgerflow.services.serving.auth import ServingAuth

    backend = bootstrap(load_settings(tracking_uri=str(data), auth_default="NO_PERMISSIONS"))
    auth = ServingAuth.of(backend, inference=True)
    out: dict[str, float] = {}

    async def run() -> None:
        for label, header in headers.items():
            await auth.caller(header)  # verified once, as the first request would
            t0 = time.perf_counter()
            for _ in range(n):
                caller = await auth.caller(header)
                auth.require(caller, ("model", "digits"), Level.READ)
            out[label] = (time.perf_counter() - t0) / n * 1e6

    try:
        asyncio.run(run())
    finally:
        backend.close()
    return out


def start(work: Path, grpc_port: int, auth: bool) -> load.Server:
    port = load.free_port()
    cmd = [load.PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(work / "data"), "serve",
           "-m", "models:/digits/1", "-p", str(port), "--grpc-port", str(grpc_port)]  # fmt: skip
    env = load._env()
    if auth:
        cmd.append("--auth")
        env["LEDGERFLOW_AUTH_DEFAULT"] = "NO_PERMISSIONS"
    return load.Server(cmd, port, work / f"serve-{'auth' if auth else 'open'}.log", env)


def bench(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="lf-bench-serving-auth-") as tmp:
        work = Path(tmp)
        row, token = prepare(work / "data")
        basic = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
        credentials = {"token": f"Bearer {token}", "basic": basic}
        alone = check_alone(work / "data", credentials, args.checks)
        body = json.dumps({"inputs": [row]})
        configs = [
            ("no auth", False, {}),
            ("--auth, Bearer token", True, {"Authorization": credentials["token"]}),
            ("--auth, Basic", True, {"Authorization": credentials["basic"]}),
        ]
        rounds: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for _ in range(args.rounds):
            for auth in (False, True):
                grpc_port = load.free_port()
                server = start(work, grpc_port, auth)
                try:
                    for label, _, headers in (c for c in configs if c[1] == auth):
                        specs = {
                            "REST": {"kind": "http", "host": "127.0.0.1", "port": server.port,
                                     "path": "/invocations", "body": body, "headers": headers},
                            "gRPC": {"kind": "grpc", "target": f"127.0.0.1:{grpc_port}",
                                     "request": load.grpc_request("digits", row, "FP64"),
                                     "headers": headers},
                        }  # fmt: skip
                        for protocol, spec in specs.items():
                            for c in CONCURRENCY:
                                r = load.run_load(spec, c, args, work)
                                rounds.setdefault((label, protocol, c), []).append(r)
                finally:
                    server.stop()
        results = []
        for (label, protocol, c), measured in rounds.items():
            mid = sorted(measured, key=lambda r: r["p50_ms"])[len(measured) // 2]
            errors = sum(r["errors"] for r in measured)
            results.append({"server": label, "protocol": protocol, "concurrency": c, **mid,
                            "errors": errors})  # fmt: skip
    return results, alone


def report(results: list[dict[str, Any]], alone: dict[str, float]) -> None:
    print("\nserver                 proto  conc    req/s   p50 ms   p99 ms  p50 vs no auth  errors")
    for r in results:
        base = next(
            b for b in results if b["server"] == "no auth" and b["protocol"] == r["protocol"]
            and b["concurrency"] == r["concurrency"]
        )  # fmt: skip
        delta = (r["p50_ms"] - base["p50_ms"]) * 1000
        print(
            f"{r['server']:22} {r['protocol']:5} {r['concurrency']:5} {r['rps']:8.0f} "
            f"{r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {delta:+11.0f} us {r['errors']:7}"
        )
    for label, us in alone.items():
        print(f"the check alone, in-process, {label}: {us:.1f} us per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter measurements")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--checks", type=int, default=20_000, help="in-process checks timed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.duration = 1.5 if args.quick else 3.0
    args.warmup = 0.3 if args.quick else 1.0
    args.rounds = args.rounds or (1 if args.quick else 3)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    started = time.monotonic()
    results, alone = bench(args)
    report(results, alone)
    print(f"total {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"serving": results, "check_us": alone}, indent=2))
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
