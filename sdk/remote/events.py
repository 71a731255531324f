"""`subscribe` over the gateway: the log's events as the embedded log yields them,
read from the gateway's Server-Sent Events (`GET /api/v1/events/stream`).

Every message carries the resume token just after its event; the subscription
keeps the last one and, when the connection drops, the gateway restarts, or the
gateway ends a subscriber that fell behind (`subscription.ended`), reconnects
after it with growing pauses. Tokens are checkpoints, so a reconnect neither
repeats nor skips an event (an item the checkpoint already includes is dropped,
should a gateway send one anyway).

`follow=False` reads up to the head of the log as of the call: the head token
is passed as `until`, and the gateway ends the stream once it is reached, even
when the last events there are of types the filter leaves out.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import httpx

from ledgerflow.events.codec import decode
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import CorruptEvent, LedgerflowError, Unavailable
from ledgerflow.events.log import After, Checkpoint, CorruptRecord, Item
from ledgerflow.remote.sse import Closed, EventStream, Opened, SSEEvent

if TYPE_CHECKING:
    from ledgerflow.remote.channel import Channel
    from ledgerflow.remote.http import GatewayHTTP

log = logging.getLogger("ledgerflow")

STREAM_PATH = "/api/v1/events/stream"
HEAD_PATH = "/api/v1/events/head"
ENDED = "subscription.ended"
CAUGHT_UP = "subscription.caught_up"
READ_TIMEOUT_S = 60.0
"""A stream silent this long (the gateway's heartbeats come every 15 s) is taken as
dead and reconnected."""
CONNECT_TIMEOUT_S = 5.0
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 5.0
FIRST_ATTEMPTS = 4
"""Tries at the first connection before the gateway counts as unreachable; once a
subscription has been connected it reconnects for as long as it is followed."""
HEALTHY_S = 5.0
"""A connection that lasted this long was fine: reconnect after it without delay."""


class RemoteLog:
    """The part of the event log the SDK uses over a gateway: `subscribe` and `head`."""

    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    @property
    def url(self) -> str:
        return self._ch.http.base_url

    def head(self) -> Checkpoint:
        """The token of the log's current end, as the gateway sees it."""
        doc = self._ch.call("GET", "/events/head", flush=False)
        return Checkpoint.parse(str(doc["token"]))

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]:
        """Replay from `after` (None: the start; "latest": new events only; a Checkpoint
        or its token), then follow new events until `stop` is set, or with follow=False
        stop at the head as of the call. This process's spooled events are shipped
        first, so it sees its own. `idle_wait` bounds how long `stop` may go unnoticed."""
        self._ch.shipper.flush()
        start = self.head() if after == "latest" else Checkpoint.coerce(after)
        until = None if follow else self.head()
        patterns = [t for t in types or [] if t]
        follower = _Follower(self._ch.http, start, patterns, until, stop, idle_wait)
        yield from follower.items()


