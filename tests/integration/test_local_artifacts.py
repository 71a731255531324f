import os
from pathlib import Path

import pytest

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.artifacts import LocalArtifactStore, safe_relpath


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "root")


def test_a_stored_file_reports_its_size_and_sha256(store, tmp_path):
    import hashlib

    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 3_000_000)
    got = store.put_file("e/r/artifacts/f.bin", src)
    assert got.size == 3_000_000
    assert got.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    out = store.get_file("e/r/artifacts/f.bin", tmp_path / "back" / "f.bin")
    assert out.read_bytes() == src.read_bytes()


def test_writes_leave_no_partial_files_behind(store, tmp_path):
    store.put_bytes("a/b.txt", b"one")
    store.put_bytes("a/b.txt", b"two")
    assert (store.root / "a" / "b.txt").read_bytes() == b"two"
    assert os.listdir(store.root / "a") == ["b.txt"]


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a/\x00b"])
def test_keys_that_escape_the_root_are_refused(store, key):
    with pytest.raises(InvalidInput):
        store.put_bytes(key, b"nope")


def test_a_symlink_inside_the_root_cannot_lead_outside_it(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="outside the artifact root"):
        store.put_bytes("link/x.txt", b"nope")
    assert not (outside / "x.txt").exists()


def test_reading_a_missing_artifact_is_not_found(store, tmp_path):
    with pytest.raises(NotFound):
        store.get_file("nope.txt", tmp_path / "x")


def test_relative_paths_are_normalised():
    assert safe_relpath("./a//b/./c.txt") == "a/b/c.txt"
    assert safe_relpath("a\\b.txt") == "a/b.txt"
    assert safe_relpath("") == ""
