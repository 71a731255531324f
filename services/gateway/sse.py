"""Event subscriptions over HTTP as Server-Sent Events.

`GET /api/v1/events/stream?types=run.*&after=TOKEN` replays the log after
TOKEN and then follows it. Each event is one message: `id:` is the resume token
just after it, `event:` its type, `data:` the event as JSON. A browser's
`EventSource` resends the last id as `Last-Event-ID` when it reconnects, so
resuming needs nothing from the client; other clients pass the header or
`after=`. Comment lines go out every `heartbeat_s` so proxies keep an idle
stream open and a vanished client is noticed. If a subscriber falls too far
behind, the stream ends with a `subscription.ended` message naming the reason
and the token to resume from.

`GET /api/v1/events/head` gives the token of the log's current end: subscribe
with it to get only what happens from now on (or pass `after=latest`).
"""

# No `from __future__ import annotations`: FastAPI reads the route's annotations, and
# those name `get_hub` / `get_backend` from this function's closure.
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.hub import Delivery, Hub, Subscription
from ledgerflow.services.gateway.items import item_json

HEARTBEAT_S = 15.0
RETRY_MS = 2000
"""How long a browser waits before reconnecting a dropped stream (the `retry:` field)."""


def make_router(
    get_backend: Callable[..., Backend],
    get_hub: Callable[..., Hub],
    *,
    heartbeat_s: float = HEARTBEAT_S,
) -> APIRouter:
    """The event-stream routes; `get_backend` and `get_hub` are FastAPI dependencies."""
    router = APIRouter(tags=["events"])

    @router.get("/api/v1/events/stream", response_class=StreamingResponse)
    async def stream(
        hub: Annotated[Hub, Depends(get_hub)],
        types: Annotated[
            list[str] | None,
            Query(description="event type globs, e.g. run.* (repeat, or separate by commas)"),
        ] = None,
        after: Annotated[
            str | None,
            Query(description="resume token; empty or absent: from the start; latest: new only"),
        ] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        # A reconnecting EventSource keeps its original URL and adds Last-Event-ID.
        start = last_event_id if last_event_id is not None else after
        patterns = [t for part in types or [] for t in part.split(",")]
        try:
            sub = await run_in_threadpool(hub.subscribe, start or None, patterns or None)
        except LedgerflowError as e:
            raise _http_error(e) from None
        return StreamingResponse(
            _messages(sub, heartbeat_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/api/v1/events/head")
    def head(backend: Annotated[Backend, Depends(get_backend)]) -> dict[str, str]:
        """The token of the log's current end (empty for an empty log)."""
        try:
            return {"token": backend.log.head().encode()}
        except LedgerflowError as e:
            raise _http_error(e) from None

    return router


async def _messages(sub: Subscription, heartbeat_s: float) -> AsyncIterator[str]:
    """The SSE body. Ends, closing the subscription, when the client goes away (the
    server cancels this generator, or the next write fails) or the hub closes."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        quiet_since = time.monotonic()
        while not sub.closed:
            wait = max(0.05, min(1.0, heartbeat_s - (time.monotonic() - quiet_since)))
            try:
                got = await anyio.to_thread.run_sync(sub.next, wait, abandon_on_cancel=True)
            except LedgerflowError as e:
                yield _ended(e, sub)
                return
            if got is not None:
                yield event_message(got)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= heartbeat_s:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
    finally:
        sub.close()


def event_message(got: Delivery) -> str:
    lines = [f"id: {got.token}", f"event: {got.type}"]
    lines += [f"data: {line}" for line in item_json(got.item).split("\n")]
    return "\n".join(lines) + "\n\n"


def _ended(error: LedgerflowError, sub: Subscription) -> str:
    token = str(getattr(error, "token", sub.checkpoint.encode()))
    body = {"error_code": error.code, "message": error.message, "token": token}
    return f"event: subscription.ended\ndata: {json.dumps(body)}\n\n"


def _http_error(error: LedgerflowError) -> HTTPException:
    status = 400 if isinstance(error, InvalidInput) else 404 if isinstance(error, NotFound) else 503
    detail: dict[str, Any] = {"error_code": error.code, "message": error.message}
    return HTTPException(status_code=status, detail=detail)
