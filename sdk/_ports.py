"""What the SDK needs from a backend, as protocols: the embedded one (services wired
by `bootstrap`) and the remote one (`ledgerflow.remote`, over a gateway) both fit.

Only the methods the fluent API, the Client and the CLI call are listed; mypy
checks both backends against them, so a signature drifting in one mode is
caught before a user meets it. What works only next to the event log (bundle
builds, jobs, commands on the log itself) the remote backend answers with an
`InvalidInput` that says where to run it.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ledgerflow.events.as_of import AsOf
    from ledgerflow.events.audit_entities import AuditEntry, AuditQuery
    from ledgerflow.events.auth_commands import (
        AuthCommand,
        Group,
        Permission,
        Token,
        User,
        WhoAmI,
    )
    from ledgerflow.events.bundle_commands import BundleCommand
    from ledgerflow.events.bundle_entities import Bundle
    from ledgerflow.events.entities import (
        Experiment,
        FileInfo,
        Metric,
        MetricSeries,
        ModelVersion,
        PagedList,
        RegisteredModel,
        Run,
        RunInfo,
    )
    from ledgerflow.events.job_commands import JobCommand
    from ledgerflow.events.job_entities import Job
    from ledgerflow.events.log import After, Checkpoint, Item
    from ledgerflow.events.model_commands import ModelCommand
    from ledgerflow.events.settings import Settings
    from ledgerflow.events.tracking_commands import TrackingCommand
    from ledgerflow.events.webhook_commands import WebhookCommand
    from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
    from ledgerflow.services.bootstrap import Backend
    from ledgerflow.services.deployments.commands import DeploymentCommand
    from ledgerflow.services.deployments.state import Deployment, DeploymentChange

R = TypeVar("R")
"""What executing a command returns."""


class TrackingPort(Protocol):
    """Experiment commands and runs' lifecycle commands are typed messages
    (`ledgerflow.events.tracking_commands`); logging keeps its methods (the hot path)."""

    def execute(self, command: TrackingCommand[R], *, actor: str) -> R: ...
    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment: ...
    def default_experiment(self, *, actor: str) -> Experiment: ...
    def create_run(
        self,
        experiment_id: str,
        *,
        user_id: str,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        actor: str,
        run_id: str | None = None,
    ) -> RunInfo: ...
    def resume_run(self, run_id: str, *, actor: str) -> RunInfo: ...
    def active_run_info(self, run_id: str) -> RunInfo: ...
    def log_params(self, run_id: str, params: Mapping[str, Any], *, actor: str) -> None: ...
    def log_metric_points(
        self,
        run_id: str,
        points: Sequence[tuple[str, float, int, int]],
        *,
        actor: str,
        batch: int = 5000,
    ) -> None: ...
    def log_metrics(
        self, run_id: str, metrics: Iterable[tuple[str, Any, Any, Any]], *, actor: str
    ) -> None: ...
    def set_tags(self, run_id: str, tags: Mapping[str, Any], *, actor: str) -> None: ...
    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, Any, Any]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        actor: str,
    ) -> None: ...
    def finish_run(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None, *, actor: str
    ) -> None: ...
    def log_artifact_files(
        self, run_id: str, files: Sequence[tuple[Path, str]], *, actor: str
    ) -> None: ...
    def log_artifact_bytes(
        self, run_id: str, data: bytes, artifact_file: str, *, actor: str
    ) -> None: ...
    def download_artifacts(self, run_id: str, path: str, dst: Path) -> Path: ...


class QueriesPort(Protocol):
    def find_experiment(self, experiment_id: str) -> Experiment | None: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...
    def experiment_ids(self, refs: Sequence[str]) -> list[str]:
        """The ids of the experiments `refs` name, each by id or else by name; NotFound
        for one that names none."""
        ...

    def search_experiments(
        self,
        view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]: ...
    def find_run_info(self, run_id: str) -> RunInfo | None: ...
    def get_run_info(self, run_id: str) -> RunInfo: ...
    def get_run(self, run_id: str) -> Run: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        by_name: bool = False,
    ) -> PagedList[Run]:
        """With `by_name`, `experiment_ids` may name experiments by id or by name, as
        `experiment_ids()` resolves them."""
        ...

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]: ...
    def get_metric_series(
        self,
        series: Sequence[tuple[str, str]],
        points: int = 1000,
        x: str = "step",
        start: int | None = None,
        end: int | None = None,
    ) -> list[MetricSeries]: ...
    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]: ...
    def artifact_entries(self, run_id: str) -> dict[str, tuple[int, str]]: ...


class RegistryQueriesPort(Protocol):
    def get_registered_model(self, name: str) -> RegisteredModel: ...
    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]: ...
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...
    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]: ...
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]: ...
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...


class RegistryPort(Protocol):
    """Registry commands are typed messages (`ledgerflow.events.model_commands`)."""

    @property
    def queries(self) -> RegistryQueriesPort: ...
    def execute(self, command: ModelCommand[R], *, actor: str) -> R: ...
    def resolve_models_uri(self, uri: str) -> ModelVersion: ...


class SubscribePort(Protocol):
    def head(self) -> Checkpoint: ...

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]: ...


class WebhooksPort(Protocol):
    """Managing webhooks: the embedded `WebhookService`, or the gateway's routes. Commands
    are typed messages (`ledgerflow.events.webhook_commands`)."""

    def execute(self, command: WebhookCommand[R], *, actor: str) -> R: ...
    def list_webhooks(self) -> list[Webhook]: ...
    def get_webhook(self, name: str) -> Webhook: ...
    def list_deliveries(self, name: str, limit: int = 100) -> list[WebhookDelivery]: ...


class DeploymentsPort(Protocol):
    """Managing deployments: the embedded `DeploymentService`, or the gateway's routes.
    Commands are typed messages (`ledgerflow.services.deployments.commands`): a new one
    needs no change here."""

    def execute(self, command: DeploymentCommand[R], *, actor: str) -> R: ...
    def get(self, name: str) -> Deployment: ...
    def list(self) -> builtins.list[Deployment]: ...
    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentChange]: ...
    def analysis(
        self,
        name: str,
        *,
        metric: str | None = None,
        alpha: float = 0.05,
        power: float = 0.8,
        mde: float | None = None,
        since_ms: int | None = None,
    ) -> dict[str, Any]: ...


class AuthQueriesPort(Protocol):
    """Reading identities and grants: the auth views next to the log, or the gateway's
    `/users`, `/groups`, `/tokens` and `/permissions` (where the caller's rights apply)."""

    def users(self) -> builtins.list[User]: ...
    def user(self, name: str) -> User | None: ...
    def groups(self) -> builtins.list[Group]: ...
    def group(self, name: str) -> Group | None: ...
    def tokens(self, user: str | None = None) -> builtins.list[Token]: ...
    def permissions(self, kind: str, key: str) -> builtins.list[Permission]: ...


class AuthPort(Protocol):
    """Users, groups, API tokens and grants: the embedded `AuthService`, or the gateway's
    routes. Commands are typed messages (`ledgerflow.events.auth_commands`)."""

    @property
    def queries(self) -> AuthQueriesPort: ...
    def execute(self, command: AuthCommand[R], *, actor: str) -> R: ...
    def whoami(self, actor: str) -> WhoAmI:
        """Who the caller is taken for (`actor` names the local user where nothing is
        authenticated)."""
        ...


class BundlesPort(Protocol):
    """Bundles: the embedded `BundleService` (conversions run where the log is), or over a
    gateway the policy commands, the rest answering where to run it. Commands are typed
    messages (`ledgerflow.events.bundle_commands`)."""

    def execute(self, command: BundleCommand[R], *, actor: str) -> R: ...
    def list_bundles(
        self, name: str, version: int | str | None = None, *, include_failed: bool = False
    ) -> builtins.list[Bundle]: ...
    def get_bundle(self, bundle_id: str) -> Bundle: ...
    def download(self, bundle_id: str, dst: Path) -> Path: ...


class JobsPort(Protocol):
    """Jobs: the embedded `JobService` (jobs record their lifecycle on the log). Commands
    are typed messages (`ledgerflow.events.job_commands`)."""

    def execute(self, command: JobCommand[R], *, actor: str) -> R: ...
    def get(self, job_id: str) -> Job: ...
    def list_jobs(self, status: str | None = None, limit: int = 100) -> builtins.list[Job]: ...


class AuditPort(Protocol):
    """Reading the audit trail: the embedded index, or the gateway's `/audit` route."""

    def search(
        self,
        query: AuditQuery | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[AuditEntry]: ...


class BackendPort(Protocol):
    """A backend as the SDK sees it."""

    @property
    def settings(self) -> Settings: ...
    @property
    def tracking(self) -> TrackingPort: ...
    @property
    def queries(self) -> QueriesPort: ...
    @property
    def registry(self) -> RegistryPort: ...
    @property
    def log(self) -> SubscribePort: ...
    @property
    def webhooks(self) -> WebhooksPort: ...
    @property
    def deployments(self) -> DeploymentsPort: ...
    @property
    def auth(self) -> AuthPort: ...
    @property
    def bundles(self) -> BundlesPort: ...
    @property
    def jobs(self) -> JobsPort: ...
    @property
    def audit(self) -> AuditPort: ...
    def embedded(self) -> Backend:
        """The embedded backend itself, for work on the event log (replay, views, the
        deployer and policy loops, jobs); a gateway's answers InvalidInput."""
        ...

    def as_of(self, point: AsOf) -> BackendPort:
        """This backend's views as they were at `point` (a log position or a time),
        read-only: commands are refused."""
        ...

    def refresh(self) -> None: ...
    def close(self) -> None: ...
