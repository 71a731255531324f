"""Registry commands and reads over the gateway, offering what the embedded registry
service offers: commands travel as their typed models (`RemoteCommands.execute`), reads
as GETs and searches.

Every command is a straight call that the gateway answers once its event is
projected, so version numbers and aliases read back right after are current. The
gateway checks names, versions, stages and aliases with the same functions as embedded
mode, so a bad one fails the same way in both modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledgerflow.events.entities import ModelVersion, PagedList, RegisteredModel
from ledgerflow.remote.channel import Channel, seg
from ledgerflow.remote.commands import RemoteCommands


def _model(doc: Any) -> RegisteredModel:
    from ledgerflow.events.model_commands import MODEL

    return MODEL.decode(doc)


def _version(doc: Any) -> ModelVersion:
    from ledgerflow.events.model_commands import VERSION

    return VERSION.decode(doc)


def _model_path(name: str) -> str:
    return f"/registered-models/{seg(name)}"


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


class RemoteRegistry(RemoteCommands):
    """Registry commands (`execute`) and reads over the gateway."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.queries = RemoteRegistryQueries(channel)

    # URIs ----------------------------------------------------------------------------------
    def resolve_models_uri(self, uri: str) -> ModelVersion:
        return _version(self._ch.call("GET", "/model-versions/resolve", params={"uri": uri}))
