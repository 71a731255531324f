"""The composition root of the embedded backend: wires adapters from settings.

Tests and other processes pass real or fake adapters through the keyword
overrides; nothing here connects at import time. Every service a process needs
comes from here: tracking and the registry at once, webhooks, deployments,
bundles and jobs on first use (they import more), and one task runtime per
Ray address. Submitting jobs needs a launcher (`launchers`): the SDK's session
passes its own, since the launcher watches the jobs its process submitted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ledgerflow.events.as_of import AsOf, read_only
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Checkpoint, EventLog
from ledgerflow.events.log_prefix import LogPrefix
from ledgerflow.events.settings import Settings
from ledgerflow.services.artifacts import ArtifactStore, LocalArtifactStore
from ledgerflow.services.commands import Committer
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.registry.service import RegistryService
from ledgerflow.services.timetravel.read_only import reads_only
from ledgerflow.services.timetravel.snapshots import Snapshot, TimeTravel
from ledgerflow.services.tracking.service import TrackingService

if TYPE_CHECKING:
    from ledgerflow.events.kafka_log import KafkaEventLog
    from ledgerflow.services.auth.authenticate import Authenticator
    from ledgerflow.services.auth.authorize import Authorizer
    from ledgerflow.services.auth.denials import DenialRecorder
    from ledgerflow.services.auth.service import AuthService
    from ledgerflow.services.bundles.service import BundleService
    from ledgerflow.services.deployer.service import DeploymentService
    from ledgerflow.services.jobs.service import JobService, Launcher
    from ledgerflow.services.logged_models.service import LoggedModelService
    from ledgerflow.services.projector.audit_queries import AuditQueries
    from ledgerflow.services.secret_box import SecretBox
    from ledgerflow.services.webhooks.service import WebhookService
    from ledgerflow.workers.runtime import Runtime

AUTH_VIEWS_TTL_S = 0.05
"""How stale this process's view of users, tokens and grants may be, when the change was
made through another process (a change this process commits holds from its next request;
a refusal always reads the views again). Two reads of the views' generation a request would
cost more than the rest of an authenticated ingest (docs/security.md)."""


@dataclass
class Backend:
    settings: Settings
    log: EventLog
    projector: Projector
    queries: Queries
    artifacts: ArtifactStore
    tracking: TrackingService
    registry: RegistryService
    engines: tuple[Engine, ...]
    launchers: Callable[[Backend, str | None], Launcher] | None = None
    """Where submitted jobs go: the launcher for this backend and a runtime address."""
    _runtimes: dict[str, Runtime] = field(default_factory=dict, init=False, repr=False)
    _runtimes_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        """The tracking and registry services' commands change the auth views too (a
        creator holds MANAGE on what they create): their commits drop the cached views."""
        self.tracking.committer.on_committed = self._committed
        self.registry.committer.on_committed = self._committed

    @cached_property
    def committer(self) -> Committer:
        """Appends a command's events and waits until they are projected."""
        return Committer(
            self.log,
            self.projector,
            self.settings.projection_timeout_s,
            on_committed=self._committed,
        )

    def _committed(self, events: Sequence[Event]) -> None:
        """A command of this process changed the auth views: its next check reads them."""
        from ledgerflow.services.projector.auth_handlers import GENERATION_TYPES

        if any(e.type in GENERATION_TYPES for e in events):
            self.auth.queries.invalidate()

    @cached_property
    def webhooks(self) -> WebhookService:
        from ledgerflow.services.webhooks.queries import WebhookQueries
        from ledgerflow.services.webhooks.service import WebhookService

        return WebhookService(
            self.committer,
            WebhookQueries(self.queries.engine),
            self.log,
            lambda: self.secret_box,
        )

    @cached_property
    def logged_models(self) -> LoggedModelService:
        """MLflow 3 logged models: their commands, views and files."""
        from ledgerflow.services.logged_models.service import LoggedModelService
        from ledgerflow.services.projector.logged_model_queries import LoggedModelQueries

        return LoggedModelService(
            self.committer, LoggedModelQueries(self.queries.engine), self.queries, self.artifacts
        )

    @cached_property
    def secret_box(self) -> SecretBox:
        """The server key that seals webhook secrets (docs/security.md, secrets at rest)."""
        from ledgerflow.services.secret_box import open_secret_box

        return open_secret_box(self.settings)

    @cached_property
    def deployments(self) -> DeploymentService:
        """Deployment commands and reads; live statistics from the log (or from Redis
        with LEDGERFLOW_TRAFFIC_STATS=redis) for `analysis`."""
        from ledgerflow.services.analytics.live import stats_for
        from ledgerflow.services.deployer.service import DeploymentService
        from ledgerflow.services.projector.bundle_queries import BundleQueries
        from ledgerflow.services.projector.deployment_queries import DeploymentQueries

        engine = self.queries.engine
        return DeploymentService(
            self.committer,
            DeploymentQueries(engine),
            self.registry.queries,
            BundleQueries(engine),
            stats_for(self.settings, self.log),
        )

    @cached_property
    def bundles(self) -> BundleService:
        """Bundle builds, on the runtime LEDGERFLOW_RAY_ADDRESS names."""
        from ledgerflow.services.bundles.service import BundleService
        from ledgerflow.services.projector.bundle_queries import BundleQueries

        return BundleService(
            self.committer,
            BundleQueries(self.queries.engine),
            self.registry,
            self.tracking,
            self.artifacts,
            self.runtime(),
            allow_pickle=self.settings.allow_pickle,
        )

    @cached_property
    def jobs(self) -> JobService:
        from ledgerflow.services.jobs.queries import JobQueries
        from ledgerflow.services.jobs.service import JobService

        launchers = self.launchers
        return JobService(
            self.committer,
            JobQueries(self.queries.engine),
            self.tracking,
            None if launchers is None else (lambda address: launchers(self, address)),
        )

    @cached_property
    def auth(self) -> AuthService:
        """Users, groups, API tokens and grants (the commands; docs/security.md)."""
        from ledgerflow.services.auth.queries import AuthQueries
        from ledgerflow.services.auth.service import AuthService

        return AuthService(
            self.committer, AuthQueries(self.queries.engine, generation_ttl_s=AUTH_VIEWS_TTL_S)
        )

    @cached_property
    def authenticator(self) -> Authenticator:
        """Who a request's credentials say it is (with auth on)."""
        from ledgerflow.services.auth.authenticate import Authenticator

        return Authenticator(self.auth.queries, self.settings)

    @cached_property
    def audit(self) -> AuditQueries:
        """The audit trail: who did what, when, through which token (docs/audit.md)."""
        from ledgerflow.services.projector.audit_queries import AuditQueries

        return AuditQueries(self.queries.engine)

    @cached_property
    def denials(self) -> DenialRecorder:
        """Records refused requests on the log (`auth.denied`), rate limited."""
        from ledgerflow.services.auth.denials import DenialLimiter, DenialRecorder

        return DenialRecorder(self.log, DenialLimiter(self.settings.auth_denied_interval_s))

    @cached_property
    def authorizer(self) -> Authorizer:
        """What a principal may do on a resource (with auth on)."""
        from ledgerflow.events.permissions import Level
        from ledgerflow.services.auth.authorize import Authorizer

        def experiment_of_run(run_id: str) -> str | None:
            info = self.queries.find_run_info(run_id)
            return None if info is None else info.experiment_id

        return Authorizer(self.auth.queries, Level[self.settings.auth_default], experiment_of_run)

    def runtime(self, address: str | None = None) -> Runtime:
        """The task runtime at `address` (LEDGERFLOW_RAY_ADDRESS when None; `inline`
        runs tasks in this process), one per address: starting Ray takes seconds."""
        from ledgerflow.workers.runtime import runtime_for

        address = address or self.settings.ray_address
        with self._runtimes_lock:
            found = self._runtimes.get(address)
            if found is None:
                found = self._runtimes[address] = runtime_for(address)
            return found

    def embedded(self) -> Backend:
        """This backend: work on the event log itself may run here."""
        return self

    @cached_property
    def time_travel(self) -> TimeTravel:
        """The views folded up to past points of the log, the last few kept."""
        return TimeTravel(
            self.log, keep=self.settings.as_of_snapshots,
            dedupe_window=self.settings.dedupe_window,
        )  # fmt: skip

    def as_of(self, point: AsOf | str) -> AsOfBackend:
        """This backend as it was at `point` (a position or a time): read-only."""
        return AsOfBackend(self, self.time_travel.snapshot(AsOf.parse(point)))

    def refresh(self) -> None:
        """Project whatever other processes appended but did not project (e.g. one that was
        killed between its append and its projection), so reads see the whole log."""
        if self.projector.inline and not self.projector.holds(self.log.head()):
            self.projector.catch_up()

    def catch_up_with_log(self) -> None:
        """Return once the views hold everything on the log now: projecting it when this
        process projects inline, waiting for the projector service otherwise (Timeout after
        LEDGERFLOW_PROJECTION_TIMEOUT_S). What a process that decides from the views needs
        first: behind the log, it would decide again what it (or the process it replaced)
        already decided."""
        self.projector.wait_for(self.log.head(), self.settings.projection_timeout_s)

    def close(self) -> None:
        self.log.close()
        for engine in self.engines:
            engine.dispose()


