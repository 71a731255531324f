"""The deployment service over a real embedded backend (SQLite log and views)."""

from __future__ import annotations

from typing import TypeVar

import pytest
from sqlalchemy import func, select

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events import model_commands as mc
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.deployer.service import DeploymentService
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.deployments.state import Deployment, fold
from ledgerflow.services.projector.deployment_tables import DEPLOYMENT_VARIANTS as DV
from ledgerflow.services.projector.tables import APPLIED_EVENTS, view_tables

T = TypeVar("T")
ACTOR = "user:test"
A = {"name": "a", "model": "m", "version": 1, "weight": 90}
B = {"name": "b", "model": "m", "version": 2, "weight": 10}
S = {"name": "s", "model": "m", "version": 2, "shadow": True}
PLAN = {"candidate": "b", "steps": [{"weight": 10}, {"weight": 50}, {"weight": 100}]}


@pytest.fixture
def service(backend: Backend) -> DeploymentService:
    backend.registry.execute(mc.CreateRegisteredModel(name="m"), actor=ACTOR)
    for _ in range(2):
        version = mc.CreateModelVersion(name="m", source="file:///tmp/model")
        backend.registry.execute(version, actor=ACTOR)
    return backend.deployments


def run(service: DeploymentService, command: dc.DeploymentCommand[T], actor: str = ACTOR) -> T:
    return service.execute(command, actor=actor)


def dump_views(backend: Backend) -> dict[str, list[tuple[object, ...]]]:
    wanted = ("deployments", "deployment_variants", "deployment_history", "model_aliases")
    with backend.projector.engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(t)))
            for t in view_tables()
            if t.name in wanted
        }


def applied_ids(backend: Backend) -> int:
    with backend.projector.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(APPLIED_EVENTS)).scalar_one())


def stream_state(backend: Backend, name: str) -> Deployment | None:
    events = [
        (i.event.data, i.event.time)
        for i in backend.log.read(None, limit=100_000)
        if isinstance(i, Recorded) and i.event.stream == f"deployment:{name}"
    ]
    return fold(events)


def test_a_created_deployment_reads_back_as_its_fold(service: DeploymentService, backend: Backend):
    guard = {"metric": "error_rate", "threshold": 0.1}
    dep = run(service, dc.CreateDeployment(name="web", variants=[A, B, S], guardrails=[guard]))
    assert (dep.baseline, dep.weights, dep.status) == ("a", {"a": 90.0, "b": 10.0}, "active")
    assert service.get("web") == stream_state(backend, "web") == dep
    assert [x.name for x in service.list()] == ["web"]
    with backend.projector.engine.connect() as conn:
        rows = conn.execute(select(DV.c.name, DV.c.weight, DV.c.shadow).order_by(DV.c.name))
        assert [tuple(r) for r in rows] == [
            ("a", 90.0, False),
            ("b", 10.0, False),
            ("s", 0.0, True),
        ]
    assert service.queries.version_of("web") == 1 and service.queries.version_of("x") is None


def test_variants_must_name_registered_versions_and_built_bundles(service: DeploymentService):
    with pytest.raises(InvalidInput, match="has no version 7") as e:
        run(service, dc.CreateDeployment(name="web", variants=[A, {**B, "version": 7}]))
    assert e.value.field == "variants[1]"
    with pytest.raises(InvalidInput, match="no bundle") as e:
        run(service, dc.CreateDeployment(name="web", variants=[A, {**B, "bundle_id": "nope"}]))
    assert e.value.field == "variants[1].bundle_id"
    run(service, dc.CreateDeployment(name="web", variants=[A]))
    with pytest.raises(InvalidInput, match="no registered model|does not exist|not exist") as e:
        run(service, dc.AddVariant(name="web", variant={"name": "c", "model": "zz", "version": 1}))
    assert e.value.field == "variant"
    with pytest.raises(AlreadyExists):
        run(service, dc.CreateDeployment(name="web", variants=[A]))


def test_promote_moves_the_alias_in_the_same_commit(service: DeploymentService, backend: Backend):
    run(service, dc.CreateDeployment(name="web", variants=[A, B], plan=PLAN))
    dep = run(service, dc.Promote(name="web", variant="b"))
    assert (dep.baseline, dep.weights, dep.plan) == ("b", {"a": 0.0, "b": 100.0}, None)
    assert backend.registry.queries.get_model_version_by_alias("m", "champion").version == 2
    tail = list(backend.log.read(None, limit=100_000))[-2:]
    assert [i.event.type for i in tail if isinstance(i, Recorded)] == [
        "deployment.promoted",
        "model.alias_set",
    ]
    run(service, dc.Promote(name="web", variant="a", alias=None))
    assert backend.registry.queries.get_model_version_by_alias("m", "champion").version == 2
    with pytest.raises(InvalidInput, match="reserved"):
        run(service, dc.Promote(name="web", variant="b", alias="latest"))