class _Follower:
    """One subscription across however many connections it takes: where it is (the
    checkpoint), where it stops (`until`), and how long to wait before reconnecting."""

    def __init__(
        self,
        http: GatewayHTTP,
        start: Checkpoint,
        types: list[str],
        until: Checkpoint | None,
        stop: threading.Event | None,
        idle_wait: float,
    ) -> None:
        self.http = http
        self.base_url = http.base_url
        self.checkpoint = start
        self.types = types
        self.until = until
        self.stop = stop or threading.Event()
        self.poll = min(max(idle_wait, 0.01), 0.2)
        self.pause = 0.0
        self.connected = False
        self.opened_at: float | None = None
        self.failures = 0
        self.down_since: float | None = None

    def _params(self) -> dict[str, str | Sequence[str]]:
        params: dict[str, str | Sequence[str]] = {"after": self.checkpoint.encode()}
        if self.types:
            params["types"] = self.types
        if self.until is not None:
            params["until"] = self.until.encode()
        return params

    def _done(self) -> bool:
        return self.until is not None and self.checkpoint.covers(self.until)

    def items(self) -> Iterator[Item]:
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        while not self.stop.is_set() and not self._done():
            if self.pause and self.stop.wait(self.pause):
                return
            stream = EventStream(
                self.base_url + STREAM_PATH,
                self._params(),
                timeout=timeout,
                auth=self.http.credentials,
                verify=self.http.verify,
                refused=self.http.error,
            )
            stream.start()
            try:
                while not self.stop.is_set():
                    got = stream.next(self.poll)
                    if got is None:
                        continue
                    if isinstance(got, Opened):
                        self._up()
                    elif isinstance(got, Closed):
                        self._lost(got)
                        break
                    elif got.type == CAUGHT_UP:
                        return
                    elif got.type == ENDED:
                        self._ended(got)
                        break
                    else:
                        item = self._item(got)
                        if item is not None:
                            yield item
                            if self._done():
                                return
            finally:
                stream.close()

    def _item(self, got: SSEEvent) -> Item | None:
        """The event a message carries, None if the checkpoint already has it."""
        if got.id is None:
            raise Unavailable(
                f"{self.base_url} sent an event without a resume token (an `id:` line); "
                "is it a Ledgerflow gateway?"
            )
        token = Checkpoint.parse(got.id)
        partition = got.fields.get("partition", "")
        raw = got.fields.get("position")
        position = int(raw) if raw is not None and raw.lstrip("-").isdigit() else None
        if position is None:  # an older gateway: the token holds the event's own position
            position = token.get(partition)
        if position is None:
            raise Unavailable(
                f"{self.base_url} sent {got.type} without its position in the log "
                f"(token {got.id!r})"
            )
        item = _decode(got, position, partition)
        seen = self.checkpoint.includes(item)
        self.checkpoint = self.checkpoint.union(token)
        self.pause = 0.0
        return None if seen else item

    def _up(self) -> None:
        self.connected = True
        self.opened_at = time.monotonic()
        self.failures = 0
        if self.down_since is not None:
            log.warning(
                "ledgerflow: event stream from %s is back after %.0f s; resuming after %r",
                self.base_url,
                time.monotonic() - self.down_since,
                self.checkpoint.encode(),
            )
            self.down_since = None

    def _ended(self, got: SSEEvent) -> None:
        """The gateway ended the subscription (it fell behind, or the gateway's log
        failed); it says where to resume."""
        try:
            body = json.loads(got.data)
            token = Checkpoint.parse(str(body["token"]))
        except (ValueError, KeyError, TypeError, LedgerflowError):
            raise Unavailable(
                f"{self.base_url} ended the event stream without a usable resume token: "
                f"{got.data[:200]!r}"
            ) from None
        self.checkpoint = self.checkpoint.union(token)
        code = body.get("error_code")
        if code == "SUBSCRIBER_TOO_SLOW":
            log.info("ledgerflow: %s", body.get("message"))
            self.pause = 0.0
        else:
            log.warning("ledgerflow: the gateway ended the event stream: %s", body.get("message"))
            self._grow_pause()

    def _lost(self, got: Closed) -> None:
        """The request was refused or the connection went away: raise what retrying
        cannot fix, otherwise pause (longer each time) and reconnect."""
        error = got.error
        if error is not None and got.status is not None and got.status < 500:
            if got.status == 404:
                raise Unavailable(
                    f"{self.base_url} serves no event stream ({STREAM_PATH} is not found): "
                    "is it a Ledgerflow gateway of this version, started with "
                    "`ledgerflow gateway` or `ledgerflow server`?"
                )
            raise error
        self.failures += 1
        if not self.connected and self.failures >= FIRST_ATTEMPTS:
            if got.error is not None:
                raise got.error
            raise Unavailable(
                f"cannot reach the Ledgerflow gateway at {self.base_url} ({got.reason}); is "
                "`ledgerflow gateway` running there, and is LEDGERFLOW_TRACKING_URI right?"
            )
        if self.connected and self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "ledgerflow: lost the event stream from %s (%s); reconnecting after %r",
                self.base_url,
                got.reason,
                self.checkpoint.encode(),
            )
        self._grow_pause()

    def _grow_pause(self) -> None:
        opened, self.opened_at = self.opened_at, None
        if opened is not None and time.monotonic() - opened > HEALTHY_S:
            self.pause = 0.0
        self.pause = min(max(self.pause * 2, FIRST_PAUSE_S), MAX_PAUSE_S)


def _decode(got: SSEEvent, position: int, partition: str) -> Item:
    """A `Recorded` event, or a `CorruptRecord` for one the gateway could not decode (it
    sends its envelope, raw data and `corrupt` reason) or this process cannot."""
    try:
        doc = json.loads(got.data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "corrupt" not in doc:
        try:
            return Recorded(position, decode(got.data), partition)
        except CorruptEvent as e:
            reason = e.message
    elif isinstance(doc, dict):
        reason = str(doc["corrupt"])
    else:
        reason = "the gateway sent data that is not a JSON object"
        doc = {}
    data = doc.get("data")
    return CorruptRecord(
        position=position,
        id=str(doc.get("id", "")),
        type=str(doc.get("type", got.type)),
        stream=str(doc.get("stream", "")),
        data=data if isinstance(data, str) else json.dumps(data),
        reason=reason,
        partition=partition,
    )
