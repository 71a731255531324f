"""MLflow's Model Registry endpoints: registered models, versions, tags, stages, aliases
and download URIs, on Ledgerflow's registry commands and views.

Writes are the native registry commands (`ledgerflow.events.model_commands`), checked
against the caller by their NEEDS; reads need READ on the model; searches list only the
models the caller may READ. Versions travel as strings and are READY when created (the
client's polling after create ends at once). Sources and download URIs are translated
by `locations`. Deleting a tag or an alias that is not there is no error, as in MLflow.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from ledgerflow.events import model_commands as mc
from ledgerflow.events.commands import on
from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.events.permissions import Level
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import readable
from ledgerflow.services.gateway.mlflow_api import locations, messages
from ledgerflow.services.gateway.mlflow_api.endpoints import (
    Call,
    Endpoints,
    Message,
)
from ledgerflow.services.registry.decide import check_stage, check_version

api = Endpoints("mlflow model registry")
READ = on("model", "name", Level.READ)
EDIT = on("model", "name", Level.EDIT)
MANAGE = on("model", "name", Level.MANAGE)
MODELS = "/registered-models"
VERSIONS = "/model-versions"
MODELS_MAX_RESULTS, VERSIONS_MAX_RESULTS = 1000, 200_000
LISTED = "any identity; lists only the models it may READ"
VERSIONS_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
"""How MLflow's server orders a version search that gives no order."""
_NOT_A_PROMPT = re.compile(
    r"tags?\.`mlflow\.prompt\.is_prompt`\s*(?:!=\s*'true'|=\s*'false')", re.IGNORECASE
)
_NOT_A_PROMPT_HERE = (
    "(tag.`mlflow.prompt.is_prompt` IS NULL OR tag.`mlflow.prompt.is_prompt` != 'true')"
)


class _Tag(Message):
    key: str
    value: Any = ""


class ModelRef(Message):
    name: str


class CreateRegisteredModel(ModelRef):
    tags: list[_Tag] = Field(default_factory=list)
    description: str | None = None


class RenameRegisteredModel(ModelRef):
    new_name: str


class UpdateRegisteredModel(ModelRef):
    description: str = ""


class ModelTag(ModelRef):
    key: str
    value: Any = ""


class ModelTagRef(ModelRef):
    key: str


class AliasRef(ModelRef):
    alias: str


class SetAlias(AliasRef):
    version: str | int


class LatestVersions(ModelRef):
    stages: list[str] = Field(default_factory=list)


class SearchModels(Message):
    filter: str | None = None
    max_results: int = Field(100, ge=1, le=MODELS_MAX_RESULTS)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class SearchVersions(SearchModels):
    max_results: int = Field(10_000, ge=1, le=VERSIONS_MAX_RESULTS)


class CreateModelVersion(ModelRef):
    source: str
    run_id: str | None = None
    tags: list[_Tag] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class VersionRef(ModelRef):
    version: str | int


class UpdateModelVersion(VersionRef):
    description: str = ""


class TransitionStage(VersionRef):
    stage: str
    archive_existing_versions: bool = False


class VersionTag(VersionRef):
    key: str
    value: Any = ""


class VersionTagRef(VersionRef):
    key: str


# answers --------------------------------------------------------------------------------


def _model(backend: Backend, m: RegisteredModel) -> dict[str, Any]:
    return messages.registered_model(m, lambda s: locations.answered_source(backend.artifacts, s))


def _version(backend: Backend, v: ModelVersion) -> dict[str, Any]:
    return messages.model_version(v, lambda s: locations.answered_source(backend.artifacts, s))


def _model_of(call: Call, name: str) -> dict[str, Any]:
    backend = call.fresh()
    return {
        "registered_model": _model(backend, backend.registry.queries.get_registered_model(name))
    }


def _version_of(call: Call, name: str, version: str | int) -> dict[str, Any]:
    found = call.reads().registry.get_model_version(name, check_version(version))
    return {"model_version": _version(call.backend, found)}


def search_filter(backend: Backend, given: str | None) -> str | None:
    """A search's filter for Ledgerflow's views: sources as stored (`locations`), and
    prompts left out as MLflow's server does. MLflow's client adds
    ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search to leave prompts out,
    and MLflow's server reads it as "not a prompt", which includes every model without the
    tag; a plain `!=` on a tag leaves those out, so it is spelt out here."""
    if not given:
        return None
    return locations.in_filter(backend.artifacts, _NOT_A_PROMPT.sub(_NOT_A_PROMPT_HERE, given))


