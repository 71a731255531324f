"""Artifacts as objects in an S3 bucket (MinIO, AWS S3, or any S3 endpoint) via `minio`.

Files stream from and to disk, so memory stays bounded by a few upload parts whatever
the artifact's size; files larger than one part go up as a multipart upload. The store
also signs URLs (`PresigningStore`) so clients can move large files directly.
Every driver error leaves as a Ledgerflow error that says what to check.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, BinaryIO, NoReturn, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import MAX_MULTIPART_COUNT, MIN_PART_SIZE, check_bucket_name

from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound, Unavailable
from ledgerflow.services.artifacts.port import StoredFile, safe_relpath

MIB = 1 << 20
DEFAULT_PART_SIZE = 16 * MIB  # parts of a multipart upload; files up to this size go in one PUT
PARALLEL_PARTS = 2  # parts in flight at once: memory is about (PARALLEL_PARTS + 1) parts
MAX_PRESIGN_S = 7 * 24 * 3600  # the longest expiry SigV4 allows
_CHUNK = MIB
_CREDENTIAL_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


def parse_endpoint(endpoint: str) -> tuple[str, bool]:
    """`http(s)://host[:port]` as minio wants it: (host:port, secure)."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise InvalidInput(
            f"LEDGERFLOW_S3_ENDPOINT {endpoint!r} must look like http://host:port or "
            "https://host (no path; https turns TLS on)",
            field="LEDGERFLOW_S3_ENDPOINT",
        )
    return parts.netloc, parts.scheme == "https"


