import os
from pathlib import Path

import pytest

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    PresigningStore,
    safe_relpath,
)
from tests.integration.artifact_store_contract import ArtifactStoreContract


class TestLocalArtifactStore(ArtifactStoreContract):
    def make_store(self, tmp_path: Path) -> ArtifactStore:
        return LocalArtifactStore(tmp_path / "root")


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "root")


def test_writes_leave_no_partial_files_behind(store, tmp_path):
    store.put_bytes("a/b.txt", b"one")
    store.put_bytes("a/b.txt", b"two")
    assert (store.root / "a" / "b.txt").read_bytes() == b"two"
    assert os.listdir(store.root / "a") == ["b.txt"]


def test_a_symlink_inside_the_root_cannot_lead_outside_it(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="outside the artifact root"):
        store.put_bytes("link/x.txt", b"nope")
    assert not (outside / "x.txt").exists()


def test_a_local_folder_does_not_sign_urls(store):
    assert not isinstance(store, PresigningStore)


def test_relative_paths_are_normalised():
    assert safe_relpath("./a//b/./c.txt") == "a/b/c.txt"
    assert safe_relpath("a\\b.txt") == "a/b.txt"
    assert safe_relpath("") == ""
