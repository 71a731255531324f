"""OIP JSON against OIP binary tensors in process: raw ASGI calls into `ledgerflow serve`'s app
(no sockets, no client), the two forms interleaved in 20 rounds, medians per request.

    .venv/bin/python bench/oip_inprocess.py               # 4,000 requests per form and size
    .venv/bin/python bench/oip_inprocess.py --sides 8 --requests 10000

The model and the request bodies are bench/serving.py's `--tensors` ones (a pyfunc doubling an
FP32 tensor; binary bodies built by tritonclient's `generate_request_body`). At small sizes the
framework and the predict dominate, so what differs between the forms is small next to the
noise of a shared machine: compare the rounds each form wins, not one run's means.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from serving import make_double, tensor_requests

ROUNDS = 20
PATH = "/v2/models/double/infer"


async def call(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"bench"), (b"content-length", str(len(body)).encode()), *headers],
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"status {sent[0]['status']}: {sent[1:]}")


def forms(side: int) -> dict[str, tuple[bytes, list[tuple[bytes, bytes]]]]:
    specs = tensor_requests(side)
    json_spec, binary = specs["ledgerflow OIP JSON"], specs["ledgerflow OIP binary"]
    length = binary["headers"]["Inference-Header-Content-Length"].encode()
    return {
        "json": (json_spec["body"].encode(), [(b"content-type", b"application/json")]),
        "binary": (
            bytes.fromhex(binary["body_hex"]),
            [(b"content-type", b"application/octet-stream"),
             (b"inference-header-content-length", length)],
        ),
    }  # fmt: skip


async def main(sides: list[int], requests: int) -> None:
    from ledgerflow.services.serving.app import create_app
    from ledgerflow.services.serving.loading import load
    from ledgerflow.services.serving.repository import ModelRepository

    with tempfile.TemporaryDirectory(prefix="lf-bench-oip-") as tmp:
        loaded = load(str(make_double(Path(tmp))), name="double")
        repository = ModelRepository()
        served = repository.add(loaded.name, loaded.predictor, version=loaded.version)
        await served.warm()
        app = create_app(repository)
        for side in sides:
            bodies = forms(side)
            per_round = max(requests // ROUNDS // (1 if side < 256 else 10), 10)
            for body, headers in bodies.values():
                for _ in range(200):
                    await call(app, body, headers)
            us: dict[str, list[float]] = {k: [] for k in bodies}
            for r in range(ROUNDS):
                for k in list(bodies) if r % 2 == 0 else list(bodies)[::-1]:
                    start = time.perf_counter()
                    for _ in range(per_round):
                        await call(app, *bodies[k])
                    us[k].append((time.perf_counter() - start) / per_round * 1e6)
            wins = sum(b < j for b, j in zip(us["binary"], us["json"], strict=True))
            j, b = statistics.median(us["json"]), statistics.median(us["binary"])
            print(
                f"{side}x{side}: OIP JSON {j:.1f} us, OIP binary {b:.1f} us per request "
                f"(medians of {ROUNDS} rounds of {per_round}); binary {j / b:.3f}x, "
                f"faster in {wins}/{ROUNDS} rounds",
                flush=True,
            )
        await repository.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sides", default="8,64,256", help="tensor sides, comma-separated")
    parser.add_argument("--requests", type=int, default=4000, help="per form and size")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sides.split(",")], args.requests))
