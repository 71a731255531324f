"""The S3 adapter against a real S3 endpoint (moto's server, or LEDGERFLOW_TEST_S3)."""

import hashlib
import os
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from minio import Minio

from ledgerflow.events.errors import InvalidInput, NotFound, Unavailable
from ledgerflow.services.artifacts import ArtifactStore, PresigningStore
from ledgerflow.services.artifacts.s3 import S3ArtifactStore
from tests.conftest import free_port
from tests.integration import s3_fixture
from tests.integration.artifact_store_contract import ArtifactStoreContract
from tests.integration.s3_fixture import S3Endpoint

BUCKET = f"lf-test-{uuid.uuid4().hex[:8]}"
MIB = 1 << 20


def open_store(ep: S3Endpoint, prefix: str = "", **kw: object) -> S3ArtifactStore:
    return S3ArtifactStore(
        ep.url, BUCKET, prefix, access_key=ep.access_key, secret_key=ep.secret_key, **kw
    )  # type: ignore[arg-type]


def raw_client(ep: S3Endpoint) -> Minio:
    host = ep.url.split("://", 1)[1]
    return Minio(host, ep.access_key, ep.secret_key, secure=ep.url.startswith("https"))


class TestS3ArtifactStore(ArtifactStoreContract):
    ep: S3Endpoint

    @pytest.fixture(autouse=True)
    def _endpoint(self, s3_endpoint: S3Endpoint) -> None:
        self.ep = s3_endpoint

    def make_store(self, tmp_path: Path) -> ArtifactStore:
        return open_store(self.ep, f"runs-{uuid.uuid4().hex[:8]}")


def test_keys_live_under_the_prefix_and_uris_say_where(s3_endpoint):
    store = open_store(s3_endpoint, "team/a")
    store.put_bytes("1/run/artifacts/m.txt", b"m")
    assert store.uri("1/run/artifacts/m.txt") == f"s3://{BUCKET}/team/a/1/run/artifacts/m.txt"
    stat = raw_client(s3_endpoint).stat_object(BUCKET, "team/a/1/run/artifacts/m.txt")
    assert stat.size == 1
    assert open_store(s3_endpoint).uri("") == f"s3://{BUCKET}"


def test_a_file_larger_than_one_part_goes_up_as_a_multipart_upload(s3_endpoint, tmp_path):
    src = tmp_path / "big.bin"
    with src.open("wb") as f:
        for _ in range(12):
            f.write(os.urandom(MIB))
    store = open_store(s3_endpoint, "multi", part_size=5 * MIB)
    got = store.put_file("big.bin", src)
    assert got.size == 12 * MIB
    assert got.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    etag = raw_client(s3_endpoint).stat_object(BUCKET, "multi/big.bin").etag
    assert etag.endswith("-3"), etag  # S3 marks a multipart object's ETag with its part count
    back = store.get_file("big.bin", tmp_path / "back.bin")
    assert hashlib.sha256(back.read_bytes()).hexdigest() == got.sha256


