"""Move a file to or from an object store directly, through a presigned URL.

The gateway signs the URL (see `PresigningStore`); the bytes then go between this
process and the object store and never through the gateway. Both directions stream
in fixed-size chunks, so memory stays constant whatever the file's size, and both
hash while streaming, so the caller gets the sha256 without reading the file twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ledgerflow.events.errors import Conflict, InvalidInput, LedgerflowError, NotFound, Unavailable

CHUNK = 1 << 20
DEFAULT_TIMEOUT_S = 60.0  # the longest wait for the next bytes, not for the whole transfer


@dataclass(frozen=True, slots=True)
class Transferred:
    """What went over the wire: its size and sha256, computed while streaming."""

    size: int
    sha256: str


def upload_file(
    url: str,
    path: str | os.PathLike[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    client: httpx.Client | None = None,
) -> Transferred:
    """PUT the file at `path` to a presigned `url`, as one request with a Content-Length.

    Exactly the size the file had when the upload began is sent, so the returned hash
    describes the stored object even if something appends to the file meanwhile.
    """
    src = Path(path)
    if src.is_dir():
        raise InvalidInput(f"{str(path)!r} is a folder; upload its files one by one")
    try:
        f = src.open("rb")
    except FileNotFoundError:
        raise InvalidInput(f"local file {str(path)!r} does not exist") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        digest = hashlib.sha256()

        def body() -> Iterator[bytes]:
            left = size
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise InvalidInput(
                        f"{str(path)!r} got shorter while it was uploaded; upload it again "
                        "once nothing writes to it"
                    )
                digest.update(chunk)
                left -= len(chunk)
                yield chunk

        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        with _client(client, timeout_s) as http, _transport_errors("upload", url):
            response = http.put(url, content=body(), headers=headers)
            _check(response, "upload", url)
    return Transferred(size, digest.hexdigest())


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    client: httpx.Client | None = None,
) -> Transferred:
    """GET a presigned `url` into `dest`, which appears whole or not at all.

    With `expected_sha256` (what the run recorded), a download whose bytes differ is
    refused and `dest` is left untouched.
    """
    target = Path(dest)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    except OSError as e:
        raise InvalidInput(f"cannot write {str(dest)!r}: {e}") from e
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            os.fdopen(fd, "wb") as out,
            _client(client, timeout_s) as http,
            _transport_errors("download", url),
            http.stream("GET", url) as response,
        ):
            if response.is_error:
                response.read()
                _check(response, "download", url)
            for chunk in response.iter_bytes(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if expected_sha256 is not None and got != expected_sha256.lower():
            raise Conflict(
                f"{_name(url)} downloaded with sha256 {got}, but {expected_sha256} was "
                "recorded: the object was changed after it was logged"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Transferred(size, got)


class _client:
    """The caller's client (left open), or a fresh one closed afterwards."""

    def __init__(self, given: httpx.Client | None, timeout_s: float) -> None:
        self._given = given
        self._own: httpx.Client | None = None
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))

    def __enter__(self) -> httpx.Client:
        if self._given is not None:
            return self._given
        self._own = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._own

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


class _transport_errors:
    """Network failures as Unavailable, naming the object (never the URL's signature)."""

    def __init__(self, action: str, url: str) -> None:
        self._action = action
        self._url = url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, _: object
    ) -> None:
        if isinstance(e, httpx.InvalidURL | httpx.UnsupportedProtocol):
            raise InvalidInput(f"not a URL this client can {self._action}: {e}") from None
        if isinstance(e, httpx.TransportError):
            raise Unavailable(
                f"cannot {self._action} {_name(self._url)}: {type(e).__name__}: {e}; "
                "check that the object store is reachable from here"
            ) from None


def _check(response: httpx.Response, action: str, url: str) -> None:
    if not response.is_error:
        return
    status = response.status_code
    body = response.text[:4096] if response.content else ""
    code = _xml_text(body, "Code")
    detail = f"HTTP {status}" + (f" {code}" if code else "")
    message = _xml_text(body, "Message")
    if message:
        detail += f": {message}"
    what = f"the object store refused to {action} {_name(url)} ({detail})"
    err: LedgerflowError
    if status == 404:
        err = NotFound(what, kind="artifact", key=urlsplit(url).path)
    elif status == 403:
        err = InvalidInput(
            f"{what}; the signed URL may have expired or been altered: ask for a new one"
        )
    elif status >= 500:
        err = Unavailable(f"{what}; try again later")
    else:
        err = InvalidInput(what)
    raise err


def _xml_text(body: str, tag: str) -> str:
    found = re.search(rf"<{tag}>([^<]{{0,500}})</{tag}>", body)
    return found.group(1).strip() if found else ""


def _name(url: str) -> str:
    """The object's address without the query string, which holds the signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
