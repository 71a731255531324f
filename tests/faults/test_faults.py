"""The distributed stack under a seeded schedule of faults, then checked against its log.

Several SDK processes log runs, register model versions and move aliases through the
gateway, and an inference load asks a deployment replica for predictions and reports
outcomes, while the driver SIGKILLs (and restarts) each projector, the gateway, each
webhook dispatcher, the deployer, the replica and each traffic-stats worker, cuts the
broker, PostgreSQL and Redis off for seconds, and restarts or flushes Redis. Afterwards
every invariant of `invariants.py` and `traffic_checks.py` must hold. A failure's report
names the seed (LEDGERFLOW_FAULT_SEED) that replays the schedule.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.snapshots import RedisTrafficSnapshots
from ledgerflow.services.deployments.state import Deployment
from ledgerflow.services.leases import LEASES
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.deployment_queries import DeploymentQueries
from ledgerflow.services.projector.projector import Projector
from tests.conftest import PYTHON, ROOT, python_env
from tests.faults import invariants as inv
from tests.faults import traffic_checks as tc
from tests.faults.artifact_checks import check_artifacts
from tests.faults.conftest import FaultRun
from tests.faults.schedule import Schedule, make_schedule
from tests.faults.stack import (
    DEPLOYERS,
    DEPLOYMENT,
    GUARDED,
    REPLICAS,
    Driver,
    Stack,
    running_stack,
)
from tests.faults.traffic import Echo, Failing
from tests.integration.webhook_receiver import Receiver
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

MODEL = "shared"
FAILING = "failing"
"""The guarded deployment's candidate: a model that fails every request."""
DEPLOYMENTS = (
    inv.DeploymentUnderTest(DEPLOYMENT),
    inv.DeploymentUnderTest(GUARDED, rolls_back="b"),
)
DELIVERY_FAULTS = {"dispatcher-0", "dispatcher-1", "postgres", "broker"}
"""Faults that may interrupt a webhook delivery in flight (and so repeat it)."""
GUARD_SAMPLES = 10
"""Requests the failing candidate must have served (since the split last changed) before
its error-rate guardrail judges it: a few seconds of the traffic load."""
CONVERGE_S = 120.0
"""How long the stack gets, once the faults are over, to catch up (generous: a 2-core
machine shared with other work)."""


