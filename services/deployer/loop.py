"""The deployer: watches every active deployment's live statistics and acts on them.

Each tick, for each active deployment: a guardrail breach by any variant that
gets traffic (shadows excepted) rolls traffic back to the baseline at once (one commit:
`deployment.guardrail_tripped` + `deployment.rolled_back`, saying why); otherwise,
when a canary plan's current step has lasted long enough and its candidate has
served enough requests, the plan advances one step. Paused deployments are left
alone.

Several deployers may run (for availability). With `leases`, each deployment is watched
by the one holding its lease (`ledgerflow.services.leases`, kind `deployment`), renewed
every tick; another takes it over once it expires (`lease_s`) when its holder dies, and
at once when it stops. Decisions come from events and go out as events, so even a
holder that stalled past its lease cannot act twice on one state: each decision names the
deployment's version it was judged on (`on_version`), the service refuses it once the
views have moved past that version, and the fold (the projector, every replica) rejects
it when it arrives after another decision all the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.services.analytics.live import StatsSource
from ledgerflow.services.deployer import canary, guardrails
from ledgerflow.services.deployer.metrics import DeployerMetrics
from ledgerflow.services.deployer.service import DeploymentService
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.deployments.state import Deployment
from ledgerflow.services.leases import Lease, Leases, holder_name
from ledgerflow.services.projector.database import unavailable

logger = logging.getLogger("ledgerflow.deployer")
ACTOR = "deployer"


@dataclass(frozen=True, slots=True)
class Action:
    deployment: str
    kind: str  # "rolled_back" | "step_advanced"
    detail: str


class Deployer:
    def __init__(
        self,
        service: DeploymentService,
        stats: StatsSource,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], int] = now_ms,
        before_tick: Callable[[], None] | None = None,
        metrics: DeployerMetrics | None = None,
        leases: Leases | None = None,
        lease_s: float = 5.0,
    ) -> None:
        """`before_tick`, when given, brings the views up to the log first (the embedded
        backend's refresh); the statistics are refreshed by their source. `metrics`: the
        process's (by default a registry of the deployer's own)."""
        self.service = service
        self.stats = stats
        self.interval_s = interval_s
        self.clock = clock
        self._before_tick = before_tick
        self.metrics = metrics or DeployerMetrics()
        self.leases = leases
        self.lease_ms = int(max(lease_s, 2 * interval_s) * 1000)
        self.holder = holder_name()
        self._held: dict[str, Lease] = {}

    def tick(self) -> list[Action]:
        if self._before_tick is not None:
            self._before_tick()
        self.stats.refresh()
        actions: list[Action] = []
        for deployment in self.service.list():
            if deployment.status != "active" or not self._mine(deployment.name):
                continue
            try:
                action = self.decide(deployment)
            except LedgerflowError as e:  # raced by another deployer or a user: next tick
                logger.info("deployment %s: %s", deployment.name, e)
                continue
            if action is not None:
                logger.warning(
                    "deployment %s %s: %s", action.deployment, action.kind, action.detail
                )
                actions.append(action)
                self.metrics.note_decision(action.deployment, action.kind)
        self.metrics.note_tick()
        return actions

    def decide(self, dep: Deployment) -> Action | None:
        since = max(dep.traffic_since, dep.step_started or 0)
        window = self.stats.snapshot(dep.name, since)
        # Shadows are not judged: their answers never reach users, so a failing shadow
        # must not roll the live split back (the analysis shows its errors).
        judged = [v for v in dep.serving if v != dep.baseline]
        breaches = guardrails.evaluate(dep.guardrails, window, dep.baseline, judged)
        if breaches:
            b = breaches[0]
            trip = dc.TripGuardrail(
                name=dep.name,
                variant=b.variant,
                guardrail=b.guardrail,
                observed=b.observed,
                limit=b.limit,
                baseline_value=b.baseline,
                samples=b.samples,
                version=dep.version,
            )
            self.service.execute(trip, actor=ACTOR)
            self.metrics.note_trip(dep.name, b.variant, b.guardrail.metric)
            detail = (
                f"{b.guardrail.metric} of {b.variant} is {b.observed:.4g}, beyond {b.limit:.4g}"
            )
            return Action(dep.name, "rolled_back", detail)
        plan, step = dep.plan, dep.step
        if plan is None or step is None or dep.step_started is None:
            return None
        requests = self.stats.requests_since(dep.name, plan.candidate, dep.step_started)
        now = self.clock()
        if not canary.due(plan, step, dep.step_started, now, requests):
            return None
        duration_s = max(0.0, (now - dep.step_started) / 1000)
        step_on = dc.AdvanceStep(
            name=dep.name, requests=requests, duration_s=duration_s, version=dep.version
        )
        self.service.execute(step_on, actor=ACTOR)
        weight = plan.steps[step + 1].weight
        return Action(dep.name, "step_advanced", f"{plan.candidate} now at {weight:g}%")

    def _mine(self, name: str) -> bool:
        """Whether this deployer watches `name` now: always alone; with leases, while it
        holds (or has just taken or renewed) the deployment's."""
        if self.leases is None:
            return True
        lease = self.leases.claim(name, self.holder, self.lease_ms)
        if lease is None:
            self._held.pop(name, None)
            return False
        if name not in self._held:
            logger.info("deployer %s watches deployment %s", self.holder, name)
        self._held[name] = lease
        return True

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except LedgerflowError as e:
                    logger.warning("deployer tick failed: %s", e)
                except OperationalError as e:  # the views database went away: the next tick
                    logger.warning("deployer tick failed: %s", unavailable(e).message)
                stop.wait(self.interval_s)
        finally:
            if self.leases is not None and self._held:
                try:  # others take the deployments over now, not at expiry
                    self.leases.release(list(self._held.values()))
                except (LedgerflowError, OperationalError):
                    logger.exception("deployer: could not give up its leases")
                self._held.clear()