def _page(token: str | None) -> dict[str, Any]:
    return {"next_page_token": token} if token else {}


# registered models ----------------------------------------------------------------------


@api.post(MODELS + "/create", needs="any identity (the creator gets MANAGE)")
def create_registered_model(call: Call) -> dict[str, Any]:
    msg = call.parse(CreateRegisteredModel)
    tags = {t.key: t.value for t in msg.tags}
    command = mc.CreateRegisteredModel(
        name=msg.name, tags=tags or None, description=msg.description or None
    )
    created = call.execute(command, call.backend.registry)
    return {"registered_model": _model(call.backend, created)}


@api.get(MODELS + "/get", needs="READ on the model")
def get_registered_model(call: Call) -> dict[str, Any]:
    msg = call.parse(ModelRef)
    call.check(READ, msg)
    return _model_of(call, msg.name)


@api.get(MODELS + "/search", needs=LISTED)
def search_registered_models(call: Call) -> dict[str, Any]:
    msg = call.parse(SearchModels)
    backend = call.fresh()
    page = backend.registry.queries.search_registered_models(
        search_filter(backend, msg.filter),
        msg.max_results,
        msg.order_by or None,
        msg.page_token or None,
        readable=readable(backend, call.principal, "model"),
    )
    return {"registered_models": [_model(backend, m) for m in page], **_page(page.token)}


@api.post(MODELS + "/rename", needs="MANAGE on the model")
def rename_registered_model(call: Call) -> dict[str, Any]:
    msg = call.parse(RenameRegisteredModel)
    command = mc.RenameRegisteredModel(name=msg.name, new_name=msg.new_name)
    return {"registered_model": _model(call.backend, call.execute(command, call.backend.registry))}


@api.route("PATCH", MODELS + "/update", needs="EDIT on the model")
def update_registered_model(call: Call) -> dict[str, Any]:
    msg = call.parse(UpdateRegisteredModel)
    command = mc.UpdateRegisteredModel(name=msg.name, description=msg.description)
    return {"registered_model": _model(call.backend, call.execute(command, call.backend.registry))}


@api.route("DELETE", MODELS + "/delete", needs="MANAGE on the model")
def delete_registered_model(call: Call) -> dict[str, Any]:
    msg = call.parse(ModelRef)
    call.execute(mc.DeleteRegisteredModel(name=msg.name), call.backend.registry)
    return {}


@api.post(MODELS + "/set-tag", needs="EDIT on the model")
def set_registered_model_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(ModelTag)
    command = mc.SetRegisteredModelTag(name=msg.name, key=msg.key, value=msg.value)
    call.execute(command, call.backend.registry)
    return {}


@api.route("DELETE", MODELS + "/delete-tag", needs="EDIT on the model")
def delete_registered_model_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(ModelTagRef)
    command = mc.DeleteRegisteredModelTag(name=msg.name, key=msg.key)
    call.check(EDIT, command)
    if msg.key in call.fresh().registry.queries.get_registered_model(msg.name).tags:
        call.execute(command, call.backend.registry)
    return {}


@api.get(MODELS + "/get-latest-versions", needs="READ on the model")
def get_latest_versions(call: Call) -> dict[str, Any]:
    msg = call.parse(LatestVersions)
    call.check(READ, msg)
    stages = [check_stage(s) for s in msg.stages] or None
    queries = call.fresh().registry.queries
    queries.get_registered_model(msg.name)
    found = queries.get_latest_versions(msg.name, stages)
    return {"model_versions": [_version(call.backend, v) for v in found]}


api.post(MODELS + "/get-latest-versions", needs="READ on the model")(get_latest_versions)


# aliases --------------------------------------------------------------------------------


@api.post(MODELS + "/alias", needs="MANAGE on the model")
def set_registered_model_alias(call: Call) -> dict[str, Any]:
    msg = call.parse(SetAlias)
    command = mc.SetRegisteredModelAlias(name=msg.name, alias=msg.alias, version=msg.version)
    call.execute(command, call.backend.registry)
    return {}


@api.route("DELETE", MODELS + "/alias", needs="MANAGE on the model")
def delete_registered_model_alias(call: Call) -> dict[str, Any]:
    msg = call.parse(AliasRef)
    command = mc.DeleteRegisteredModelAlias(name=msg.name, alias=msg.alias)
    call.check(MANAGE, command)
    if msg.alias in call.fresh().registry.queries.get_registered_model(msg.name).aliases:
        call.execute(command, call.backend.registry)
    return {}


