"""How the remote services reach the gateway: straight calls, and the spool.

Calls that need an answer go straight to the gateway, after shipping what this
process spooled (so the gateway has seen every earlier write of ours, in
order). Logging calls only append to the spool, which never waits on the
network. A call that can do without an answer now (starting a run, uploading
artifacts) is tried once, at once (`at_once`), and deferred into the spool
(`defer`) when the gateway cannot be reached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ledgerflow.events.as_of import read_only
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import Unavailable
from ledgerflow.events.payloads import Payload
from ledgerflow.remote.http import API, GatewayHTTP, segment
from ledgerflow.remote.pending import Entry
from ledgerflow.remote.shipper import Shipper

READ_POSTS = ("/search", "/download-urls", "/metrics/series")
"""The POST routes that only read (their question does not fit in a query string)."""


class Channel:
    def __init__(self, http: GatewayHTTP, shipper: Shipper) -> None:
        self.http = http
        self.shipper = shipper

    def call(
        self,
        method: str,
        path: str,
        *,
        actor: str | None = None,
        flush: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Ship our spool (unless flush=False), then send `method path` under /api/v1. A
        command waits out an unreachable gateway for a while (`GatewayHTTP.patiently`);
        a read fails at once."""
        with self.http.patiently(not _reads(method, path)):
            if flush:
                self.shipper.flush()
            return self.http.request(method, API + path, actor=actor, **kwargs)

    def spool(self, payloads: Sequence[Payload], actor: str) -> None:
        self.shipper.append([Event.of(p, actor=actor) for p in payloads])

    @contextlib.contextmanager
    def at_once(self) -> Iterator[GatewayHTTP]:
        """For calls the caller can defer into the spool: Unavailable straight away while
        the gateway is known to be down; otherwise ship our spool, trying each call once
        and waiting out nothing, and yield the client for the caller's own calls (which
        it should try once too). An unreachable gateway is noted, so the next one defers
        at once."""
        if self.shipper.down:
            raise Unavailable(
                f"the gateway at {self.http.base_url} could not be reached at the last try"
            )
        try:
            with self.http.patiently(False):
                self.shipper.flush(patient=False)
                yield self.http
        except Unavailable as e:
            self.shipper.note_unreachable(e)
            raise

    def attempt(self, method: str, path: str, *, actor: str | None = None, **kwargs: Any) -> Any:
        """`call` tried once, within `at_once`."""
        with self.at_once() as http:
            return http.request(method, API + path, actor=actor, attempts=1, **kwargs)

    def defer(self, entry: Entry) -> None:
        """Leave a call in the spool for the gateway to carry out once it answers."""
        self.shipper.defer(entry)

    def stage(self, source: Path | bytes) -> str:
        """Keep a file (or bytes) in the spool for an upload deferred with `defer`."""
        return self.shipper.stage(source)


def _reads(method: str, path: str) -> bool:
    return method == "GET" or (method == "POST" and path.endswith(READ_POSTS))


def seg(value: object) -> str:
    return segment(str(value))


class PastChannel(Channel):
    """Reads at one point of the log (`?as_of=TOKEN` on every call); anything that is
    not a read is refused here, before it leaves the process."""

    def __init__(self, http: GatewayHTTP, shipper: Shipper, token: str) -> None:
        super().__init__(http, shipper)
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        *,
        actor: str | None = None,
        flush: bool = True,
        **kwargs: Any,
    ) -> Any:
        if not _reads(method, path):
            raise read_only(f"{method} {path}")
        params = {**(kwargs.pop("params", None) or {}), "as_of": self.token}
        return super().call(method, path, actor=actor, flush=False, params=params, **kwargs)

    def spool(self, payloads: Sequence[Payload], actor: str) -> None:
        raise read_only(f"log {len(payloads)} events")

    def at_once(self) -> NoReturn:
        raise read_only("a call that changes something")

    def defer(self, entry: Entry) -> None:
        raise read_only(f"defer {type(entry).__name__}")

    def stage(self, source: Path | bytes) -> str:
        raise read_only("keep a file for upload")