TRACKING_READS = ("queries", "artifacts", "artifact_key", "download_artifacts")
REGISTRY_READS = ("queries", "resolve_models_uri", "resolve_source")
DEPLOYMENT_READS = ("queries", "get", "list", "history")
WEBHOOK_READS = ("queries", "list_webhooks", "get_webhook")
BUNDLE_READS = ("queries", "list_bundles", "get_bundle", "download")
JOB_READS = ("queries", "get", "list_jobs")
LOGGED_MODEL_READS = ("queries", "artifacts", "artifact_key")


class AsOfBackend(Backend):
    """The views as they were at a past point of the log (docs/time-travel.md).

    Reads come from a snapshot folded up to `checkpoint`; its log is the log up to
    there, so it cannot be appended to, and its services answer reads only (the
    `*_READS` above) and refuse the rest as read-only. Who may read what is today's
    question: identities and permissions are the live backend's.
    """

    def __init__(self, live: Backend, snapshot: Snapshot) -> None:
        log = LogPrefix(live.log, snapshot.checkpoint)
        projector, engine = snapshot.projector, snapshot.engine
        queries = Queries(engine)
        timeout = live.settings.projection_timeout_s
        tracking = TrackingService(log, projector, queries, live.artifacts, timeout=timeout)
        registry = RegistryService(
            Committer(log, projector, timeout), RegistryQueries(engine), queries
        )
        super().__init__(
            live.settings,
            log,
            projector,
            queries,
            live.artifacts,
            reads_only(tracking, TRACKING_READS),
            reads_only(registry, REGISTRY_READS),
            (),
        )
        self.live = live
        self.snapshot = snapshot  # held: the snapshot's database lives as long as we do
        self.checkpoint: Checkpoint = snapshot.checkpoint

    # Each service is Backend's, built on this backend's views and committer, behind
    # reads_only (Backend's cached_property caches it under the same name; ours then
    # replaces it there with the read-only one).
    @cached_property
    def webhooks(self) -> WebhookService:
        """Webhooks as defined then; their delivery attempts are the dispatcher's record,
        not folded from the log, so they are today's."""
        today = {"list_deliveries": self.live.webhooks.list_deliveries}
        return reads_only(super().webhooks, WEBHOOK_READS, today=today)

    @cached_property
    def deployments(self) -> DeploymentService:
        """Without live statistics (they are not history, and following this backend's log
        for them would keep a follower per as_of backend)."""
        from ledgerflow.services.deployer.service import DeploymentService
        from ledgerflow.services.projector.bundle_queries import BundleQueries
        from ledgerflow.services.projector.deployment_queries import DeploymentQueries

        engine = self.queries.engine
        service = DeploymentService(
            self.committer, DeploymentQueries(engine), self.registry.queries, BundleQueries(engine)
        )
        return reads_only(service, DEPLOYMENT_READS)

    @cached_property
    def bundles(self) -> BundleService:
        return reads_only(super().bundles, BUNDLE_READS)

    @cached_property
    def jobs(self) -> JobService:
        return reads_only(super().jobs, JOB_READS)

    @cached_property
    def logged_models(self) -> LoggedModelService:
        return reads_only(super().logged_models, LOGGED_MODEL_READS)

    @cached_property
    def auth(self) -> AuthService:
        return reads_only(self.live.auth, ("queries",))

    @cached_property
    def authenticator(self) -> Authenticator:
        return self.live.authenticator

    @cached_property
    def secret_box(self) -> SecretBox:
        return self.live.secret_box

    @cached_property
    def authorizer(self) -> Authorizer:
        return self.live.authorizer

    @cached_property
    def time_travel(self) -> TimeTravel:
        return self.live.time_travel

    def as_of(self, point: AsOf | str) -> AsOfBackend:
        return self.live.as_of(point)

    def embedded(self) -> Backend:
        raise read_only("work on the event log itself (replay, projector, jobs)")

    def refresh(self) -> None:
        """Nothing to catch up with: the past does not change."""

    def close(self) -> None:
        """The live backend and the snapshot cache own what this reads."""