@api.get(MODELS + "/alias", needs="READ on the model")
def get_model_version_by_alias(call: Call) -> dict[str, Any]:
    msg = call.parse(AliasRef)
    call.check(READ, msg)
    found = call.reads().registry.get_model_version_by_alias(msg.name, msg.alias)
    return {"model_version": _version(call.backend, found)}


# versions -------------------------------------------------------------------------------


@api.post(VERSIONS + "/create", needs="EDIT on the model, READ on the source's run")
def create_model_version(call: Call) -> dict[str, Any]:
    msg = call.parse(CreateModelVersion)
    call.check(EDIT, msg)  # before the source is looked at: what it names stays unseen
    source = locations.stored_source(call.fresh(), msg.source, msg.run_id, msg.model_id)
    command = mc.CreateModelVersion(
        name=msg.name,
        source=source.uri,
        run_id=source.run_id,
        tags={t.key: t.value for t in msg.tags} or None,
        description=msg.description or None,
        user_id=call.principal.user,
        run_link=msg.run_link or None,
    )
    created = call.execute(command, call.backend.registry)
    return {"model_version": _version(call.backend, created)}


@api.get(VERSIONS + "/get", needs="READ on the model")
def get_model_version(call: Call) -> dict[str, Any]:
    msg = call.parse(VersionRef)
    call.check(READ, msg)
    return _version_of(call, msg.name, msg.version)


@api.get(VERSIONS + "/search", needs=LISTED)
def search_model_versions(call: Call) -> dict[str, Any]:
    msg = call.parse(SearchVersions)
    backend = call.fresh()
    page = backend.registry.queries.search_model_versions(
        search_filter(backend, msg.filter),
        msg.max_results,
        msg.order_by or VERSIONS_ORDER,
        msg.page_token or None,
        readable=readable(backend, call.principal, "model"),
    )
    return {"model_versions": [_version(backend, v) for v in page], **_page(page.token)}


@api.route("PATCH", VERSIONS + "/update", needs="EDIT on the model")
def update_model_version(call: Call) -> dict[str, Any]:
    msg = call.parse(UpdateModelVersion)
    command = mc.UpdateModelVersion(name=msg.name, version=msg.version, description=msg.description)
    return {"model_version": _version(call.backend, call.execute(command, call.backend.registry))}


@api.post(VERSIONS + "/transition-stage", needs="MANAGE on the model")
def transition_model_version_stage(call: Call) -> dict[str, Any]:
    msg = call.parse(TransitionStage)
    command = mc.TransitionModelVersionStage(
        name=msg.name,
        version=msg.version,
        stage=msg.stage,
        archive_existing_versions=msg.archive_existing_versions,
    )
    return {"model_version": _version(call.backend, call.execute(command, call.backend.registry))}


@api.route("DELETE", VERSIONS + "/delete", needs="MANAGE on the model")
def delete_model_version(call: Call) -> dict[str, Any]:
    msg = call.parse(VersionRef)
    call.execute(mc.DeleteModelVersion(name=msg.name, version=msg.version), call.backend.registry)
    return {}


@api.post(VERSIONS + "/set-tag", needs="EDIT on the model")
def set_model_version_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(VersionTag)
    command = mc.SetModelVersionTag(
        name=msg.name, version=msg.version, key=msg.key, value=msg.value
    )
    call.execute(command, call.backend.registry)
    return {}


@api.route("DELETE", VERSIONS + "/delete-tag", needs="EDIT on the model")
def delete_model_version_tag(call: Call) -> dict[str, Any]:
    msg = call.parse(VersionTagRef)
    command = mc.DeleteModelVersionTag(name=msg.name, version=msg.version, key=msg.key)
    call.check(EDIT, command)
    found = call.fresh().registry.queries.get_model_version(msg.name, check_version(msg.version))
    if msg.key in found.tags:
        call.execute(command, call.backend.registry)
    return {}


@api.get(VERSIONS + "/get-download-uri", needs="READ on the model")
def get_model_version_download_uri(call: Call) -> dict[str, Any]:
    msg = call.parse(VersionRef)
    call.check(READ, msg)
    backend = call.fresh()
    found = backend.registry.queries.get_model_version(msg.name, check_version(msg.version))
    return {"artifact_uri": locations.download_uri(backend, found.source)}
