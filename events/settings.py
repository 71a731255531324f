"""The one typed settings object, read from `LEDGERFLOW_*` environment variables.

Parsed at the edge (CLI, `lf.set_tracking_uri`, service entry points) and passed
down; nothing below reads the environment itself. An unknown `LEDGERFLOW_*`
variable is an error naming it, so a misspelling never silently does nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledgerflow.events.errors import InvalidInput

PREFIX = "LEDGERFLOW_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)

    tracking_uri: str = Field(
        "./ledgerflow-data",
        description="A data directory (embedded) or http(s)://gateway",
    )
    event_log: str | None = Field(None, description="sqlite:///FILE or kafka://host:port[,...]")
    views_db: str | None = Field(None, description="SQLAlchemy URL of the views database")
    artifacts: str | None = Field(None, description="a folder or s3://bucket/prefix")
    kafka_partitions: int = Field(
        6, gt=0, description="partitions of each Kafka topic this creates (existing keep theirs)"
    )
    kafka_topic_prefix: str = Field("ledgerflow", min_length=1, description="Kafka topic names")
    kafka_idempotent: bool = Field(
        True, description="idempotent Kafka producer (false only for brokers without it)"
    )
    project_inline: bool | None = Field(
        None,
        description="commands project their own events (default: yes on SQLite, no on Kafka, "
        "where `ledgerflow projector` does it)",
    )
    s3_endpoint: str | None = Field(
        None, description="the S3/MinIO endpoint as http(s)://host:port (https turns TLS on)"
    )
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = Field(
        None, description="the buckets' region; unset, it is asked of the endpoint once"
    )
    redis_url: str | None = None
    traffic_stats: Literal["log", "redis"] = Field(
        "log",
        description="where the deployer and analyses read live traffic statistics: `log` "
        "folds the log's traffic in process; `redis` reads the snapshots that "
        "`ledgerflow traffic-stats` (a Faust worker on Kafka) publishes to LEDGERFLOW_REDIS_URL",
    )
    ray_address: str = "local"
    otlp_endpoint: str | None = Field(
        None,
        description="OpenTelemetry collector (OTLP/HTTP URL) for spans, or `console` to print them",
    )
    flush_interval_s: float = Field(1.0, gt=0, description="how often buffered metrics are written")
    flush_max_points: int = Field(20_000, gt=0, description="buffered points that force a flush")
    projection_timeout_s: float = Field(
        60.0, gt=0, description="how long a command waits for its event to be projected"
    )
    user: str | None = Field(None, description="who the SDK reports as actor and run user")
    experiment_id: str | None = Field(
        None, description="the experiment runs go to when none was set in code"
    )
    experiment_name: str | None = Field(
        None, description="like experiment_id, by name (created if missing)"
    )
    dedupe_window: int = Field(
        1_000_000,
        gt=0,
        description="log positions per partition within which a second copy of an event "
        "(a retried append) is recognized and dropped: what the projectors and the Kafka "
        "log's id index remember, and read when the log opens",
    )
    gateway_wait_s: float = Field(
        60.0,
        ge=0,
        description="how long a call that needs the gateway's answer (register_model, "
        "create_experiment...) keeps retrying while the gateway cannot be reached",
    )
    spool_dir: str | None = Field(
        None,
        description="where the SDK's remote mode keeps events not yet shipped to the gateway "
        "(default ~/.cache/ledgerflow/spool)",
    )
    run_id: str | None = Field(
        None,
        description="the run `lf.start_run()` resumes instead of starting a new one (as "
        "MLFLOW_RUN_ID does); Ledgerflow jobs set it for the code they run",
    )
    rank: int | None = Field(
        None,
        ge=0,
        description="this process's rank in a distributed job: its metrics are also recorded "
        "as `<key>/rank<N>`, and only rank 0 logs the plain keys (set by Ledgerflow jobs)",
    )
    as_of_snapshots: int = Field(
        4,
        gt=0,
        description="how many as_of views (the views folded up to a past point of the log) "
        "a process keeps in memory for reuse, least recently used dropped first",
    )
    allow_pickle: bool = Field(
        True,
        description="load models stored as pickle/cloudpickle (loading one runs its code); "
        "false refuses them",
    )

    auth: bool = Field(
        False,
        description="require an identity on every gateway route, stream and webhook "
        "(users, API tokens, OIDC); see docs/security.md",
    )
    auth_default: Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"] = Field(
        "READ", description="the level on a resource where no grant names the caller"
    )
    admin_user: str | None = Field(
        None, description="with auth on, the admin created at first start if no admin exists"
    )
    admin_password: str | None = Field(
        None, repr=False, description="that admin's password (needed only at first start)"
    )
    tracking_token: str | None = Field(
        None, repr=False, description="the API token the SDK and CLI send (Bearer)"
    )
    tracking_username: str | None = Field(
        None, description="with LEDGERFLOW_TRACKING_PASSWORD: HTTP Basic credentials"
    )
    tracking_password: str | None = Field(None, repr=False)
    tracking_server_cert_path: str | None = Field(
        None,
        description="a PEM file of the CA (or certificate) the SDK and CLI trust for an "
        "https:// gateway, e.g. a private CA's",
    )
    tracking_insecure_tls: bool = Field(
        False, description="do not verify the gateway's TLS certificate (testing only)"
    )
    max_request_mb: float = Field(
        16, gt=0, description="the largest request body the gateway reads (413 above it)"
    )
    max_ingest_mb: float = Field(64, gt=0, description="the largest ingest batch body")
    rate_limit_writes: float = Field(
        100, ge=0, description="with auth on, writes a second per user (burst: twice it; 0: off)"
    )
    rate_limit_ingest_events: float = Field(
        200_000, ge=0, description="with auth on, ingested events a second per user (0: off)"
    )
    oidc_issuer: str | None = Field(
        None, description="accept bearer JWTs from this issuer (the `iss` claim)"
    )
    oidc_audience: str | None = Field(None, description="the `aud` those JWTs must name")
    oidc_jwks: str | None = Field(
        None, description="the issuer's signing keys: a JWKS URL, or a file path"
    )
    oidc_user_claim: str = Field("preferred_username", description="the claim naming the user")
    oidc_groups_claim: str = Field("groups", description="the claim listing the user's groups")
    auth_failures_per_user: float = Field(
        10,
        ge=0,
        description="failed sign-ins a minute per user name before the next is refused with "
        "429, unchecked (0: off); per gateway process",
    )
    auth_failures_per_client: float = Field(
        60, ge=0, description="failed sign-ins (passwords and tokens) a minute per client address"
    )
    secret_key: str | None = Field(
        None,
        repr=False,
        description="the Fernet key that encrypts webhook secrets in events and views "
        "(default: secret.key beside a SQLite event log, generated at first use)",
    )
    secret_key_file: str | None = Field(None, description="a file holding that key instead")
    old_secret_keys: str | None = Field(
        None, repr=False, description="earlier keys, comma-separated: they still decrypt"
    )
    model_servers: str | None = Field(
        None,
        description="model servers (ledgerflow serve, deployment replicas) the Operations page "
        "and GET /api/v1/operations probe for readiness: base URLs, comma-separated",
    )
    auth_denied_interval_s: float = Field(
        10.0,
        ge=0,
        description="record at most one refused request (auth.denied) per caller and route "
        "in this many seconds; the next one recorded counts the others (0: record every one)",
    )

    @field_validator("tracking_uri")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("s3_endpoint")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.strip().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:9000")
        return v.strip() if v is not None else None

    @field_validator("model_servers")
    @classmethod
    def _http_urls(cls, v: str | None) -> str | None:
        if v is None:
            return None
        for url in (u.strip() for u in v.split(",")):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"{url!r} is not an http:// or https:// URL (e.g. http://10.0.0.5:8080)"
                )
        return v

    @property
    def model_server_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in (self.model_servers or "").split(",") if u.strip())

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    @property
    def data_dir(self) -> Path:
        """The embedded data directory (`file:` prefixes allowed)."""
        if self.is_remote:
            raise InvalidInput(f"tracking URI {self.tracking_uri!r} is a server, not a folder")
        uri = self.tracking_uri
        for prefix in ("file://", "file:"):
            if uri.startswith(prefix):
                uri = uri[len(prefix) :]
                break
        return Path(uri).expanduser().resolve()

    @property
    def event_log_url(self) -> str:
        return self.event_log or f"sqlite:///{self.data_dir / 'events.db'}"

    @property
    def is_kafka(self) -> bool:
        return self.event_log_url.startswith("kafka://")

    @property
    def redis_namespace(self) -> str:
        """The prefix of this event log's keys in a shared Redis (the gateways' live-event
        relay and read cache): gateways of one log share them, and two logs sharing a
        Redis never read each other's entries."""
        url = self.event_log_url
        if url.startswith("sqlite:///"):
            url = "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
        where = f"{url}|{self.kafka_topic_prefix}"
        return f"ledgerflow:{hashlib.sha256(where.encode()).hexdigest()[:12]}:"

    @property
    def projects_inline(self) -> bool:
        return self.project_inline if self.project_inline is not None else not self.is_kafka

    @property
    def views_db_url(self) -> str:
        return self.views_db or f"sqlite:///{self.data_dir / 'views.db'}"

    @property
    def artifacts_root(self) -> str:
        return self.artifacts or str(self.data_dir / "artifacts")

    @property
    def spool_root(self) -> Path:
        """The folder of write-ahead spools (one subfolder per gateway URL)."""
        if self.spool_dir:
            return Path(self.spool_dir).expanduser().resolve()
        return Path.home() / ".cache" / "ledgerflow" / "spool"


MLFLOW_CREDENTIALS = ("tracking_token", "tracking_username", "tracking_password")
"""Read from MLFLOW_TRACKING_TOKEN / _USERNAME / _PASSWORD where the LEDGERFLOW_ name is
not set, so a team's MLflow credentials work unchanged."""
MLFLOW_TLS = ("tracking_server_cert_path", "tracking_insecure_tls")
"""Likewise MLFLOW_TRACKING_SERVER_CERT_PATH and MLFLOW_TRACKING_INSECURE_TLS."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus explicit overrides, with errors that name the key."""
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    for key in os.environ:
        if key.startswith(PREFIX) and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise InvalidInput(f"unknown setting {key}{hint}", field=key)
    for name in (*MLFLOW_CREDENTIALS, *MLFLOW_TLS):
        mlflow_value = os.environ.get("MLFLOW_" + name.upper())
        if mlflow_value and PREFIX + name.upper() not in os.environ:
            overrides.setdefault(name, mlflow_value)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        raise InvalidInput(
            f"bad setting {PREFIX}{name.upper()}: {err['msg']}", field=PREFIX + name.upper()
        ) from None