def open_event_log(settings: Settings) -> EventLog:
    url = settings.event_log_url
    if url.startswith("sqlite:///"):
        from ledgerflow.events.sqlite_log import SQLiteEventLog

        return SQLiteEventLog(url[len("sqlite:///") :])
    if url.startswith("kafka://"):
        return open_kafka_log(settings)
    raise InvalidInput(
        f"LEDGERFLOW_EVENT_LOG {url!r}: expected sqlite:///FILE or kafka://HOST:PORT[,HOST:PORT]",
        field="LEDGERFLOW_EVENT_LOG",
    )


def open_kafka_log(settings: Settings) -> KafkaEventLog:
    servers = settings.event_log_url.removeprefix("kafka://").strip("/")
    if not servers or any(":" not in s for s in servers.split(",")):
        raise InvalidInput(
            f"LEDGERFLOW_EVENT_LOG {settings.event_log_url!r}: name the brokers as "
            "kafka://HOST:PORT[,HOST:PORT]",
            field="LEDGERFLOW_EVENT_LOG",
        )
    try:
        from ledgerflow.events.kafka_log import KafkaEventLog
    except ImportError as e:
        raise InvalidInput(
            f"the Kafka event log needs aiokafka ({e}); pip install 'ledgerflow[kafka]'",
            field="LEDGERFLOW_EVENT_LOG",
        ) from None
    return KafkaEventLog(
        servers,
        topic_prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        idempotent=settings.kafka_idempotent,
        dedupe_window=settings.dedupe_window,
    )


