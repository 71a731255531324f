"""Typed payloads for the model registry. Stream: `model:<name>`.

Version numbers are not in the payloads: the projector assigns them in stream
order when it applies `model.version_created`, so they are gap-free and the
same after every replay.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerflow.events.payloads import Payload

Stage = Literal["None", "Staging", "Production", "Archived"]
STAGES: tuple[str, ...] = ("None", "Staging", "Production", "Archived")


class _ModelPayload(Payload):
    name: str = Field(min_length=1)

    def stream(self) -> str:
        return f"model:{self.name}"


class RegisteredModelCreated(_ModelPayload):
    TYPE = "model.created"
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class RegisteredModelRenamed(_ModelPayload):
    TYPE = "model.renamed"
    new_name: str = Field(min_length=1)


class RegisteredModelDeleted(_ModelPayload):
    TYPE = "model.deleted"


class RegisteredModelDescribed(_ModelPayload):
    TYPE = "model.description_set"
    description: str


class RegisteredModelTagSet(_ModelPayload):
    TYPE = "model.tag_set"
    key: str
    value: str


class RegisteredModelTagDeleted(_ModelPayload):
    TYPE = "model.tag_deleted"
    key: str


class ModelVersionCreated(_ModelPayload):
    TYPE = "model.version_created"
    source: str
    run_id: str | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    user_id: str = ""
    run_link: str | None = None
    """A link to the run's page where it is not in Ledgerflow (MLflow's `run_link`)."""


class _VersionPayload(_ModelPayload):
    version: int = Field(ge=1)


class ModelVersionDescribed(_VersionPayload):
    TYPE = "model.version_description_set"
    description: str


class ModelVersionTagSet(_VersionPayload):
    TYPE = "model.version_tag_set"
    key: str
    value: str


class ModelVersionTagDeleted(_VersionPayload):
    TYPE = "model.version_tag_deleted"
    key: str


class ModelVersionStageChanged(_VersionPayload):
    TYPE = "model.version_stage_changed"
    stage: Stage
    archive_existing_versions: bool = False


class ModelVersionDeleted(_VersionPayload):
    TYPE = "model.version_deleted"


class ModelAliasSet(_VersionPayload):
    TYPE = "model.alias_set"
    alias: str = Field(min_length=1)


class ModelAliasDeleted(_ModelPayload):
    TYPE = "model.alias_deleted"
    alias: str = Field(min_length=1)


MODEL_PAYLOADS: tuple[type[Payload], ...] = (
    RegisteredModelCreated,
    RegisteredModelRenamed,
    RegisteredModelDeleted,
    RegisteredModelDescribed,
    RegisteredModelTagSet,
    RegisteredModelTagDeleted,
    ModelVersionCreated,
    ModelVersionDescribed,
    ModelVersionTagSet,
    ModelVersionTagDeleted,
    ModelVersionStageChanged,
    ModelVersionDeleted,
    ModelAliasSet,
    ModelAliasDeleted,
)
