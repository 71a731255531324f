"""The contract every ArtifactStore adapter passes. Subclass and implement `make_store`.

Nothing here knows folders or buckets; adapter-specific behaviour is tested beside
each subclass.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.artifacts import ArtifactStore


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ArtifactStoreContract:
    @pytest.fixture
    def store(self, tmp_path: Path) -> ArtifactStore:
        return self.make_store(tmp_path)

    def make_store(self, tmp_path: Path) -> ArtifactStore:
        raise NotImplementedError

    def test_a_stored_file_reports_its_size_and_sha256_and_reads_back_equal(
        self, store: ArtifactStore, tmp_path: Path
    ):
        src = tmp_path / "f.bin"
        src.write_bytes(os.urandom(3_000_000))
        got = store.put_file("e/r/artifacts/f.bin", src)
        assert (got.key, got.size, got.sha256) == ("e/r/artifacts/f.bin", 3_000_000, sha256(src))
        out = store.get_file("e/r/artifacts/f.bin", tmp_path / "back" / "deeper" / "f.bin")
        assert out == tmp_path / "back" / "deeper" / "f.bin"
        assert out.read_bytes() == src.read_bytes()

    def test_stored_bytes_report_their_size_and_sha256_and_read_back_equal(
        self, store: ArtifactStore, tmp_path: Path
    ):
        got = store.put_bytes("notes/readme.txt", b"hello artifacts")
        assert got.size == 15
        assert got.sha256 == hashlib.sha256(b"hello artifacts").hexdigest()
        out = store.get_file("notes/readme.txt", tmp_path / "readme.txt")
        assert out.read_bytes() == b"hello artifacts"

    def test_an_empty_file_is_stored_and_read_back_empty(self, store, tmp_path):
        src = tmp_path / "empty"
        src.write_bytes(b"")
        assert store.put_file("empty", src).size == 0
        assert store.get_file("empty", tmp_path / "out").read_bytes() == b""

    def test_writing_a_key_again_replaces_the_whole_file(self, store, tmp_path):
        store.put_bytes("a/b.txt", b"a much longer first version")
        store.put_bytes("a/b.txt", b"two")
        assert store.get_file("a/b.txt", tmp_path / "b.txt").read_bytes() == b"two"

    def test_a_download_replaces_the_destination_and_leaves_no_partial_files(self, store, tmp_path):
        store.put_bytes("x.txt", b"new")
        dest_dir = tmp_path / "dl"
        dest_dir.mkdir()
        (dest_dir / "x.txt").write_bytes(b"old contents, longer")
        store.get_file("x.txt", dest_dir / "x.txt")
        assert (dest_dir / "x.txt").read_bytes() == b"new"
        assert os.listdir(dest_dir) == ["x.txt"]

    def test_exists_tells_stored_keys_from_missing_ones(self, store):
        store.put_bytes("here.txt", b"1")
        assert store.exists("here.txt")
        assert not store.exists("not-here.txt")
        assert not store.exists("here.txt/below")

    def test_reading_a_missing_artifact_is_not_found_and_writes_nothing(self, store, tmp_path):
        with pytest.raises(NotFound, match="nope.txt"):
            store.get_file("nope.txt", tmp_path / "out" / "nope.txt")
        assert not (tmp_path / "out" / "nope.txt").exists()

    @pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a/\x00b", ""])
    def test_keys_that_escape_the_root_or_name_nothing_are_refused(self, store, key):
        with pytest.raises(InvalidInput):
            store.put_bytes(key, b"nope")

    def test_uploading_a_missing_local_file_is_invalid_input_naming_it(self, store, tmp_path):
        with pytest.raises(InvalidInput, match="missing.bin"):
            store.put_file("k", tmp_path / "missing.bin")

    def test_uploading_a_folder_as_a_file_is_refused_with_a_hint(self, store, tmp_path):
        with pytest.raises(InvalidInput, match="log_artifacts"):
            store.put_file("k", tmp_path)

    def test_uris_end_with_the_key_and_differ_per_key(self, store):
        a, b = store.uri("e/r/artifacts/a.txt"), store.uri("e/r/artifacts/b.txt")
        assert a.endswith("/e/r/artifacts/a.txt") and b.endswith("/e/r/artifacts/b.txt")
        assert a != b
        assert store.uri("e/r/artifacts") == a.rsplit("/", 1)[0]
