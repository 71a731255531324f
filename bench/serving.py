"""Model serving: `ledgerflow serve` (REST without and with dynamic batching, and OIP gRPC)
against `mlflow models serve --env-manager local`, on the same models, side by side in one run.

    .venv/bin/python bench/serving.py            # what produced docs/benchmarks.md (~4 min)
    .venv/bin/python bench/serving.py --quick    # shorter runs, a smoke test (~1.5 min)
    .venv/bin/python bench/serving.py --json out.json
    .venv/bin/python bench/serving.py --tensors --quick   # JSON vs binary tensors (~1 min)
    .venv/bin/python bench/serving.py --fronts            # gRPC fronts vs batched REST (~8 min)

A load spec may carry `headers` (sent on every HTTP request, and as gRPC metadata):
bench/serving_auth.py uses them to measure inference with `ledgerflow serve --auth`.

Two models, both saved once with MLflow's own `save_model` and served from the same folder by
both servers: scikit-learn LogisticRegression on the digits data, and a PyTorch MLP
(64 -> 256 -> 256 -> 10). Each request scores one row, JSON `{"inputs": [[...]]}` over REST
or one FP32/FP64 tensor over gRPC. One server runs at a time, alone with the load generator;
every server process gets OMP_NUM_THREADS=1 (set it to override).

The load generator is one separate process (uvloop when installed): `concurrency` clients,
each with its own keep-alive connection (a raw HTTP/1.1 writer/reader, so the client costs far
less than the servers; for gRPC the raw HTTP/2 client of bench/grpc_h2.py, and grpcio's own
asyncio client on one channel as a second row), sending back-to-back for `duration` seconds
after a warm-up on the same connections. Throughput: answered requests per second; latency:
p50/p99 of single requests. Every answer is checked (HTTP status 200; a gRPC message before
the trailers). Each point also gives the CPU per request of the load generator and of a
ledgerflow server (from /proc; MLflow's runs in a child process, not counted), and how many
rows each predict call got (the server's /metrics).

`--tensors` measures the protocol instead of the models: a pyfunc doubling an FP32 tensor
(the answer is as large as the request), with square tensors of 8x8, 64x64 and 256x256, sent
as MLflow scoring JSON to both servers, as OIP JSON, and as OIP with binary tensors as
tritonclient.http builds them by default (`generate_request_body`, outputs binary too).
Bar (issue 14): binary beats OIP JSON from 8x8 up.

`--fronts` compares gRPC fronts on the batched server: `ledgerflow serve`'s own HTTP/2 front
(services/serving/grpc_front.py), grpcio's server it replaced (bench/grpc_front_grpcio.py) and
the first prototype front on the h2 library (bench/grpc_front_h2.py), against batched REST on
the first one's server, in interleaved rounds (`--rounds`) on three servers that stay up;
medians. Bar (issue 17): our own front at least batched REST's req/s at 16 and 64 callers.

Bar (issue 6): at concurrency 16, ledgerflow's best REST or gRPC mode >= 3x MLflow's
throughput with p99 <= half of MLflow's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CONCURRENCY = (1, 16, 64)
WAIT_MS = float(os.environ.get("BENCH_MAX_WAIT_MS", "0"))


# ---------------------------------------------------------------- load generator (subprocess)


async def _http_worker(
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    request: bytes,
    stop: float,
    lat: list[float],
) -> int:
    reader, writer = conn
    errors = 0
    loop = asyncio.get_running_loop()
    while loop.time() < stop:
        t0 = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        lat.append(time.perf_counter() - t0)
        if not head.startswith(b"HTTP/1.1 200"):
            errors += 1
    return errors


async def _grpc_worker(
    stub: Any, request: Any, stop: float, lat: list[float], metadata: Any = None
) -> int:
    loop = asyncio.get_running_loop()
    while loop.time() < stop:
        t0 = time.perf_counter()
        await stub.ModelInfer(request, metadata=metadata)
        lat.append(time.perf_counter() - t0)
    return 0


async def _h2_worker(conn: Any, stop: float, lat: list[float]) -> int:
    loop = asyncio.get_running_loop()
    errors = 0
    while loop.time() < stop:
        t0 = time.perf_counter()
        ok = await conn.call()
        lat.append(time.perf_counter() - t0)
        errors += not ok
    return errors


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) spent so far by process `pid` (None: this one)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # not Linux: no server CPU column
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then measure, on the same connections (steady keep-alive traffic)."""
    spec = json.loads(Path(args.load).read_text())
    loop = asyncio.get_running_loop()
    c = args.concurrency
    if spec["kind"] == "grpc":
        import grpc

        from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb
        from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

        grpc_request = pb.ModelInferRequest.FromString(bytes.fromhex(spec["request"]))
        metadata = tuple((k.lower(), v) for k, v in spec.get("headers", {}).items()) or None
        if spec.get("client", "h2") == "h2":  # raw HTTP/2, as cheap as the HTTP/1.1 client
            from grpc_h2 import connect

            method = "/inference.GRPCInferenceService/ModelInfer"
            message = grpc_request.SerializeToString()
            channels = [
                await connect(spec["target"], method, message, metadata)
                for _ in range(min(c, spec.get("connections", c)))
            ]

            def workers(stop: float, lat: list[float]) -> list[Any]:
                return [_h2_worker(channels[i % len(channels)], stop, lat) for i in range(c)]
        else:  # grpcio's own asyncio client (what most Python callers use)
            channel = grpc.aio.insecure_channel(spec["target"])
            stub = pb_grpc.GRPCInferenceServiceStub(channel)

            def workers(stop: float, lat: list[float]) -> list[Any]:
                return [_grpc_worker(stub, grpc_request, stop, lat, metadata) for _ in range(c)]
    else:
        body = bytes.fromhex(spec["body_hex"]) if "body_hex" in spec else spec["body"].encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
        content_type = spec.get("content_type", "application/json")
        request = (
            f"POST {spec['path']} HTTP/1.1\r\nHost: {spec['host']}\r\n{extra}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        conns = [await asyncio.open_connection(spec["host"], spec["port"]) for _ in range(c)]

        def workers(stop: float, lat: list[float]) -> list[Any]:
            return [_http_worker(conn, request, stop, lat) for conn in conns]

    stats: dict[str, Any] = {}
    server = spec.get("pid")
    for seconds in (args.warmup, args.duration):  # the first pass warms up, the second counts
        lat: list[float] = []
        cpu = _cpu_s(None), _cpu_s(server) if server else float("nan")
        errs = await asyncio.gather(*workers(loop.time() + seconds, lat))
        used = _cpu_s(None) - cpu[0], (_cpu_s(server) if server else float("nan")) - cpu[1]
        lat.sort()
        n = max(len(lat), 1)
        stats = {
            "requests": len(lat),
            "errors": sum(errs),
            "rps": len(lat) / seconds,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
            "client_cpu_us": 1e6 * used[0] / n,  # CPU per answered request, this process
            "server_cpu_us": 1e6 * used[1] / n,  # and the server's (all its threads)
        }
    if spec["kind"] == "grpc":
        if spec.get("client", "h2") == "h2":
            if channels[0].sample is not None:  # the answer is a real ModelInferResponse
                pb.ModelInferResponse.FromString(channels[0].sample)
            for conn in channels:
                await conn.close()
        else:
            await channel.close()
    else:
        for _, writer in conns:
            writer.close()
    return stats


def load_main(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_load(args))))


