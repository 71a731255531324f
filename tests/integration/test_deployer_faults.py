"""The deployer after a crash, through a database outage and behind another deployer: no
decision taken twice, and no death of the loop on an outage it can wait out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import Conflict
from ledgerflow.events.settings import load_settings
from ledgerflow.services.analytics.live import FollowedStats
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.deployer.loop import Deployer
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.deployments import decide
from ledgerflow.services.projector.service import ProjectorService
from tests.waiting import wait_until


def deployment_with_a_plan(backend: Backend, steps: list[dict[str, float]]) -> None:
    """Deployment `c`: variants of model `m` versions 1 and 2, a canary plan on `b`."""
    exp = backend.tracking.execute(tc.CreateExperiment(name="e"), actor="t")
    backend.registry.execute(mc.CreateRegisteredModel(name="m"), actor="t")
    for _ in range(2):
        run = backend.tracking.create_run(exp, user_id="u", actor="t").run_id
        backend.registry.execute(
            mc.CreateModelVersion(name="m", source=f"runs:/{run}/model", run_id=run), actor="t"
        )
    variants = [
        {"name": "a", "model": "m", "version": 1, "weight": 100},
        {"name": "b", "model": "m", "version": 2},
    ]
    create = dc.CreateDeployment(
        name="c", variants=variants, plan={"candidate": "b", "steps": steps}
    )
    backend.deployments.execute(create, actor="t")


def steps_on_the_log(backend: Backend) -> list[int]:
    return [
        i.event.data.step  # type: ignore[union-attr]
        for i in backend.log.read(limit=100_000)
        if i.event.type == "deployment.step_advanced"  # type: ignore[union-attr]
    ]


def test_a_restarted_deployer_behind_the_log_waits_for_it_instead_of_deciding_again(
    tmp_path: Path,
) -> None:
    """A deployer killed after appending `step_advanced`, before the projector applied it:
    its successor must not read the old step from the views and advance it again."""
    data = tmp_path / "data"
    writer = bootstrap(load_settings(tracking_uri=str(data)))
    deciding = bootstrap(
        load_settings(tracking_uri=str(data), project_inline=False, projection_timeout_s=30)
    )  # as on Kafka: a projector service, not the deployer, keeps the views
    stop = threading.Event()
    try:
        deployment_with_a_plan(writer, [{"weight": 10}, {"weight": 20}, {"weight": 30}])
        step_one = decide.advance_step(writer.deployments.get("c"), 0, 0.0)
        writer.log.append([Event.of(p, actor="deployer") for p in step_one])  # not projected

        def projector_service_comes_back() -> None:
            time.sleep(0.5)
            ProjectorService(writer.log, writer.projector).run(stop)

        threading.Thread(target=projector_service_comes_back, daemon=True).start()
        loop = Deployer(
            deciding.deployments,
            FollowedStats(deciding.log),
            before_tick=deciding.catch_up_with_log,
        )
        actions = loop.tick()
        assert steps_on_the_log(writer) == [1, 2]  # step 1 once: not decided a second time
        assert [a.detail for a in actions] == ["b now at 30%"]
        assert writer.projector.dead_letters() == []
    finally:
        stop.set()
        deciding.close()
        writer.close()


def test_the_deployer_loop_outlives_its_views_database_going_away(views_cut_off) -> None:
    backend, proxy = views_cut_off
    deployment_with_a_plan(backend, [{"weight": w, "min_duration_s": 0.3} for w in (10, 20, 30)])
    loop = Deployer(
        backend.deployments,
        FollowedStats(backend.log),
        interval_s=0.05,
        before_tick=backend.catch_up_with_log,
    )
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    proxy.cut()  # PostgreSQL restarting, say: every tick fails for a while
    thread.start()
    try:
        time.sleep(1.0)
        assert thread.is_alive(), "the deployer loop died of the outage"
        proxy.restore()
        wait_until(lambda: backend.deployments.get("c").step == 2, 30, "the plan's last step")
        assert steps_on_the_log(backend) == [1, 2]
    finally:
        stop.set()
        thread.join(10)


GUARD = {"metric": "error_rate", "threshold": 0.05}


def test_a_deployer_deciding_on_a_state_that_has_moved_on_takes_no_decision(
    tmp_path: Path,
) -> None:
    """Two deployers: one read the deployment, then lost its lease while it judged the
    traffic, and the other took it over and tripped the guardrail. The first one's
    decisions, taken on the state it read, must not follow: refused by the service while
    the views show the change, and by the fold (dead-lettered) when they do not yet."""
    backend = bootstrap(load_settings(tracking_uri=str(tmp_path / "data")))
    try:
        deployment_with_a_plan(backend, [{"weight": 10}, {"weight": 20}, {"weight": 30}])
        service = backend.deployments
        service.execute(dc.SetGuardrails(name="c", guardrails=[GUARD]), actor="t")
        stale = service.get("c")
        trip = dc.TripGuardrail(
            name="c", variant="b", guardrail=GUARD, observed=0.5, limit=0.05,
            baseline_value=0.0, samples=60, version=stale.version,
        )  # fmt: skip
        assert service.execute(trip, actor="deployer").on_baseline
        with pytest.raises(Conflict, match="moved on"):
            service.execute(trip, actor="deployer")
        step = dc.AdvanceStep(name="c", requests=5, duration_s=1.0, version=stale.version)
        with pytest.raises(Conflict, match="moved on"):
            service.execute(step, actor="deployer")
        # the views still behind the first trip when the second was decided
        late = decide.trip(stale, "b", d.Guardrail(**GUARD), 0.5, 0.05, 0.0, 60)
        backend.log.append([Event.of(p, actor="deployer") for p in late])
        backend.catch_up_with_log()
        letters = backend.projector.dead_letters()
        assert [x["type"] for x in letters] == [p.TYPE for p in late]
        assert all("decided on version" in x["reason"] for x in letters)
        history = [h.type for h in service.history("c")]
        assert history.count("deployment.guardrail_tripped") == 1
        assert history.count("deployment.rolled_back") == 1
    finally:
        backend.close()
