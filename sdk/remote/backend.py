"""The SDK's backend when LEDGERFLOW_TRACKING_URI is a gateway URL.

It offers what the SDK uses of the embedded backend (`tracking`, `queries`,
`registry` with its `queries`, `log.subscribe`, `webhooks`, `deployments`,
`refresh()`, `close()`), so the fluent API and the Client work unchanged.
Logging goes through the write-ahead spool; subscriptions read the gateway's
event stream; everything else is a call to the gateway. What works only next
to the event log (bundles, jobs, replay) answers an InvalidInput saying where
to run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.audit import RemoteAudit
from ledgerflow.remote.channel import Channel
from ledgerflow.remote.deployments import RemoteDeployments
from ledgerflow.remote.events import RemoteLog
from ledgerflow.remote.http import GatewayHTTP
from ledgerflow.remote.queries import RemoteQueries
from ledgerflow.remote.registry import RemoteRegistry
from ledgerflow.remote.shipper import Shipper
from ledgerflow.remote.spool import folder_for
from ledgerflow.remote.tracking import RemoteTracking
from ledgerflow.remote.webhooks import RemoteWebhooks

if TYPE_CHECKING:
    from ledgerflow._ports import AuditPort, DeploymentsPort, WebhooksPort
    from ledgerflow.events.settings import Settings

EXIT_WAIT_S = 10.0
"""How long closing (at exit) keeps trying to ship what is left in the spool."""


class RemoteBackend:
    def __init__(self, settings: Settings, *, exit_wait_s: float = EXIT_WAIT_S) -> None:
        self.settings = settings
        self.exit_wait_s = exit_wait_s
        self.http = GatewayHTTP(
            settings.tracking_uri, read_timeout=settings.projection_timeout_s + 30
        )
        self.shipper = Shipper(self.http, folder_for(settings.spool_root, settings.tracking_uri))
        channel = Channel(self.http, self.shipper)
        self.tracking = RemoteTracking(channel)
        self.queries = RemoteQueries(channel)
        self.registry = RemoteRegistry(channel)
        self.log = RemoteLog(channel)
        self.webhooks: WebhooksPort = RemoteWebhooks(channel)
        self.deployments: DeploymentsPort = RemoteDeployments(channel)
        self.audit: AuditPort = RemoteAudit(channel)
        self.shipper.start()

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
    def bundles(self) -> NoReturn:
        raise InvalidInput(
            f"{self.settings.tracking_uri}: bundles are built next to the event log; use a data "
            "directory or LEDGERFLOW_EVENT_LOG with LEDGERFLOW_VIEWS_DB (not a gateway URL)",
            field="tracking_uri",
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
