"""Registry commands and reads over the gateway, with the embedded service's signatures.

Every command is a straight call that the gateway answers once its event is
projected, so version numbers and aliases read back right after are current.
Names, versions, stages and aliases are checked here first with the same
functions the service uses, so a bad one fails the same way in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerflow.events.entities import ModelVersion, PagedList, RegisteredModel
from ledgerflow.remote.channel import Channel, seg


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    from ledgerflow.services.tracking.decide import clean_tags

    return clean_tags(tags or {})


def _model(doc: Any) -> RegisteredModel:
    from ledgerflow.services.gateway.registry_schemas import RegisteredModelOut

    return RegisteredModelOut.model_validate(doc).entity()


def _version(doc: Any) -> ModelVersion:
    from ledgerflow.services.gateway.registry_schemas import ModelVersionOut

    return ModelVersionOut.model_validate(doc).entity()


def _model_path(name: str) -> str:
    return f"/registered-models/{seg(name)}"


def _check_name(name: str) -> str:
    from ledgerflow.services.registry.decide import check_model_name

    return check_model_name(name)


def _version_path(name: str, version: Any) -> str:
    from ledgerflow.services.registry.decide import check_version

    return f"{_model_path(name)}/versions/{check_version(version)}"


def _search(
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> dict[str, Any]:
    return {
        "filter": filter_string,
        "max_results": max_results,
        "order_by": list(order_by) if order_by else None,
        "page_token": page_token,
    }


class RemoteRegistryQueries:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    def get_registered_model(self, name: str) -> RegisteredModel:
        return _model(self._ch.call("GET", _model_path(name)))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        from ledgerflow.services.gateway.registry_schemas import RegisteredModelPage

        body = _search(filter_string, max_results, order_by, page_token)
        doc = self._ch.call("POST", "/registered-models/search", json=body, idempotent=True)
        page = RegisteredModelPage.model_validate(doc)
        return PagedList([m.entity() for m in page.registered_models], page.next_page_token)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return _version(self._ch.call("GET", _version_path(name, version)))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        from ledgerflow.services.gateway.registry_schemas import ModelVersionPage

        body = _search(filter_string, max_results, order_by, page_token)
        doc = self._ch.call("POST", "/model-versions/search", json=body, idempotent=True)
        page = ModelVersionPage.model_validate(doc)
        return PagedList([v.entity() for v in page.model_versions], page.next_page_token)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        params = {"stages": list(stages)} if stages else None
        docs = self._ch.call("GET", _model_path(name) + "/latest-versions", params=params)
        return [_version(d) for d in docs]

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return _version(self._ch.call("GET", f"{_model_path(name)}/aliases/{seg(alias)}"))


class RemoteRegistry:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel
        self.queries = RemoteRegistryQueries(channel)

    # registered models -------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        *,
        actor: str,
    ) -> RegisteredModel:
        _check_name(name)
        body = {"name": name, "tags": _tags(tags), "description": description}
        return _model(self._ch.call("POST", "/registered-models", actor=actor, json=body))

    def rename_registered_model(self, name: str, new_name: str, *, actor: str) -> RegisteredModel:
        _check_name(new_name)
        path = _model_path(name) + "/rename"
        return _model(self._ch.call("POST", path, actor=actor, json={"new_name": new_name}))

    def update_registered_model(
        self, name: str, description: str, *, actor: str
    ) -> RegisteredModel:
        body = {"description": str(description)}
        return _model(
            self._ch.call("PATCH", _model_path(name), actor=actor, json=body, idempotent=True)
        )

    def delete_registered_model(self, name: str, *, actor: str) -> None:
        self._ch.call("DELETE", _model_path(name), actor=actor)

    def set_registered_model_tag(self, name: str, key: str, value: Any, *, actor: str) -> None:
        [(k, v)] = _tags({key: value}).items()
        self._ch.call("PUT", _model_path(name) + "/tags", actor=actor, json={"key": k, "value": v})

    def delete_registered_model_tag(self, name: str, key: str, *, actor: str) -> None:
        self._ch.call("DELETE", _model_path(name) + "/tags", actor=actor, params={"key": key})

    # versions ------------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        *,
        actor: str,
        user_id: str = "",
    ) -> ModelVersion:
        body = {
            "source": source,
            "run_id": run_id,
            "tags": _tags(tags),
            "description": description,
            "user_id": user_id,
        }
        path = _model_path(name) + "/versions"
        return _version(self._ch.call("POST", path, actor=actor, json=body))

    def register_model(
        self,
        model_uri: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        *,
        actor: str,
        user_id: str = "",
    ) -> ModelVersion:
        _check_name(name)
        body = {"model_uri": model_uri, "name": name, "tags": _tags(tags), "user_id": user_id}
        return _version(self._ch.call("POST", "/model-versions/register", actor=actor, json=body))

    def update_model_version(
        self, name: str, version: Any, description: str, *, actor: str
    ) -> ModelVersion:
        body = {"description": str(description)}
        path = _version_path(name, version)
        return _version(self._ch.call("PATCH", path, actor=actor, json=body, idempotent=True))

    def delete_model_version(self, name: str, version: Any, *, actor: str) -> None:
        self._ch.call("DELETE", _version_path(name, version), actor=actor)

    def set_model_version_tag(
        self, name: str, version: Any, key: str, value: Any, *, actor: str
    ) -> None:
        [(k, v)] = _tags({key: value}).items()
        path = _version_path(name, version) + "/tags"
        self._ch.call("PUT", path, actor=actor, json={"key": k, "value": v})

    def delete_model_version_tag(self, name: str, version: Any, key: str, *, actor: str) -> None:
        path = _version_path(name, version) + "/tags"
        self._ch.call("DELETE", path, actor=actor, params={"key": key})

    def transition_model_version_stage(
        self,
        name: str,
        version: Any,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        actor: str,
    ) -> ModelVersion:
        from ledgerflow.services.registry.decide import check_stage

        body = {
            "stage": check_stage(stage),
            "archive_existing_versions": bool(archive_existing_versions),
        }
        path = _version_path(name, version) + "/stage"
        return _version(self._ch.call("POST", path, actor=actor, json=body, idempotent=True))

    def set_registered_model_alias(
        self, name: str, alias: str, version: Any, *, actor: str
    ) -> None:
        from ledgerflow.services.registry.decide import check_alias, check_version

        path = f"{_model_path(name)}/aliases/{seg(check_alias(alias))}"
        self._ch.call("PUT", path, actor=actor, json={"version": check_version(version)})

    def delete_registered_model_alias(self, name: str, alias: str, *, actor: str) -> None:
        self._ch.call("DELETE", f"{_model_path(name)}/aliases/{seg(alias)}", actor=actor)

    # URIs ----------------------------------------------------------------------------------
    def resolve_models_uri(self, uri: str) -> ModelVersion:
        return _version(self._ch.call("GET", "/model-versions/resolve", params={"uri": uri}))
