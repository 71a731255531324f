"""The event-sourced model registry through lf.register_model and the Client."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

import ledgerflow as lf
from ledgerflow.exceptions import AlreadyExists, InvalidInput, NotFound
from ledgerflow.services.projector.registry_tables import (
    MODEL_ALIASES,
    MODEL_VERSION_TAGS,
    MODEL_VERSIONS,
    REGISTERED_MODEL_TAGS,
    REGISTERED_MODELS,
)
from tests.conftest import PYTHON, ROOT, python_env


@pytest.fixture
def client(tracking: Path) -> lf.Client:
    return lf.Client()


@pytest.fixture
def run_with_model(tracking: Path) -> str:
    with lf.start_run() as run:
        lf.log_text("weights", "model/weights.txt")
    return run.info.run_id


def test_registering_twice_gives_versions_one_and_two(client, run_with_model):
    v1 = lf.register_model(f"runs:/{run_with_model}/model", "digits")
    v2 = lf.register_model(f"runs:/{run_with_model}/model", "digits", tags={"k": "v"})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.run_id == run_with_model and v1.current_stage == "None"
    assert v1.source.endswith(f"{run_with_model}/artifacts/model")
    assert Path(client.get_model_version_download_uri("digits", 1), "weights.txt").exists()
    assert client.get_model_version("digits", "2").tags == {"k": "v"}
    model = client.get_registered_model("digits")
    assert [v.version for v in model.latest_versions] == [2]


def test_aliases_point_at_versions_and_resolve_in_uris(client, run_with_model):
    for _ in range(3):
        lf.register_model(f"runs:/{run_with_model}/model", "m")
    client.set_registered_model_alias("m", "champion", 2)
    assert client.get_model_version_by_alias("m", "champion").version == 2
    assert client.get_model_version("m", 2).aliases == ["champion"]
    assert client.get_registered_model("m").aliases == {"champion": 2}
    assert client.resolve_model_version("models:/m@champion").version == 2
    assert client.resolve_model_version("models:/m/1").version == 1
    assert client.resolve_model_version("models:/m/latest").version == 3
    client.set_registered_model_alias("m", "champion", 3)  # an alias moves
    assert client.get_model_version_by_alias("m", "champion").version == 3
    client.delete_registered_model_alias("m", "champion")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        client.get_model_version_by_alias("m", "champion")


@pytest.mark.parametrize("alias", ["latest", "v3", "has space", "", "a/b"])
def test_reserved_or_malformed_aliases_are_refused(client, run_with_model, alias):
    lf.register_model(f"runs:/{run_with_model}/model", "m")
    with pytest.raises(InvalidInput):
        client.set_registered_model_alias("m", alias, 1)


def test_stages_archive_existing_versions_when_asked(client, run_with_model):
    for _ in range(3):
        lf.register_model(f"runs:/{run_with_model}/model", "m")
    client.transition_model_version_stage("m", 1, "production")
    client.transition_model_version_stage("m", 2, "Production", archive_existing_versions=True)
    client.transition_model_version_stage("m", 3, "Staging")
    assert client.get_model_version("m", 1).current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_latest_versions("m")}
    assert latest == {"Archived": 1, "Production": 2, "Staging": 3}
    assert [v.version for v in client.get_latest_versions("m", ["Production"])] == [2]
    assert client.resolve_model_version("models:/m/Production").version == 2
    with pytest.raises(InvalidInput, match="stage must be one of"):
        client.transition_model_version_stage("m", 1, "Live")


def test_tags_descriptions_rename_and_delete(client, run_with_model):
    client.create_registered_model("a", tags={"team": "cv"}, description="first")
    with pytest.raises(AlreadyExists):
        client.create_registered_model("a")
    client.create_model_version("a", f"runs:/{run_with_model}/model", run_id=run_with_model)
    client.set_registered_model_tag("a", "owner", "me")
    client.delete_registered_model_tag("a", "team")
    client.update_registered_model("a", "second")
    client.set_model_version_tag("a", 1, "ok", "yes")
    client.update_model_version("a", 1, "v1 notes")
    client.set_registered_model_alias("a", "prod", 1)
    client.rename_registered_model("a", "b")
    model = client.get_registered_model("b")
    assert model.tags == {"owner": "me"} and model.description == "second"
    assert model.aliases == {"prod": 1}
    v = client.get_model_version("b", 1)
    assert v.tags == {"ok": "yes"} and v.description == "v1 notes"
    with pytest.raises(NotFound):
        client.get_registered_model("a")
    client.delete_registered_model("b")
    with pytest.raises(NotFound):
        client.get_model_version("b", 1)


def test_deleted_version_numbers_are_never_reused(client, run_with_model):
    lf.register_model(f"runs:/{run_with_model}/model", "m")
    lf.register_model(f"runs:/{run_with_model}/model", "m")
    client.set_registered_model_alias("m", "best", 2)
    client.delete_model_version("m", 2)
    assert client.get_registered_model("m").aliases == {}
    assert lf.register_model(f"runs:/{run_with_model}/model", "m").version == 3


def test_searches_filter_and_page(client, run_with_model):
    for name in ("alpha-1", "alpha-2", "beta"):
        lf.register_model(f"runs:/{run_with_model}/model", name, tags={"fam": name[:4]})
    found = client.search_registered_models("name LIKE 'alpha%'")
    assert [m.name for m in found] == ["alpha-1", "alpha-2"]
    page = client.search_registered_models(max_results=2)
    rest = client.search_registered_models(max_results=2, page_token=page.token)
    assert [m.name for m in page] + [m.name for m in rest] == ["alpha-1", "alpha-2", "beta"]
    assert rest.token is None
    versions = client.search_model_versions(f"run_id = '{run_with_model}' and tags.fam = 'beta'")
    assert [(v.name, v.version) for v in versions] == [("beta", 1)]
    with pytest.raises(InvalidInput, match="unknown key"):
        client.search_model_versions("colour = 'red'")


def test_registry_searches_take_the_runs_filter_language(client, run_with_model):
    for name in ("alpha", "beta", "gamma"):
        lf.register_model(f"runs:/{run_with_model}/model", name, tags={"fam": name[0]})
        client.set_registered_model_tag(name, "fam", name[0])
    lf.register_model(f"runs:/{run_with_model}/model", "beta")
    models = client.search_registered_models("name = 'alpha' OR tags.fam = 'g'")
    assert [m.name for m in models] == ["alpha", "gamma"]
    models = client.search_registered_models("NOT name ILIKE 'A%'", order_by=["name DESC"])
    assert [m.name for m in models] == ["gamma", "beta"]
    versions = client.search_model_versions("name IN ('beta', 'gamma') AND version_number >= 1")
    assert [(v.name, v.version) for v in versions] == [("beta", 2), ("beta", 1), ("gamma", 1)]
    versions = client.search_model_versions("version IN (2, 3) OR tags.fam = 'a'")
    assert [(v.name, v.version) for v in versions] == [("alpha", 1), ("beta", 2)]
    assert [v.version for v in client.search_model_versions("version_number = '2'")] == [2]
    page = client.search_model_versions("tags.fam IS NOT NULL", 2, ["version DESC"])
    rest = client.search_model_versions("tags.fam IS NOT NULL", 2, ["version DESC"], page.token)
    assert [(v.name, v.version) for v in [*page, *rest]] == [
        ("alpha", 1), ("beta", 1), ("gamma", 1),
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="position 11: expected AND, OR or end of input"):
        client.search_registered_models("name = 'x' ORR name = 'y'")
    with pytest.raises(InvalidInput, match="different search"):
        client.search_model_versions("name = 'beta'", page_token=page.token)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: lf.register_model("runs:/nope/model", "m"), "no run with id 'nope'"),
        (lambda: lf.register_model("runs:/onlyrun", "m"), "runs:/<run_id>/<path>"),
        (lambda: lf.register_model("/tmp/x", "bad/name"), "must not contain"),
        (lambda: lf.register_model("/tmp/x", ""), "non-empty"),
        (lambda: lf.Client().get_model_version("nope", 1), "no registered model named 'nope'"),
        (lambda: lf.Client().get_model_version("nope", "one"), "whole number"),
        (lambda: lf.Client().resolve_model_version("models:/nope"), "must look like models:/"),
        # a digit to str.isdigit() but not to int(), and versions SQLite cannot bind
        (lambda: lf.Client().get_model_version("nope", "\u00b2"), "whole number"),
        (lambda: lf.Client().get_model_version("m", 2**64), "too large"),
        (lambda: lf.Client().resolve_model_version("models:/m/" + "9" * 30), "too large"),
    ],
)
def test_bad_registry_input_gets_a_clear_error(tracking, call, match):
    with pytest.raises((InvalidInput, NotFound), match=match):
        call()


def test_registry_events_appear_on_subscriptions(client, run_with_model):
    lf.register_model(f"runs:/{run_with_model}/model", "m")
    client.set_registered_model_alias("m", "champion", 1)
    types = [r.event.type for r in lf.subscribe(types=["model.*"], follow=False)]
    assert types == ["model.created", "model.version_created", "model.alias_set"]


def _registry_rows(backend):
    out = {}
    with backend.projector.engine.connect() as conn:
        for t in (
            REGISTERED_MODELS,
            REGISTERED_MODEL_TAGS,
            MODEL_VERSIONS,
            MODEL_VERSION_TAGS,
            MODEL_ALIASES,
        ):
            out[t.name] = sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
    return out


def test_a_replay_reproduces_the_registry_exactly(client, run_with_model):
    for i in range(4):
        lf.register_model(f"runs:/{run_with_model}/model", f"m{i % 2}", tags={"i": str(i)})
    client.set_registered_model_alias("m0", "champion", 2)
    client.transition_model_version_stage("m1", 1, "Production")
    client.delete_model_version("m1", 2)
    client.rename_registered_model("m1", "renamed")
    lf.register_model(f"runs:/{run_with_model}/model", "renamed")
    backend = client._backend
    before = _registry_rows(backend)
    backend.projector.rebuild()
    assert _registry_rows(backend) == before
    assert client.get_model_version("renamed", 3).version == 3


def test_eight_processes_registering_at_once_get_versions_one_to_eight(tmp_path):
    data = tmp_path / "data"
    setup = "import ledgerflow as lf\nwith lf.start_run() as r:\n    lf.log_text('x', 'model/x')\nprint(r.info.run_id)"
    run_id = subprocess.run(
        [PYTHON, "-c", setup],
        env=python_env(data),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code = textwrap.dedent(f"""
        import sys
        import ledgerflow as lf
        print("ready", flush=True)
        sys.stdin.readline()  # all eight go at the same moment, once all are ready
        print(lf.register_model("runs:/{run_id}/model", "raced").version)
    """)
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", code],
            env=python_env(data),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n", p.communicate()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [p.communicate(timeout=180) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    versions = sorted(int(out) for out, _ in results)
    assert versions == list(range(1, 9))
    client = lf.Client(str(data))
    found = client.search_model_versions("name = 'raced'")
    assert sorted(v.version for v in found) == list(range(1, 9))
    assert client.get_registered_model("raced").name == "raced"


def test_a_registration_that_is_never_projected_times_out_with_a_clear_error(backend):
    """A projector that has stopped (here: one that never applies anything)."""
    from ledgerflow.events import model_commands as mc
    from ledgerflow.events.errors import Timeout
    from ledgerflow.services.commands import Committer
    from ledgerflow.services.projector.projector import Projector
    from ledgerflow.services.registry.service import RegistryService

    class StoppedProjector(Projector):
        def catch_up(self, progress=None, *, unless=None) -> int:
            return 0

    stopped = StoppedProjector(backend.log, backend.projector.engine)
    registry = RegistryService(
        Committer(backend.log, stopped, timeout=0.3), backend.registry.queries, backend.queries
    )
    with pytest.raises(Timeout, match="not projected within .*is the projector running"):
        registry.execute(mc.CreateRegisteredModel(name="slow"), actor="t")


def test_a_run_link_is_kept_and_views_made_before_it_gain_the_column(
    client, run_with_model, tracking: Path
):
    import sqlite3

    from ledgerflow import session

    source = f"runs:/{run_with_model}/model"
    client.create_registered_model("linked")
    client.create_model_version("linked", source, run_with_model)
    session.reset()  # views of a release before run_link: the column is not there
    with sqlite3.connect(tracking / "views.db") as db:
        db.execute("ALTER TABLE model_versions DROP COLUMN run_link")
    lf.set_tracking_uri(str(tracking))
    client = lf.Client()  # opening the views adds it; nothing else is lost
    link = "https://ci.example.com/jobs/7"
    v2 = client.create_model_version("linked", source, run_with_model, run_link=link)
    assert (v2.version, v2.run_link) == (2, link)
    assert client.get_model_version("linked", 1).run_link is None
    assert client.get_model_version("linked", 2).run_link == link
    with pytest.raises(InvalidInput, match="run_link"):
        client.create_model_version("linked", source, run_link="x" * 501)