def open_artifacts(settings: Settings) -> ArtifactStore:
    """A local folder, or an S3 bucket for `s3://bucket/prefix` (endpoint from settings)."""
    root = settings.artifacts_root
    if not root.startswith("s3://"):
        if "://" in root and not root.startswith("file://"):
            raise InvalidInput(
                f"LEDGERFLOW_ARTIFACTS {root!r}: use a folder or s3://bucket/prefix",
                field="LEDGERFLOW_ARTIFACTS",
            )
        return LocalArtifactStore(root.removeprefix("file://"))
    bucket, _, prefix = root[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidInput(
            f"LEDGERFLOW_ARTIFACTS {root!r} names no bucket; use s3://bucket/prefix",
            field="LEDGERFLOW_ARTIFACTS",
        )
    if not settings.s3_endpoint:
        raise InvalidInput(
            f"LEDGERFLOW_ARTIFACTS {root!r} is in S3: set LEDGERFLOW_S3_ENDPOINT "
            "(e.g. http://127.0.0.1:9000) and the LEDGERFLOW_S3_ACCESS_KEY / "
            "LEDGERFLOW_S3_SECRET_KEY to use",
            field="LEDGERFLOW_S3_ENDPOINT",
        )
    try:
        from ledgerflow.services.artifacts.s3 import S3ArtifactStore
    except ImportError:
        raise InvalidInput(
            f"LEDGERFLOW_ARTIFACTS {root!r} needs the minio package: pip install 'ledgerflow[s3]'",
            field="LEDGERFLOW_ARTIFACTS",
        ) from None
    return S3ArtifactStore(
        settings.s3_endpoint,
        bucket,
        prefix.strip("/"),
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        region=settings.s3_region,
    )


def bootstrap(
    settings: Settings,
    *,
    log: EventLog | None = None,
    artifacts: ArtifactStore | None = None,
    launchers: Callable[[Backend, str | None], Launcher] | None = None,
) -> Backend:
    store = artifacts or open_artifacts(settings)  # first: it may fail, leaving nothing open
    log = log or open_event_log(settings)
    writer = make_engine(settings.views_db_url, writer=True)
    reader = make_engine(settings.views_db_url, writer=False)
    projector = Projector(
        log, writer, inline=settings.projects_inline, reader=reader,
        dedupe_window=settings.dedupe_window,
    )  # fmt: skip
    queries = Queries(reader)
    tracking = TrackingService(
        log, projector, queries, store, timeout=settings.projection_timeout_s
    )
    registry = RegistryService(
        Committer(log, projector, settings.projection_timeout_s), RegistryQueries(reader), queries
    )
    return Backend(
        settings, log, projector, queries, store, tracking, registry, (writer, reader), launchers
    )
