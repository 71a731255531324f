"""How model version sources travel between MLflow's client and Ledgerflow's store:
files in the store are answered in the artifact proxy's form, anything else as stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.artifacts import LocalArtifactStore
from ledgerflow.services.artifacts.s3 import S3ArtifactStore
from ledgerflow.services.gateway.mlflow_api import locations
from ledgerflow.services.gateway.mlflow_api.registry import search_filter


def _s3() -> S3ArtifactStore:
    """An S3 store's naming alone (its constructor connects to the endpoint)."""
    store = S3ArtifactStore.__new__(S3ArtifactStore)
    store.bucket, store.prefix = "bucket", "pre/fix"
    return store


def test_files_in_a_local_store_are_answered_through_the_proxy(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    stored = store.uri("1/abc/artifacts/model")
    assert locations.answered_source(store, stored) == "mlflow-artifacts:/1/abc/artifacts/model"
    assert locations.answered_source(store, "file://" + stored).endswith("abc/artifacts/model")
    assert locations.store_key(store, store.uri("")) is None  # the root names no files


def test_files_in_an_s3_store_are_answered_through_the_proxy() -> None:
    store = _s3()
    assert store.uri("1/r/artifacts/m") == "s3://bucket/pre/fix/1/r/artifacts/m"
    assert locations.answered_source(store, "s3://bucket/pre/fix/1/r/artifacts/m") == (
        "mlflow-artifacts:/1/r/artifacts/m"
    )


@pytest.mark.parametrize(
    "source",
    ["s3://bucket/pre/other/m", "s3://bucket/pre/fixture/m", "/elsewhere/model", "runs:/r/m",
     "models:/digits/3"],
)  # fmt: skip
def test_a_source_outside_the_store_is_answered_as_stored(source: str) -> None:
    assert locations.answered_source(_s3(), source) == source


def test_a_filter_naming_a_proxy_source_names_the_stored_one(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    given = "source_path = 'mlflow-artifacts:/1/r/artifacts/m' AND name = 'x'"
    assert locations.in_filter(store, given) == (
        f"source_path = '{tmp_path}/1/r/artifacts/m' AND name = 'x'"
    )
    assert locations.in_filter(store, "source_path LIKE 'mlflow-artifacts:/1/%'") == (
        f"source_path LIKE '{tmp_path}/1/%'"
    )
    with pytest.raises(InvalidInput):
        locations.in_filter(store, "source_path = 'mlflow-artifacts:/../etc'")


def test_the_clients_not_a_prompt_clause_keeps_models_without_the_tag() -> None:
    class Backend:  # what search_filter reads of the backend
        artifacts = _s3()

    added = "name LIKE 'a%' AND tag.`mlflow.prompt.is_prompt` != 'true'"
    assert search_filter(Backend(), added) == (  # type: ignore[arg-type]
        "name LIKE 'a%' AND (tag.`mlflow.prompt.is_prompt` IS NULL OR "
        "tag.`mlflow.prompt.is_prompt` != 'true')"
    )
    assert search_filter(Backend(), None) is None  # type: ignore[arg-type]
