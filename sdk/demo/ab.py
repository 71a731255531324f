"""The demo's last step: the champion and the challenger deployed as an A/B test.

`run_ab_test` creates the deployment `digits-ab` (the champion as its baseline, the
challenger as a canary candidate, with guardrails), serves it in this process with the
same `DeploymentHost` a model-server replica runs, and sends simulated traffic:
users (sticky keys `user-N`) each ask for one test image to be read, and a user
converts with a probability that depends only on whether the answer was right (see
`traffic`). Conversions go back as feedback joined by request id. Between rounds the
recorder flushes and the deployer ticks, so the canary advances (or a guardrail rolls it
back) on the live statistics, exactly as `ledgerflow deployer` would. At the end the
analysis decides: a variant significantly better than the other is promoted (the
`champion` alias moves with it, or stays when the champion won); without enough
evidence, traffic goes back to the baseline. Nothing in the decision is fixed in advance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ledgerflow as lf
from ledgerflow.demo.models import REGISTERED_MODEL
from ledgerflow.demo.traffic import (
    SimulatedRequest,
    Simulator,
)
from ledgerflow.events.errors import LedgerflowError, NotFound, Unavailable

if TYPE_CHECKING:
    import numpy as np

    from ledgerflow.demo.models import Splits, Trained
    from ledgerflow.demo.results import Built
    from ledgerflow.services.bootstrap import Backend
    from ledgerflow.services.deployer.loop import Deployer
    from ledgerflow.services.serving.deployment import DeploymentHost

DEPLOYMENT = "digits-ab"
BASELINE, CANDIDATE = "champion", "challenger"
ROUNDS = 20
ROUND_REQUESTS = 300
ROUND_MIN_S = 0.25  # traffic spread over seconds: the live statistics count by the second
CONCURRENCY = 8  # requests in flight at once, as from a few busy clients
STEPS: list[dict[str, float]] = [  # the candidate's share, and what it must serve first
    {"weight": 10, "min_requests": 100, "min_duration_s": 1},
    {"weight": 25, "min_requests": 200, "min_duration_s": 1},
    {"weight": 50},
]
PLAN = {"candidate": CANDIDATE, "steps": STEPS}
GUARDRAILS = [
    {"metric": "error_rate", "threshold": 0.05, "min_samples": 50},
    # absolute: these answers take under a millisecond, where one pause of the machine
    # makes a p99 several times another's, so a relative bound would trip on noise
    {"metric": "latency_p99_ms", "threshold": 100.0, "min_samples": 200},
]
READY_TIMEOUT_S = 120
ACTOR = "ledgerflow-demo"


@dataclass(frozen=True)
class Arm:
    variant: str
    version: int
    framework: str
    served_as: str  # "ONNX bundle" or "registered version"


@dataclass
class AbTest:
    """What the A/B test did, for the summary: the arms, each deployer action as it
    happened, the final analysis (see `ledgerflow.services.analytics.live.analysis`) and
    what was decided from it."""

    deployment: str
    arms: list[Arm]
    timeline: list[str] = field(default_factory=list)
    requests: int = 0
    analysis: dict[str, Any] = field(default_factory=dict)
    verdict: Verdict | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Verdict:
    decision: str
    """`promoted` (the winner gets all traffic and the champion alias), `rolled_back` (a
    guardrail tripped during the canary) or `inconclusive` (traffic back to the baseline)."""
    winner: str | None
    text: str


@dataclass(frozen=True)
class Traffic:
    simulator: Simulator
    rounds: int
    round_requests: int
    tag: str
    """Request ids are `<tag>-<n>`: a fresh tag per test, so ids never repeat in a log."""


def run_ab_test(
    backend: Backend,
    splits: Splits,
    champion: Trained,
    challenger: Trained,
    bundles: list[Built],
    *,
    rounds: int = ROUNDS,
    round_requests: int = ROUND_REQUESTS,
) -> AbTest:
    """Deploy champion vs challenger, send `rounds` rounds of `round_requests` simulated
    requests with the deployer ticking in between, then promote the winner or roll back
    (see the module docstring). Each arm serves its version's ONNX bundle when one was
    built (ONNX Runtime answers in well under a millisecond), else the registered version
    itself."""
    from ledgerflow.services.analytics.live import FollowedStats, analysis
    from ledgerflow.services.deployer.loop import Deployer

    started = time.perf_counter()
    arms = [_arm(BASELINE, champion, bundles), _arm(CANDIDATE, challenger, bundles)]
    service = backend.deployments
    with contextlib.suppress(NotFound):  # from an earlier demo in this data directory
        lf.deployments.delete(DEPLOYMENT)
    lf.deployments.create(
        DEPLOYMENT,
        [_spec(arm, bundles) for arm in arms],
        baseline=BASELINE,
        description="ledgerflow demo: champion vs challenger on simulated users",
        guardrails=GUARDRAILS,
        plan=PLAN,
    )
    ab = AbTest(DEPLOYMENT, arms)
    stats = FollowedStats(backend.log)
    deployer = Deployer(service, stats, before_tick=backend.refresh)
    traffic = Traffic(Simulator(splits.y_test), rounds, round_requests, uuid.uuid4().hex[:8])
    deployer_log = logging.getLogger("ledgerflow.deployer")
    level = deployer_log.level
    deployer_log.setLevel(logging.ERROR)  # its actions are in the timeline the summary prints
    try:
        asyncio.run(_serve(backend, splits, traffic, deployer, ab))
    finally:
        deployer_log.setLevel(level)

    dep = service.get(DEPLOYMENT)
    ab.analysis = analysis(dep, stats, since_ms=dep.created)
    verdict = judge(ab.analysis, ab.arms, tripped=dep.last_action == "rolled_back")
    if verdict.decision == "promoted" and verdict.winner is not None:
        lf.deployments.promote(DEPLOYMENT, verdict.winner, alias="champion", reason=verdict.text)
    elif verdict.decision == "inconclusive":
        lf.deployments.rollback(DEPLOYMENT, reason="no significant difference in conversion")
    ab.verdict = verdict
    ab.seconds = time.perf_counter() - started
    return ab


def embedded_backend() -> Backend | None:
    """The embedded backend of the current tracking URI, whose log the deployment is
    served from in this process; None when the tracking URI is a remote server."""
    from ledgerflow.events.settings import load_settings
    from ledgerflow.session import backend_for

    settings = load_settings(tracking_uri=lf.get_tracking_uri())
    return None if settings.is_remote else backend_for(settings).embedded()


def _arm(variant: str, trained: Trained, bundles: list[Built]) -> Arm:
    onnx = _onnx_bundle(trained.version, bundles)
    return Arm(
        variant, trained.version, trained.framework, "ONNX bundle" if onnx else "registered version"
    )


def _onnx_bundle(version: int, bundles: list[Built]) -> str | None:
    for b in bundles:
        if b.version == version and b.target == "onnx" and b.built is not None:
            return b.built.id
    return None


def _spec(arm: Arm, bundles: list[Built]) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": arm.variant,
        "model": REGISTERED_MODEL,
        "version": arm.version,
        "weight": 100 if arm.variant == BASELINE else 0,  # the plan's first step splits them
    }
    bundle_id = _onnx_bundle(arm.version, bundles)
    if bundle_id is not None:
        spec["bundle_id"] = bundle_id
    return spec


async def _serve(
    backend: Backend,
    splits: Splits,
    traffic: Traffic,
    deployer: Deployer,
    ab: AbTest,
) -> None:
    """Host the deployment, then send the rounds of traffic and feedback, ticking the
    deployer after each; stop early if a guardrail rolls the canary back."""
    from ledgerflow.services.analytics.traffic import TrafficRecorder
    from ledgerflow.services.serving.deployment import DeploymentHost, variant_loader
    from ledgerflow.services.serving.repository import ModelRepository
    from ledgerflow.services.serving.sources import BackendSource

    recorder = TrafficRecorder(backend.log, "demo", flush_interval_s=3600)  # flushed per round
    loader = variant_loader(BackendSource(backend), allow_pickle=backend.settings.allow_pickle)
    host = DeploymentHost(
        backend.log, ModelRepository(), replica="demo", recorder=recorder, only=DEPLOYMENT,
        loader=loader,
    )  # fmt: skip
    await host.start()
    try:
        await _until_ready(host)
        slots = asyncio.Semaphore(CONCURRENCY)
        for _ in range(traffic.rounds):
            requests = traffic.simulator.requests(traffic.round_requests)
            paced = asyncio.ensure_future(asyncio.sleep(ROUND_MIN_S))
            outcomes = await asyncio.gather(
                *(
                    _request(
                        host, slots, splits.x_test, traffic.simulator, request, f"{traffic.tag}-{i}"
                    )
                    for i, request in enumerate(requests, start=ab.requests)
                )
            )
            ab.requests += len(requests)
            recorder.flush()
            _send_feedback(backend, host, outcomes)
            for action in deployer.tick():
                ab.timeline.append(
                    f"after {ab.requests} requests: {action.kind.replace('_', ' ')}: "
                    f"{action.detail}"
                )
                if action.kind == "rolled_back":
                    return
            await paced
    finally:
        await host.stop()
        recorder.close()
        await host.repository.close()


def _send_feedback(
    backend: Backend, host: DeploymentHost, outcomes: list[tuple[str, bool | None]]
) -> None:
    """Each answered request's outcome as `feedback.recorded`, checked and joined to the
    variant that served it exactly as a replica's `POST /deployments/{name}/feedback`
    does, appended as one batch per round."""
    from ledgerflow.events.envelope import Event
    from ledgerflow.services.deployments import checks

    state = host.deployment(DEPLOYMENT)
    events = [
        Event.of(
            checks.feedback(state, rid, converted, variant=host.served_by(DEPLOYMENT, rid)),
            actor=ACTOR,
        )
        for rid, converted in outcomes
        if converted is not None
    ]
    if events:
        backend.log.append(events)


async def _until_ready(host: DeploymentHost) -> None:
    """Wait until both variants are loaded and warmed; a variant that failed to load
    stops the test at once with the loader's reason."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not host.ready(DEPLOYMENT):
        if host.load_errors:
            errors = "; ".join(f"{k}: {v}" for k, v in host.load_errors.items())
            raise Unavailable(f"deployment {DEPLOYMENT!r} could not load a variant ({errors})")
        if time.monotonic() > deadline:
            raise Unavailable(f"deployment {DEPLOYMENT!r} was not ready after {READY_TIMEOUT_S} s")
        await asyncio.sleep(0.05)


