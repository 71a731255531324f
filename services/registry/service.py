"""Registry commands: decide, append `model.*` events, wait until projected.

`create_model_version` is where read-your-writes matters most: the version
number is assigned by the projector, so the call appends its event, waits for
the projection, and reads back the version its own event received.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from ledgerflow.events import limits
from ledgerflow.events import model_payloads as m
from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.payloads import Payload
from ledgerflow.services.commands import Committer
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.registry.decide import (
    check_alias,
    check_model_name,
    check_stage,
    check_version,
)


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    tags = limits.check_mapping(tags or {}, "tags")
    return {
        limits.check_key(k, "tag"): limits.check_value(v, "tag", k, limits.MAX_TAG_VALUE_LENGTH)
        for k, v in tags.items()
    }


class RegistryService:
    def __init__(self, committer: Committer, queries: RegistryQueries, runs: Queries) -> None:
        self._committer = committer
        self.queries = queries
        self.runs = runs

    def _commit(self, payload: Payload, actor: str) -> None:
        self._committer.commit([payload], actor)

    # registered models ---------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        *,
        actor: str,
    ) -> RegisteredModel:
        check_model_name(name)
        if self.queries.find_model(name) is not None:
            raise AlreadyExists(f"registered model {name!r} already exists")
        self._commit(
            m.RegisteredModelCreated(name=name, description=description or "", tags=_tags(tags)),
            actor,
        )
        return self.queries.get_registered_model(name)

    def ensure_registered_model(self, name: str, *, actor: str) -> None:
        """Create the model unless it exists; safe when several processes race."""
        if not self.queries.model_exists(check_model_name(name)):
            with contextlib.suppress(AlreadyExists):
                self.create_registered_model(name, actor=actor)

    def rename_registered_model(self, name: str, new_name: str, *, actor: str) -> RegisteredModel:
        self.queries.get_registered_model(name)
        check_model_name(new_name)
        if self.queries.find_model(new_name) is not None:
            raise AlreadyExists(f"registered model {new_name!r} already exists")
        self._commit(m.RegisteredModelRenamed(name=name, new_name=new_name), actor)
        return self.queries.get_registered_model(new_name)

    def update_registered_model(
        self, name: str, description: str, *, actor: str
    ) -> RegisteredModel:
        self.queries.get_registered_model(name)
        self._commit(m.RegisteredModelDescribed(name=name, description=str(description)), actor)
        return self.queries.get_registered_model(name)

    def delete_registered_model(self, name: str, *, actor: str) -> None:
        self.queries.get_registered_model(name)
        self._commit(m.RegisteredModelDeleted(name=name), actor)

    def set_registered_model_tag(self, name: str, key: str, value: Any, *, actor: str) -> None:
        self.queries.get_registered_model(name)
        [(k, v)] = _tags({key: value}).items()
        self._commit(m.RegisteredModelTagSet(name=name, key=k, value=v), actor)

    def delete_registered_model_tag(self, name: str, key: str, *, actor: str) -> None:
        if key not in self.queries.get_registered_model(name).tags:
            raise NotFound(f"registered model {name!r} has no tag {key!r}", kind="tag", key=key)
        self._commit(m.RegisteredModelTagDeleted(name=name, key=key), actor)

    # versions --------------------------------------------------------------------------
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
        self.queries.require_model(check_model_name(name))
        if not isinstance(source, str) or not source.strip():
            raise InvalidInput("source must name where the model files are", field="source")
        if run_id is not None and self.runs.find_run_info(run_id) is None:
            raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
        events = self._committer.commit(
            [
                m.ModelVersionCreated(
                    name=name,
                    source=source,
                    run_id=run_id,
                    description=description or "",
                    tags=_tags(tags),
                    user_id=user_id,
                )
            ],
            actor,
        )
        version = self.queries.version_created_by(events[0].id)
        if version is None:  # projected, not rejected, yet not there: the model was deleted
            raise Conflict(f"registered model {name!r} was deleted while registering")
        return version

    def register_model(
        self,
        model_uri: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        *,
        actor: str,
        user_id: str = "",
    ) -> ModelVersion:
        """Register the model at `model_uri` as the next version of `name`, creating the
        registered model first if needed."""
        source, run_id = self.resolve_source(model_uri)
        self.ensure_registered_model(name, actor=actor)
        return self.create_model_version(name, source, run_id, tags, actor=actor, user_id=user_id)

    def resolve_source(self, model_uri: str) -> tuple[str, str | None]:
        """(where the files are, the run they came from) for a model URI."""
        if not isinstance(model_uri, str) or not model_uri.strip():
            raise InvalidInput("model_uri must be a non-empty string", field="model_uri")
        if model_uri.startswith("runs:/"):
            rest = model_uri[len("runs:/") :].strip("/")
            run_id, _, path = rest.partition("/")
            if not run_id or not path:
                raise InvalidInput(
                    f"model URI {model_uri!r} must look like runs:/<run_id>/<path>",
                    field="model_uri",
                )
            run = self.runs.get_run_info(run_id)
            return f"{run.artifact_uri}/{path}", run_id
        return model_uri, None

    def _existing(self, name: str, version: Any) -> int:
        v = check_version(version)
        self.queries.get_model_version(name, v)
        return v

    def update_model_version(
        self, name: str, version: Any, description: str, *, actor: str
    ) -> ModelVersion:
        v = self._existing(name, version)
        self._commit(
            m.ModelVersionDescribed(name=name, version=v, description=str(description)), actor
        )
        return self.queries.get_model_version(name, v)

    def delete_model_version(self, name: str, version: Any, *, actor: str) -> None:
        v = self._existing(name, version)
        self._commit(m.ModelVersionDeleted(name=name, version=v), actor)

    def set_model_version_tag(
        self, name: str, version: Any, key: str, value: Any, *, actor: str
    ) -> None:
        v = self._existing(name, version)
        [(k, val)] = _tags({key: value}).items()
        self._commit(m.ModelVersionTagSet(name=name, version=v, key=k, value=val), actor)

    def delete_model_version_tag(self, name: str, version: Any, key: str, *, actor: str) -> None:
        v = self._existing(name, version)
        if key not in self.queries.get_model_version(name, v).tags:
            raise NotFound(f"model {name!r} version {v} has no tag {key!r}", kind="tag", key=key)
        self._commit(m.ModelVersionTagDeleted(name=name, version=v, key=key), actor)

    def transition_model_version_stage(
        self,
        name: str,
        version: Any,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        actor: str,
    ) -> ModelVersion:
        v = self._existing(name, version)
        target = check_stage(stage)
        self._commit(
            m.ModelVersionStageChanged(
                name=name,
                version=v,
                stage=target,
                archive_existing_versions=bool(archive_existing_versions),
            ),
            actor,
        )
        return self.queries.get_model_version(name, v)

    def set_registered_model_alias(
        self, name: str, alias: str, version: Any, *, actor: str
    ) -> None:
        v = self._existing(name, version)
        self._commit(m.ModelAliasSet(name=name, alias=check_alias(alias), version=v), actor)

    def delete_registered_model_alias(self, name: str, alias: str, *, actor: str) -> None:
        if alias not in self.queries.get_registered_model(name).aliases:
            raise NotFound(f"model {name!r} has no alias {alias!r}", kind="alias", key=alias)
        self._commit(m.ModelAliasDeleted(name=name, alias=alias), actor)

    # URIs ----------------------------------------------------------------------------
    def resolve_models_uri(self, uri: str) -> ModelVersion:
        """The version a `models:/` URI names: /<version>, @<alias>, /latest or /<stage>."""
        rest = uri[len("models:/") :] if uri.startswith("models:/") else ""
        if not rest:
            raise InvalidInput(f"{uri!r} is not a models:/ URI", field="model_uri")
        if "@" in rest:
            name, alias = rest.split("@", 1)
            return self.queries.get_model_version_by_alias(name, alias.strip("/"))
        name, _, ref = rest.strip("/").partition("/")
        if not name or not ref or "/" in ref:
            raise InvalidInput(
                f"model URI {uri!r} must look like models:/<name>/<version>, "
                "models:/<name>@<alias>, models:/<name>/latest or models:/<name>/<stage>",
                field="model_uri",
            )
        if ref.lower() == "latest":
            return self.queries.latest_version(name)
        if ref.isdigit():
            return self.queries.get_model_version(name, int(ref))
        stage = check_stage(ref)
        found = self.queries.get_latest_versions(name, [stage])
        if not found:
            raise NotFound(
                f"model {name!r} has no version in stage {stage}", kind="model_version", key=uri
            )
        return found[-1]
