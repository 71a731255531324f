"""Event subscriptions over HTTP as Server-Sent Events.

`GET /api/v1/events/stream?types=run.*&after=TOKEN` replays the log after
TOKEN and then follows it. Each event is one message: `id:` is the resume token
just after it, `event:` its type, `data:` the event as JSON. A browser's
`EventSource` resends the last id as `Last-Event-ID` when it reconnects, so
resuming needs nothing from the client; other clients pass the header or
`after=`. Each event message also has `position:` (and, on a log with several
partitions, `partition:`) fields: where the event is stored, as gRPC's
`EventMessage` gives it; SSE clients ignore fields they do not know. Comment
lines go out every `heartbeat_s` so proxies keep an idle stream open and a
vanished client is noticed. If a subscriber falls too far behind, the stream
ends with a `subscription.ended` message naming the reason and the token to
resume from.

`GET /api/v1/events/head` gives the token of the log's current end: subscribe
with it to get only what happens from now on (or pass `after=latest`). Pass it
as `until=` to read up to there and stop: once everything up to it has been
delivered, the stream ends with a `subscription.caught_up` message.
"""

# No `from __future__ import annotations`: FastAPI reads the route's annotations, and
# those name `get_hub` / `get_backend` from this function's closure.
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ledgerflow.events.as_of import FORMS, PATTERN, AsOf
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import InvalidInput, LedgerflowError
from ledgerflow.events.log import Checkpoint
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.auth.visibility import visible
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import PrincipalDep, checked
from ledgerflow.services.gateway.errors import error_response
from ledgerflow.services.gateway.hub import Delivery, Hub, Subscription
from ledgerflow.services.gateway.items import item_json
from ledgerflow.services.gateway.stream_guard import StreamGuard

HEARTBEAT_S = 15.0
CAUGHT_UP_WAIT_S = 0.2
"""With `until`, how often a quiet stream checks whether it has got there."""
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

    @router.get(
        "/api/v1/events/stream",
        response_class=StreamingResponse,
        dependencies=[checked("any identity; only events on what the caller may READ")],
    )
    async def stream(
        request: Request,
        hub: Annotated[Hub, Depends(get_hub)],
        backend: Annotated[Backend, Depends(get_backend)],
        principal: PrincipalDep,
        types: Annotated[
            list[str] | None,
            Query(description="event type globs, e.g. run.* (repeat, or separate by commas)"),
        ] = None,
        after: Annotated[
            str | None,
            Query(description="resume token; empty or absent: from the start; latest: new only"),
        ] = None,
        until: Annotated[
            str | None,
            Query(
                description="a token (e.g. from /events/head): end the stream with a "
                "subscription.caught_up message once everything up to it is delivered"
            ),
        ] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> Response:
        # A reconnecting EventSource keeps its original URL and adds Last-Event-ID.
        start = last_event_id if last_event_id is not None else after
        patterns = [t for part in types or [] for t in part.split(",")]
        try:
            end = None if until is None else await run_in_threadpool(_until, hub, until)
            sub = await run_in_threadpool(hub.subscribe, start or None, patterns or None)
        except LedgerflowError as e:  # answered as every route's errors are
            return error_response(e)
        return StreamingResponse(
            _messages(
                sub,
                heartbeat_s,
                end,
                shown_to(backend, principal),
                StreamGuard(backend, principal, request.headers.get("authorization")),
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get(
        "/api/v1/events/head",
        dependencies=[checked("any identity")],
        response_model=dict[str, str],
    )
    def head(
        backend: Annotated[Backend, Depends(get_backend)],
        as_of: Annotated[
            str | None,
            Query(
                description=f"where the log stood at this point instead: {FORMS}",
                json_schema_extra={"pattern": PATTERN},
            ),
        ] = None,
    ) -> Any:
        """The token of the log's current end (empty for an empty log), or of where it
        stood at `as_of` (a time; a position is checked and given back)."""
        try:
            if as_of is not None:
                return {"token": backend.time_travel.resolve(AsOf.parse(as_of)).encode()}
            return {"token": backend.log.head().encode()}
        except LedgerflowError as e:
            return error_response(e)

    return router


def _until(hub: Hub, token: str) -> Checkpoint:
    """The `until` token, refused if it is past the log's end (it would never be reached)."""
    try:
        end = Checkpoint.parse(token)
    except InvalidInput as e:
        raise InvalidInput(e.message, field="until") from None
    head = hub.log.head()
    if not head.covers(end):
        raise InvalidInput(
            f"until={token!r} is past the end of this event log (its head is "
            f"{head.encode() or 'empty'!r}); take it from /api/v1/events/head",
            field="until",
        )
    return end


def shown_to(backend: Backend, principal: Principal) -> Callable[[Delivery], bool]:
    """Which deliveries `principal` sees (all of them with auth off)."""
    if not backend.settings.auth or principal.admin:
        return lambda _got: True
    authorizer = backend.authorizer

    def show(got: Delivery) -> bool:
        item = got.item
        return isinstance(item, Recorded) and visible(authorizer, principal, item.event)

    return show


async def _messages(
    sub: Subscription,
    heartbeat_s: float,
    until: Checkpoint | None = None,
    show: Callable[[Delivery], bool] = lambda _got: True,
    guard: StreamGuard | None = None,
) -> AsyncIterator[str]:
    """The SSE body. Ends, closing the subscription, when the client goes away (the
    server cancels this generator, or the next write fails), the hub closes, the
    subscriber has got `until`, or `guard` finds its credentials no longer good."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        quiet_since = time.monotonic()
        while not sub.closed:
            if until is not None and sub.checkpoint.covers(until):
                yield _caught_up(sub)
                return
            if guard is not None and guard.due():  # checked while busy and while idle
                try:
                    await anyio.to_thread.run_sync(guard.check)
                except LedgerflowError as e:
                    yield _ended(e, sub)
                    return
            wait = max(0.05, min(1.0, heartbeat_s - (time.monotonic() - quiet_since)))
            if until is not None:
                wait = min(wait, CAUGHT_UP_WAIT_S)
            try:
                got = await anyio.to_thread.run_sync(sub.next, wait, abandon_on_cancel=True)
            except LedgerflowError as e:
                yield _ended(e, sub)
                return
            if got is not None and show(got):
                yield event_message(got)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= heartbeat_s:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
    finally:
        sub.close()


def event_message(got: Delivery) -> str:
    lines = [f"id: {got.token}", f"event: {got.type}", f"position: {got.item.position}"]
    if got.item.partition:
        lines.append(f"partition: {got.item.partition}")
    lines += [f"data: {line}" for line in item_json(got.item).split("\n")]
    return "\n".join(lines) + "\n\n"


def _ended(error: LedgerflowError, sub: Subscription) -> str:
    token = str(getattr(error, "token", sub.checkpoint.encode()))
    body = {"error_code": error.code, "message": error.message, "token": token}
    return f"event: subscription.ended\ndata: {json.dumps(body)}\n\n"


def _caught_up(sub: Subscription) -> str:
    token = sub.checkpoint.encode()
    return f"id: {token}\nevent: subscription.caught_up\ndata: {json.dumps({'token': token})}\n\n"
