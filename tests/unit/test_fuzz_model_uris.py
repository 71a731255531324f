"""Fuzzing what reads `models:/` and `runs:/` URIs: the registry's resolution (behind
`/model-versions/resolve`, `register_model` and serving), the SDK's `resolve` (every
flavor's `load_model`) and the deployment CLI's `--variant`. Any text resolves, is not
found, or is refused as InvalidInput naming the URI: never a crash on the way, and never
a version that SQL cannot bind."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import typer
from hypothesis import example, given
from hypothesis import strategies as st

from ledgerflow.cli.deployment_args import parse_variant, pinned_version
from ledgerflow.events.entities import ModelVersion, Run, RunInfo
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.model_payloads import STAGES
from ledgerflow.models.uri import ArtifactSource, resolve
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.registry.decide import check_version
from ledgerflow.services.registry.service import RegistryService
from tests.unit.fuzzing import (
    FUZZ,
    INT64_MAX,
    answers_or_refuses,
    any_text,
    long_digits,
    mutated,
    sendable,
    tricky_text,
)


def _no_model(name: str) -> NotFound:
    return NotFound(f"no registered model named {name!r}", kind="registered_model", key=name)


class EmptyRegistry(RegistryQueries):
    """A registry without models that checks how it is asked: a version as a number SQL
    can bind, a stage that exists. No database: these tests are about the parsing."""

    def __init__(self) -> None:
        super().__init__(engine=None)  # type: ignore[arg-type]

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        assert type(version) is int and 1 <= version <= INT64_MAX, version
        raise _no_model(name)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        assert isinstance(alias, str), alias
        raise _no_model(name)

    def latest_version(self, name: str) -> ModelVersion:
        raise _no_model(name)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        assert stages is not None and set(stages) <= set(STAGES), stages
        return []


class NoRuns(Queries):
    def __init__(self) -> None:
        super().__init__(engine=None)  # type: ignore[arg-type]

    def get_run_info(self, run_id: str) -> RunInfo:
        assert run_id and "/" not in run_id, run_id
        raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)


REGISTRY = RegistryService(committer=None, queries=EmptyRegistry(), runs=NoRuns())  # type: ignore[arg-type]


class NothingStored(ArtifactSource):
    """What `resolve` looks `runs:/` and `models:/` URIs up in, over the empty registry."""

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        assert run_id and "/" not in run_id, run_id
        raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        return REGISTRY.resolve_models_uri(model_uri)

    def get_run(self, run_id: str) -> Run:
        raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)


VALID_URIS = [
    "models:/iris/3", "models:/iris@champion", "models:/iris/latest", "models:/iris/Production",
    "models:/iris/staging/", "runs:/0123abcd/model", "runs:/0123abcd/artifacts/model/",
]  # fmt: skip
uris = st.one_of(
    mutated(st.sampled_from(VALID_URIS)),
    st.builds("models:/{}".format, st.one_of(any_text, tricky_text)),
    st.builds("runs:/{}".format, st.one_of(any_text, tricky_text)),
    st.builds("models:/iris/{}".format, st.one_of(long_digits, tricky_text)),
    any_text,
)


@FUZZ
@given(uris)
@example("models:/iris/\u00b2")  # a digit to str.isdigit(), not to int()
@example("models:/iris/" + "9" * 5000)
@example("models:/iris/99999999999999999999")
@example("models:/iris@")
@example("models:/@champion")
def test_the_registry_resolves_any_models_uri_or_refuses_it(uri: str) -> None:
    try:
        REGISTRY.resolve_models_uri(uri)
    except NotFound as e:
        sendable(e)
    except InvalidInput as e:
        sendable(e)
        assert e.field in ("model_uri", "version", "stage", "alias"), e.field


@FUZZ
@given(uris)
def test_the_registry_finds_the_run_of_any_runs_uri_or_refuses_it(uri: str) -> None:
    try:
        source, run_id = REGISTRY.resolve_source(uri)
    except NotFound as e:
        sendable(e)
        assert e.kind == "run"
    except InvalidInput as e:
        sendable(e)
        assert e.field == "model_uri"
    else:  # only what names no run passes through untouched
        assert (source, run_id) == (uri, None) and not uri.startswith("runs:/")


@FUZZ
@given(st.one_of(any_text, tricky_text, long_digits, st.integers(), st.booleans(), st.none()))
@example("\u00b2")
@example("9" * 5000)
@example(2**64)
def test_any_version_is_a_number_sql_can_bind_or_is_refused(version: object) -> None:
    v = answers_or_refuses(lambda: check_version(version), InvalidInput, field="version")
    assert v is None or (type(v) is int and 1 <= v <= INT64_MAX)


@FUZZ
@given(st.one_of(uris, mutated(st.sampled_from(["file:///tmp/m", "./m", "~/m"]))))
@example("file://[")  # urlparse: Invalid IPv6 URL
@example("s3://[bucket/m")
@example("~no-such-user-anywhere/model")  # expanduser: Could not determine home directory
@example("~\ud800/model")  # expanduser: UnicodeEncodeError
@example("~a\x00/model")  # expanduser: embedded null byte
@example("a\x00b")
@example("m" * 5000)  # exists(): File name too long
def test_the_sdk_resolves_any_model_uri_to_a_folder_or_refuses_it(uri: str) -> None:
    try:
        found = resolve(uri, "/nonexistent/ledgerflow-fuzz", source=NothingStored())
    except (NotFound, InvalidInput) as e:
        sendable(e)
    else:
        assert isinstance(found, Path)


@FUZZ
@given(st.one_of(mutated(st.sampled_from(["a=models:/iris/1:90", "b=models:/iris@champion"])),
                 st.builds("a={}".format, uris), any_text))  # fmt: skip
@example("a=models:/iris/" + "9" * 5000)
@example("a=models:/iris/99999999999999999999:10")
def test_any_variant_option_parses_to_a_pinned_version_sql_can_bind_or_is_refused(
    text: str,
) -> None:
    try:
        _, uri, weight = parse_variant(text)
    except typer.BadParameter as e:
        assert e.message and e.param_hint == "'--variant'"
        return
    assert weight is None or weight >= 0
    pinned = pinned_version(uri)
    if pinned is not None:
        assert 0 <= pinned[1] <= INT64_MAX, pinned  # 0: the registry says versions start at 1
