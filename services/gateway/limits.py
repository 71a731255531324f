"""Limits that keep one caller from exhausting the gateway: request body sizes (a clear
413) and, with auth on, per-principal rates of writes and of ingested events (a 429 with
`Retry-After`).

Body limits hold with auth off too: a body is refused from its `Content-Length` before
it is read, and a body sent without one is counted as it streams in. Artifact uploads
through the gateway stream to the store and have no limit here.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledgerflow.events.errors import LedgerflowError, RateLimited

__all__ = ["BodyLimit", "RateLimited", "RateLimiter", "Rates", "TooLarge", "body_limit"]
from ledgerflow.events.settings import Settings

MiB = 1 << 20
_UNLIMITED = re.compile(
    r"^/api/(v1/runs/[^/]+/artifacts/content/|2\.0/mlflow-artifacts/artifacts/)"
)  # artifact uploads: streamed to the store, never held whole
_INGEST = "/api/v1/events"


class TooLarge(LedgerflowError):
    code = "REQUEST_TOO_LARGE"


def body_limit(method: str, path: str, *, default: int, ingest: int) -> int | None:
    """The most bytes a request's body may have (None: no limit)."""
    if not path.startswith("/api/") or _UNLIMITED.match(path):
        return None  # model replicas beside the API answer for their own inputs
    return ingest if path == _INGEST else default


def _answer(status: int, error: LedgerflowError, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps({"error_code": error.code, "message": error.message, "field": None})
    raw_headers = [(b"content-type", b"application/json")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return body.encode(), raw_headers, status


class BodyLimit:
    """ASGI middleware: 413 for a body over its route's limit."""

    def __init__(self, app: Any, limit_for: Callable[[str, str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, int(declared), limit)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # a server reads no more than declared
            return
        # No Content-Length (chunked): read the body first, up to the limit, then hand it
        # on; a JSON body is read whole by the route anyway.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > limit:
                await self._refuse(send, seen, limit)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    @staticmethod
    async def _refuse(send: Any, size: int, limit: int) -> None:
        error = TooLarge(
            f"the request body is over {limit // MiB if limit >= MiB else limit} "
            f"{'MiB' if limit >= MiB else 'bytes'} ({size} bytes or more); split it "
            "(ingest smaller batches) or raise LEDGERFLOW_MAX_REQUEST_MB / _MAX_INGEST_MB"
        )
        body, headers, status = _answer(413, error)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Token buckets per key: `rate` tokens a second, holding at most `burst`."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, n: float = 1.0, *, what: str = "requests") -> None:
        """Take `n` tokens for `key`, or raise RateLimited saying when to come back."""
        if self.rate <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if n > tokens:
                self._buckets[key] = (tokens, now)
                wait = (n - tokens) / self.rate
                raise RateLimited(
                    f"{key} is over its limit of {self.rate:g} {what} a second; "
                    f"retry in {math.ceil(wait)} s",
                    retry_after_s=wait,
                )
            self._buckets[key] = (tokens - n, now)
            if len(self._buckets) > 100_000:  # forget idle keys rather than grow forever
                self._buckets = {
                    k: v for k, v in self._buckets.items() if now - v[1] < self.burst / self.rate
                }


@dataclass(frozen=True)
class Rates:
    """The per-user buckets with auth on: writes (every REST request but a read or ingest,
    every gRPC `Execute`) and ingested events (REST and gRPC ingest). One process shares
    one `Rates` between its REST app and its gRPC service, so a caller gets the same rate
    whichever it uses."""

    writes: RateLimiter
    ingest: RateLimiter

    @classmethod
    def of(cls, settings: Settings) -> Rates:
        writes, events = settings.rate_limit_writes, settings.rate_limit_ingest_events
        return cls(RateLimiter(writes, max(1, 2 * writes)), RateLimiter(events, max(1, 2 * events)))