def test_the_canary_flow_and_its_history(service: DeploymentService):
    run(service, dc.CreateDeployment(name="web", variants=[A, B]))
    run(service, dc.SetPlan(name="web", plan=PLAN))
    dep = run(service, dc.AdvanceStep(name="web", requests=120, duration_s=30.0), "deployer")
    assert (dep.step, dep.weights) == (1, {"a": 50.0, "b": 50.0})
    guard = d.Guardrail(metric="error_rate", threshold=0.05)
    trip = dc.TripGuardrail(name="web", variant="b", guardrail=guard, observed=0.4, limit=0.05,
                            baseline_value=0.01, samples=90)  # fmt: skip
    dep = run(service, trip, "deployer")
    assert dep.on_baseline and dep.plan is None
    history = service.history("web")
    assert [h.type.removeprefix("deployment.") for h in history] == [
        "created", "plan_set", "step_advanced", "guardrail_tripped", "rolled_back",
    ]  # fmt: skip
    assert "breached by b: observed 0.4" in history[-1].summary["reason"]
    assert history[2].actor == "deployer" and [h.seq for h in history] == [1, 2, 3, 4, 5]
    assert [h.seq for h in service.history("web", limit=2)] == [4, 5]


def test_manual_commands_and_their_errors(service: DeploymentService):
    run(service, dc.CreateDeployment(name="web", variants=[A, B]))
    traffic = dc.SetTraffic(name="web", weights={"a": 1, "b": 3})
    assert run(service, traffic).weights == {"a": 1.0, "b": 3.0}
    run(service, dc.AddVariant(name="web", variant={"name": "c", "model": "m", "version": 2}))
    assert run(service, dc.RemoveVariant(name="web", variant="c")).find("c") is None
    run(service, dc.SetGuardrails(name="web", guardrails=[{"metric": "conversion", "bound": "min",
                                                           "threshold": 0.9, "relative": True}]))  # fmt: skip
    assert run(service, dc.Pause(name="web", reason="look")).status == "paused"
    assert run(service, dc.Rollback(name="web")).on_baseline  # paused takes manual commands
    with pytest.raises(Conflict, match="paused"):
        run(service, dc.AdvanceStep(name="web", requests=1, duration_s=1.0))
    assert run(service, dc.Resume(name="web")).status == "active"
    with pytest.raises(Conflict, match="baseline"):
        run(service, dc.RemoveVariant(name="web", variant="a"))
    run(service, dc.DeleteDeployment(name="web"))
    with pytest.raises(NotFound):
        service.get("web")
    with pytest.raises(NotFound):
        run(service, dc.Pause(name="web"))
    assert service.list() == []
    assert (
        run(service, dc.CreateDeployment(name="web", variants=[B])).version == 10
    )  # the stream goes on


def test_feedback_is_recorded_on_the_traffic_stream_and_not_projected(
    service: DeploymentService, backend: Backend
):
    run(service, dc.CreateDeployment(name="web", variants=[A, B]))
    before, applied = dump_views(backend), applied_ids(backend)
    fb = run(service, dc.RecordFeedback(name="web", request_id="req-1", value=True, variant="b"))
    assert (fb.stream(), fb.value, fb.kind) == ("traffic:web", 1.0, "conversion")
    run(service, dc.RecordFeedback(name="web", request_id="req-2", value=12.5, metric="revenue",
                                   kind="reward"))  # fmt: skip
    assert dump_views(backend) == before
    assert applied_ids(backend) == applied  # skipped at a lookup: not even an id remembered
    last = list(backend.log.read(None, limit=100_000))[-1]
    assert isinstance(last, Recorded) and isinstance(last.event.data, d.FeedbackRecorded)
    assert (last.event.data.value, last.event.data.metric) == (12.5, "revenue")
    for kwargs, field in (
        ({"value": 0.5}, "value"),
        ({"value": float("inf"), "kind": "reward"}, "value"),
        ({"value": 1, "kind": "guess"}, "kind"),
        ({"value": 1, "metric": "a b"}, "metric"),
        ({"value": 1, "request_id": " "}, "request_id"),
    ):
        args = {"request_id": "r", **kwargs}
        with pytest.raises(InvalidInput) as e:
            run(service, dc.RecordFeedback(name="web", **args))
        assert e.value.field == field
    with pytest.raises(NotFound, match="no variant 'zz'"):
        run(service, dc.RecordFeedback(name="web", request_id="r", value=1, variant="zz"))
    with pytest.raises(NotFound):
        run(service, dc.RecordFeedback(name="nope", request_id="r", value=1))


def test_replaying_the_log_gives_the_same_deployment_views(
    service: DeploymentService, backend: Backend
):
    run(service, dc.CreateDeployment(name="web", variants=[A, B, S]))
    run(service, dc.CreateDeployment(name="api", variants=[B]))
    run(service, dc.SetPlan(name="web", plan=PLAN))
    run(service, dc.AdvanceStep(name="web", requests=10, duration_s=1.0))
    run(service, dc.Promote(name="web", variant="b"))
    run(service, dc.RecordFeedback(name="web", request_id="r1", value=0))
    run(service, dc.DeleteDeployment(name="api"))
    before = dump_views(backend)
    backend.projector.rebuild()
    assert dump_views(backend) == before
    assert service.get("web") == stream_state(backend, "web")


def test_an_event_that_cannot_follow_the_state_is_dead_lettered_with_the_reason(
    service: DeploymentService, backend: Backend
):
    from ledgerflow.services.commands import Committer

    run(service, dc.CreateDeployment(name="web", variants=[A, B]))
    committer = Committer(backend.log, backend.projector, 10.0)
    stale = d.DeploymentStepAdvanced(name="web", step=1, weights={"b": 1})  # no plan runs
    with pytest.raises(Conflict, match="no canary plan is running"):
        committer.commit([stale], ACTOR)
    [letter] = backend.projector.dead_letters()
    assert (letter["type"], letter["kind"]) == ("deployment.step_advanced", "rejected")
    assert service.get("web").version == 1  # the views did not move
