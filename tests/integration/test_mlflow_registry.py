"""MLflow's Model Registry API on the gateway, driven by MLflow's own client.

A real `ledgerflow server` serves the calls; where MLflow's behaviour is subtle (search
filters and paging, the latest version per stage, download URIs, deleting what is not
there) the same calls go to a real `mlflow server` too and the answers are compared."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import ledgerflow as lf
from tests.conftest import PYTHON, free_port, python_env
from tests.integration.gateway_fixture import GatewayProcess
from tests.waiting import wait_until

MLFLOW_START_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Ledgerflow's server, MLflow's server): started together, they start faster."""
    tmp = tmp_path_factory.mktemp("mlflow-registry")
    port = free_port()
    mlflow_log = (tmp / "mlflow.log").open("wb")
    mlflow_server = subprocess.Popen(
        [PYTHON, "-m", "mlflow", "server", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
         "--serve-artifacts", "--artifacts-destination", str(tmp / "mlflow-artifacts")],
        stdout=mlflow_log, stderr=subprocess.STDOUT, env=python_env(), cwd=tmp,
    )  # fmt: skip
    gateway = GatewayProcess(tmp / "data", tmp / "server.log", command="server").launch()
    try:
        gateway.wait_ready()
        mlflow_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + MLFLOW_START_TIMEOUT_S
        while True:
            try:
                if httpx.get(mlflow_url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if mlflow_server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(tmp / 'mlflow.log').read_text()}")
            time.sleep(0.2)
        yield gateway.url, mlflow_url
    finally:
        gateway.stop()
        mlflow_server.terminate()
        try:
            mlflow_server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            mlflow_server.kill()
        mlflow_log.close()


@pytest.fixture(scope="module")
def url(servers: tuple[str, str]) -> str:
    return servers[0]


def _client(url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=url, registry_uri=url)


