"""Model registry methods of `lf.Client`, named as MlflowClient's: each write builds its
typed command (`ledgerflow.events.model_commands`) and executes it on the backend.

Every write appends a `model.*` event and returns once it is projected, so a
version number returned here is the one every replay of the log will assign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow._client_methods import ClientMethods
from ledgerflow.entities import ModelVersion, PagedList, RegisteredModel

if TYPE_CHECKING:
    from ledgerflow._ports import RegistryPort, RegistryQueriesPort


class RegistryMethods(ClientMethods):
    """Mixed into Client, which provides the backend and the actor."""

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
        from ledgerflow.events import model_commands as mc

        command = mc.CreateRegisteredModel(name=name, tags=tags, description=description)
        return self._registry.execute(command, actor=self._actor)

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
        from ledgerflow.events import model_commands as mc

        command = mc.RenameRegisteredModel(name=name, new_name=new_name)
        return self._registry.execute(command, actor=self._actor)

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        from ledgerflow.events import model_commands as mc

        command = mc.UpdateRegisteredModel(name=name, description=str(description))
        return self._registry.execute(command, actor=self._actor)

    def delete_registered_model(self, name: str) -> None:
        from ledgerflow.events import model_commands as mc

        self._registry.execute(mc.DeleteRegisteredModel(name=name), actor=self._actor)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        from ledgerflow.events import model_commands as mc

        command = mc.SetRegisteredModelTag(name=name, key=key, value=value)
        self._registry.execute(command, actor=self._actor)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        from ledgerflow.events import model_commands as mc

        self._registry.execute(mc.DeleteRegisteredModelTag(name=name, key=key), actor=self._actor)

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
        from ledgerflow.events import model_commands as mc

        command = mc.CreateModelVersion(
            name=name, source=source, run_id=run_id, tags=tags, description=description,
            user_id=self._user(), run_link=run_link,
        )  # fmt: skip
        return self._registry.execute(command, actor=self._actor)

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
        from ledgerflow.events import model_commands as mc

        command = mc.UpdateModelVersion(
            name=name, version=_version(version), description=str(description)
        )
        return self._registry.execute(command, actor=self._actor)

    def delete_model_version(self, name: str, version: int | str) -> None:
        from ledgerflow.events import model_commands as mc

        command = mc.DeleteModelVersion(name=name, version=_version(version))
        self._registry.execute(command, actor=self._actor)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        from ledgerflow.events import model_commands as mc

        command = mc.SetModelVersionTag(name=name, version=_version(version), key=key, value=value)
        self._registry.execute(command, actor=self._actor)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        from ledgerflow.events import model_commands as mc

        command = mc.DeleteModelVersionTag(name=name, version=_version(version), key=key)
        self._registry.execute(command, actor=self._actor)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """The older stage workflow (None, Staging, Production, Archived); aliases are the
        newer way to name a version."""
        from ledgerflow.events import model_commands as mc

        command = mc.TransitionModelVersionStage(
            name=name, version=_version(version), stage=stage,
            archive_existing_versions=bool(archive_existing_versions),
        )  # fmt: skip
        return self._registry.execute(command, actor=self._actor)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        from ledgerflow.services.registry.decide import check_stage

        q = self._registry_queries
        q.get_registered_model(name)
        return q.get_latest_versions(name, [check_stage(s) for s in stages] if stages else None)

    # aliases ---------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        from ledgerflow.events import model_commands as mc

        command = mc.SetRegisteredModelAlias(name=name, alias=alias, version=_version(version))
        self._registry.execute(command, actor=self._actor)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        from ledgerflow.events import model_commands as mc

        command = mc.DeleteRegisteredModelAlias(name=name, alias=alias)
        self._registry.execute(command, actor=self._actor)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._registry_queries.get_model_version_by_alias(name, alias)

    def _register_model(
        self, model_uri: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """`lf.register_model`: the model at `model_uri` as the next version of `name`,
        creating the registered model if needed."""
        from ledgerflow.events import model_commands as mc
        from ledgerflow.events.errors import Unavailable

        command = mc.RegisterModel(model_uri=model_uri, name=name, tags=tags, user_id=self._user())
        backend = self._backend
        try:
            backend.refresh()
            return self._registry.execute(command, actor=self._actor)
        except Unavailable as e:
            if not backend.settings.is_remote:
                raise
            said = e.message if e.message.endswith((".", "?")) else e.message + "."
            raise type(e)(
                f"register_model({name!r}) needs the gateway's answer (the new version's "
                f"number): {said} What this process logged stays in the spool and is "
                "shipped once the gateway answers; try registering again then."
            ) from None

    # files ---------------------------------------------------------------------------
    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return str(self.get_model_version(name, version).source)

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        """The version a models:/ URI names (/<version>, @<alias>, /latest, /<stage>)."""
        self._backend.refresh()
        return self._registry.resolve_models_uri(model_uri)


def _version(version: int | str) -> int:
    """A version as the registry numbers it: checked here first, as the registry checks it
    before anything else, so `True` or `2.5` is refused, not taken for a number."""
    from ledgerflow.services.registry.decide import check_version

    return check_version(version)