class S3ArtifactStore:
    """Keys map to objects `prefix/key` in `bucket`; `uri` gives `s3://bucket/prefix/key`.

    Opening checks the bucket (and creates it when `create_bucket` and the credentials
    allow), so a wrong endpoint, bucket or key fails at start-up, not at the first upload.
    """

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        create_bucket: bool = True,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        host, secure = parse_endpoint(endpoint)
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError as e:
            raise InvalidInput(
                f"LEDGERFLOW_ARTIFACTS: {bucket!r} is not a valid bucket name ({e})",
                field="LEDGERFLOW_ARTIFACTS",
            ) from None
        if part_size < MIN_PART_SIZE:
            raise InvalidInput(f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB)")
        if bool(access_key) != bool(secret_key):
            raise InvalidInput(
                "set both LEDGERFLOW_S3_ACCESS_KEY and LEDGERFLOW_S3_SECRET_KEY, or neither",
                field="LEDGERFLOW_S3_SECRET_KEY" if access_key else "LEDGERFLOW_S3_ACCESS_KEY",
            )
        self.endpoint = endpoint.strip().rstrip("/")
        self.bucket = bucket
        self.prefix = safe_relpath(prefix, "artifact prefix")
        self.part_size = part_size
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=120),
            maxsize=PARALLEL_PARTS + 2,
            retries=urllib3.Retry(
                total=3,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
                raise_on_status=False,  # the last 5xx reaches minio, which reads its S3 code
            ),
        )
        self._client = Minio(
            host,
            access_key=access_key or None,
            secret_key=secret_key or None,
            secure=secure,
            region=region or None,
            http_client=http,
        )
        self._ensure_bucket(create_bucket)

    def _ensure_bucket(self, create: bool) -> None:
        with self._translated("open"):
            if self._client.bucket_exists(self.bucket):
                return
            if not create:
                raise NotFound(
                    f"bucket {self.bucket!r} does not exist on {self.endpoint}; create it "
                    "(e.g. `mc mb`) or point LEDGERFLOW_ARTIFACTS at an existing bucket",
                    kind="bucket",
                    key=self.bucket,
                )
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as e:
                if e.code != "BucketAlreadyOwnedByYou":  # another process won the race
                    raise

    # keys ------------------------------------------------------------------------------
    def _object(self, key: str) -> str:
        rel = safe_relpath(key, "artifact key")
        if not rel:
            raise InvalidInput("artifact key must name a file", field="artifact key")
        name = f"{self.prefix}/{rel}" if self.prefix else rel
        if len(name.encode()) > 1024:
            raise InvalidInput(f"artifact key {key!r} is longer than S3's 1024 bytes")
        return name

    def uri(self, key: str) -> str:
        rel = safe_relpath(key, "artifact key")
        path = "/".join(p for p in (self.prefix, rel) if p)
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"

    # writes ----------------------------------------------------------------------------
    def put_file(self, key: str, source: Path) -> StoredFile:
        name = self._object(key)
        try:
            src = open(source, "rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            raise InvalidInput(f"local file {str(source)!r} does not exist") from None
        except IsADirectoryError:
            raise InvalidInput(
                f"{str(source)!r} is a folder; use log_artifacts for folders"
            ) from None
        with src:
            size = os.fstat(src.fileno()).st_size
            reader = _HashingReader(src)
            with self._translated("upload", key):
                try:
                    self._client.put_object(
                        self.bucket,
                        name,
                        cast(BinaryIO, reader),
                        size,
                        part_size=self._part_size_for(size),
                        num_parallel_uploads=PARALLEL_PARTS,
                    )
                except OSError as e:
                    if "not enough data" not in str(e):
                        raise Unavailable(
                            f"uploading artifact {key!r} to {self.endpoint} failed: {e}"
                        ) from None
                    raise InvalidInput(
                        f"{str(source)!r} got shorter while it was uploaded; log it again "
                        "once nothing writes to it"
                    ) from None
        return StoredFile(key, reader.size, reader.hexdigest())

    def _part_size_for(self, size: int) -> int:
        """Our part size, grown in whole MiB when the file needs more than S3's 10,000 parts."""
        needed = math.ceil(size / MAX_MULTIPART_COUNT / MIB) * MIB
        return max(self.part_size, needed)

    def put_bytes(self, key: str, data: bytes) -> StoredFile:
        name = self._object(key)
        with self._translated("upload", key):
            self._client.put_object(self.bucket, name, io.BytesIO(data), len(data))
        return StoredFile(key, len(data), hashlib.sha256(data).hexdigest())

    # reads -----------------------------------------------------------------------------
    def get_file(self, key: str, dest: Path) -> Path:
        """Stream the object into `dest`; a reader of `dest` sees no half-written file."""
        name = self._object(key)
        with self._translated("download", key):
            response = self._client.get_object(self.bucket, name)
        try:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".part")
            except OSError as e:
                raise Unavailable(f"cannot write artifact {key!r} to {dest}: {e}") from e
            try:
                with os.fdopen(fd, "wb") as out, self._translated("download", key):
                    for chunk in response.stream(_CHUNK):
                        out.write(chunk)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        finally:
            response.close()
            response.release_conn()
        return dest

    def exists(self, key: str) -> bool:
        try:
            self.size_of(key)
        except NotFound:
            return False
        return True

    def size_of(self, key: str) -> int:
        name = self._object(key)
        with self._translated("look up", key):
            stat = self._client.stat_object(self.bucket, name)
        return int(stat.size or 0)

    # presigning ------------------------------------------------------------------------
    def presign_put(self, key: str, expires_s: int) -> str:
        name = self._object(key)
        with self._translated("sign an upload of", key):
            url: str = self._client.presigned_put_object(
                self.bucket, name, expires=_expiry(expires_s)
            )
        return url

    def presign_get(self, key: str, expires_s: int) -> str:
        name = self._object(key)
        with self._translated("sign a download of", key):
            url: str = self._client.presigned_get_object(
                self.bucket, name, expires=_expiry(expires_s)
            )
        return url

    # errors ----------------------------------------------------------------------------
    @contextmanager
    def _translated(self, action: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except S3Error as e:
            self._raise_s3_error(e, action, key)
        except (ServerError, InvalidResponseError) as e:
            raise Unavailable(
                f"{self.endpoint} did not answer like a working S3 endpoint when asked to "
                f"{action} {self._what(key)} ({str(e)[:300]}); check LEDGERFLOW_S3_ENDPOINT "
                "and the object store's health"
            ) from None
        except MinioException as e:
            raise Unavailable(f"S3 request to {self.endpoint} failed: {e}") from None
        except urllib3.exceptions.HTTPError as e:
            reason = getattr(e, "reason", None) or e
            raise Unavailable(
                f"cannot reach the S3 endpoint {self.endpoint} to {action} {self._what(key)}: "
                f"{reason}; check LEDGERFLOW_S3_ENDPOINT and that the object store is running"
            ) from None

    def _what(self, key: str | None) -> str:
        return f"artifact {key!r}" if key is not None else f"bucket {self.bucket!r}"

    def _raise_s3_error(self, e: S3Error, action: str, key: str | None) -> NoReturn:
        code = e.code or "?"
        err: LedgerflowError
        if code == "NoSuchKey" and key is not None:
            err = NotFound(
                f"artifact {key!r} does not exist at {self.uri(key)}", kind="artifact", key=key
            )
        elif code == "NoSuchBucket":
            err = NotFound(
                f"bucket {self.bucket!r} does not exist on {self.endpoint}; create it or fix "
                "LEDGERFLOW_ARTIFACTS",
                kind="bucket",
                key=self.bucket,
            )
        elif code in _CREDENTIAL_CODES:
            err = InvalidInput(
                f"the S3 endpoint {self.endpoint} refused to {action} {self._what(key)} "
                f"({code}): check LEDGERFLOW_S3_ACCESS_KEY, LEDGERFLOW_S3_SECRET_KEY and "
                f"that key's permissions on bucket {self.bucket!r}",
                field="LEDGERFLOW_S3_ACCESS_KEY",
            )
        elif code == "BucketAlreadyExists":
            err = InvalidInput(
                f"bucket {self.bucket!r} belongs to another account on {self.endpoint}; "
                "choose another bucket in LEDGERFLOW_ARTIFACTS",
                field="LEDGERFLOW_ARTIFACTS",
            )
        else:
            err = Unavailable(
                f"the S3 endpoint {self.endpoint} failed to {action} {self._what(key)}: "
                f"{code}: {e.message}"
            )
        raise err from None


def _expiry(expires_s: int) -> timedelta:
    if not isinstance(expires_s, int) or not 1 <= expires_s <= MAX_PRESIGN_S:
        raise InvalidInput(
            f"expires_s must be a whole number of seconds from 1 to {MAX_PRESIGN_S} (7 days), "
            f"got {expires_s!r}",
            field="expires_s",
        )
    return timedelta(seconds=expires_s)


class _HashingReader:
    """A file that hashes and counts what minio reads from it, in order (minio reads the
    parts sequentially on the calling thread and only calls `read`)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()