def _name(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _error(call: Any, *args: Any, **kwargs: Any) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        call(*args, **kwargs)
    return caught.value


def _run_with_model(url: str, tmp_path: Path) -> tuple[str, str, str]:
    """(experiment id, run id, the run's model directory as MLflow's client names it): a
    run with an MLmodel file under `model/`, logged through Ledgerflow's own client."""
    exp_id = _client(url).create_experiment(_name("exp"))
    run_id = _client(url).create_run(exp_id).info.run_id
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    lf.Client(tracking_uri=url).log_artifact(run_id, tmp_path / "MLmodel", "model")
    return exp_id, run_id, f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts/model"


# registered models ----------------------------------------------------------------------


def test_a_registered_model_is_created_read_described_tagged_renamed_and_deleted(
    url: str,
) -> None:
    client, name, new_name = _client(url), _name(), _name()
    created = client.create_registered_model(name, tags={"team": "cv"}, description="first")
    assert (created.name, created.description, created.tags) == (name, "first", {"team": "cv"})
    assert created.creation_timestamp > 0

    assert client.update_registered_model(name, description="second").description == "second"
    client.set_registered_model_tag(name, "stage", "beta")
    client.delete_registered_model_tag(name, "team")
    client.delete_registered_model_tag(name, "never-set")  # as MLflow: no error
    got = client.get_registered_model(name)
    assert (got.description, got.tags) == ("second", {"stage": "beta"})

    client.rename_registered_model(name, new_name)  # MlflowClient answers None
    assert client.get_registered_model(new_name).tags == {"stage": "beta"}
    assert _error(client.get_registered_model, name).error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model(new_name)
    missing = _error(client.get_registered_model, new_name)
    assert missing.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert missing.get_http_status_code() == 404


def test_creating_an_existing_registered_model_is_resource_already_exists(url: str) -> None:
    client, name = _client(url), _name()
    client.create_registered_model(name)
    error = _error(client.create_registered_model, name)
    assert error.error_code == "RESOURCE_ALREADY_EXISTS"
    assert error.get_http_status_code() == 400


def test_missing_models_versions_and_aliases_are_resource_does_not_exist(url: str) -> None:
    client, name = _client(url), _name()
    for call, args in (
        (client.get_registered_model, (name,)),
        (client.get_model_version, (name, "1")),
        (client.get_model_version_by_alias, (name, "champion")),
        (client.delete_registered_model, (name,)),
        (client.get_latest_versions, (name,)),
    ):
        assert _error(call, *args).error_code == "RESOURCE_DOES_NOT_EXIST", call
    client.create_registered_model(name)
    assert _error(client.get_model_version, name, "7").error_code == "RESOURCE_DOES_NOT_EXIST"
    alias = _error(client.get_model_version_by_alias, name, "champion")
    assert alias.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_bad_input_is_invalid_parameter_value_naming_the_field(url: str) -> None:
    client, name = _client(url), _name()
    client.create_registered_model(name)
    client.create_model_version(name, "s3://bucket/model")
    stage = _error(client.transition_model_version_stage, name, "1", "Live")
    assert stage.error_code == "INVALID_PARAMETER_VALUE" and "stage" in stage.message
    version = _error(client.get_model_version, name, "one")
    assert version.error_code == "INVALID_PARAMETER_VALUE" and "version" in version.message
    link = _error(client.create_model_version, name, "s3://bucket/m", run_link="x" * 501)
    assert link.error_code == "INVALID_PARAMETER_VALUE" and "run_link" in link.message


# versions -------------------------------------------------------------------------------


def test_a_version_is_created_ready_read_described_tagged_staged_aliased_and_deleted(
    url: str, tmp_path: Path
) -> None:
    client, name = _client(url), _name()
    _, run_id, source = _run_with_model(url, tmp_path)
    client.create_registered_model(name)
    v1 = client.create_model_version(
        name, source, run_id, tags={"k": "v"}, description="from the run"
    )  # polls until READY
    assert (v1.version, v1.status, v1.run_id, v1.source) == ("1", "READY", run_id, source)
    assert (v1.tags, v1.description, v1.current_stage) == ({"k": "v"}, "from the run", "None")

    assert client.update_model_version(name, "1", description="better").description == "better"
    client.set_model_version_tag(name, "1", "checked", "yes")
    client.delete_model_version_tag(name, "1", "k")
    client.delete_model_version_tag(name, "1", "never-set")
    staged = client.transition_model_version_stage(name, "1", "staging")
    assert staged.current_stage == "Staging"
    client.set_registered_model_alias(name, "champion", "1")
    by_alias = client.get_model_version_by_alias(name, "champion")
    assert (by_alias.version, by_alias.aliases, by_alias.tags) == (
        "1", ["champion"], {"checked": "yes"},
    )  # fmt: skip
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    client.delete_registered_model_alias(name, "champion")
    client.delete_registered_model_alias(name, "champion")  # as MLflow: no error
    assert client.get_model_version(name, "1").aliases == []

    link = "https://ci.example.com/jobs/7"  # where the run is seen outside Ledgerflow
    v2 = client.create_model_version(name, source, run_id, run_link=link)
    assert client.get_model_version(name, v2.version).run_link == link == v2.run_link
    client.delete_model_version(name, "1")
    assert _error(client.get_model_version, name, "1").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["2"]


def test_register_model_on_an_existing_model_adds_a_version_to_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    name = _name()
    _, run_id, source = _run_with_model(url, tmp_path)
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # restored afterwards
        monkeypatch.delenv(variable, raising=False)
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    try:
        first = mlflow.register_model(source, name)  # creates the model
        second = mlflow.register_model(source, name)  # RESOURCE_ALREADY_EXISTS, carried on
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    assert (first.version, second.version) == ("1", "2")
    assert second.run_id == run_id  # the run the source lies under


def test_a_runs_uri_source_is_stored_where_the_files_are(url: str, tmp_path: Path) -> None:
    client, name = _client(url), _name()
    exp_id, run_id, _ = _run_with_model(url, tmp_path)
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id)
    proxy = f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts/model"
    assert version.source == proxy
    assert client.get_model_version_download_uri(name, version.version) == proxy

    again = client.create_model_version(name, f"models:/{name}/{version.version}")
    assert again.source == f"models:/{name}/1"  # as sent; downloads follow it
    assert client.get_model_version_download_uri(name, again.version) == proxy

    other_run = client.create_run(exp_id).info.run_id
    wrong = _error(client.create_model_version, name, f"runs:/{run_id}/model", other_run)
    assert wrong.error_code == "INVALID_PARAMETER_VALUE" and "run_id" in wrong.message


