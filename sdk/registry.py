"""Model registry methods of `lf.Client`, named as MlflowClient's.

Every write appends a `model.*` event and returns once it is projected, so a
version number returned here is the one every replay of the log will assign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow.entities import ModelVersion, PagedList, RegisteredModel

if TYPE_CHECKING:
    from ledgerflow._ports import BackendPort, RegistryPort, RegistryQueriesPort


class RegistryMethods:
    """Mixed into Client, which provides the backend and the actor."""

    @property
    def _backend(self) -> BackendPort:
        raise NotImplementedError

    @property
    def _actor(self) -> str:
        raise NotImplementedError

    @property
    def _registry(self) -> RegistryPort:
        return self._backend.registry

    @property
    def _registry_queries(self) -> RegistryQueriesPort:
        self._backend.refresh()
        return self._backend.registry.queries

    def _user(self) -> str:
        return self._actor.removeprefix("user:")

    # registered models ---------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: Mapping[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        return self._registry.create_registered_model(name, tags, description, actor=self._actor)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._registry_queries.get_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        return self._registry_queries.search_registered_models(
            filter_string, max_results, order_by, page_token
        )

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self._registry.rename_registered_model(name, new_name, actor=self._actor)

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        return self._registry.update_registered_model(name, description, actor=self._actor)

    def delete_registered_model(self, name: str) -> None:
        self._registry.delete_registered_model(name, actor=self._actor)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._registry.set_registered_model_tag(name, key, value, actor=self._actor)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._registry.delete_registered_model_tag(name, key, actor=self._actor)

    # versions --------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        return self._registry.create_model_version(
            name, source, run_id, tags, description, actor=self._actor, user_id=self._user()
        )

    def _register_model(
        self, model_uri: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """`lf.register_model`: the next version of `name` (created if needed) from a
        `runs:/`, `models:/` or path URI."""
        self._backend.refresh()
        return self._registry.register_model(
            model_uri, name, tags, actor=self._actor, user_id=self._user()
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        from ledgerflow.services.registry.decide import check_version

        return self._registry_queries.get_model_version(name, check_version(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        return self._registry_queries.search_model_versions(
            filter_string, max_results, order_by, page_token
        )

    def update_model_version(self, name: str, version: int | str, description: str) -> ModelVersion:
        return self._registry.update_model_version(name, version, description, actor=self._actor)

    def delete_model_version(self, name: str, version: int | str) -> None:
        self._registry.delete_model_version(name, version, actor=self._actor)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self._registry.set_model_version_tag(name, version, key, value, actor=self._actor)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self._registry.delete_model_version_tag(name, version, key, actor=self._actor)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """The older stage workflow (None, Staging, Production, Archived); aliases are the
        newer way to name a version."""
        return self._registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions, actor=self._actor
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        from ledgerflow.services.registry.decide import check_stage

        q = self._registry_queries
        q.get_registered_model(name)
        return q.get_latest_versions(name, [check_stage(s) for s in stages] if stages else None)

    # aliases ---------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self._registry.set_registered_model_alias(name, alias, version, actor=self._actor)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._registry.delete_registered_model_alias(name, alias, actor=self._actor)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._registry_queries.get_model_version_by_alias(name, alias)

    # files ---------------------------------------------------------------------------
    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return str(self.get_model_version(name, version).source)

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        """The version a models:/ URI names (/<version>, @<alias>, /latest, /<stage>)."""
        self._backend.refresh()
        return self._registry.resolve_models_uri(model_uri)