# ---------------------------------------------------------------- models and servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_models(root: Path) -> dict[str, tuple[Path, list[float], str]]:
    """Both models saved with MLflow; name -> (folder, one input row, its OIP datatype)."""
    import mlflow.pytorch
    import mlflow.sklearn
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    sk = LogisticRegression(max_iter=500).fit(x, y)
    mlflow.sklearn.save_model(sk, root / "sklearn", input_example=x[:2])
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10),
    )  # fmt: skip
    net.eval()
    xf = (x / 16.0).astype(np.float32)
    mlflow.pytorch.save_model(net, root / "pytorch", input_example=xf[:2])
    return {
        "sklearn": (root / "sklearn", x[0].tolist(), "FP64"),
        "pytorch": (root / "pytorch", xf[0].tolist(), "FP32"),
    }


class Server:
    def __init__(self, cmd: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.port, self.log = port, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + 180
        import httpx

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{cmd[:4]} never got ready:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFLOW_", "MLFLOW_"))}
    # One intra-op thread for every server: on 2 cores shared with the load generator, torch's
    # OpenMP threads spin-waiting between batches only steal the CPU the servers need.
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs uvicorn
    return env


def start_mlflow(model: Path, work: Path) -> Server:
    port = free_port()
    env = _env()
    script = Path(PYTHON).parent / "mlflow"
    mlflow_cli = [str(script)]
    if not script.exists():  # a venv that sees mlflow's package but not its scripts
        mlflow_cli = [PYTHON, "-m", "mlflow"]
        shims = work / "bin"  # mlflow execs `uvicorn` from PATH
        shims.mkdir(exist_ok=True)
        (shims / "uvicorn").write_text(f'#!/bin/sh\nexec "{PYTHON}" -m uvicorn "$@"\n')
        (shims / "uvicorn").chmod(0o755)
        env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
    cmd = [*mlflow_cli, "models", "serve", "-m", str(model), "-p", str(port), "-h", "127.0.0.1",
           "--env-manager", "local", "-w", "1"]  # fmt: skip
    return Server(cmd, port, work / f"mlflow-{model.name}.log", env)


def start_ledgerflow(
    model: Path, work: Path, batch: int, grpc_port: int | None, front: str = "own"
) -> Server:
    """`ledgerflow serve`; gRPC on its own front ("own"), or with `front` "grpcio" on grpcio's
    server (bench/grpc_front_grpcio.py), "h2" on the h2 prototype (bench/grpc_front_h2.py)."""
    port = free_port()
    launcher = {
        "own": ["-m", "ledgerflow.cli"],
        "grpcio": [str(ROOT / "bench/grpc_front_grpcio.py")],
        "h2": [str(ROOT / "bench/grpc_front_h2.py")],
    }[front]
    cmd = [PYTHON, *launcher, "--tracking-uri", str(work / "data"), "serve",
           "-m", str(model), "-p", str(port), "--name", model.name,
           "--max-batch-size", str(batch), "--max-wait-ms", str(WAIT_MS)]  # fmt: skip
    if grpc_port is not None:
        cmd += ["--grpc-port", str(grpc_port)]
    return Server(cmd, port, work / f"ledgerflow-{model.name}-{batch}-{front}.log", _env())


def predicted(metrics_port: int) -> tuple[float, float]:
    """(predict calls, rows predicted) so far, from a ledgerflow server's /metrics."""
    import httpx

    calls = rows = 0.0
    for line in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text.splitlines():
        if line.startswith("ledgerflow_serving_batch_rows_count{"):
            calls += float(line.rpartition(" ")[2])
        elif line.startswith("ledgerflow_serving_batch_rows_sum{"):
            rows += float(line.rpartition(" ")[2])
    return calls, rows


def run_load(
    spec: dict[str, Any],
    concurrency: int,
    args: argparse.Namespace,
    work: Path,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """One load point. With `metrics_port` (a ledgerflow server's REST port) the result also
    says how many rows each predict call got on average (warm-up included)."""
    path = work / "load.json"
    path.write_text(json.dumps(spec))
    before = predicted(metrics_port) if metrics_port else (0.0, 0.0)
    out = subprocess.run(
        [PYTHON, __file__, "--load", str(path), "--concurrency", str(concurrency),
         "--duration", str(args.duration), "--warmup", str(args.warmup)],
        capture_output=True, text=True, check=True, env=_env(),
    )  # fmt: skip
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if metrics_port:
        calls, rows = (a - b for a, b in zip(predicted(metrics_port), before, strict=True))
        result["rows_per_predict"] = rows / calls if calls else float("nan")
    return result


def grpc_request(name: str, row: list[float], datatype: str) -> str:
    import numpy as np

    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as pb

    arr = np.asarray([row], dtype=np.float32 if datatype == "FP32" else np.float64)
    t = pb.ModelInferRequest.InferInputTensor(name="input", datatype=datatype, shape=[1, 64])
    req = pb.ModelInferRequest(model_name=name, inputs=[t], raw_input_contents=[arr.tobytes()])
    return str(req.SerializeToString().hex())


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lf-bench-serving-") as tmp:
        work = Path(tmp)
        models = make_models(work)
        for name, (folder, row, datatype) in models.items():
            if args.only and name != args.only:
                continue
            body = json.dumps({"inputs": [row]})
            rest = {"kind": "http", "host": "127.0.0.1", "path": "/invocations", "body": body}
            configs: list[tuple[str, Any]] = [
                ("mlflow REST", lambda f=folder: start_mlflow(f, work)),
                ("ledgerflow REST", lambda f=folder: start_ledgerflow(f, work, 1, None)),
                ("ledgerflow REST batched", None),
            ]
            for label, starter in configs:
                if starter is None:
                    continue
                server = starter()
                ours = server.port if label.startswith("ledgerflow") else None
                try:
                    for c in CONCURRENCY:
                        spec = {**rest, "port": server.port, "pid": ours and server.proc.pid}
                        r = run_load(spec, c, args, work, ours)
                        results.append({"model": name, "server": label, "concurrency": c, **r})
                        _print_row(results[-1])
                finally:
                    server.stop()
            grpc_port = free_port()
            server = start_ledgerflow(folder, work, 64, grpc_port)
            try:
                grpc_spec = {
                    "kind": "grpc",
                    "target": f"127.0.0.1:{grpc_port}",
                    "request": grpc_request(folder.name, row, datatype),
                    "pid": server.proc.pid,
                }
                for label, spec in (
                    ("ledgerflow REST batched", {**rest, "port": server.port,
                                                 "pid": server.proc.pid}),
                    ("ledgerflow gRPC batched", grpc_spec),
                    ("ledgerflow gRPC b. grpcio", {**grpc_spec, "client": "grpcio"}),
                ):  # fmt: skip
                    for c in CONCURRENCY:
                        r = run_load(spec, c, args, work, server.port)
                        results.append({"model": name, "server": label, "concurrency": c, **r})
                        _print_row(results[-1])
            finally:
                server.stop()
    return results


def bench_fronts(args: argparse.Namespace) -> list[dict[str, Any]]:
    """gRPC through grpcio's server, the h2 prototype front and our own HTTP/2 front, against
    batched REST, in interleaved rounds on three servers that stay up (one per front, all
    batching 64)."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lf-bench-fronts-") as tmp:
        work = Path(tmp)
        models = make_models(work)
        for name, (folder, row, datatype) in models.items():
            if args.only and name != args.only:
                continue
            body = json.dumps({"inputs": [row]})
            ports = {front: free_port() for front in ("grpcio", "h2", "own")}
            servers = {f: start_ledgerflow(folder, work, 64, p, f) for f, p in ports.items()}
            try:
                request = grpc_request(folder.name, row, datatype)
                specs = {
                    "REST batched": {
                        "kind": "http", "host": "127.0.0.1", "path": "/invocations",
                        "body": body, "port": servers["own"].port, "pid": servers["own"].proc.pid,
                    },
                    "gRPC grpcio server": {
                        "kind": "grpc", "target": f"127.0.0.1:{ports['grpcio']}",
                        "request": request, "pid": servers["grpcio"].proc.pid,
                    },
                    "gRPC h2 front": {
                        "kind": "grpc", "target": f"127.0.0.1:{ports['h2']}",
                        "request": request, "pid": servers["h2"].proc.pid,
                    },
                    "gRPC own front": {
                        "kind": "grpc", "target": f"127.0.0.1:{ports['own']}",
                        "request": request, "pid": servers["own"].proc.pid,
                    },
                }  # fmt: skip
                if args.grpcio_client:
                    specs["gRPC own front, grpcio client"] = {
                        **specs["gRPC own front"],
                        "client": "grpcio",
                    }
                metrics = {
                    "REST batched": servers["own"].port,
                    "gRPC grpcio server": servers["grpcio"].port,
                    "gRPC h2 front": servers["h2"].port,
                }
                for round_ in range(args.rounds):
                    for c in CONCURRENCY:
                        for label, spec in specs.items():
                            port = metrics.get(label, servers["own"].port)
                            r = run_load(spec, c, args, work, port)
                            results.append(
                                {"model": name, "server": label, "concurrency": c,
                                 "round": round_, **r}
                            )  # fmt: skip
                            _print_row(results[-1])
            finally:
                for server in servers.values():
                    server.stop()
    return results


def fronts_summary(results: list[dict[str, Any]]) -> bool:
    """Medians over the rounds, each against batched REST; the bar: our own front at least
    batched REST's req/s at 16 and 64 callers."""
    import statistics

    ok = True
    print(
        "\nmodel    server                        conc  req/s (median, rounds)    x REST"
        "  p99 ms  rows/predict  server us"
    )
    keys = sorted({(r["model"], r["concurrency"]) for r in results})
    for model, c in keys:
        rows = [r for r in results if r["model"] == model and r["concurrency"] == c]
        rest = statistics.median(r["rps"] for r in rows if r["server"] == "REST batched")
        for label in dict.fromkeys(r["server"] for r in rows):
            mine = [r for r in rows if r["server"] == label]
            rps = statistics.median(r["rps"] for r in mine)
            each = ", ".join(f"{r['rps']:.0f}" for r in mine)
            p99 = statistics.median(r["p99_ms"] for r in mine)
            per = statistics.median(r.get("rows_per_predict", float("nan")) for r in mine)
            cpu = statistics.median(r["server_cpu_us"] for r in mine)
            print(
                f"{model:8} {label:29} {c:4} {rps:8.0f} ({each})".ljust(70)
                + f"{rps / rest:6.2f}x {p99:7.2f} {per:13.1f} {cpu:10.0f}"
            )
            if label == "gRPC own front" and c in (16, 64):
                ok &= rps >= rest
    errors = sum(r["errors"] for r in results)
    print(f"bar: own front >= batched REST at 16 and 64, {errors} errors -> "
          f"{'PASS' if ok and not errors else 'MISS'}")  # fmt: skip
    return ok and not errors


TENSOR_SIDES = (8, 64, 256)
TENSOR_CONCURRENCY = (1, 16)


def make_double(root: Path) -> Path:
    """An MLflow pyfunc answering its FP32 tensor `x` doubled, as tensor `y`."""
    import mlflow.pyfunc
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    class Double(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            if isinstance(model_input, dict):  # a named tensor signature's input
                model_input = model_input["x"]
            return np.asarray(model_input, dtype=np.float32) * 2

    spec = TensorSpec(np.dtype(np.float32), (-1, -1))
    signature = ModelSignature(
        Schema([TensorSpec(spec.type, spec.shape, "x")]),
        Schema([TensorSpec(spec.type, spec.shape, "y")]),
    )
    mlflow.pyfunc.save_model(root / "double", python_model=Double(), signature=signature)
    return root / "double"


def tensor_requests(side: int) -> dict[str, dict[str, Any]]:
    """One side x side FP32 tensor in each wire form; label -> path and body of a load spec."""
    import numpy as np
    import tritonclient.http as th

    x = np.random.default_rng(side).random((side, side), dtype=np.float32)
    oip = {"inputs": [{"name": "x", "shape": [side, side], "datatype": "FP32",
                       "data": x.ravel().tolist()}]}  # fmt: skip
    t = th.InferInput("x", [side, side], "FP32")
    t.set_data_from_numpy(x)  # binary, tritonclient's default
    body, json_size = th.InferenceServerClient.generate_request_body([t])
    infer = "/v2/models/double/infer"
    scoring = {"path": "/invocations", "body": json.dumps({"inputs": x.tolist()})}
    return {
        "mlflow REST JSON": scoring,
        "ledgerflow REST JSON": scoring,
        "ledgerflow OIP JSON": {"path": infer, "body": json.dumps(oip)},
        "ledgerflow OIP binary": {
            "path": infer,
            "body_hex": body.hex(),
            "content_type": "application/octet-stream",
            "headers": {"Inference-Header-Content-Length": str(json_size)},
        },
    }


def bench_tensors(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lf-bench-tensors-") as tmp:
        work = Path(tmp)
        folder = make_double(work)
        requests = {side: tensor_requests(side) for side in TENSOR_SIDES}
        for server_name, start in (
            ("mlflow", lambda: start_mlflow(folder, work)),
            ("ledgerflow", lambda: start_ledgerflow(folder, work, 1, None)),
        ):
            server = start()
            try:
                for side in TENSOR_SIDES:
                    for label, request in requests[side].items():
                        if not label.startswith(server_name):
                            continue
                        spec = {"kind": "http", "host": "127.0.0.1", "port": server.port,
                                **request}  # fmt: skip
                        for c in TENSOR_CONCURRENCY:
                            r = run_load(spec, c, args, work)
                            row = {"model": f"{side}x{side}", "server": label, "concurrency": c}
                            results.append({**row, **r})
                            _print_row(results[-1])
            finally:
                server.stop()
    return results


def tensor_summary(results: list[dict[str, Any]]) -> bool:
    """Each case against OIP JSON and MLflow, and whether binary beats OIP JSON everywhere."""
    ok = True
    print("\ntensor   server                   conc    req/s  x OIP JSON  x mlflow   p99 ms")

    def base(r: dict[str, Any], server: str) -> dict[str, Any]:
        return next(
            b for b in results
            if b["model"] == r["model"] and b["server"] == server
            and b["concurrency"] == r["concurrency"]
        )  # fmt: skip

    for r in results:
        oip, mlflow = base(r, "ledgerflow OIP JSON"), base(r, "mlflow REST JSON")
        print(
            f"{r['model']:8} {r['server']:24} {r['concurrency']:4} {r['rps']:8.0f} "
            f"{r['rps'] / oip['rps']:10.2f}x {r['rps'] / mlflow['rps']:8.2f}x {r['p99_ms']:8.2f}"
        )
        if r["server"] == "ledgerflow OIP binary":
            ok &= r["rps"] > oip["rps"]
    errors = sum(r["errors"] for r in results)
    print(
        f"bar: OIP binary beats OIP JSON at every size, {errors} errors -> "
        f"{'PASS' if ok and not errors else 'MISS'}"
    )
    ok &= not errors
    return ok


def _print_row(r: dict[str, Any]) -> None:
    print(
        f"  {r['model']:8} {r['server']:25} c={r['concurrency']:<3} {r['rps']:9.0f} req/s  "
        f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}  "
        f"rows/predict {r.get('rows_per_predict', float('nan')):.1f}",
        flush=True,
    )


def summary(results: list[dict[str, Any]]) -> bool:
    """The comparison table against MLflow, and whether the bar holds for every model."""
    ok = True
    print(
        "\nmodel    server                    conc    req/s  x mlflow   p50 ms   p99 ms  p99/mlflow"
        "  rows/predict  server us  client us"
    )
    for r in results:
        base = next(
            b for b in results
            if b["model"] == r["model"] and b["server"] == "mlflow REST"
            and b["concurrency"] == r["concurrency"]
        )  # fmt: skip
        nan = float("nan")
        print(
            f"{r['model']:8} {r['server']:25} {r['concurrency']:4} {r['rps']:8.0f} "
            f"{r['rps'] / base['rps']:8.1f}x {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
            f"{r['p99_ms'] / base['p99_ms']:10.2f} {r.get('rows_per_predict', nan):13.1f} "
            f"{r.get('server_cpu_us', nan):10.0f} {r.get('client_cpu_us', nan):10.0f}"
        )
    for model in sorted({r["model"] for r in results}):
        at16 = [r for r in results if r["model"] == model and r["concurrency"] == 16]
        base = next(r for r in at16 if r["server"] == "mlflow REST")
        best = max((r for r in at16 if r["server"] != "mlflow REST"), key=lambda r: r["rps"])
        passed = best["rps"] >= 3 * base["rps"] and best["p99_ms"] <= base["p99_ms"] / 2
        ok &= passed
        print(
            f"bar {model} at c=16: {best['server']} {best['rps'] / base['rps']:.1f}x throughput, "
            f"p99 {best['p99_ms'] / base['p99_ms']:.2f} of MLflow's -> "
            f"{'PASS' if passed else 'MISS'}"
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter measurements")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", choices=["sklearn", "pytorch"], help="one model")
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--tensors", action="store_true", help="JSON vs binary OIP tensors")
    parser.add_argument("--fronts", action="store_true", help="gRPC fronts vs batched REST")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --fronts")
    parser.add_argument("--grpcio-client", action="store_true", help="--fronts: also grpcio")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duration is None:
        args.duration = 1.5 if args.quick else 4.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if args.load:
        load_main(args)
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    start = time.monotonic()
    if args.tensors:
        results = bench_tensors(args)
        ok = tensor_summary(results)
    elif args.fronts:
        results = bench_fronts(args)
        ok = fronts_summary(results)
    else:
        results = bench(args)
        ok = summary(results)
    print(f"total {time.monotonic() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