def test_a_version_registered_through_mlflow_is_one_ledgerflow_can_bundle(
    url: str, tmp_path: Path
) -> None:
    client, name = _client(url), _name()
    _, run_id, source = _run_with_model(url, tmp_path)
    client.create_registered_model(name)
    client.create_model_version(name, source, run_id)

    native = lf.Client(tracking_uri=url).get_model_version(name, 1)
    assert (native.version, native.run_id, native.status) == (1, run_id, "READY")
    assert not native.source.startswith("mlflow-artifacts:")  # the store's own URI
    assert Path(native.source, "MLmodel").read_text() == "flavors: {}\n"


def test_a_missing_logged_model_as_source_is_resource_does_not_exist(url: str) -> None:
    client, name = _client(url), _name()
    client.create_registered_model(name)
    error = _error(client.create_model_version, name, "models:/m-0123456789abcdef")
    assert error.error_code == "RESOURCE_DOES_NOT_EXIST" and "m-0123456789abcdef" in error.message


def test_a_source_outside_any_run_is_refused(url: str, tmp_path: Path) -> None:
    client, name = _client(url), _name()
    exp_id, _, _ = _run_with_model(url, tmp_path)
    client.create_registered_model(name)
    error = _error(client.create_model_version, name, f"mlflow-artifacts:/{exp_id}/x")
    assert error.error_code == "INVALID_PARAMETER_VALUE" and "run" in error.message


# the same story on both servers ---------------------------------------------------------


def _story(url: str, prefix: str) -> dict[str, Any]:
    """The same registry calls on a server; what it answers, for comparison."""
    client = _client(url)
    a, b, c = f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"
    for name in (a, b, c):
        client.create_registered_model(name, tags={"team": "cv" if name != b else "nlp"})
    for i in range(4):
        client.create_model_version(a, f"s3://bucket/{prefix}/a{i}", tags={"i": str(i)})
    client.create_model_version(b, f"s3://bucket/{prefix}/b0")
    client.transition_model_version_stage(a, "1", "Production")
    client.transition_model_version_stage(a, "2", "Production")
    client.transition_model_version_stage(a, "3", "Staging")
    client.transition_model_version_stage(a, "4", "Production", archive_existing_versions=True)
    run = client.create_run(client.create_experiment(f"{prefix}-exp")).info
    sent = f"{run.artifact_uri}/model"  # mlflow-artifacts:/<exp>/<run>/artifacts/model
    client.create_model_version(c, sent, run.run_id)

    def versions(found: Any) -> list[tuple[str, str, str]]:
        return [(v.name.removeprefix(prefix), v.version, v.current_stage) for v in found]

    pages: list[list[str]] = []
    token = None
    while True:
        page = client.search_registered_models(
            f"name LIKE '{prefix}-%'", max_results=2, order_by=["name DESC"], page_token=token
        )
        pages.append([m.name.removeprefix(prefix) for m in page])
        token = page.token
        if not token:
            break
    version_pages = []
    token = None
    while True:
        found = client.search_model_versions(
            f"name = '{a}'", max_results=3, order_by=["version_number ASC"], page_token=token
        )
        version_pages.append(versions(found))
        token = found.token
        if not token:
            break
    return {
        "model_pages": pages,
        "tagged": [
            m.name.removeprefix(prefix)
            for m in client.search_registered_models(
                f"name LIKE '{prefix}%' AND tags.team = 'cv'", order_by=["name ASC"]
            )
        ],
        "versions_default_order": versions(client.search_model_versions(f"name = '{a}'")),
        "version_pages": version_pages,
        "by_tag": versions(client.search_model_versions(f"name = '{a}' AND tags.i = '2'")),
        "latest": versions(client.get_latest_versions(a)),
        "latest_production": versions(client.get_latest_versions(a, ["Production"])),
        "latest_none_left": versions(client.get_latest_versions(b)),
        "model_latest": versions(client.get_registered_model(a).latest_versions),
        "download_uri": client.get_model_version_download_uri(a, "2"),
        "source": client.get_model_version(a, "2").source,
        "run_source_as_sent": client.get_model_version(c, "1").source == sent,
        "run_download_uri": client.get_model_version_download_uri(c, "1") == sent,
        "by_source": versions(client.search_model_versions(f"source_path = '{sent}'")),
        "by_source_like": versions(
            client.search_model_versions(f"source_path LIKE '{run.artifact_uri}/%'")
        ),
        "by_run": versions(client.search_model_versions(f"run_id = '{run.run_id}'")),
    }


