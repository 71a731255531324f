"""Model registry commands (see `ledgerflow.events.commands`), each with the REST route
that carries it, and registered models and versions as they travel in the answers.

Names, versions, stages, aliases and tags travel as given and are checked by the
registry service with the functions of `ledgerflow.services.registry.decide`, so a
mistake is refused with the same message and field in every mode. A version travels
as a number or its text (`3`, `"3"`), as in a URL.
"""

from __future__ import annotations

from typing import Any, Generic

from pydantic import Field, StrictBool

from ledgerflow.events.commands import (
    ANYONE,
    Answer,
    AsText,
    Command,
    Http,
    Lookup,
    Names,
    R,
    Tags,
    on,
)
from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.events.field_schemas import Alias, Key, ModelName, Text, Version
from ledgerflow.events.limits import MAX_RUN_LINK_LENGTH
from ledgerflow.events.model_payloads import STAGES
from ledgerflow.events.named_resources import model_in_uri, run_in_uri
from ledgerflow.events.permissions import Level
from ledgerflow.events.wire import RecordOut, from_record

_MODELS = "/registered-models"
_MODEL = _MODELS + "/{name}"
_VERSION = _MODEL + "/versions/{version}"
_ALIAS = _MODEL + "/aliases/{alias}"


@from_record(ModelVersion)
class ModelVersionOut(RecordOut[ModelVersion]):
    pass


@from_record(RegisteredModel, types={"latest_versions": list[ModelVersionOut]})
class RegisteredModelOut(RecordOut[RegisteredModel]):
    pass


def _model_out(model: RegisteredModel) -> RegisteredModelOut:
    return RegisteredModelOut.model_validate(model)


def _model_in(doc: Any) -> RegisteredModel:
    return RegisteredModelOut.model_validate(doc).entity()


