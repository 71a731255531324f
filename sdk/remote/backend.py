"""The SDK's backend when LEDGERFLOW_TRACKING_URI is a gateway URL.

It offers what the SDK uses of the embedded backend (`tracking`, `queries`,
`registry` with its `queries`, `log.subscribe`, `webhooks`, `deployments`, `auth`,
`bundles`' policy, `refresh()`, `close()`), so the fluent API and the Client work
unchanged. Logging goes through the write-ahead spool; subscriptions read the
gateway's event stream; everything else is a call to the gateway. What works only
next to the event log (building bundles, jobs, replay) answers an InvalidInput saying
where to run it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn

from ledgerflow.events.as_of import AsOf
from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.audit import RemoteAudit
from ledgerflow.remote.auth import RemoteAuth
from ledgerflow.remote.bundles import RemoteBundles
from ledgerflow.remote.channel import Channel, PastChannel
from ledgerflow.remote.credentials import credentials_from, fingerprint
from ledgerflow.remote.deployments import RemoteDeployments
from ledgerflow.remote.events import RemoteLog
from ledgerflow.remote.http import GatewayHTTP
from ledgerflow.remote.queries import RemoteQueries
from ledgerflow.remote.registry import RemoteRegistry
from ledgerflow.remote.shipper import Shipper
from ledgerflow.remote.spool import folder_for
from ledgerflow.remote.tls import verify_from
from ledgerflow.remote.tracking import RemoteTracking
from ledgerflow.remote.webhooks import RemoteWebhooks

if TYPE_CHECKING:
    from ledgerflow._ports import AuditPort, AuthPort, BundlesPort, DeploymentsPort, WebhooksPort
    from ledgerflow.events.log import After, Item
    from ledgerflow.events.settings import Settings

EXIT_WAIT_S = 10.0
"""How long closing (at exit) keeps trying to ship what is left in the spool."""


class RemoteBackend:
    def __init__(self, settings: Settings, *, exit_wait_s: float = EXIT_WAIT_S) -> None:
        self.settings = settings
        self.exit_wait_s = exit_wait_s
        self.http = GatewayHTTP(
            settings.tracking_uri,
            credentials=credentials_from(settings),
            verify=verify_from(settings),
            read_timeout=settings.projection_timeout_s + 30,
            wait_s=settings.gateway_wait_s,
        )
        self.shipper = Shipper(
            self.http,
            folder_for(settings.spool_root, settings.tracking_uri),
            owner=fingerprint(settings),
        )
        self._serve(Channel(self.http, self.shipper))
        self.shipper.start()

    def _serve(self, channel: Channel) -> None:
        self.channel = channel
        self.tracking = RemoteTracking(channel)
        self.queries = RemoteQueries(channel)
        self.registry = RemoteRegistry(channel)
        self.log = RemoteLog(channel)
        self.webhooks: WebhooksPort = RemoteWebhooks(channel)
        self.deployments: DeploymentsPort = RemoteDeployments(channel)
        self.bundles: BundlesPort = RemoteBundles(channel, self.settings.tracking_uri)
        self.auth: AuthPort = RemoteAuth(channel)
        self.audit: AuditPort = RemoteAudit(channel)

    def as_of(self, point: AsOf) -> RemoteBackend:
        """The gateway's views as they were at `point`, read-only. A time is resolved once,
        here, to the log position it names (after shipping what this process logged), so
        every later read is at that same position."""
        token = point.checkpoint.encode() if point.checkpoint is not None else None
        if token is None:
            token = str(self.channel.call("GET", HEAD, params={"as_of": point.encode()})["token"])
        return PastRemoteBackend(self, token or "0")

    def refresh(self) -> None:
        """Ship what this process logged and wait until the gateway has projected it, so
        the reads that follow see it (read-your-writes)."""
        self.shipper.flush()

    def close(self) -> None:
        """Ship what is left (for up to `exit_wait_s`), then let go of the spool."""
        try:
            self.shipper.close(self.exit_wait_s)
        finally:
            self.http.close()

    @property
    def projector(self) -> NoReturn:
        raise InvalidInput(
            f"{self.settings.tracking_uri} is a gateway; replay and dead letters work on the "
            "event log itself: run them where the log is (LEDGERFLOW_EVENT_LOG / a data "
            "directory)",
            field="LEDGERFLOW_TRACKING_URI",
        )

    @property
    def jobs(self) -> NoReturn:
        raise InvalidInput(
            "jobs record their lifecycle on the event log, and "
            f"{self.settings.tracking_uri} is a gateway: submit from where the log is (a data "
            "directory, or LEDGERFLOW_EVENT_LOG with LEDGERFLOW_VIEWS_DB); the job's code may "
            "still log through a gateway",
            field="tracking_uri",
        )

    def embedded(self) -> NoReturn:
        raise InvalidInput(
            f"{self.settings.tracking_uri} is a gateway; this command works on the event "
            "log itself: run it where the log is (a data directory, or LEDGERFLOW_EVENT_LOG)",
            field="LEDGERFLOW_TRACKING_URI",
        )


HEAD = "/events/head"


class PastRemoteBackend(RemoteBackend):
    """A gateway's views as they were at the log position `token`: every read carries
    `?as_of=`, and everything else is refused (`PastChannel`)."""

    def __init__(self, live: RemoteBackend, token: str) -> None:
        self.settings = live.settings
        self.exit_wait_s = live.exit_wait_s
        self.http = live.http
        self.shipper = live.shipper
        self.live = live
        self.token = token
        channel = PastChannel(self.http, self.shipper, token)
        self._serve(channel)
        self.log = PastRemoteLog(channel)

    def as_of(self, point: AsOf) -> RemoteBackend:
        return self.live.as_of(point)

    def refresh(self) -> None:
        """Nothing to wait for: the past does not change."""

    def close(self) -> None:
        """The live backend owns the connection and the spool."""


class PastRemoteLog(RemoteLog):
    """Subscriptions replay up to the position and end there: the past gets no more events."""

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]:
        return super().subscribe(after, types, stop=stop, follow=False, idle_wait=idle_wait)