async def _request(
    host: DeploymentHost,
    slots: asyncio.Semaphore,
    images: np.ndarray[Any, Any],
    simulator: Simulator,
    request: SimulatedRequest,
    rid: str,
) -> tuple[str, bool | None]:
    """One simulated request: routed by the user's key, answered, and its outcome (None
    when the variant failed: a failed answer has no outcome, only an error recorded)."""
    import numpy as np

    from ledgerflow.services.serving.scoring import ModelRequest

    async with slots:
        route = host.choose(DEPLOYMENT, key=request.user, request_id=rid, forced=None)
        image = images[request.image : request.image + 1]
        try:
            answer = await host.invoke(DEPLOYMENT, route, ModelRequest(image), rid, "demo")
        except LedgerflowError:
            return rid, None
    predicted = int(np.asarray(answer.predictions).reshape(1, -1).argmax(axis=1)[0])
    return rid, simulator.converted(request, predicted)


def judge(analysis: Mapping[str, Any], arms: Sequence[Arm], *, tripped: bool) -> Verdict:
    """What to do, from the analysis alone: promote the variant that converts
    significantly better (the champion itself when the challenger is significantly
    worse), else keep the baseline. `tripped`: a guardrail already rolled the canary back."""
    if tripped:
        return Verdict(
            "rolled_back", None, f"a guardrail tripped: all traffic went back to {BASELINE}"
        )
    row = next((r for r in analysis["variants"] if r["variant"] == CANDIDATE), None)
    p = p_text(row["adjusted_p_value"] if row is not None else None)
    if row is not None and row["significant"] and row["state"] in ("better", "worse"):
        winner, loser = (CANDIDATE, BASELINE) if row["state"] == "better" else (BASELINE, CANDIDATE)
        version = next(a.version for a in arms if a.variant == winner)
        moved = "moves to" if winner == CANDIDATE else "stays on"
        return Verdict(
            "promoted",
            winner,
            f"{winner} converts significantly better than {loser} "
            f"(p={p} < {analysis['alpha']}): promoted to 100%, "
            f"{REGISTERED_MODEL}@champion {moved} version {version}",
        )
    text = (
        f"not enough evidence that either converts better (p={p}): traffic back to "
        f"{BASELINE}, {REGISTERED_MODEL}@champion unchanged"
    )
    mde = analysis.get("mde")
    if row is not None and row["more_needed"] and mde:
        text += (
            f"; seeing a difference of {mde:.3f} would take about {row['more_needed']} "
            "more requests per variant"
        )
    return Verdict("inconclusive", None, text)


def p_text(value: float | None) -> str:
    """A p-value as the demo prints it."""
    return "-" if value is None else f"{value:.2g}"