def _version_out(version: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut.model_validate(version)


def _version_in(doc: Any) -> ModelVersion:
    return ModelVersionOut.model_validate(doc).entity()


def _source_runs(c: Any, _: Lookup) -> list[str]:
    return [*([c.run_id] if isinstance(c.run_id, str) and c.run_id else []), *run_in_uri(c.source)]


def _source_models(c: Any, _: Lookup) -> list[str]:
    return model_in_uri(c.source)


def _uri_runs(c: Any, _: Lookup) -> list[str]:
    return run_in_uri(c.model_uri)


def _uri_models(c: Any, _: Lookup) -> list[str]:
    return model_in_uri(c.model_uri)


SOURCE_RUN = Names("run", _source_runs, "the experiment of the run `run_id` or `source` names")
SOURCE_MODEL = Names("model", _source_models, "the model a `models:/` source names")
URI_RUN = Names("run", _uri_runs, "the experiment of the run a `runs:/` model_uri names")
URI_MODEL = Names("model", _uri_models, "the model a `models:/` model_uri names")

MODEL: Answer[RegisteredModel] = Answer(_model_out, _model_in, RegisteredModelOut)
VERSION: Answer[ModelVersion] = Answer(_version_out, _version_in, ModelVersionOut)


class ModelCommand(Command[R], Generic[R]):
    """A command on the `model:<name>` aggregate: a registered model and its versions."""

    name: ModelName


class _VersionCommand(ModelCommand[R], Generic[R]):
    version: Version


# registered models ---------------------------------------------------------------------
class CreateRegisteredModel(ModelCommand[RegisteredModel]):
    HTTP = Http("POST", _MODELS, "Create a registered model", 201)
    NEEDS = ANYONE
    ANSWER = MODEL
    tags: Tags = None
    description: str | None = None


class RenameRegisteredModel(ModelCommand[RegisteredModel]):
    HTTP = Http("POST", _MODEL + "/rename", "Rename a registered model")
    NEEDS = on("model", "name", Level.MANAGE)
    ANSWER = MODEL
    new_name: ModelName


class UpdateRegisteredModel(ModelCommand[RegisteredModel]):
    HTTP = Http("PATCH", _MODEL, "Change a registered model's description", idempotent=True)
    NEEDS = on("model", "name", Level.EDIT)
    ANSWER = MODEL
    description: str


class DeleteRegisteredModel(ModelCommand[None]):
    HTTP = Http("DELETE", _MODEL, "Delete a registered model", 204)
    NEEDS = on("model", "name", Level.MANAGE)


class SetRegisteredModelTag(ModelCommand[None]):
    HTTP = Http("PUT", _MODEL + "/tags", "Set a registered model tag", 204)
    NEEDS = on("model", "name", Level.EDIT)
    key: Key
    value: AsText


class DeleteRegisteredModelTag(ModelCommand[None]):
    HTTP = Http("DELETE", _MODEL + "/tags", "Delete a registered model tag", 204, query=("key",))
    NEEDS = on("model", "name", Level.EDIT)
    key: Key


# versions ------------------------------------------------------------------------------
class CreateModelVersion(ModelCommand[ModelVersion]):
    HTTP = Http("POST", _MODEL + "/versions", "Create a model version", 201)
    NEEDS = on("model", "name", Level.EDIT).plus(SOURCE_RUN, SOURCE_MODEL)
    ANSWER = VERSION
    source: Text
    run_id: str | None = None
    tags: Tags = None
    description: str | None = None
    user_id: str = ""
    run_link: str | None = Field(
        None, max_length=MAX_RUN_LINK_LENGTH, description="a link to the run's page elsewhere"
    )


class RegisterModel(ModelCommand[ModelVersion]):
    """The model at `model_uri` as the next version of `name`, creating the registered
    model first if needed."""

    HTTP = Http(
        "POST",
        "/model-versions/register",
        "Register a model URI as the next version of a model, creating the model if needed",
        201,
    )
    NEEDS = on("model", "name", Level.EDIT, or_new=True).plus(URI_RUN, URI_MODEL)
    ANSWER = VERSION
    model_uri: Text = Field(description="runs:/<run_id>/<path>, or where the files are")
    name: ModelName
    tags: Tags = None
    user_id: str = ""


class UpdateModelVersion(_VersionCommand[ModelVersion]):
    HTTP = Http("PATCH", _VERSION, "Change a model version's description", idempotent=True)
    NEEDS = on("model", "name", Level.EDIT)
    ANSWER = VERSION
    description: str


class DeleteModelVersion(_VersionCommand[None]):
    HTTP = Http("DELETE", _VERSION, "Delete a model version", 204)
    NEEDS = on("model", "name", Level.MANAGE)


class SetModelVersionTag(_VersionCommand[None]):
    HTTP = Http("PUT", _VERSION + "/tags", "Set a model version tag", 204)
    NEEDS = on("model", "name", Level.EDIT)
    key: Key
    value: AsText


class DeleteModelVersionTag(_VersionCommand[None]):
    HTTP = Http("DELETE", _VERSION + "/tags", "Delete a model version tag", 204, query=("key",))
    NEEDS = on("model", "name", Level.EDIT)
    key: Key


class TransitionModelVersionStage(_VersionCommand[ModelVersion]):
    HTTP = Http(
        "POST", _VERSION + "/stage", "Move a version to a stage (the older workflow)",
        idempotent=True,
    )  # fmt: skip
    NEEDS = on("model", "name", Level.MANAGE)
    ANSWER = VERSION
    stage: str = Field(
        description="None, Staging, Production or Archived (any case)",
        json_schema_extra={"enum": list(STAGES)},
    )
    archive_existing_versions: StrictBool = False


# aliases -------------------------------------------------------------------------------
class SetRegisteredModelAlias(ModelCommand[None]):
    HTTP = Http("PUT", _ALIAS, "Point an alias", 204)
    NEEDS = on("model", "name", Level.MANAGE)
    alias: Alias
    version: Version


class DeleteRegisteredModelAlias(ModelCommand[None]):
    HTTP = Http("DELETE", _ALIAS, "Remove an alias", 204)
    NEEDS = on("model", "name", Level.MANAGE)
    alias: Alias


MODEL_COMMANDS: tuple[type[ModelCommand[Any]], ...] = (
    CreateRegisteredModel,
    RenameRegisteredModel,
    UpdateRegisteredModel,
    DeleteRegisteredModel,
    SetRegisteredModelTag,
    DeleteRegisteredModelTag,
    CreateModelVersion,
    RegisterModel,
    UpdateModelVersion,
    DeleteModelVersion,
    SetModelVersionTag,
    DeleteModelVersionTag,
    TransitionModelVersionStage,
    SetRegisteredModelAlias,
    DeleteRegisteredModelAlias,
)
