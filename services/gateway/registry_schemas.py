"""Bodies of the registry's read routes. The registered model and version as they travel
(`RegisteredModelOut`, `ModelVersionOut`) are declared with the registry commands
(`ledgerflow.events.model_commands`), whose answers they are."""

from __future__ import annotations

from pydantic import Field

from ledgerflow.events.model_commands import ModelVersionOut as ModelVersionOut
from ledgerflow.events.model_commands import RegisteredModelOut as RegisteredModelOut
from ledgerflow.services.gateway.schemas import Body, Out


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