def test_searches_latest_versions_and_download_uris_answer_as_mlflows_server_does(
    servers: tuple[str, str],
) -> None:
    prefix = _name("story")
    ours, theirs = (_story(server, prefix) for server in servers)
    assert ours == theirs
    assert theirs["latest_production"] == [("-a", "4", "Production")]  # the others archived
    assert theirs["download_uri"] == f"s3://bucket/{prefix}/a1"
    assert theirs["run_source_as_sent"] and theirs["run_download_uri"]
    assert theirs["by_source"] == theirs["by_source_like"] == [("-c", "1", "None")]


# auth -----------------------------------------------------------------------------------


def test_with_auth_on_each_call_needs_what_the_native_route_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerflow.events import tracking_commands as tc
    from tests.integration.test_auth_gateway import PASSWORD, running_world

    def as_user(user: str) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        return _client(world.gateway.url)

    def denied(call: Any, *args: Any) -> bool:
        return _error(call, *args).error_code == "PERMISSION_DENIED"

    with running_world(tmp_path / "data") as world:
        b = world.backend
        hidden_exp = b.tracking.execute(tc.CreateExperiment(name="hidden"), actor="admin")
        hidden_run = b.tracking.create_run(hidden_exp, user_id="admin", actor="admin").run_id

        nobody = as_user("nobody")
        assert denied(nobody.get_registered_model, "m")
        assert denied(nobody.create_model_version, "m", f"runs:/{hidden_run}/model", hidden_run)
        nobody.create_registered_model("nobodys-own")  # the creator may then manage it
        # listed once this process's auth views are read again (AUTH_VIEWS_TTL_S: the
        # registry's commits do not invalidate them as the Backend's committer does)
        wait_until(
            lambda: [m.name for m in nobody.search_registered_models()] == ["nobodys-own"],
            timeout=5, what="the creator's model listed",
        )  # fmt: skip
        assert nobody.search_model_versions() == []

        reader = as_user("reader")
        assert reader.get_model_version_by_alias("m", "champion").version == "1"
        assert denied(reader.set_registered_model_tag, "m", "k", "v")

        editor = as_user("editor")
        editor.set_registered_model_tag("m", "k", "v")
        run_id = world.run
        created = editor.create_model_version("m", f"runs:/{run_id}/model", run_id)
        assert created.version == "2"
        # registering files is reading them: a run the editor may not read is refused
        assert denied(editor.create_model_version, "m", f"runs:/{hidden_run}/model", hidden_run)
        assert denied(editor.set_registered_model_alias, "m", "prod", "2")

        manager = as_user("manager")
        manager.set_registered_model_alias("m", "prod", "2")
        assert manager.transition_model_version_stage("m", "2", "Production").current_stage == (
            "Production"
        )
        manager.delete_model_version("m", "2")


def test_with_auth_on_every_registry_endpoint_refuses_a_user_holding_nothing(
    tmp_path: Path,
) -> None:
    """Endpoint by endpoint, not through MlflowClient (which often reads the model first,
    so a missing check behind it would go unseen)."""
    from ledgerflow.services.gateway.mlflow_api import registry
    from tests.integration.test_auth_gateway import PASSWORD, basic, running_world

    fields = {
        "name": "m", "version": "1", "alias": "champion", "key": "k", "value": "v",
        "new_name": "m2", "stage": "Staging", "source": "s3://bucket/x", "description": "d",
    }  # fmt: skip
    anyone = {"/registered-models/create", "/registered-models/search", "/model-versions/search"}
    with (
        running_world(tmp_path / "data") as world,
        httpx.Client(
            base_url=world.gateway.url + "/api/2.0/mlflow", headers=basic("nobody", PASSWORD)
        ) as http,
    ):
        assert len(registry.api.declared) == 22
        for endpoint in registry.api.declared:
            if endpoint.path in anyone:
                continue
            if endpoint.method == "GET":
                r = http.get(endpoint.path, params=fields)
            else:
                r = http.request(endpoint.method, endpoint.path, json=fields)
            assert r.status_code == 403, (endpoint.method, endpoint.path, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
        listed = http.get("/model-versions/search").json()
        assert listed.get("model_versions", []) == []
