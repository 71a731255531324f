"""How the remote services reach the gateway: straight calls, and the spool.

Calls that need an answer go straight to the gateway, after shipping what this
process spooled (so the gateway has seen every earlier write of ours, in
order). Logging calls only append to the spool, which never waits on the
network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledgerflow.events.envelope import Event
from ledgerflow.events.payloads import Payload
from ledgerflow.remote.http import GatewayHTTP, segment
from ledgerflow.remote.shipper import Shipper

API = "/api/v1"


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
        """Ship our spool (unless flush=False), then send `method path` under /api/v1."""
        if flush:
            self.shipper.flush()
        return self.http.request(method, API + path, actor=actor, **kwargs)

    def spool(self, payloads: Sequence[Payload], actor: str) -> None:
        self.shipper.append([Event.of(p, actor=actor) for p in payloads])


def seg(value: object) -> str:
    return segment(str(value))