def test_uploading_and_downloading_stream_instead_of_holding_the_file(s3_endpoint, tmp_path):
    src = tmp_path / "stream.bin"
    with src.open("wb") as f:
        for _ in range(40):
            f.write(os.urandom(MIB))
    store = open_store(s3_endpoint, "stream", part_size=5 * MIB)
    tracemalloc.start()
    try:
        store.put_file("stream.bin", src)
        store.get_file("stream.bin", tmp_path / "back.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MIB, f"peak Python memory {peak / MIB:.0f} MiB for a 40 MiB file"
    assert (tmp_path / "back.bin").stat().st_size == 40 * MIB


def test_size_of_reports_the_stored_size_and_a_missing_key_is_not_found(s3_endpoint):
    store = open_store(s3_endpoint, "sizes")
    store.put_bytes("k", b"12345")
    assert store.size_of("k") == 5
    with pytest.raises(NotFound, match="'nope'"):
        store.size_of("nope")


def test_the_s3_store_signs_urls_and_refuses_expiries_s3_cannot_sign(s3_endpoint):
    store = open_store(s3_endpoint, "signing")
    assert isinstance(store, PresigningStore)
    url = store.presign_get("a/b.txt", 60)
    assert url.startswith(f"{s3_endpoint.url}/{BUCKET}/signing/a/b.txt?")
    assert "X-Amz-Signature=" in url
    for bad in (0, 8 * 24 * 3600):
        with pytest.raises(InvalidInput, match="expires_s"):
            store.presign_put("a/b.txt", bad)


def test_a_missing_bucket_is_created_on_open(s3_endpoint):
    bucket = f"lf-new-{uuid.uuid4().hex[:8]}"
    S3ArtifactStore(
        s3_endpoint.url, bucket, access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
    )  # fmt: skip
    assert raw_client(s3_endpoint).bucket_exists(bucket)


def test_a_missing_bucket_that_may_not_be_created_is_not_found_naming_it(s3_endpoint):
    bucket = f"lf-absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFound, match=f"bucket '{bucket}' does not exist"):
        S3ArtifactStore(
            s3_endpoint.url, bucket, access_key=s3_endpoint.access_key,
            secret_key=s3_endpoint.secret_key, create_bucket=False,
        )  # fmt: skip
    assert not raw_client(s3_endpoint).bucket_exists(bucket)


def test_an_unreachable_endpoint_is_unavailable_naming_it():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unavailable, match=f"cannot reach the S3 endpoint {url}.*running"):
        S3ArtifactStore(url, "some-bucket", access_key="a", secret_key="b")


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:9000", "ftp://host", "http://host:9000/path", "http://"]
)
def test_an_endpoint_that_is_not_an_http_url_names_the_setting(endpoint):
    with pytest.raises(InvalidInput, match="LEDGERFLOW_S3_ENDPOINT"):
        S3ArtifactStore(endpoint, "some-bucket")


def test_a_bad_bucket_name_names_the_setting(s3_endpoint):
    with pytest.raises(InvalidInput, match="LEDGERFLOW_ARTIFACTS.*'No_Such'"):
        S3ArtifactStore(s3_endpoint.url, "No_Such")


def test_an_access_key_without_a_secret_names_the_missing_one(s3_endpoint):
    with pytest.raises(InvalidInput, match="SECRET_KEY") as e:
        S3ArtifactStore(s3_endpoint.url, BUCKET, access_key="a")
    assert e.value.field == "LEDGERFLOW_S3_SECRET_KEY"


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A moto server that checks credentials, with one real key: (endpoint, access key).

    moto checks signatures only once its unauthenticated allowance is used up; the two
    allowed calls create the user and its key.
    """
    proc, url = s3_fixture.start_moto(
        tmp_path_factory.mktemp("strict-moto") / "moto.log", {"INITIAL_NO_AUTH_ACTION_COUNT": "2"}
    )
    try:
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap",
        )  # fmt: skip
        iam.create_user(UserName="ledgerflow")
        key = iam.create_access_key(UserName="ledgerflow")["AccessKey"]["AccessKeyId"]
        yield url, key
    finally:
        s3_fixture.stop(proc)


def test_an_unknown_access_key_is_refused_naming_the_credential_settings(strict_s3):
    url, _ = strict_s3
    with pytest.raises(InvalidInput, match=r"InvalidAccessKeyId.*LEDGERFLOW_S3_ACCESS_KEY") as e:
        S3ArtifactStore(url, "any-bucket", access_key="AKIANOSUCHKEY0000000", secret_key="x")
    assert e.value.field == "LEDGERFLOW_S3_ACCESS_KEY"


def test_a_wrong_secret_key_is_refused_naming_the_credential_settings(strict_s3):
    url, key = strict_s3
    with pytest.raises(InvalidInput, match=r"SignatureDoesNotMatch.*LEDGERFLOW_S3_SECRET_KEY"):
        S3ArtifactStore(url, "any-bucket", access_key=key, secret_key="not-the-secret")


class _WebPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._page()

    def do_HEAD(self) -> None:
        self._page()

    def _page(self) -> None:
        body = b"<html>no such page on this web site</html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_endpoint_that_is_not_s3_is_unavailable_saying_so():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(Unavailable, match=f"{url} did not answer like a working S3 endpoint"):
            S3ArtifactStore(url, "some-bucket", access_key="a", secret_key="b")
    finally:
        server.shutdown()
        server.server_close()
