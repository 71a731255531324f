"""The audit index, embedded: what each kind of change records, the filters, paging, metric
rollups, and that a replay of the log rebuilds the same trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events import payloads as p
from ledgerflow.events.audit_entities import AuditEntry, AuditQuery, instant
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.projector.audit_tables import AUDIT_ENTRIES as AU

T0 = 1_800_000_000_000  # a minute boundary: 30,000,000 minutes


def search(backend: Backend, **query: Any) -> list[AuditEntry]:
    backend.refresh()
    return list(backend.audit.search(AuditQuery(**query), max_results=1000))


def rows(backend: Backend) -> list[tuple[Any, ...]]:
    with backend.projector.engine.connect() as conn:
        cols = [c for c in AU.columns if c.name != "id"]
        return sorted(conn.execute(select(*cols)).all(), key=repr)


def model_with_versions(backend: Backend, n: int, actor: str = "alice") -> None:
    backend.registry.execute(mc.CreateRegisteredModel(name="digits-cnn"), actor=actor)
    for _ in range(n):
        backend.registry.execute(mc.CreateModelVersion(name="digits-cnn", source="/m"), actor=actor)


def test_an_alias_moved_twice_shows_the_version_before_and_after(backend: Backend) -> None:
    model_with_versions(backend, 3)
    for version in ("1", "2", "3"):
        backend.registry.execute(
            mc.SetRegisteredModelAlias(name="digits-cnn", alias="champion", version=version),
            actor="bob",
        )
    moves = search(backend, entity="model:digits-cnn", type="model.alias_set")
    champion = "aliases.champion"
    assert [(e.before, e.after) for e in moves] == [  # newest first
        ({champion: 2}, {champion: 3}),
        ({champion: 1}, {champion: 2}),
        (None, {champion: 1}),
    ]
    assert {e.actor for e in moves} == {"bob"} and moves[0].stream == "model:digits-cnn"
    assert "alias=champion" in moves[0].summary

    backend.registry.execute(
        mc.DeleteRegisteredModelAlias(name="digits-cnn", alias="champion"), actor="bob"
    )
    (gone,) = search(backend, type="model.alias_deleted")
    assert (gone.before, gone.after) == ({champion: 3}, None)


def test_registry_changes_show_what_they_replaced(backend: Backend) -> None:
    model_with_versions(backend, 2)
    x = backend.registry
    x.execute(mc.UpdateRegisteredModel(name="digits-cnn", description="v1"), actor="a")
    x.execute(mc.UpdateRegisteredModel(name="digits-cnn", description="v2"), actor="a")
    x.execute(mc.SetRegisteredModelTag(name="digits-cnn", key="team", value="cv"), actor="a")
    x.execute(mc.SetRegisteredModelTag(name="digits-cnn", key="team", value="nlp"), actor="a")
    for version in ("1", "2"):
        x.execute(
            mc.TransitionModelVersionStage(
                name="digits-cnn", version=version, stage="Production",
                archive_existing_versions=True,
            ),
            actor="a",
        )  # fmt: skip
    changes = [(e.type, e.before, e.after) for e in reversed(search(backend, entity="model:*"))]
    assert ("model.description_set", {"description": ""}, {"description": "v1"}) in changes
    assert ("model.description_set", {"description": "v1"}, {"description": "v2"}) in changes
    assert ("model.tag_set", None, {"tags.team": "cv"}) in changes
    assert ("model.tag_set", {"tags.team": "cv"}, {"tags.team": "nlp"}) in changes
    stages = [(b, a) for t, b, a in changes if t == "model.version_stage_changed"]
    assert stages == [
        ({"versions.1.stage": "None"}, {"versions.1.stage": "Production"}),
        (
            {"versions.2.stage": "None", "versions.1.stage": "Production"},
            {"versions.2.stage": "Production", "versions.1.stage": "Archived"},
        ),
    ]


def test_permission_and_deployment_changes_show_before_and_after(backend: Backend) -> None:
    model_with_versions(backend, 2)
    backend.auth.execute(ac.CreateUser(name="carol", password="password-1"), actor="admin")
    for level in ("READ", "MANAGE"):
        backend.auth.execute(
            ac.SetPermission(kind="model", key="digits-cnn", principal="user:carol", level=level),
            actor="admin",
        )
    backend.auth.execute(
        ac.RemovePermission(kind="model", key="digits-cnn", principal="user:carol"), actor="admin"
    )
    grants = search(backend, entity="permission:model:digits-cnn")
    assert [(e.before, e.after) for e in grants] == [
        ({"level": "MANAGE"}, None),
        ({"level": "READ"}, {"level": "MANAGE"}),
        (None, {"level": "READ"}),
    ]
    assert all(e.resource == "model:digits-cnn" for e in grants)
    (user,) = search(backend, type="user.created")
    assert "password_hash=(set)" in user.summary and "argon2" not in user.summary

    variants = [
        {"name": "a", "model": "digits-cnn", "version": 1, "weight": 1},
        {"name": "b", "model": "digits-cnn", "version": 2, "weight": 0},
    ]
    d = backend.deployments
    d.execute(dc.CreateDeployment(name="web", variants=variants), actor="ops")
    d.execute(dc.SetTraffic(name="web", weights={"a": 90, "b": 10}), actor="ops")
    d.execute(dc.Promote(name="web", variant="b", alias="champion"), actor="ops")
    traffic, promoted = (search(backend, type=t)[0] for t in ("deployment.traffic_set",
                                                              "deployment.promoted"))  # fmt: skip
    assert traffic.before == {"weights": {"a": 1.0, "b": 0.0}}
    assert traffic.after == {"weights": {"a": 90.0, "b": 10.0}}
    assert promoted.before == {"baseline": "a", "weights": {"a": 90.0, "b": 10.0}}
    assert promoted.after == {"baseline": "b", "weights": {"a": 0.0, "b": 100.0}}
    # the alias the promotion moved, in the same commit
    (alias,) = search(backend, type="model.alias_set", actor="ops")
    assert (alias.before, alias.after) == (None, {"aliases.champion": 2})


def _at(backend: Backend, when: int, payload: p.Payload, actor: str) -> Event:
    ev = Event(type=payload.TYPE, stream=payload.stream(), data=payload, actor=actor, time=when)
    backend.log.append([ev])
    return ev


def test_entries_filter_by_entity_actor_token_type_and_time(backend: Backend) -> None:
    _at(backend, T0, p.ExperimentCreated(experiment_id="7", name="e", artifact_location="/a"),
        "alice")  # fmt: skip
    _at(backend, T0 + 1000, p.RunStarted(run_id="r1", experiment_id="7", run_name="r",
        start_time=T0, user_id="alice", artifact_uri="/a"), "alice#token:T1")  # fmt: skip
    _at(backend, T0 + 2000, p.RunTagsSet(run_id="r1", tags={"k": "v"}), "bob")
    _at(backend, T0 + 3000, p.ExperimentTagSet(experiment_id="7", key="k", value="v"), "bob")
    _at(backend, T0 + 4000, p.RunFinished(run_id="r1", status="FINISHED", end_time=T0),
        "alice#token:T1")  # fmt: skip

    def types(**q: Any) -> list[str]:
        return [e.type for e in search(backend, **q)]

    assert types(entity="run:r1") == ["run.finished", "run.tags_set", "run.started"]
    # an experiment's entries include its runs'
    assert len(types(entity="experiment:7")) == 5
    assert types(actor="bob") == ["experiment.tag_set", "run.tags_set"]
    assert types(actor="al*") == ["run.finished", "run.started", "experiment.created"]
    assert types(token="T1") == ["run.finished", "run.started"]
    assert types(type="run.*", actor="alice") == ["run.finished", "run.started"]
    assert types(since=T0 + 2000) == ["run.finished", "experiment.tag_set", "run.tags_set"]
    assert types(since=T0 + 1000, until=T0 + 3000) == ["run.tags_set", "run.started"]
    assert types(type="deployment.*") == []
    (started,) = search(backend, type="run.started")
    assert (started.actor, started.token_id, started.resource) == ("alice", "T1", "experiment:7")
    assert started.position > 0 and started.event_id


def test_pages_follow_one_another_and_a_token_belongs_to_its_search(backend: Backend) -> None:
    for i in range(5):
        _at(backend, T0 + i, p.ExperimentCreated(experiment_id=str(i), name=f"e{i}",
            artifact_location="/a"), "alice")  # fmt: skip
    backend.refresh()
    seen, token = [], None
    while True:
        page = backend.audit.search(AuditQuery(actor="alice"), max_results=2, page_token=token)
        seen += [e.stream for e in page]
        token = page.token
        if token is None:
            break
    assert seen == [f"experiment:{i}" for i in (4, 3, 2, 1, 0)]
    first = backend.audit.search(AuditQuery(actor="alice"), max_results=2)
    with pytest.raises(InvalidInput, match="different search"):
        backend.audit.search(AuditQuery(actor="bob"), max_results=2, page_token=first.token)
    with pytest.raises(InvalidInput, match="max_results"):
        backend.audit.search(AuditQuery(), max_results=0)


def _batch(backend: Backend, when: int, run: str, points: int, actor: str = "alice") -> None:
    pts = tuple((f"m{i % 2}", 0.5, when, i) for i in range(points))
    _at(backend, when, p.RunMetricsLogged(run_id=run, points=pts), actor)


def test_metric_batches_fold_into_one_entry_per_run_identity_and_minute(backend: Backend) -> None:
    _at(backend, T0, p.ExperimentCreated(experiment_id="7", name="e", artifact_location="/a"),
        "alice")  # fmt: skip
    for run in ("r1", "r2"):
        _at(backend, T0, p.RunStarted(run_id=run, experiment_id="7", run_name=run,
            start_time=T0, user_id="alice", artifact_uri="/a"), "alice")  # fmt: skip
    _batch(backend, T0 + 1_000, "r1", 3)
    backend.refresh()  # the rollup grows across projector batches too
    _batch(backend, T0 + 2_000, "r1", 4)
    _batch(backend, T0 + 3_000, "r2", 1)
    _batch(backend, T0 + 4_000, "r1", 2, actor="alice#token:T1")
    _batch(backend, T0 + 61_000, "r1", 5)  # the next minute
    entries = search(backend, type="run.metrics_logged")
    assert [(e.stream, e.token_id, e.events, e.detail["points"]) for e in entries] == [
        ("run:r1", None, 1, 5),
        ("run:r1", "T1", 1, 2),
        ("run:r2", None, 1, 1),
        ("run:r1", None, 2, 7),
    ]
    oldest = entries[-1]
    assert oldest.time == T0 + 1_000 and oldest.detail == {
        "keys": ["m0", "m1"], "last_time": T0 + 2_000, "points": 7
    }  # fmt: skip
    assert oldest.summary == "7 points in 2 batches: m0, m1"
    assert oldest.resource == "experiment:7"


def test_replaying_the_log_rebuilds_the_same_audit_trail(backend: Backend, tmp_path: Path) -> None:
    model_with_versions(backend, 2)
    for version in ("1", "2"):
        backend.registry.execute(
            mc.SetRegisteredModelAlias(name="digits-cnn", alias="champion", version=version),
            actor="bob#token:T9",
        )
    _at(backend, T0, p.ExperimentCreated(experiment_id="7", name="e", artifact_location="/a"),
        "alice")  # fmt: skip
    _at(backend, T0, p.RunStarted(run_id="r1", experiment_id="7", run_name="r",
        start_time=T0, user_id="alice", artifact_uri="/a"), "alice")  # fmt: skip
    for i in range(4):
        _batch(backend, T0 + i, "r1", 2)
        if i == 1:
            backend.refresh()
    backend.refresh()
    before = rows(backend)

    fresh = bootstrap(
        load_settings(tracking_uri=str(tmp_path / "data"),
                      views_db=f"sqlite:///{tmp_path}/fresh-views.db"),
        log=backend.log,
    )  # fmt: skip
    try:
        fresh.projector.catch_up()
        assert rows(fresh) == before
        models = {"entity": "model:digits-cnn"}
        assert search(fresh, **models) == search(backend, **models)
    finally:
        for engine in fresh.engines:
            engine.dispose()
    backend.projector.rebuild()
    assert rows(backend) == before


def test_times_read_as_epoch_ms_iso_dates_and_time_ago() -> None:
    assert instant("2027-01-15") == 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000
    assert instant("2027-01-15T08:00:00Z") == instant("2027-01-15T09:00:00+01:00")
    assert instant("1800000000000") == instant(1_800_000_000_000) == 1_800_000_000_000
    assert instant("2h", now_ms=T0) == T0 - 7_200_000
    assert instant("1w", now_ms=T0) == T0 - 7 * 86_400_000
    with pytest.raises(InvalidInput, match="since 'yesterday' is not a time"):
        instant("yesterday")