def start_load(stack: Stack, worker: int, go: Path) -> subprocess.Popen[str]:
    env = python_env() | {
        "LEDGERFLOW_TRACKING_URI": stack.gateway_url,
        "LEDGERFLOW_SPOOL_DIR": str(stack.folder / f"spool-{worker}"),
    }
    journal = stack.folder / "journals" / f"worker-{worker}.jsonl"
    journal.parent.mkdir(exist_ok=True)
    return subprocess.Popen(
        [PYTHON, "-m", "tests.faults.load", str(worker), str(go), str(journal), MODEL],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def start_traffic(stack: Stack, go: Path) -> subprocess.Popen[str]:
    journal = stack.folder / "traffic" / "traffic.jsonl"
    journal.parent.mkdir(exist_ok=True)
    targets = [x for name, dep in REPLICAS.items() for x in (stack.replica_urls[name], dep)]
    return subprocess.Popen(
        [PYTHON, "-m", "tests.faults.traffic", str(go), str(journal), *targets],
        env=python_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def set_up(
    stack: Stack, client: lf.Client, receivers: dict[str, Receiver]
) -> list[inv.HookUnderTest]:
    """What the load and the deployer work on: the shared model with two versions (a
    model the replica serves), a deployment whose canary plan advances on time alone,
    a deployment whose candidate (a model that fails every request) its error-rate
    guardrail must roll back, and two webhooks, one on the registry (one partition: one
    order) and one on runs (spread over partitions)."""
    client.create_registered_model(MODEL)
    client.create_registered_model(FAILING)
    exp = client.create_experiment("setup")
    lf.set_tracking_uri(stack.gateway_url)
    with lf.start_run(experiment_id=exp) as run:
        lf.pyfunc.log_model(name="model", python_model=Echo())
        lf.pyfunc.log_model(name="failing", python_model=Failing())
    run_id = run.info.run_id
    for made_by in (run_id, None):  # one model, two versions: a run is registered once
        client.create_model_version(MODEL, f"runs:/{run_id}/model", made_by)
    client.create_model_version(FAILING, f"runs:/{run_id}/failing")
    steps = [{"weight": w, "min_duration_s": 1.0} for w in range(5, 100, 5)]
    client.create_deployment(
        DEPLOYMENT,
        [{"name": "a", "model": MODEL, "version": 1, "weight": 100},
         {"name": "b", "model": MODEL, "version": 2}],
        plan={"candidate": "b", "steps": steps},
    )  # fmt: skip
    client.create_deployment(
        GUARDED,
        [{"name": "a", "model": MODEL, "version": 1, "weight": 50},
         {"name": "b", "model": FAILING, "version": 1, "weight": 50}],
        guardrails=[{"metric": "error_rate", "threshold": 0.5, "min_samples": GUARD_SAMPLES}],
    )  # fmt: skip
    hooks = []
    for name, patterns in (("models", ("model.*",)), ("runs", ("run.started", "run.finished"))):
        receiver = receivers[name] = Receiver().up()
        hook = client.create_webhook(name, receiver.url, list(patterns))
        receiver.secret = hook.secret or ""
        hooks.append(inv.HookUnderTest(name, patterns, hook.cursor))
    return hooks


def converge(stack: Stack, log: KafkaEventLog, timeout: float) -> None:
    """Every service up again; the deployer given the time to take the decision its
    statistics demand (rolling the guarded deployment back), then it and the replicas
    stopped (so the log stops growing; a replica flushes what it recorded); and the
    projectors caught up with the whole log."""
    wait_until(stack.supervisor.all_up, timeout, "every service to be running again")
    stack.services["gateway"].wait_ready(timeout)
    engine = make_engine(stack.views_url, writer=False)
    try:
        deployments = DeploymentQueries(engine)
        wait_until(
            lambda: deployments.get(GUARDED).on_baseline,
            timeout,
            lambda: rollback_awaited(stack, deployments.get(GUARDED), engine),
        )
        for i in range(DEPLOYERS):
            stack.supervisor.retire(f"deployer-{i}")
        for replica in REPLICAS:
            stack.supervisor.retire(replica)
        views = Projector(log, engine, inline=False)
        head = log.head()
        wait_until(lambda: views.checkpoint().covers(head), timeout, "the projectors")
    finally:
        engine.dispose()


def test_acknowledged_writes_survive_a_seeded_schedule_of_crashes_and_outages_exactly_once(
    fault_run: FaultRun, postgres_url: str, tmp_path: Path, spool_dir: Path
) -> None:
    report = fault_run.report
    receivers: dict[str, Receiver] = {}
    clock = Phases()
    with running_stack(tmp_path, postgres_url) as stack, closing_all(receivers):
        clock.note("stack started")
        schedule = make_schedule(
            fault_run.seed, stack.targets(), duration_s=fault_run.mode.duration_s,
            gap_s=fault_run.mode.gap_s,
        )  # fmt: skip
        report.append(schedule.describe())
        client = lf.Client(stack.gateway_url)
        try:
            hooks = set_up(stack, client, receivers)
        finally:
            session.reset()
        clock.note("set up")
        driver = run_load(stack, schedule, fault_run.mode.workers, report)
        clock.note("load and faults")
        log = KafkaEventLog(stack.kafka, topic_prefix=stack.prefix, idempotent=False)
        views = make_engine(stack.views_url, writer=False)
        snapshots = RedisTrafficSnapshots.from_url(stack.redis.url)
        try:
            try:
                converge(stack, log, CONVERGE_S)
                events = inv.read_log(log)
                for hook in hooks:
                    delivered(hook, receivers[hook.name], events)
                counted = {d.name: tc.recount(events, d.name) for d in DEPLOYMENTS}
                published(snapshots, counted)
                # Redis loses everything once more, now that no traffic comes to publish
                # it again: the workers must notice by themselves.
                stack.redis.flushall()
                published(snapshots, counted)
            except AssertionError:
                stack.supervisor.dump_stacks()
                report += [f"{n} log:\n{s.tail(20_000)}" for n, s in stack.services.items()]
                raise
            clock.note("converged")
            journal = inv.read_journals(stack.folder / "journals")
            requests = inv.read_journals(stack.folder / "traffic")
            broker_cuts = [(b, e) for t, b, e in driver.outages if t == "broker"]
            traffic = [
                tc.check_traffic(requests, events, dep, stack.services[replica].killed_at,
                                 broker_cuts)
                for replica, dep in REPLICAS.items()
            ]  # fmt: skip
            decided = {d.name: inv.check_deployment(d, events, views) for d in DEPLOYMENTS}
            problems = [
                *inv.check_load_ran(journal),
                *inv.check_tracking(journal, views, events),
                *inv.check_registry(journal, views, events),
                *(p for found, _ in decided.values() for p in found),
                *inv.check_replay(views, events, tmp_path),
            ]
            letters, refused_creations = inv.check_dead_letters(journal, views)
            problems += letters + [p for t in traffic for p in t.problems]
            found_artifacts, artifacts_read = check_artifacts(journal, stack.gateway_url)
            problems += found_artifacts
            interruptions = sum(f.target in DELIVERY_FAULTS for f in schedule.faults)
            repeats = {}
            for hook in hooks:
                r = receivers[hook.name]
                found, repeats[hook.name] = inv.check_webhook(
                    hook, events, r.requests, r.rejected, interruptions
                )
                problems += found
            exits = stack.supervisor.exits
            problems += [f"a service crashed: {e}" for e in exits if not e.refused_to_start]
            clock.note("checked")
            report.append(summary(journal, events, repeats, stack, schedule))
            report += map(str, traffic)
            report += [deciding(name, events, refused) for name, (_, refused) in decided.items()]
            report.append(f"artifacts: {artifacts_read} acknowledged, read back from S3")
            report.append(f"{refused_creations} repeated experiment creations dead-lettered")
            report.append(f"time: {clock}")
            print("\n".join(report))  # shown with -rP, or -s
            assert not problems, "\n".join(problems)
        finally:
            snapshots.close()
            views.dispose()
            log.close()


def rollback_awaited(stack: Stack, dep: Deployment, views: Engine) -> str:
    """What the deployers had to judge the guarded deployment by, for a timeout's report."""
    snapshots = RedisTrafficSnapshots.from_url(stack.redis.url)
    try:
        window = snapshots.snapshot(dep.name, dep.traffic_since)
    finally:
        snapshots.close()
    with views.connect() as conn:
        leases = conn.execute(select(LEASES).where(LEASES.c.kind == "deployment")).all()
    return (
        f"the deployers to roll {dep.name} back (its candidate fails every request); its "
        f"state {dep.to_dict()}; in Redis since {dep.traffic_since}: "
        f"{ {n: s.to_dict() for n, s in window.items()} }; leases {leases}"
    )


def run_load(stack: Stack, schedule: Schedule, workers: int, report: list[str]) -> Driver:
    """The load processes and the driver, until both are done. The schedule starts once
    every load process is ready (has its experiment) and the replica serves the
    deployment the set-up made: starting Python takes seconds."""
    go = stack.folder / "go"
    loaders = [start_load(stack, w, go) for w in range(workers)]
    loaders.append(start_traffic(stack, go))
    driver = Driver(stack, schedule)
    try:

        def ready() -> bool:
            for proc in loaders:
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"a load process ended before it was ready:\n{out}")
            journals = [*(stack.folder / "journals").glob("*.jsonl"),
                        *(stack.folder / "traffic").glob("*.jsonl")]  # fmt: skip
            loaded = sum('"op": "ready"' in j.read_text() for j in journals) == workers + 1
            return loaded and stack.replicas_ready()  # they load the models meanwhile

        wait_until(ready, CONVERGE_S, "the load processes and the replicas to be ready")
        written = go.with_suffix(".tmp")
        written.write_text(str(time.time() + schedule.duration_s))
        written.rename(go)
        driver.start()
        deadline = time.monotonic() + schedule.duration_s + 2 * CONVERGE_S
        for proc in loaders:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, f"a load process failed:\n{out}"
        driver.join(timeout=max(1.0, deadline - time.monotonic()))
        return driver
    finally:
        report.append("what the driver did:\n" + "\n".join(driver.done))
        for proc in loaders:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def delivered(hook: inv.HookUnderTest, receiver: Receiver, events: list[Recorded]) -> None:
    """Wait until the receiver has taken every event the webhook should deliver."""
    want = {i.event.id for i in hook.expected(events)}
    wait_until(
        lambda: want <= set(receiver.accepted()),
        CONVERGE_S,
        f"webhook {hook.name} to deliver its {len(want)} events",
    )


def published(
    snapshots: RedisTrafficSnapshots, expected: dict[str, dict[str, VariantStats]]
) -> None:
    """Wait until each deployment's statistics in Redis equal the recount of the log."""
    seen: dict[str, dict[str, VariantStats]] = {}

    def equal() -> bool:
        nonlocal seen
        seen = {name: snapshots.snapshot(name) for name in expected}
        return seen == expected

    try:
        wait_until(equal, CONVERGE_S, "the traffic statistics in Redis to equal a recount")
    except AssertionError as e:
        diff = {n: tc.stats_diff(seen.get(n, {}), want) for n, want in expected.items()}
        raise AssertionError(f"{e}: {diff}") from None


def deciding(name: str, events: list[Recorded], refused: int) -> str:
    """The deployers' decisions on a deployment, for the report."""
    _, taken, _ = inv.fold_stream(inv.deployment_events(name, events))
    kinds = Counter(e.type.removeprefix("deployment.") for e in taken if e.type in inv.DECISIONS)
    return (
        f"deployment {name}: decisions {dict(sorted(kinds.items()))}, {refused} refused as "
        "taken on a state that had moved on"
    )


@contextlib.contextmanager
def closing_all(receivers: dict[str, Receiver]) -> Iterator[None]:
    try:
        yield
    finally:
        for r in receivers.values():
            r.down()


class Phases:
    """How long each phase took, for the report."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.took: list[str] = []

    def note(self, phase: str) -> None:
        now = time.monotonic()
        self.took.append(f"{phase} {now - self.last:.1f}s")
        self.last = now

    def __str__(self) -> str:
        return ", ".join(self.took)


def summary(
    journal: list[dict[str, Any]],
    events: list[Recorded],
    repeats: dict[str, int],
    stack: Stack,
    schedule: Schedule,
) -> str:
    counts = {op: len(inv.ops(journal, op)) for op in sorted({e["op"] for e in journal})}
    kinds = Counter(f.action for f in schedule.faults)
    starts = {n: s.starts for n, s in stack.services.items()}
    cuts = {n: p.cuts for n, p in stack.proxies.items()}
    refused = sum(e.refused_to_start for e in stack.supervisor.exits)
    return (
        f"faults by kind {dict(sorted(kinds.items()))}; journal {counts}; {len(events)} "
        f"events on the log; webhook repeats {repeats}; starts {starts}; cuts {cuts}; Redis "
        f"restarts {stack.redis.restarts}, flushes {stack.redis.flushes}; {refused} starts "
        "refused while a dependency was cut off"
    )
