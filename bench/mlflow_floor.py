"""The fastest MLflow tracking server there can be, for `bench/mlflow_api.py`'s floor.

It does no work for a write: every write gets a canned answer that MLflow's client
accepts (an experiment id for `experiments/create`, a run for `runs/create`, `{}` for the
rest). A read is sent once to UPSTREAM (the `ledgerflow server` the bench measured) and its
answer kept: the bench's untimed warm-up call fills it, and the timed calls get the same
bytes back from memory. So against this server each phase times only what MLflow's client
and HTTP cost (for reads: parsing the very answers Ledgerflow gave), which no server can
take away; `MLflow's time / this time` is the best ratio any server could reach.

    .venv/bin/python bench/mlflow_floor.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_RUN = {
    "info": {
        "run_id": "0" * 32,
        "run_uuid": "0" * 32,
        "experiment_id": "1",
        "run_name": "floor",
        "user_id": "floor",
        "status": "RUNNING",
        "start_time": 1_700_000_000_000,
        "artifact_uri": "mlflow-artifacts:/1/0/artifacts",
        "lifecycle_stage": "active",
    },
    "data": {},
    "inputs": {},
}
_ANSWERS = {
    "/experiments/create": json.dumps({"experiment_id": "1"}).encode(),
    "/runs/create": json.dumps({"run": _RUN}).encode(),
}
_EMPTY = b"{}"
_READS = ("/runs/search", "/metrics/get-history", "/runs/get", "/experiments/get")
_kept: dict[tuple[str, str, bytes, bytes], tuple[int, bytes]] = {}
_upstream: Any = None  # an httpx.AsyncClient on UPSTREAM, made by __main__


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    path: str = scope["path"]
    call = path[path.find("/", len("/api/2.0/")) :]
    status = 200
    if path == "/health":
        body = b"OK"
    elif call in _READS:
        status, body = await _read(scope["method"], path, scope["query_string"], raw)
    else:
        body = _ANSWERS.get(call, _EMPTY)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _read(method: str, path: str, query: bytes, raw: bytes) -> tuple[int, bytes]:
    key = (method, path, query, raw)
    if key not in _kept:
        answer = await _upstream.request(
            method, path + ("?" + query.decode() if query else ""), content=raw,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        _kept[key] = (answer.status_code, answer.content)
    return _kept[key]


if __name__ == "__main__":
    import httpx
    import uvicorn

    _upstream = httpx.AsyncClient(base_url=sys.argv[2], timeout=300)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
