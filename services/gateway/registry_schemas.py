"""Request and response bodies of the registry routes, mirroring the registry entities."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.services.gateway.schemas import Body, Out


class ModelVersionOut(Out):
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    description: str
    user_id: str
    current_stage: str
    source: str
    run_id: str | None
    status: str
    status_message: str | None
    tags: dict[str, str]
    run_link: str | None
    aliases: list[str]

    def entity(self) -> ModelVersion:
        return ModelVersion(**self.model_dump())


class RegisteredModelOut(Out):
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str
    latest_versions: list[ModelVersionOut]
    tags: dict[str, str]
    aliases: dict[str, int]

    def entity(self) -> RegisteredModel:
        return RegisteredModel(
            self.name,
            self.creation_timestamp,
            self.last_updated_timestamp,
            self.description,
            [v.entity() for v in self.latest_versions],
            dict(self.tags),
            dict(self.aliases),
        )


class ModelVersionPage(Out):
    model_versions: list[ModelVersionOut]
    next_page_token: str | None = None


class RegisteredModelPage(Out):
    registered_models: list[RegisteredModelOut]
    next_page_token: str | None = None


class RegistrySearch(Body):
    filter: str | None = Field(None, description="e.g. name LIKE 'dig%' and tags.team = 'cv'")
    max_results: int | None = Field(None, description="default 100 models / 10000 versions")
    order_by: list[str] | None = None
    page_token: str | None = None


class RegisteredModelIn(Body):
    name: str
    tags: dict[str, Any] | None = None
    description: str | None = None


class RenameIn(Body):
    new_name: str


class DescriptionIn(Body):
    description: str


class ModelVersionIn(Body):
    source: str
    run_id: str | None = None
    tags: dict[str, Any] | None = None
    description: str | None = None
    user_id: str = ""


class RegisterIn(Body):
    model_uri: str = Field(description="runs:/<run_id>/<path>, or where the files are")
    name: str
    tags: dict[str, Any] | None = None
    user_id: str = ""


class StageIn(Body):
    stage: str = Field(description="None, Staging, Production or Archived")
    archive_existing_versions: bool = False


class AliasIn(Body):
    version: int | str
