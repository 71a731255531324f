"""Registry commands (`ledgerflow.events.model_commands`): check, append `model.*`
events, wait until projected.

Creating a model version is where read-your-writes matters most: the version
number is assigned by the projector, so the call appends its event, waits for
the projection, and reads back the version its own event received.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from ledgerflow.events import limits
from ledgerflow.events import model_commands as mc
from ledgerflow.events import model_payloads as m
from ledgerflow.events.commands import R
from ledgerflow.events.entities import ModelVersion, RegisteredModel
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.payloads import Payload
from ledgerflow.services.commands import Committer, Handlers
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
        self.committer = committer
        self.queries = queries
        self.runs = runs

    def _commit(self, payload: Payload, actor: str) -> None:
        self.committer.commit([payload], actor)

    handlers = Handlers["RegistryService"]()

    def execute(self, command: mc.ModelCommand[R], *, actor: str) -> R:
        """Check `command` against the registry views and commit its event."""
        return self.handlers.run(self, command, actor)

    # registered models ---------------------------------------------------------------
    @handlers.on(mc.CreateRegisteredModel)
    def _create_model(self, c: mc.CreateRegisteredModel, actor: str) -> RegisteredModel:
        check_model_name(c.name)
        if self.queries.find_model(c.name) is not None:
            raise AlreadyExists(f"registered model {c.name!r} already exists")
        self._commit(
            m.RegisteredModelCreated(
                name=c.name, description=c.description or "", tags=_tags(c.tags)
            ),
            actor,
        )
        return self.queries.get_registered_model(c.name)

    def ensure_registered_model(self, name: str, *, actor: str) -> None:
        """Create the model unless it exists; safe when several processes race."""
        if not self.queries.model_exists(check_model_name(name)):
            with contextlib.suppress(AlreadyExists):
                self._create_model(mc.CreateRegisteredModel(name=name), actor)

    @handlers.on(mc.RenameRegisteredModel)
    def _rename_model(self, c: mc.RenameRegisteredModel, actor: str) -> RegisteredModel:
        self.queries.get_registered_model(c.name)
        check_model_name(c.new_name)
        if self.queries.find_model(c.new_name) is not None:
            raise AlreadyExists(f"registered model {c.new_name!r} already exists")
        self._commit(m.RegisteredModelRenamed(name=c.name, new_name=c.new_name), actor)
        return self.queries.get_registered_model(c.new_name)

    @handlers.on(mc.UpdateRegisteredModel)
    def _describe_model(self, c: mc.UpdateRegisteredModel, actor: str) -> RegisteredModel:
        self.queries.get_registered_model(c.name)
        self._commit(m.RegisteredModelDescribed(name=c.name, description=c.description), actor)
        return self.queries.get_registered_model(c.name)

    @handlers.on(mc.DeleteRegisteredModel)
    def _delete_model(self, c: mc.DeleteRegisteredModel, actor: str) -> None:
        self.queries.get_registered_model(c.name)
        self._commit(m.RegisteredModelDeleted(name=c.name), actor)

    @handlers.on(mc.SetRegisteredModelTag)
    def _set_model_tag(self, c: mc.SetRegisteredModelTag, actor: str) -> None:
        self.queries.get_registered_model(c.name)
        [(k, v)] = _tags({c.key: c.value}).items()
        self._commit(m.RegisteredModelTagSet(name=c.name, key=k, value=v), actor)

    @handlers.on(mc.DeleteRegisteredModelTag)
    def _delete_model_tag(self, c: mc.DeleteRegisteredModelTag, actor: str) -> None:
        if c.key not in self.queries.get_registered_model(c.name).tags:
            raise NotFound(
                f"registered model {c.name!r} has no tag {c.key!r}", kind="tag", key=c.key
            )
        self._commit(m.RegisteredModelTagDeleted(name=c.name, key=c.key), actor)

    # versions --------------------------------------------------------------------------
    @handlers.on(mc.CreateModelVersion)
    def _create_version(self, c: mc.CreateModelVersion, actor: str) -> ModelVersion:
        name, source, run_id = c.name, c.source, c.run_id
        self.queries.require_model(check_model_name(name))
        if not isinstance(source, str) or not source.strip():
            raise InvalidInput("source must name where the model files are", field="source")
        if run_id is not None and self.runs.find_run_info(run_id) is None:
            raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
        events = self.committer.commit(
            [
                m.ModelVersionCreated(
                    name=name,
                    source=source,
                    run_id=run_id,
                    description=c.description or "",
                    tags=_tags(c.tags),
                    user_id=c.user_id,
                    run_link=c.run_link or None,
                )
            ],
            actor,
        )
        version = self.queries.version_created_by(events[0].id)
        if version is None:  # projected, not rejected, yet not there: the model was deleted
            raise Conflict(f"registered model {name!r} was deleted while registering")
        return version

    @handlers.on(mc.RegisterModel)
    def _register(self, c: mc.RegisterModel, actor: str) -> ModelVersion:
        """Register the model at `model_uri` as the next version of `name`, creating the
        registered model first if needed."""
        source, run_id = self.resolve_source(c.model_uri)
        self.ensure_registered_model(c.name, actor=actor)
        version = mc.CreateModelVersion(
            name=c.name, source=source, run_id=run_id, tags=c.tags, user_id=c.user_id
        )
        return self._create_version(version, actor)

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

    @handlers.on(mc.UpdateModelVersion)
    def _describe_version(self, c: mc.UpdateModelVersion, actor: str) -> ModelVersion:
        v = self._existing(c.name, c.version)
        self._commit(
            m.ModelVersionDescribed(name=c.name, version=v, description=c.description), actor
        )
        return self.queries.get_model_version(c.name, v)

    @handlers.on(mc.DeleteModelVersion)
    def _delete_version(self, c: mc.DeleteModelVersion, actor: str) -> None:
        v = self._existing(c.name, c.version)
        self._commit(m.ModelVersionDeleted(name=c.name, version=v), actor)

    @handlers.on(mc.SetModelVersionTag)
    def _set_version_tag(self, c: mc.SetModelVersionTag, actor: str) -> None:
        v = self._existing(c.name, c.version)
        [(k, val)] = _tags({c.key: c.value}).items()
        self._commit(m.ModelVersionTagSet(name=c.name, version=v, key=k, value=val), actor)

    @handlers.on(mc.DeleteModelVersionTag)
    def _delete_version_tag(self, c: mc.DeleteModelVersionTag, actor: str) -> None:
        v = self._existing(c.name, c.version)
        if c.key not in self.queries.get_model_version(c.name, v).tags:
            raise NotFound(
                f"model {c.name!r} version {v} has no tag {c.key!r}", kind="tag", key=c.key
            )
        self._commit(m.ModelVersionTagDeleted(name=c.name, version=v, key=c.key), actor)

    @handlers.on(mc.TransitionModelVersionStage)
    def _transition(self, c: mc.TransitionModelVersionStage, actor: str) -> ModelVersion:
        v = self._existing(c.name, c.version)
        target = check_stage(c.stage)
        self._commit(
            m.ModelVersionStageChanged(
                name=c.name,
                version=v,
                stage=target,
                archive_existing_versions=c.archive_existing_versions,
            ),
            actor,
        )
        return self.queries.get_model_version(c.name, v)

    @handlers.on(mc.SetRegisteredModelAlias)
    def _set_alias(self, c: mc.SetRegisteredModelAlias, actor: str) -> None:
        v = self._existing(c.name, c.version)
        self._commit(m.ModelAliasSet(name=c.name, alias=check_alias(c.alias), version=v), actor)

    @handlers.on(mc.DeleteRegisteredModelAlias)
    def _delete_alias(self, c: mc.DeleteRegisteredModelAlias, actor: str) -> None:
        if c.alias not in self.queries.get_registered_model(c.name).aliases:
            raise NotFound(f"model {c.name!r} has no alias {c.alias!r}", kind="alias", key=c.alias)
        self._commit(m.ModelAliasDeleted(name=c.name, alias=c.alias), actor)

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
        if ref.isascii() and ref.isdigit():
            return self.queries.get_model_version(name, check_version(ref))
        stage = check_stage(ref)
        found = self.queries.get_latest_versions(name, [stage])
        if not found:
            raise NotFound(
                f"model {name!r} has no version in stage {stage}", kind="model_version", key=uri
            )
        return found[-1]
