"""The model registry: models, versions, tags, stages, aliases and models:/ URIs.

Every write waits until its event is projected before it answers, so a version
number or alias a client gets back is what any later read returns.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.services.gateway.deps import ActorDep, BackendDep, FreshDep
from ledgerflow.services.gateway.registry_schemas import (
    AliasIn,
    DescriptionIn,
    ModelVersionIn,
    ModelVersionOut,
    ModelVersionPage,
    RegisteredModelIn,
    RegisteredModelOut,
    RegisteredModelPage,
    RegisterIn,
    RegistrySearch,
    RenameIn,
    StageIn,
)
from ledgerflow.services.gateway.schemas import TagIn
from ledgerflow.services.registry.decide import check_stage, check_version

router = APIRouter(tags=["registry"])
MODELS = "/registered-models"
VERSION = MODELS + "/{name}/versions/{version}"


def _model(m: RegisteredModel) -> RegisteredModelOut:
    return RegisteredModelOut.model_validate(m)


def _version(v: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut.model_validate(v)


# registered models -------------------------------------------------------------------------
@router.post(MODELS, status_code=201, summary="Create a registered model")
def create_registered_model(
    body: RegisteredModelIn, backend: BackendDep, actor: ActorDep
) -> RegisteredModelOut:
    return _model(
        backend.registry.create_registered_model(
            body.name, body.tags, body.description, actor=actor
        )
    )


@router.post(MODELS + "/search", summary="Search registered models (filter, order, paging)")
def search_registered_models(body: RegistrySearch, backend: FreshDep) -> RegisteredModelPage:
    page = backend.registry.queries.search_registered_models(
        body.filter,
        100 if body.max_results is None else body.max_results,
        body.order_by,
        body.page_token,
    )
    return RegisteredModelPage(
        registered_models=[_model(m) for m in page], next_page_token=page.token
    )


@router.get(MODELS + "/{name}", summary="Get a registered model")
def get_registered_model(name: str, backend: FreshDep) -> RegisteredModelOut:
    return _model(backend.registry.queries.get_registered_model(name))


@router.patch(MODELS + "/{name}", summary="Change a registered model's description")
def update_registered_model(
    name: str, body: DescriptionIn, backend: BackendDep, actor: ActorDep
) -> RegisteredModelOut:
    return _model(backend.registry.update_registered_model(name, body.description, actor=actor))


@router.post(MODELS + "/{name}/rename", summary="Rename a registered model")
def rename_registered_model(
    name: str, body: RenameIn, backend: BackendDep, actor: ActorDep
) -> RegisteredModelOut:
    return _model(backend.registry.rename_registered_model(name, body.new_name, actor=actor))


@router.delete(MODELS + "/{name}", status_code=204, summary="Delete a registered model")
def delete_registered_model(name: str, backend: BackendDep, actor: ActorDep) -> None:
    backend.registry.delete_registered_model(name, actor=actor)


@router.put(MODELS + "/{name}/tags", status_code=204, summary="Set a registered model tag")
def set_registered_model_tag(name: str, body: TagIn, backend: BackendDep, actor: ActorDep) -> None:
    backend.registry.set_registered_model_tag(name, body.key, body.value, actor=actor)


@router.delete(MODELS + "/{name}/tags", status_code=204, summary="Delete a registered model tag")
def delete_registered_model_tag(name: str, key: str, backend: BackendDep, actor: ActorDep) -> None:
    backend.registry.delete_registered_model_tag(name, key, actor=actor)


@router.get(MODELS + "/{name}/latest-versions", summary="The newest version in each stage")
def get_latest_versions(
    name: str,
    backend: FreshDep,
    stages: Annotated[list[str] | None, Query(description="only these stages")] = None,
) -> list[ModelVersionOut]:
    q = backend.registry.queries
    q.get_registered_model(name)
    wanted = [check_stage(s) for s in stages] if stages else None
    return [_version(v) for v in q.get_latest_versions(name, wanted)]


# versions ----------------------------------------------------------------------------------
@router.post(MODELS + "/{name}/versions", status_code=201, summary="Create a model version")
def create_model_version(
    name: str, body: ModelVersionIn, backend: BackendDep, actor: ActorDep
) -> ModelVersionOut:
    return _version(
        backend.registry.create_model_version(
            name,
            body.source,
            body.run_id,
            body.tags,
            body.description,
            actor=actor,
            user_id=body.user_id,
        )
    )


@router.post(
    "/model-versions/register",
    status_code=201,
    summary="Register a model URI as the next version of a model, creating the model if needed",
)
def register_model(body: RegisterIn, backend: BackendDep, actor: ActorDep) -> ModelVersionOut:
    return _version(
        backend.registry.register_model(
            body.model_uri, body.name, body.tags, actor=actor, user_id=body.user_id
        )
    )


@router.post("/model-versions/search", summary="Search model versions (filter, order, paging)")
def search_model_versions(body: RegistrySearch, backend: FreshDep) -> ModelVersionPage:
    page = backend.registry.queries.search_model_versions(
        body.filter,
        10_000 if body.max_results is None else body.max_results,
        body.order_by,
        body.page_token,
    )
    return ModelVersionPage(model_versions=[_version(v) for v in page], next_page_token=page.token)


@router.get(
    "/model-versions/resolve",
    summary="The version a models:/ URI names (/<version>, @<alias>, /latest, /<stage>)",
)
def resolve_model_uri(
    backend: FreshDep, uri: Annotated[str, Query(description="e.g. models:/digits@champion")]
) -> ModelVersionOut:
    return _version(backend.registry.resolve_models_uri(uri))


@router.get(VERSION, summary="Get a model version")
def get_model_version(name: str, version: str, backend: FreshDep) -> ModelVersionOut:
    return _version(backend.registry.queries.get_model_version(name, check_version(version)))


@router.patch(VERSION, summary="Change a model version's description")
def update_model_version(
    name: str, version: str, body: DescriptionIn, backend: BackendDep, actor: ActorDep
) -> ModelVersionOut:
    return _version(
        backend.registry.update_model_version(name, version, body.description, actor=actor)
    )


@router.delete(VERSION, status_code=204, summary="Delete a model version")
def delete_model_version(name: str, version: str, backend: BackendDep, actor: ActorDep) -> None:
    backend.registry.delete_model_version(name, version, actor=actor)


@router.put(VERSION + "/tags", status_code=204, summary="Set a model version tag")
def set_model_version_tag(
    name: str, version: str, body: TagIn, backend: BackendDep, actor: ActorDep
) -> None:
    backend.registry.set_model_version_tag(name, version, body.key, body.value, actor=actor)


@router.delete(VERSION + "/tags", status_code=204, summary="Delete a model version tag")
def delete_model_version_tag(
    name: str, version: str, key: str, backend: BackendDep, actor: ActorDep
) -> None:
    backend.registry.delete_model_version_tag(name, version, key, actor=actor)


@router.post(VERSION + "/stage", summary="Move a version to a stage (the older workflow)")
def transition_model_version_stage(
    name: str, version: str, body: StageIn, backend: BackendDep, actor: ActorDep
) -> ModelVersionOut:
    return _version(
        backend.registry.transition_model_version_stage(
            name, version, body.stage, body.archive_existing_versions, actor=actor
        )
    )


# aliases -----------------------------------------------------------------------------------
@router.get(MODELS + "/{name}/aliases/{alias}", summary="The version an alias points at")
def get_model_version_by_alias(name: str, alias: str, backend: FreshDep) -> ModelVersionOut:
    return _version(backend.registry.queries.get_model_version_by_alias(name, alias))


@router.put(MODELS + "/{name}/aliases/{alias}", status_code=204, summary="Point an alias")
def set_registered_model_alias(
    name: str, alias: str, body: AliasIn, backend: BackendDep, actor: ActorDep
) -> None:
    backend.registry.set_registered_model_alias(name, alias, body.version, actor=actor)


@router.delete(MODELS + "/{name}/aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_registered_model_alias(
    name: str, alias: str, backend: BackendDep, actor: ActorDep
) -> None:
    backend.registry.delete_registered_model_alias(name, alias, actor=actor)
