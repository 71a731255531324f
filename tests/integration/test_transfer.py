"""ledgerflow.transfer: files straight to and from the object store through signed URLs."""

import hashlib
import os
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ledgerflow.events.errors import Conflict, InvalidInput, NotFound, Unavailable
from ledgerflow.services.artifacts.s3 import S3ArtifactStore
from ledgerflow.transfer import download_file, upload_file
from tests.conftest import free_port
from tests.integration.s3_fixture import S3Endpoint

BUCKET = f"lf-transfer-{uuid.uuid4().hex[:8]}"
MIB = 1 << 20


@pytest.fixture
def store(s3_endpoint: S3Endpoint) -> S3ArtifactStore:
    return S3ArtifactStore(
        s3_endpoint.url, BUCKET, f"t-{uuid.uuid4().hex[:8]}",
        access_key=s3_endpoint.access_key, secret_key=s3_endpoint.secret_key,
    )  # fmt: skip


def random_file(path: Path, mib: int) -> str:
    """Write `mib` MiB of random bytes in 1 MiB chunks; return their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(mib):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_a_200_mb_artifact_goes_up_and_down_through_signed_urls_in_constant_memory(
    store, s3_endpoint, tmp_path
):
    """Only the store signs; the bytes go between this process and the S3 endpoint."""
    src = tmp_path / "weights.bin"
    expected = random_file(src, 200)

    put_url = store.presign_put("run/artifacts/weights.bin", 600)
    assert put_url.startswith(s3_endpoint.url + "/")
    tracemalloc.start()
    try:
        sent = upload_file(put_url, src)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        get_url = store.presign_get("run/artifacts/weights.bin", 600)
        got = download_file(get_url, tmp_path / "back" / "weights.bin", expected_sha256=expected)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sent.size == got.size == 200 * MIB == store.size_of("run/artifacts/weights.bin")
    assert sent.sha256 == got.sha256 == expected
    assert hashlib.sha256((tmp_path / "back" / "weights.bin").read_bytes()).hexdigest() == expected
    for peak in (upload_peak, download_peak):
        assert peak < 16 * MIB, f"peak Python memory {peak / MIB:.0f} MiB for a 200 MiB file"


def test_a_small_file_round_trips_and_replaces_the_destination(store, tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"fresh")
    upload_file(store.presign_put("a.txt", 60), src)
    dest = tmp_path / "out" / "a.txt"
    dest.parent.mkdir()
    dest.write_bytes(b"stale and longer")
    got = download_file(store.presign_get("a.txt", 60), dest)
    assert dest.read_bytes() == b"fresh" and got.size == 5
    assert os.listdir(dest.parent) == ["a.txt"]


def test_an_empty_file_round_trips(store, tmp_path):
    (tmp_path / "e").write_bytes(b"")
    assert upload_file(store.presign_put("e", 60), tmp_path / "e").size == 0
    assert download_file(store.presign_get("e", 60), tmp_path / "e2").size == 0
    assert (tmp_path / "e2").read_bytes() == b""


def test_a_download_that_differs_from_the_recorded_hash_is_refused_and_writes_nothing(
    store, tmp_path
):
    store.put_bytes("changed.txt", b"not what was logged")
    dest = tmp_path / "changed.txt"
    with pytest.raises(Conflict, match="changed after it was logged"):
        download_file(store.presign_get("changed.txt", 60), dest, expected_sha256="0" * 64)
    assert os.listdir(tmp_path) == []


def test_downloading_a_missing_object_is_not_found_naming_it_without_the_signature(store, tmp_path):
    url = store.presign_get("missing.bin", 60)
    with pytest.raises(NotFound, match=r"missing\.bin \(HTTP 404 NoSuchKey") as e:
        download_file(url, tmp_path / "missing.bin")
    assert "Signature" not in str(e.value)
    assert os.listdir(tmp_path) == []


def test_an_unreachable_object_store_is_unavailable(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/bucket/key?X-Amz-Signature=secret"
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(Unavailable, match="cannot upload .*/bucket/key: ConnectError") as e:
        upload_file(url, tmp_path / "f")
    assert "secret" not in str(e.value)
    with pytest.raises(Unavailable, match="cannot download"):
        download_file(url, tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_uploading_a_missing_file_or_a_folder_is_invalid_input(store, tmp_path):
    url = store.presign_put("x", 60)
    with pytest.raises(InvalidInput, match="nope.bin.*does not exist"):
        upload_file(url, tmp_path / "nope.bin")
    with pytest.raises(InvalidInput, match="is a folder"):
        upload_file(url, tmp_path)


class _ExpiredUrl(BaseHTTPRequestHandler):
    """S3's answer to a signed URL past its expiry (moto does not check expiries)."""

    def do_GET(self) -> None:
        self._refuse()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._refuse()

    def _refuse(self) -> None:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            b"<Message>Request has expired</Message></Error>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def expired_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ExpiredUrl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/b/k.bin?X-Amz-Signature=abc123"
    finally:
        server.shutdown()
        server.server_close()


def test_an_expired_url_is_refused_with_a_hint_to_ask_for_a_new_one(expired_url, tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 1000)
    for call in (lambda: upload_file(expired_url, tmp_path / "f"),
                 lambda: download_file(expired_url, tmp_path / "g")):  # fmt: skip
        with pytest.raises(InvalidInput, match="AccessDenied: Request has expired.*new one") as e:
            call()
        assert "abc123" not in str(e.value)
    assert not (tmp_path / "g").exists()
