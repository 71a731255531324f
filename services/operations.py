"""The state of the pipeline at a glance (`GET /api/v1/operations`, the UI's Operations
page): how far the projector is behind the log, what it dead-lettered, which webhooks
have deliveries waiting, jobs by status and the deployments' states.

Everything is read from what already keeps it: the log's head and the projector's
checkpoint, the dead-letter store, the webhooks with their dispatcher's cursors, the job and
deployment views. Nothing here is kept or counted anew. Model servers are processes the
views do not know: the replica `ledgerflow server` hosts is asked directly, and those listed
in `LEDGERFLOW_MODEL_SERVERS` are probed (`model_servers`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING

from pydantic import Field

from ledgerflow.events.log import Checkpoint, CorruptRecord, Item
from ledgerflow.events.wire import Out
from ledgerflow.services import model_servers
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.jobs.queries import JobQueries
from ledgerflow.services.model_servers import ModelServerHealth
from ledgerflow.services.projector.deployment_queries import DeploymentQueries
from ledgerflow.services.webhooks import checkpoint as cursors

if TYPE_CHECKING:
    from ledgerflow.services.serving.deployment import DeploymentHost

LATEST_DEAD_LETTERS = 5
PENDING_CAP = 1000
"""Webhook deliveries waiting are counted up to this many (`pending_capped` says so)."""
LAG_SCAN = 1000
"""Events read past the projector's checkpoint to find each partition's oldest unapplied
one (for `seconds_behind`)."""


class PartitionLag(Out):
    partition: str = Field(description='"" on the single-partition SQLite log')
    head: int = Field(description="the last position on the log")
    applied: int | None = Field(description="the last position the views applied")
    events_behind: int
    seconds_behind: float | None = Field(
        description="age of the oldest event not yet applied; 0 when up to date, null when "
        "it was not among the first events past the checkpoint"
    )


class DeadLetterOut(Out):
    position: int
    partition: str
    event_id: str
    type: str
    stream: str
    kind: str = Field(
        description="corrupt (cannot be decoded) or rejected (contradicts its stream)"
    )
    reason: str
    time: int


class DeadLetters(Out):
    count: int
    latest: list[DeadLetterOut] = Field(
        description=f"the newest {LATEST_DEAD_LETTERS}, newest first"
    )


class WebhookBacklog(Out):
    name: str
    active: bool
    pending: int = Field(description="events waiting for delivery (counted up to pending_cap)")
    pending_capped: bool
    oldest_pending_age_s: float | None = Field(description="age of the first event waiting")
    attempts: int = Field(description="failed attempts at the event it is stuck on")
    last_error: str | None
    next_attempt_time: int | None = Field(description="epoch ms of the next retry")


class DeploymentState(Out):
    name: str
    status: str = Field(description="active, paused or deleted")
    baseline: str
    last_action: str
    last_reason: str
    updated: int


class Operations(Out):
    time: int = Field(description="epoch ms this summary was taken")
    projector: list[PartitionLag]
    dead_letters: DeadLetters
    webhooks: list[WebhookBacklog]
    jobs: dict[str, int] = Field(description="jobs per status (statuses with none left out)")
    deployments: list[DeploymentState]
    model_servers: list[ModelServerHealth] = Field(
        description="the replica this server hosts, and every server in LEDGERFLOW_MODEL_SERVERS"
    )


def summary(backend: Backend, host: DeploymentHost | None = None) -> Operations:
    """`host`: the deployment replica this process serves beside its gateway, if any."""
    now = int(time.time() * 1000)
    return Operations(
        time=now,
        projector=projector_lag(backend, now),
        dead_letters=DeadLetters(
            count=backend.projector.dead_letter_count(),
            latest=[
                DeadLetterOut.model_validate(d)
                for d in backend.projector.dead_letters(LATEST_DEAD_LETTERS, newest_first=True)
            ],
        ),
        webhooks=webhook_backlog(backend, now),
        jobs=JobQueries(backend.queries.engine).count_by_status(),
        deployments=[
            DeploymentState.model_validate(d)
            for d in DeploymentQueries(backend.queries.engine).list(include_deleted=True)
        ],
        model_servers=model_servers.health(backend.settings.model_server_urls, host),
    )


def projector_lag(backend: Backend, now: int) -> list[PartitionLag]:
    head = backend.log.head()
    applied = backend.projector.checkpoint()
    oldest: dict[str, int] = {}
    for item in backend.log.read(after=applied, limit=LAG_SCAN):
        oldest.setdefault(item.partition, _time(item) or now)
    out = []
    for partition, last in head.partitions().items():
        done = applied.get(partition)
        behind = max(0, int(last) - (int(done) if done is not None else 0))
        first = oldest.get(partition)
        seconds = 0.0 if behind == 0 else None if first is None else max(0, now - first) / 1000
        out.append(
            PartitionLag(
                partition=partition,
                head=int(last),
                applied=None if done is None else int(done),
                events_behind=behind,
                seconds_behind=seconds,
            )
        )
    return out


def webhook_backlog(backend: Backend, now: int) -> list[WebhookBacklog]:
    out = []
    for hook in backend.webhooks.list_webhooks():  # with the dispatcher's cursor state
        waiting = _pending(backend, cursors.parse(hook.cursor), hook.events)
        first = waiting[0] if waiting else None
        out.append(
            WebhookBacklog(
                name=hook.name,
                active=hook.active,
                pending=len(waiting),
                pending_capped=len(waiting) >= PENDING_CAP,
                oldest_pending_age_s=None if first is None else max(0, now - first) / 1000,
                attempts=hook.failed_attempts,
                last_error=hook.last_error,
                next_attempt_time=hook.next_attempt_time,
            )
        )
    return out


def _pending(backend: Backend, after: Checkpoint | None, types: list[str]) -> list[int]:
    """Times of the events past `after` that the webhook's patterns select, at most
    PENDING_CAP of them."""
    items: Iterator[Item] = iter(backend.log.subscribe(after, types, follow=False))
    return [_time(i) or 0 for i in islice(items, PENDING_CAP)]


def _time(item: Item) -> int | None:
    return None if isinstance(item, CorruptRecord) else item.event.time
