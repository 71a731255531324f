"""The model registry: models, versions, tags, stages, aliases and models:/ URIs.

The commands' routes are made from their classes (`ledgerflow.events.model_commands`);
the reads are here. Every write waits until its event is projected before it answers, so a version
number or alias a client gets back is what any later read returns.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from ledgerflow.events.commands import on
from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.events.limits import VERSION_PATTERN
from ledgerflow.events.model_payloads import STAGES
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.auth import Requires, check, checked, readable
from ledgerflow.services.gateway.command_registry import REGISTRY
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import FreshDep, PrincipalDep, ReadsDep
from ledgerflow.services.gateway.registry_schemas import (
    ModelVersionOut,
    ModelVersionPage,
    RegisteredModelOut,
    RegisteredModelPage,
    RegistrySearch,
)
from ledgerflow.services.registry.decide import check_stage, check_version

reads = APIRouter(tags=["registry"])
MODELS = "/registered-models"
VERSION = MODELS + "/{name}/versions/{version}"
_READ_MODEL = on("model", "name", Level.READ)
_READ = Depends(Requires(_READ_MODEL))
_LISTED = "any identity; only models the caller may READ are listed"


def _model(m: RegisteredModel) -> RegisteredModelOut:
    return RegisteredModelOut.model_validate(m)


def _version(v: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut.model_validate(v)


# registered models -------------------------------------------------------------------------


@reads.post(
    MODELS + "/search",
    summary="Search registered models (filter, order, paging)",
    dependencies=[checked(_LISTED)],
)
def search_registered_models(
    body: RegistrySearch, backend: FreshDep, principal: PrincipalDep
) -> RegisteredModelPage:
    page = backend.registry.queries.search_registered_models(
        body.filter,
        100 if body.max_results is None else body.max_results,
        body.order_by,
        body.page_token,
        readable=readable(backend, principal, "model"),
    )
    return RegisteredModelPage(
        registered_models=[_model(m) for m in page], next_page_token=page.token
    )


@reads.get(MODELS + "/{name}", summary="Get a registered model", dependencies=[_READ])
def get_registered_model(name: str, backend: FreshDep) -> RegisteredModelOut:
    return _model(backend.registry.queries.get_registered_model(name))


@reads.get(
    MODELS + "/{name}/latest-versions",
    summary="The newest version in each stage",
    dependencies=[_READ],
)
def get_latest_versions(
    name: str,
    backend: FreshDep,
    stages: Annotated[
        list[Annotated[str, Field(json_schema_extra={"enum": STAGES})]] | None,
        Query(description="only these stages (any case)"),
    ] = None,
) -> list[ModelVersionOut]:
    q = backend.registry.queries
    q.get_registered_model(name)
    wanted = [check_stage(s) for s in stages] if stages else None
    return [_version(v) for v in q.get_latest_versions(name, wanted)]


_MODELS_URI = {"pattern": "^models:/"}
_Version = Annotated[str, Path(json_schema_extra={"pattern": VERSION_PATTERN})]

# versions ----------------------------------------------------------------------------------


@reads.post(
    "/model-versions/search",
    summary="Search model versions (filter, order, paging)",
    dependencies=[checked(_LISTED)],
)
def search_model_versions(
    body: RegistrySearch, backend: FreshDep, principal: PrincipalDep
) -> ModelVersionPage:
    page = backend.registry.queries.search_model_versions(
        body.filter,
        10_000 if body.max_results is None else body.max_results,
        body.order_by,
        body.page_token,
        readable=readable(backend, principal, "model"),
    )
    return ModelVersionPage(model_versions=[_version(v) for v in page], next_page_token=page.token)


@reads.get(
    "/model-versions/resolve",
    summary="The version a models:/ URI names (/<version>, @<alias>, /latest, /<stage>)",
    dependencies=[checked("READ on the model the URI names")],
)
def resolve_model_uri(
    backend: FreshDep,
    principal: PrincipalDep,
    uri: Annotated[
        str,
        Query(
            description="e.g. models:/digits@champion", json_schema_extra={"pattern": "^models:/"}
        ),
    ],
) -> ModelVersionOut:
    found = backend.registry.resolve_models_uri(uri)
    check(backend, principal, _READ_MODEL, found)
    return _version(found)


@reads.get(VERSION, summary="Get a model version", dependencies=[_READ])
def get_model_version(name: str, version: _Version, reads: ReadsDep) -> ModelVersionOut:
    return _version(reads.registry.get_model_version(name, check_version(version)))


# aliases -----------------------------------------------------------------------------------


@reads.get(
    MODELS + "/{name}/aliases/{alias}",
    summary="The version an alias points at",
    dependencies=[_READ],
)
def get_model_version_by_alias(name: str, alias: str, reads: ReadsDep) -> ModelVersionOut:
    return _version(reads.registry.get_model_version_by_alias(name, alias))


router = APIRouter()
router.include_router(command_router(REGISTRY))
router.include_router(reads)
