"""Server-Sent Events on the client side: a parser that follows the HTML spec's rules,
and one streaming GET read by a background thread.

The parser (https://html.spec.whatwg.org/multipage/server-sent-events.html, "Event
stream interpretation"): `data:` lines are joined with newlines, `event:` names
the type ("message" when absent), `id:` sets the last event id, which carries
over to later messages, `retry:` the reconnection delay; comment lines (`:`) are
ignored and a blank line dispatches. Fields the spec does not name are ignored
by browsers; the parser keeps them in `fields`, since the gateway puts an
event's `position` and `partition` there.

The reader thread exists so that a consumer can wait with a timeout, and so
notice a stop request at once, while the socket is quiet between heartbeats.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledgerflow.events.errors import LedgerflowError
from ledgerflow.remote.http import error_from
from ledgerflow.remote.tls import Verify


@dataclass(frozen=True, slots=True)
class SSEEvent:
    type: str
    data: str
    id: str | None
    fields: Mapping[str, str] = field(default_factory=dict)


class SSEParser:
    """Turns the lines of an event stream, fed one at a time, into events."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._data: list[str] = []
        self._type = ""
        self._fields: dict[str, str] = {}
        self._first = True

    def feed(self, line: str) -> SSEEvent | None:
        """Take one line (without its line ending); an event when the line ends one."""
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry_ms = int(value)
        else:
            self._fields[name] = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, type_, fields = self._data, self._type, self._fields
        self._data, self._type, self._fields = [], "", {}
        if not data:  # the spec dispatches nothing without data
            return None
        return SSEEvent(type_ or "message", "\n".join(data), self.last_id, fields)


@dataclass(frozen=True, slots=True)
class Opened:
    """The gateway accepted the request and the stream has started."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The stream is over: refused with an HTTP error, or the connection went away."""

    reason: str
    error: LedgerflowError | None = None
    """The gateway's error, when it refused the request."""
    status: int | None = None
    cause: Exception | None = None
    """A transport error (the connection could not be made, or dropped)."""


Got = SSEEvent | Opened | Closed


class EventStream:
    """One `GET` of an event stream: a daemon thread reads it into a bounded queue
    (a slow consumer slows the socket, and the gateway ends a subscriber that stays
    behind), the consumer takes from the queue with a timeout. `auth` adds the caller's
    credentials to the request; `refused` turns an error answer into the exception."""

    def __init__(
        self,
        url: str,
        params: Mapping[str, str | Sequence[str]],
        *,
        timeout: httpx.Timeout,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        verify: Verify = True,
        refused: Callable[[httpx.Response, str], LedgerflowError] = error_from,
        queue_size: int = 1000,
    ) -> None:
        self.url = url
        self._params = dict(params)
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        self._timeout = timeout
        self._auth = auth
        self._verify = verify
        self._refused = refused
        self._queue: queue.Queue[Got] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._network: Any = None
        self._thread = threading.Thread(target=self._read, name="ledgerflow-sse", daemon=True)

    def start(self) -> EventStream:
        self._thread.start()
        return self

    def next(self, timeout: float) -> Got | None:
        """What came next, or None when nothing did within `timeout` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop reading; returns at once. Shutting the socket down wakes the reader
        thread even while it waits for the next line."""
        self._closing.set()
        network = self._network
        sock = network.get_extra_info("socket") if network is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _put(self, got: Got) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put(got, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            with (
                httpx.Client(timeout=self._timeout, auth=self._auth, verify=self._verify) as client,
                client.stream("GET", self.url, params=self._params, headers=self._headers) as r,
            ):
                if r.status_code >= 400:
                    r.read()
                    error = self._refused(r, f"GET {self.url}")
                    self._put(Closed(error.message, error=error, status=r.status_code))
                    return
                self._network = r.extensions.get("network_stream")
                if self._closing.is_set() or not self._put(Opened()):
                    return
                parser = SSEParser()
                for line in r.iter_lines():
                    event = parser.feed(line)
                    if event is not None and not self._put(event):
                        return
            self._put(Closed("the gateway ended the stream"))
        except httpx.TransportError as e:
            if not self._closing.is_set():
                self._put(Closed(str(e) or type(e).__name__, cause=e))
        except Exception as e:  # never die silently: the consumer decides
            self._put(Closed(f"reading the event stream failed: {e!r}", cause=e))
