"""The deployment service over a real embedded backend (SQLite log and views)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.deployer.service import DeploymentService
from ledgerflow.services.deployments.state import Deployment, fold
from ledgerflow.services.projector.deployment_tables import DEPLOYMENT_VARIANTS as DV
from ledgerflow.services.projector.tables import APPLIED_EVENTS, view_tables

ACTOR = "user:test"
A = {"name": "a", "model": "m", "version": 1, "weight": 90}
B = {"name": "b", "model": "m", "version": 2, "weight": 10}
S = {"name": "s", "model": "m", "version": 2, "shadow": True}
PLAN = {"candidate": "b", "steps": [{"weight": 10}, {"weight": 50}, {"weight": 100}]}


@pytest.fixture
def service(backend: Backend) -> DeploymentService:
    backend.registry.create_registered_model("m", actor=ACTOR)
    for _ in range(2):
        backend.registry.create_model_version("m", "file:///tmp/model", actor=ACTOR)
    return DeploymentService.for_backend(backend)


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
    dep = service.create("web", [A, B, S], guardrails=[{"metric": "error_rate", "threshold": 0.1}],
                         actor=ACTOR)  # fmt: skip
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
        service.create("web", [A, {**B, "version": 7}], actor=ACTOR)
    assert e.value.field == "variants[1]"
    with pytest.raises(InvalidInput, match="no bundle") as e:
        service.create("web", [A, {**B, "bundle_id": "nope"}], actor=ACTOR)
    assert e.value.field == "variants[1].bundle_id"
    service.create("web", [A], actor=ACTOR)
    with pytest.raises(InvalidInput, match="no registered model|does not exist|not exist") as e:
        service.add_variant("web", {"name": "c", "model": "zz", "version": 1}, actor=ACTOR)
    assert e.value.field == "variant"
    with pytest.raises(AlreadyExists):
        service.create("web", [A], actor=ACTOR)


def test_promote_moves_the_alias_in_the_same_commit(service: DeploymentService, backend: Backend):
    service.create("web", [A, B], plan=PLAN, actor=ACTOR)
    dep = service.promote("web", "b", actor=ACTOR)
    assert (dep.baseline, dep.weights, dep.plan) == ("b", {"a": 0.0, "b": 100.0}, None)
    assert backend.registry.queries.get_model_version_by_alias("m", "champion").version == 2
    tail = list(backend.log.read(None, limit=100_000))[-2:]
    assert [i.event.type for i in tail if isinstance(i, Recorded)] == [
        "deployment.promoted",
        "model.alias_set",
    ]
    service.promote("web", "a", alias=None, actor=ACTOR)
    assert backend.registry.queries.get_model_version_by_alias("m", "champion").version == 2
    with pytest.raises(InvalidInput, match="reserved"):
        service.promote("web", "b", alias="latest", actor=ACTOR)


def test_the_canary_flow_and_its_history(service: DeploymentService):
    service.create("web", [A, B], actor=ACTOR)
    service.set_plan("web", PLAN, actor=ACTOR)
    dep = service.advance_step("web", 120, 30.0, actor="deployer")
    assert (dep.step, dep.weights) == (1, {"a": 50.0, "b": 50.0})
    guard = d.Guardrail(metric="error_rate", threshold=0.05)
    dep = service.trip("web", "b", guard, 0.4, 0.05, 0.01, 90, actor="deployer")
    assert dep.on_baseline and dep.plan is None
    history = service.history("web")
    assert [h.type.removeprefix("deployment.") for h in history] == [
        "created", "plan_set", "step_advanced", "guardrail_tripped", "rolled_back",
    ]  # fmt: skip
    assert "breached by b: observed 0.4" in history[-1].summary["reason"]
    assert history[2].actor == "deployer" and [h.seq for h in history] == [1, 2, 3, 4, 5]
    assert [h.seq for h in service.history("web", limit=2)] == [4, 5]


def test_manual_commands_and_their_errors(service: DeploymentService):
    service.create("web", [A, B], actor=ACTOR)
    assert service.set_traffic("web", {"a": 1, "b": 3}, actor=ACTOR).weights == {"a": 1.0, "b": 3.0}
    service.add_variant("web", {"name": "c", "model": "m", "version": 2}, actor=ACTOR)
    assert service.remove_variant("web", "c", actor=ACTOR).find("c") is None
    service.set_guardrails("web", [{"metric": "conversion", "bound": "min", "threshold": 0.9,
                                    "relative": True}], actor=ACTOR)  # fmt: skip
    assert service.pause("web", "look", actor=ACTOR).status == "paused"
    assert service.rollback("web", actor=ACTOR).on_baseline  # paused takes manual commands
    with pytest.raises(Conflict, match="paused"):
        service.advance_step("web", 1, 1.0, actor=ACTOR)
    assert service.resume("web", actor=ACTOR).status == "active"
    with pytest.raises(Conflict, match="baseline"):
        service.remove_variant("web", "a", actor=ACTOR)
    service.delete("web", actor=ACTOR)
    with pytest.raises(NotFound):
        service.get("web")
    with pytest.raises(NotFound):
        service.pause("web", actor=ACTOR)
    assert service.list() == []
    assert service.create("web", [B], actor=ACTOR).version == 10  # the stream goes on


def test_feedback_is_recorded_on_the_traffic_stream_and_not_projected(
    service: DeploymentService, backend: Backend
):
    service.create("web", [A, B], actor=ACTOR)
    before, applied = dump_views(backend), applied_ids(backend)
    fb = service.record_feedback("web", "req-1", True, variant="b", actor=ACTOR)
    assert (fb.stream(), fb.value, fb.kind) == ("traffic:web", 1.0, "conversion")
    service.record_feedback("web", "req-2", 12.5, metric="revenue", kind="reward", actor=ACTOR)
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
            service.record_feedback("web", actor=ACTOR, **args)  # type: ignore[arg-type]
        assert e.value.field == field
    with pytest.raises(NotFound, match="no variant 'zz'"):
        service.record_feedback("web", "r", 1, variant="zz", actor=ACTOR)
    with pytest.raises(NotFound):
        service.record_feedback("nope", "r", 1, actor=ACTOR)


def test_replaying_the_log_gives_the_same_deployment_views(
    service: DeploymentService, backend: Backend
):
    service.create("web", [A, B, S], actor=ACTOR)
    service.create("api", [B], actor=ACTOR)
    service.set_plan("web", PLAN, actor=ACTOR)
    service.advance_step("web", 10, 1.0, actor=ACTOR)
    service.promote("web", "b", actor=ACTOR)
    service.record_feedback("web", "r1", 0, actor=ACTOR)
    service.delete("api", actor=ACTOR)
    before = dump_views(backend)
    backend.projector.rebuild()
    assert dump_views(backend) == before
    assert service.get("web") == stream_state(backend, "web")


def test_an_event_that_cannot_follow_the_state_is_dead_lettered_with_the_reason(
    service: DeploymentService, backend: Backend
):
    from ledgerflow.services.commands import Committer

    service.create("web", [A, B], actor=ACTOR)
    committer = Committer(backend.log, backend.projector, 10.0)
    stale = d.DeploymentStepAdvanced(name="web", step=1, weights={"b": 1})  # no plan runs
    with pytest.raises(Conflict, match="no canary plan is running"):
        committer.commit([stale], ACTOR)
    [letter] = backend.projector.dead_letters()
    assert (letter["type"], letter["kind"]) == ("deployment.step_advanced", "rejected")
    assert service.get("web").version == 1  # the views did not move
