"""How the remote services reach the gateway: straight calls, and the spool.

Calls that need an answer go straight to the gateway, after shipping what this
process spooled (so the gateway has seen every earlier write of ours, in
order). Logging calls only append to the spool, which never waits on the
network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledgerflow.events.as_of import read_only
from ledgerflow.events.envelope import Event
from ledgerflow.events.payloads import Payload
from ledgerflow.remote.http import GatewayHTTP, segment
from ledgerflow.remote.shipper import Shipper

API = "/api/v1"
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
