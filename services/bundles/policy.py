"""Bundle policy: build bundles when an alias (say `champion`) is set on a model version.

The policy is per model, stored as two registered-model tags (`ledgerflow.bundle.on_alias`
and `ledgerflow.bundle.targets`, see `ledgerflow.services.bundles.decide`); the commands
`SetBundlePolicy` and `ClearBundlePolicy` set and clear them.

`PolicyRunner` subscribes to `model.alias_set` events and builds the bundles a
policy asks for. Its cursor lives in the views database but outside the views
(its own metadata, like the webhook cursors), so `ledgerflow replay` never makes
it build everything again. The cursor moves after each event is handled; an
event handled again after a crash finds its bundles already built and builds
nothing twice. While the runtime cannot take builds (Ray still starting, a cluster
restarting), the runner waits and handles the same event again: an outage delays a
build, it never drops one.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable

from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, Text, select

from ledgerflow.events import bundle_commands as bc
from ledgerflow.events import model_payloads as m
from ledgerflow.events.envelope import Recorded, now_ms
from ledgerflow.events.errors import LedgerflowError, Unavailable
from ledgerflow.events.log import Checkpoint, EventLog, Item
from ledgerflow.services.bundles.decide import (
    ON_ALIAS_TAG,
    TARGETS_TAG,
    Policy,
    policy_from_tags,
    policy_tags,
    wants_build,
)
from ledgerflow.services.bundles.service import BundleService
from ledgerflow.services.projector.sql import upsert

__all__ = [
    "ACTOR",
    "ON_ALIAS_TAG",
    "TARGETS_TAG",
    "Policy",
    "PolicyRunner",
    "policy_from_tags",
    "policy_tags",
    "wants_build",
]

logger = logging.getLogger("ledgerflow.bundles.policy")

ACTOR = "ledgerflow-bundle-policy"

POLICY = MetaData()
CURSORS = Table(
    "bundle_policy_cursors",
    POLICY,
    Column("runner", Text, primary_key=True),
    Column("position", Text, nullable=True),
    Column("updated_time", BigInteger, nullable=False),
)
_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


class PolicyRunner:
    """Follows the log from its cursor and builds what the policies ask for."""

    def __init__(
        self,
        log: EventLog,
        service: BundleService,
        engine: Engine,
        runner: str = "default",
        *,
        retry_s: float = 2.0,
        max_retry_s: float = 60.0,
    ) -> None:
        self.log = log
        self.service = service
        self.engine = engine
        self.runner = runner
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        if engine not in _READY:
            POLICY.create_all(engine)
            _READY.add(engine)

    def cursor(self) -> Checkpoint:
        """Where this runner resumes; the head of the log the first time it runs, so a new
        runner does not build bundles for every alias ever set."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CURSORS.c.position).where(CURSORS.c.runner == self.runner)
            ).first()
        if row is None:
            head = self.log.head()
            self._save(head)
            return head
        return Checkpoint.parse(row.position or "")

    def _save(self, at: Checkpoint) -> None:
        with self.engine.begin() as conn:
            upsert(conn, CURSORS, ("runner",), [
                {"runner": self.runner, "position": at.encode(), "updated_time": now_ms()}
            ])  # fmt: skip

    def run_once(self) -> int:
        """Handle everything appended since the cursor; how many bundles were built. Raises
        Unavailable when the runtime cannot take a build, with the cursor before it."""
        return self._consume(
            self.log.subscribe(self.cursor(), [m.ModelAliasSet.TYPE], follow=False)
        )

    def run(self, stop: threading.Event) -> None:
        """Follow the log until `stop` is set. When the runtime cannot take a build, wait
        (doubling from `retry_s` up to `max_retry_s`) and resume from the cursor, which
        is still before the event that could not be handled."""
        wait = self.retry_s
        while not stop.is_set():
            try:
                self._consume(self.log.subscribe(self.cursor(), [m.ModelAliasSet.TYPE], stop=stop))
                return
            except Unavailable as e:
                logger.warning("bundle policy retries in %g s: %s", wait, e.message)
                stop.wait(wait)
                wait = min(wait * 2, self.max_retry_s)

    def _consume(self, items: Iterable[Item]) -> int:
        at = self.cursor()
        built = 0
        for item in items:
            if isinstance(item, Recorded) and isinstance(item.event.data, m.ModelAliasSet):
                built += self._handle(item.event.data)
            at = at.advance(item)
            self._save(at)
        return built

    def _handle(self, d: m.ModelAliasSet) -> int:
        try:
            tags = self.service.registry.queries.get_registered_model(d.name).tags
            policy = policy_from_tags(tags)
            if policy is None or not wants_build(policy, d.alias):
                return 0
            trigger = f"alias:{d.alias}"
            done = {
                b.target
                for b in self.service.list_bundles(d.name, d.version)
                if b.trigger == trigger
            }
            targets = policy.targets
            if targets is not None:
                targets = [t for t in targets if t not in done]
            if done and not targets:  # handled before a crash moved the cursor past it
                return 0
            build = bc.BuildBundles(
                model_uri=f"models:/{d.name}/{d.version}", targets=targets, trigger=trigger
            )
            bundles = self.service.execute(build, actor=ACTOR)
        except Unavailable:  # the runtime is down: handled again once it is up
            raise
        except LedgerflowError as e:  # a model or version deleted since: nothing to build
            logger.warning("bundle policy skipped %s v%s@%s: %s", d.name, d.version, d.alias, e)
            return 0
        return sum(1 for b in bundles if b.status == "built")
